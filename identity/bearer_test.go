package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// fakeVerifier accepts "good" and reports "old" as expired.
type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, raw string) (*identity.Token, error) {
	switch raw {
	case "good":
		return &identity.Token{Principal: identity.Principal{Issuer: "https://idp.test", Subject: "agent"}}, nil
	case "old":
		return nil, fmt.Errorf("%w: at some point", identity.ErrTokenExpired)
	}
	return nil, fmt.Errorf("%w: nope", identity.ErrTokenInvalid)
}

func TestBearer(t *testing.T) {
	const md = "https://mcp.example/.well-known/oauth-protected-resource"
	b := &identity.Bearer{Verifier: fakeVerifier{}, MetadataURL: md}
	srv := httptest.NewServer(b.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := identity.PrincipalFrom(r.Context())
		if !ok {
			t.Error("no principal in the context")
		}
		io.WriteString(w, p.String())
	})))
	defer srv.Close()
	tests := []struct {
		name       string
		header     []string
		query      string
		status     int
		wantBody   string
		wantChall  string
		wantErrTag string
	}{
		{name: "valid", header: []string{"Bearer good"}, status: 200, wantBody: "https://idp.test#agent"},
		{name: "scheme is case-insensitive", header: []string{"bearer good"}, status: 200, wantBody: "https://idp.test#agent"},
		{name: "missing", status: 401, wantChall: `Bearer resource_metadata="` + md + `"`},
		{name: "other scheme", header: []string{"Basic Zm9vOmJhcg=="}, status: 401, wantChall: `Bearer resource_metadata="` + md + `"`},
		{name: "invalid", header: []string{"Bearer forged"}, status: 401, wantErrTag: `error="invalid_token"`},
		{name: "expired", header: []string{"Bearer old"}, status: 401, wantErrTag: `error_description="the access token expired"`},
		{name: "two headers", header: []string{"Bearer good", "Bearer good"}, status: 400, wantErrTag: `error="invalid_request"`},
		{name: "token in query", query: "?access_token=good", status: 400, wantErrTag: `error="invalid_request"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", srv.URL+"/mcp"+tc.query, nil)
			for _, h := range tc.header {
				req.Header.Add("Authorization", h)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, tc.status, body)
			}
			chall := resp.Header.Get("WWW-Authenticate")
			if tc.wantBody != "" && string(body) != tc.wantBody {
				t.Fatalf("body %q, want %q", body, tc.wantBody)
			}
			if tc.wantChall != "" && chall != tc.wantChall {
				t.Fatalf("challenge %q, want %q", chall, tc.wantChall)
			}
			if tc.wantErrTag != "" && (!strings.Contains(chall, tc.wantErrTag) || !strings.Contains(chall, `resource_metadata="`+md+`"`)) {
				t.Fatalf("challenge %q lacks %s or the metadata URL", chall, tc.wantErrTag)
			}
		})
	}
}

func TestResourceMetadata(t *testing.T) {
	srv := httptest.NewServer(identity.ResourceMetadata{Resource: "https://mcp.example/mcp", AuthorizationServers: []string{"https://idp.test"}})
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got["resource"] != "https://mcp.example/mcp" || fmt.Sprint(got["authorization_servers"]) != "[https://idp.test]" || fmt.Sprint(got["bearer_methods_supported"]) != "[header]" {
		t.Fatalf("metadata = %v", got)
	}
	post, _ := http.Post(srv.URL, "text/plain", nil)
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST status %d", post.StatusCode)
	}
}
