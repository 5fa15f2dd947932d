package awsproxy

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// okTransport answers every upstream request with an empty 200 in-process.
type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r}, nil
}

// inProcessGateway returns a gateway with a static client key whose upstream
// answers in process, and a GET of target signed for it by the SDK's signer.
func inProcessGateway(tb testing.TB, target string) (*Handler, *http.Request) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h, err := New(Config{
		Authenticator: StaticAuthenticator{"AKIDCLIENT": {SecretAccessKey: "secret"}},
		Credentials:   StaticCredentials(credentials.NewStaticCredentialsProvider("AKIDUP", "upsecret", "")),
		Upstreams:     map[string]string{"s3": "http://127.0.0.1:9"},
		Transport:     okTransport{},
		Now:           func() time.Time { return now },
	})
	if err != nil {
		tb.Fatal(err)
	}
	r := httptest.NewRequest("GET", target, nil)
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDCLIENT", SecretAccessKey: "secret"}, r, emptySHA256, "s3", "us-east-1", now); err != nil {
		tb.Fatal(err)
	}
	return h, r
}

// BenchmarkServeHTTPInProcess measures the gateway's own work per small
// request (verify, resolve, re-sign, proxy plumbing) without any network.
func BenchmarkServeHTTPInProcess(b *testing.B) {
	h, r := inProcessGateway(b, "/bucket/key.txt")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 {
		b.Fatalf("status %d: %s", w.Code, w.Body)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), r.Clone(context.Background()))
	}
}

// BenchmarkAuthenticateSession measures what every request through a
// keyless gateway pays before forwarding: opening the session token,
// deriving the secret, and verifying the SigV4 signature.
func BenchmarkAuthenticateSession(b *testing.B) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	sessions, err := identity.NewSessions(identity.SessionConfig{
		Keys: []identity.SessionKey{{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}},
		Now:  func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	creds, err := sessions.Mint(identity.Principal{Issuer: "https://idp.example", Subject: "agent-1", Groups: []string{"mcp-agents"}}, "arn:aws:iam::123456789012:role/agents", time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{
		Authenticator: SessionAuthenticator(sessions),
		Credentials:   StaticCredentials(credentials.NewStaticCredentialsProvider("AKIDUP", "upsecret", "")),
		Upstreams:     map[string]string{"s3": "http://127.0.0.1:9"},
		Transport:     okTransport{},
		Now:           func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/bucket/key.txt", nil)
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}, r, emptySHA256, "s3", "us-east-1", now); err != nil {
		b.Fatal(err)
	}
	if e := h.prepare(&Call{Request: r}); e != nil {
		b.Fatal(e)
	}
	b.ReportAllocs()
	for b.Loop() {
		if e := h.prepare(&Call{Request: r}); e != nil {
			b.Fatal(e)
		}
	}
}

func TestValidRegion(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"us-east-1", true}, {"eu-central-2", true}, {"us-gov-west-1", true}, {"cn-northwest-1", true},
		{"ap-southeast-10", true}, {"us-isob-east-1", true},
		{"", false}, {"us-east", false}, {"us-east-", false}, {"-east-1", false}, {"us--1", false},
		{"use-east-1", false}, {"US-east-1", false}, {"us-east-1a", false}, {"us-east-1@evil", false},
		{"us-east-1:80", false}, {"us-east-x", false}, {"us-e.st-1", false}, {"us-east-1-", false},
		{"us-" + strings.Repeat("a", 28) + "-1", false},
	} {
		if got := validRegion(tt.in); got != tt.want {
			t.Errorf("validRegion(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestARNAccount(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"arn:aws:iam::123456789012:role/agents", "123456789012"},
		{"arn:aws-cn:iam::210987654321:role/a:b", "210987654321"},
		{"arn:aws:s3:::bucket", ""},
		{"arn:aws:iam::123456789012", ""},
		{"arn:aws:iam:", ""},
		{"aws:iam::123456789012:role/x", ""},
		{"", ""},
	} {
		if got := arnAccount(tt.in); got != tt.want {
			t.Errorf("arnAccount(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestHeaderNameTables(t *testing.T) {
	for lk, k := range canonicalOf {
		if lk != strings.ToLower(k) || textproto.CanonicalMIMEHeaderKey(lk) != k || lowerOf[k] != lk {
			t.Errorf("table entry %q <-> %q is inconsistent", lk, k)
		}
	}
	for _, lk := range []string{"x-amz-meta-owner", "x-custom", "content-type", "weird_name", "x-amz-date"} {
		if got, want := headerKey(lk), textproto.CanonicalMIMEHeaderKey(lk); got != want {
			t.Errorf("headerKey(%q) = %q, want %q", lk, got, want)
		}
		if got := lowerHeader(headerKey(lk)); got != lk {
			t.Errorf("lowerHeader(headerKey(%q)) = %q", lk, got)
		}
	}
}

// TestSigKeyConcurrent checks that the pooled HMAC states of a signing key
// give the same MACs as crypto/hmac when many goroutines share the key.
func TestSigKeyConcurrent(t *testing.T) {
	key := signingKey("secret", credentialScope{Date: "20261125", Region: "us-east-1", Service: "s3"})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				msg := []byte(fmt.Sprintf("string to sign %d/%d %s", g, i, strings.Repeat("x", i)))
				m := hmac.New(sha256.New, key.raw)
				m.Write(msg)
				if got := key.sum(msg); !bytes.Equal(got[:], m.Sum(nil)) {
					t.Errorf("sum of %q differs from crypto/hmac", msg)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestHotPathAllocations keeps the per-request work allocation-light:
// verifying a small signed request and re-signing it for upstream. The
// bounds are today's counts plus a little headroom; a change that adds
// allocations to every request has to raise them on purpose.
func TestHotPathAllocations(t *testing.T) {
	if testing.CoverMode() != "" || raceEnabled {
		t.Skip("allocation counts differ under coverage and the race detector")
	}
	h, r := inProcessGateway(t, "/bucket/key.txt?list-type=2&prefix=a%2Fb")
	now := h.cfg.Now()
	verify := testing.AllocsPerRun(200, func() {
		if e := h.prepare(&Call{Request: r}); e != nil {
			t.Fatal(e)
		}
	})
	out := r.Clone(context.Background())
	creds := aws.Credentials{AccessKeyID: "AKIDUP", SecretAccessKey: "upsecret"}
	sign := testing.AllocsPerRun(200, func() {
		if _, err := h.signRequest(out, creds, "s3", "us-east-1", emptySHA256, now); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations: verify %.0f, re-sign %.0f", verify, sign)
	if verify > 20 {
		t.Errorf("verifying a small request allocates %.0f times, want at most 20", verify)
	}
	if sign > 6 {
		t.Errorf("re-signing a small request allocates %.0f times, want at most 6", sign)
	}
}
