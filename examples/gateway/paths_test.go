package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// pathKeys are legal, distinct S3 object keys that a path-cleaning router
// would merge, redirect or send to another bucket.
var pathKeys = []string{
	"a//b",
	"/leading",
	"//two-leading",
	"./dot",
	"a/./b",
	"a/.",
	"../up",
	"a/../../reports/x",
	"trailing/",
	"a%2Fb",            // a literal percent sign: %252F on the wire
	"%2E%2E/literal",   // likewise
	"ünïcødé/ключ/鍵 +", // non-ASCII, a space and a plus
}

// s3Escape is how the AWS SDKs put an object key into an S3 path: every
// byte but the unreserved characters and "/" percent-encoded.
func s3Escape(key string) string {
	var b strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// auditLine is the part of a "slog" audit line the path tests read.
type auditLine struct {
	Msg       string   `json:"msg"`
	Action    string   `json:"action"`
	Decision  string   `json:"decision"`
	Status    int      `json:"status"`
	Resources []string `json:"resources"`
}

// audited returns the audit lines the gateway has logged so far.
func audited(t *testing.T, gw *running) []auditLine {
	t.Helper()
	var out []auditLine
	for line := range strings.SplitSeq(gw.stderr.String(), "\n") {
		var l auditLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "audit" {
			out = append(out, l)
		}
	}
	return out
}

// decided reports whether an audit line shows action on resource with the
// decision want.
func decided(lines []auditLine, action, resource, want string) bool {
	return slices.ContainsFunc(lines, func(l auditLine) bool {
		return l.Action == action && l.Decision == want && slices.Contains(l.Resources, resource)
	})
}

// TestObjectKeyPaths: object keys with empty, dot and dot-dot segments, a
// leading slash, percent signs and non-ASCII reach the upstream exactly as
// the SDK signed them, land in the bucket and under the key the SDK named,
// and are judged by policy as that bucket and key. No router on the data
// path cleans them or redirects them elsewhere.
func TestObjectKeyPaths(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	ctx := context.Background()
	s3c := s3Client(e.agent(gw.url, "agent"))

	// What a cleaned "/sandbox-1/a/../../reports/x" would read instead.
	if _, err := e.backend.PutObject(ctx, "reports", "x", map[string]string{}, strings.NewReader("the reports bucket"), 18); err != nil {
		t.Fatal(err)
	}
	for _, key := range pathKeys {
		t.Run(key, func(t *testing.T) {
			body := "object " + key
			if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sandbox-1"), Key: aws.String(key), Body: strings.NewReader(body)}); err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			obj, err := e.backend.HeadObject(ctx, "sandbox-1", key)
			if err != nil || obj.Size != int64(len(body)) {
				t.Fatalf("the upstream has no object sandbox-1 %q: %v", key, err)
			}
			out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sandbox-1"), Key: aws.String(key)})
			if err != nil {
				t.Fatalf("GetObject: %v", err)
			}
			got, _ := io.ReadAll(out.Body)
			out.Body.Close()
			if string(got) != body {
				t.Fatalf("GetObject returned %q, want %q", got, body)
			}
			want := "/sandbox-1/" + s3Escape(key)
			e.mu.Lock()
			targets := slices.Clone(e.s3Targets)
			e.mu.Unlock()
			n := 0
			for _, tg := range targets {
				if p, _, _ := strings.Cut(tg, "?"); p == want {
					n++
				}
			}
			if n < 2 {
				t.Fatalf("the upstream saw %d requests for %s (PutObject and GetObject expected); targets: %q", n, want, targets)
			}
			arn := "arn:aws:s3:::sandbox-1/" + key
			lines := audited(t, gw)
			if !decided(lines, "s3:PutObject", arn, "allow") || !decided(lines, "s3:GetObject", arn, "allow") {
				t.Fatalf("policy did not judge %s for PutObject and GetObject: %+v", arn, lines)
			}
		})
	}

	// A write is judged by the bucket it names, never by a cleaned path:
	// "reports/../sandbox-1/x" is a key in reports, which agents may not
	// write to.
	_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("../sandbox-1/x"), Body: strings.NewReader("no")})
	wantCode(t, err, "AccessDenied")
	if !decided(audited(t, gw), "s3:PutObject", "arn:aws:s3:::reports/../sandbox-1/x", "deny") {
		t.Fatalf("no deny of reports/../sandbox-1/x in the audit: %+v", audited(t, gw))
	}
	if _, err := e.backend.HeadObject(ctx, "sandbox-1", "x"); err == nil {
		t.Fatal("a denied write reached sandbox-1/x")
	}
	if _, err := e.backend.HeadObject(ctx, "reports", "../sandbox-1/x"); err == nil {
		t.Fatal("a denied write reached the upstream")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.s3Errors) > 0 {
		t.Fatalf("the upstream refused signatures: %q", e.s3Errors)
	}
}

// TestEncodedPathSegments sends requests whose paths encode "/" and "."
// (%2F, %2E%2E), signed over exactly those bytes as S3 signs them: the
// gateway verifies, judges and forwards the path as sent, and the key is
// the decoded path (what S3 stores).
func TestEncodedPathSegments(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	ctx := context.Background()
	agent := e.agent(gw.url, "agent")
	// Mint the session through the SDK, then sign by hand.
	if _, err := s3Client(agent).ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}
	creds, err := agent.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := func(method, rawPath, body string) (int, string) {
		t.Helper()
		u, err := url.Parse(gw.url + rawPath)
		if err != nil {
			t.Fatal(err)
		}
		if u.EscapedPath() != rawPath {
			t.Fatalf("net/url would send %s for %s", u.EscapedPath(), rawPath)
		}
		req, _ := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(body))
		sum := sha256.Sum256([]byte(body))
		hash := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", hash)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
		if err := signer.SignHTTP(ctx, creds, req, hash, "s3", testRegion, time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	forwarded := func(rawPath string) bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return slices.ContainsFunc(e.s3Targets, func(tg string) bool { p, _, _ := strings.Cut(tg, "?"); return p == rawPath })
	}

	for _, tc := range []struct {
		rawPath, key string
	}{
		{"/sandbox-1/a%2F..%2F..%2Freports%2Fw", "a/../../reports/w"},
		{"/sandbox-1/%2E%2E/reports/w", "../reports/w"},
		{"/sandbox-1/%2e/w", "./w"},
		{"/sandbox-1/%2F%2Fslashes", "//slashes"},
	} {
		t.Run(tc.rawPath, func(t *testing.T) {
			body := "encoded " + tc.key
			if code, msg := send(http.MethodPut, tc.rawPath, body); code != http.StatusOK {
				t.Fatalf("PUT %s = %d %s", tc.rawPath, code, msg)
			}
			if code, got := send(http.MethodGet, tc.rawPath, ""); code != http.StatusOK || got != body {
				t.Fatalf("GET %s = %d %q, want %q", tc.rawPath, code, got, body)
			}
			if !forwarded(tc.rawPath) {
				t.Fatalf("the upstream never saw %s", tc.rawPath)
			}
			if _, err := e.backend.HeadObject(ctx, "sandbox-1", tc.key); err != nil {
				t.Fatalf("no object sandbox-1 %q: %v", tc.key, err)
			}
			arn := "arn:aws:s3:::sandbox-1/" + tc.key
			if lines := audited(t, gw); !decided(lines, "s3:PutObject", arn, "allow") || !decided(lines, "s3:GetObject", arn, "allow") {
				t.Fatalf("policy did not judge %s: %+v", arn, lines)
			}
		})
	}
	t.Run("encoded dot-dot into another bucket is that bucket's key", func(t *testing.T) {
		const raw = "/reports/%2E%2E/sandbox-1/w"
		if code, msg := send(http.MethodPut, raw, "no"); code != http.StatusForbidden || !strings.Contains(msg, "AccessDenied") {
			t.Fatalf("PUT %s = %d %s, want AccessDenied", raw, code, msg)
		}
		if !decided(audited(t, gw), "s3:PutObject", "arn:aws:s3:::reports/../sandbox-1/w", "deny") {
			t.Fatalf("no deny of reports/../sandbox-1/w: %+v", audited(t, gw))
		}
		if forwarded(raw) {
			t.Fatal("a denied write was forwarded")
		}
	})
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.s3Errors) > 0 {
		t.Fatalf("the upstream refused signatures: %q", e.s3Errors)
	}
}

// TestReservedPrefixDoesNotShadowBuckets: buckets named like the gateway's
// own endpoints are ordinary buckets on the data path.
func TestReservedPrefixDoesNotShadowBuckets(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	names := []string{"approvals", "healthz", "readyz", "metrics", "status"}
	for _, b := range names {
		if err := e.backend.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
		if _, err := e.backend.PutObject(ctx, b, "ui/", map[string]string{}, bytes.NewReader([]byte(b)), int64(len(b))); err != nil {
			t.Fatal(err)
		}
	}
	gw := e.start(e.config())
	s3c := s3Client(e.agent(gw.url, "agent"))
	for _, b := range names {
		out, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
		if err != nil || len(out.Contents) != 1 {
			t.Fatalf("ListObjectsV2 %s: %v", b, err)
		}
		obj, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("ui/")})
		if err != nil {
			t.Fatalf("GetObject %s/ui/: %v", b, err)
		}
		got, _ := io.ReadAll(obj.Body)
		obj.Body.Close()
		if string(got) != b {
			t.Fatalf("GetObject %s/ui/ = %q", b, got)
		}
	}
}

// TestOwnEndpointsRouting: the gateway's endpoints answer only at clean
// paths under OwnPrefix; an unclean path there is not found (never
// redirected, which could lead out of the prefix), and everything outside
// the prefix, the old endpoint paths included, is the AWS data path.
func TestOwnEndpointsRouting(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		path     string
		want     int
		wantBody string
	}{
		{OwnPrefix + "healthz", http.StatusOK, "ok"},
		{OwnPrefix + "metrics", http.StatusOK, "gatehouse_approvals_pending"},
		{OwnPrefix + "approvals/approvals", http.StatusUnauthorized, ""},
		{OwnPrefix + "../reports/x", http.StatusNotFound, ""},
		{OwnPrefix + "approvals/../../reports/x", http.StatusNotFound, ""},
		{OwnPrefix + "/healthz", http.StatusNotFound, ""},
		{OwnPrefix + "./healthz", http.StatusNotFound, ""},
		{OwnPrefix + "%2E%2E/reports/x", http.StatusNotFound, ""},
		{OwnPrefix + "heal%74hz", http.StatusNotFound, ""},
		{OwnPrefix + "nothing", http.StatusNotFound, ""},
		{strings.TrimSuffix(OwnPrefix, "/"), http.StatusNotFound, ""},
		// The data path: unsigned, so awsproxy refuses in S3's XML.
		{"/healthz", http.StatusForbidden, "<Code>"},
		{"/metrics", http.StatusForbidden, "<Code>"},
		{"/approvals/approvals", http.StatusForbidden, "<Code>"},
		{"/%40gatehouse/healthz", http.StatusForbidden, "<Code>"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			u, err := url.Parse(gw.url + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := client.Do(&http.Request{Method: http.MethodGet, URL: u, Header: http.Header{}})
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(b), tc.wantBody) {
				t.Fatalf("GET %s = %d %.200q, want %d with %q", tc.path, resp.StatusCode, b, tc.want, tc.wantBody)
			}
		})
	}
}
