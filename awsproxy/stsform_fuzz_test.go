package awsproxy

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// refusingExchanger refuses every token, recording that it was asked.
type refusingExchanger struct{ asked *int }

func (r refusingExchanger) Exchange(_ context.Context, req identity.ExchangeRequest) (*identity.ExchangeResult, error) {
	*r.asked++
	return nil, errors.Join(identity.ErrTokenInvalid, errors.New("fuzz"))
}

// FuzzSTSForm feeds arbitrary unsigned STS bodies to the gateway's STS
// endpoint: it must never panic, must always answer with an STS-shaped
// XML error (no token is valid here), and must ask the exchanger only for
// well-formed AssumeRoleWithWebIdentity calls that carry a token.
func FuzzSTSForm(f *testing.F) {
	for _, seed := range []string{
		"Action=AssumeRoleWithWebIdentity&RoleArn=arn:aws:iam::1:role/r&RoleSessionName=s&WebIdentityToken=x&Version=2011-06-15",
		"Action=AssumeRoleWithWebIdentity&WebIdentityToken=&DurationSeconds=99999999999999999999",
		"Action=GetCallerIdentity",
		"Action=AssumeRoleWithWebIdentity&WebIdentityToken=a%ZZ",
		"%%%&&&===",
		strings.Repeat("a=b&", 5000),
		"",
	} {
		f.Add(seed)
	}
	var asked int
	h, err := New(Config{
		Authenticator: StaticAuthenticator{},
		Credentials:   StaticCredentials(credentials.NewStaticCredentialsProvider("AKID", "secret", "")),
		WebIdentity:   refusingExchanger{&asked},
		Upstreams:     map[string]string{"sts": "http://127.0.0.1:9"},
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		before := asked
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code < 400 {
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if !strings.Contains(w.Body.String(), "<ErrorResponse>") || w.Header().Get("X-Gatehouse-Error") == "" {
			t.Fatalf("not an STS error: %q", w.Body.String())
		}
		if asked > before && !strings.Contains(body, "WebIdentityToken=") {
			t.Fatalf("exchanger asked for a body without a token: %q", body)
		}
	})
}
