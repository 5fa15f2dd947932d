package awsproxy

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
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

// BenchmarkServeHTTPInProcess measures the gateway's own work per small
// request (verify, resolve, re-sign, proxy plumbing) without any network.
func BenchmarkServeHTTPInProcess(b *testing.B) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	h, err := New(Config{
		Authenticator: StaticAuthenticator{"AKIDCLIENT": {SecretAccessKey: "secret"}},
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
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "AKIDCLIENT", SecretAccessKey: "secret"}, r, emptySHA256, "s3", "us-east-1", now); err != nil {
		b.Fatal(err)
	}
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
