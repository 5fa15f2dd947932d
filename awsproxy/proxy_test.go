package awsproxy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/internal/syncbuf"
)

const emptyHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// signed builds a request to the gateway signed by the client key with the
// SDK's signer. body may be nil. hash "" means the hash of body.
type reqSpec struct {
	method, path string
	body         []byte
	hash         string
	service      string
	region       string
	at           time.Time
	header       http.Header
	akid, secret string
	host         string
	chunked      bool // send the body with Transfer-Encoding: chunked
}

func (h *harness) signed(t testing.TB, s reqSpec) *http.Request {
	t.Helper()
	if s.method == "" {
		s.method = http.MethodGet
	}
	if s.service == "" {
		s.service = "s3"
	}
	if s.region == "" {
		s.region = testRegion
	}
	if s.at.IsZero() {
		s.at = time.Now()
	}
	if s.akid == "" {
		s.akid, s.secret = clientAKID, clientSecret
	}
	if s.hash == "" {
		s.hash = hexSHA(s.body)
	}
	var body io.Reader
	if s.body != nil {
		body = bytes.NewReader(s.body)
	}
	r, err := http.NewRequest(s.method, h.Gateway.URL+s.path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range s.header {
		r.Header[k] = v
	}
	if s.host != "" {
		r.Host = s.host
	}
	if s.chunked {
		r.ContentLength = -1
	}
	if s.service == "s3" && r.Header.Get("X-Amz-Content-Sha256") == "" {
		r.Header.Set("X-Amz-Content-Sha256", s.hash)
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = s.service == "s3" })
	if err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: s.akid, SecretAccessKey: s.secret}, r, s.hash, s.service, s.region, s.at); err != nil {
		t.Fatal(err)
	}
	return r
}

func (h *harness) do(t testing.TB, r *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := h.Gateway.Client().Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (h *harness) mustCreateBucket(t testing.TB, name string) {
	t.Helper()
	resp, body := h.do(t, h.signed(t, reqSpec{method: http.MethodPut, path: "/" + name}))
	if resp.StatusCode != 200 {
		t.Fatalf("create bucket: %d %s", resp.StatusCode, body)
	}
}

func TestRefusedBeforeForwarding(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.mustCreateBucket(t, "guarded")
	now := time.Now()
	big := bytes.Repeat([]byte("x"), 2<<20)
	tests := []struct {
		name     string
		req      func() *http.Request
		status   int
		wantCode string
	}{
		{"no auth", func() *http.Request {
			r, _ := http.NewRequest("GET", h.Gateway.URL+"/guarded", nil)
			return r
		}, 403, "AccessDenied"},
		{"malformed auth", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded"})
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=abc")
			return r
		}, 400, "AuthorizationHeaderMalformed"},
		{"two auth headers", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded"})
			r.Header.Add("Authorization", r.Header.Get("Authorization"))
			return r
		}, 400, "AuthorizationHeaderMalformed"},
		{"header and presigned query", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded?X-Amz-Algorithm=AWS4-HMAC-SHA256"})
			return r
		}, 400, "AuthorizationHeaderMalformed"},
		{"unknown key", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", akid: "NOPE", secret: "x"})
		}, 403, "InvalidAccessKeyId"},
		{"wrong secret", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", secret: "wrong", akid: clientAKID})
		}, 403, "SignatureDoesNotMatch"},
		{"tampered signed header", func() *http.Request {
			r := h.signed(t, reqSpec{method: "PUT", path: "/guarded/k", body: []byte("v"), header: http.Header{"X-Amz-Meta-A": {"1"}}})
			r.Header.Set("X-Amz-Meta-A", "2")
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"tampered path", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded/a"})
			r.URL.Path = "/guarded/b"
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"tampered query", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded?list-type=2"})
			r.URL.RawQuery = "list-type=2&prefix=x"
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"tampered method", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded"})
			r.Method = http.MethodDelete
			return r
		}, 403, "SignatureDoesNotMatch"},
		{"tampered small body under literal hash", func() *http.Request {
			r := h.signed(t, reqSpec{method: "PUT", path: "/guarded/k", body: []byte("good")})
			r.Body = io.NopCloser(strings.NewReader("evil"))
			return r
		}, 400, "XAmzContentSHA256Mismatch"},
		{"clock skew behind", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", at: now.Add(-20 * time.Minute)})
		}, 403, "RequestTimeTooSkewed"},
		{"clock skew ahead", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", at: now.Add(20 * time.Minute)})
		}, 403, "RequestTimeTooSkewed"},
		{"unknown service", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", service: "metadata"})
		}, 400, "InvalidRequest"},
		{"invalid region", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", region: "evil.example"})
		}, 400, "InvalidRequest"},
		{"ip address as region", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", region: "169.254.169.254"})
		}, 400, "InvalidRequest"},
		{"oversized headers", func() *http.Request {
			return h.signed(t, reqSpec{path: "/guarded", header: http.Header{"X-Amz-Meta-Big": {strings.Repeat("a", 70<<10)}}})
		}, 400, "RequestHeaderSectionTooLarge"},
		{"session token with a static key", func() *http.Request {
			r := h.signed(t, reqSpec{path: "/guarded", header: http.Header{"X-Amz-Security-Token": {"forged"}}})
			return r
		}, 403, "InvalidAccessKeyId"},
		{"bad payload hash value", func() *http.Request {
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/k", body: []byte("x"), hash: "not-a-hash"})
		}, 400, "InvalidRequest"},
		{"unsigned payload for a large body is fine but unsigned header is not", func() *http.Request {
			r := h.signed(t, reqSpec{method: "PUT", path: "/guarded/k", body: big, hash: "UNSIGNED-PAYLOAD"})
			r.Header.Set("X-Amz-Content-Sha256", hexSHA(big)) // changes a signed header
			return r
		}, 403, "SignatureDoesNotMatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.S3Hits.Load()
			resp, body := h.do(t, tc.req())
			if resp.StatusCode != tc.status || resp.Header.Get("X-Gatehouse-Error") != tc.wantCode {
				t.Fatalf("got %d %s, want %d %s\n%s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"), tc.status, tc.wantCode, body)
			}
			if !bytes.Contains(body, []byte("<Code>"+tc.wantCode+"</Code>")) {
				t.Fatalf("body is not an S3 error with code %s: %s", tc.wantCode, body)
			}
			if got := h.S3Hits.Load(); got != before {
				t.Fatalf("refused request reached the upstream (%d requests)", got-before)
			}
		})
	}
}

// TestLargeTamperedBodyNeverCompletes: a body above the in-memory
// verification size streams, and a wrong literal hash aborts the upstream
// request before it completes.
func TestLargeTamperedBodyNeverCompletes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		chunked bool // Transfer-Encoding: chunked, no Content-Length
	}{
		{name: "content-length"},
		{name: "chunked", chunked: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{})
			h.mustCreateBucket(t, "guarded")
			good := randomBytes(3<<20, 5)
			evil := append([]byte{}, good...)
			evil[len(evil)-1] ^= 1
			r := h.signed(t, reqSpec{method: "PUT", path: "/guarded/big", body: good, chunked: tc.chunked})
			// Both readers hand out the last bytes together with io.EOF,
			// the case where a proxy that checks "at EOF" is too late.
			r.Body = io.NopCloser(&eofWithData{data: evil})
			resp, body := h.do(t, r)
			if resp.StatusCode < 400 {
				t.Fatalf("tampered large body accepted: %d %s", resp.StatusCode, body)
			}
			if resp.Header.Get("X-Gatehouse-Error") != "XAmzContentSHA256Mismatch" {
				t.Fatalf("error = %q, want XAmzContentSHA256Mismatch", resp.Header.Get("X-Gatehouse-Error"))
			}
			head, _ := h.do(t, h.signed(t, reqSpec{method: "HEAD", path: "/guarded/big"}))
			if head.StatusCode != 404 {
				t.Fatalf("object stored despite the tampered body: HEAD = %d", head.StatusCode)
			}
		})
	}
}

// eofWithData returns its data in 64 KiB reads, the last one with io.EOF.
type eofWithData struct{ data []byte }

func (e *eofWithData) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 64<<10)], e.data)
	e.data = e.data[n:]
	if len(e.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func TestPresignExpired(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.mustCreateBucket(t, "pre")
	r, _ := http.NewRequest("GET", h.Gateway.URL+"/pre/k", nil)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	q := r.URL.Query()
	q.Set("X-Amz-Expires", "60")
	r.URL.RawQuery = q.Encode()
	u, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: clientAKID, SecretAccessKey: clientSecret}, r, "UNSIGNED-PAYLOAD", "s3", testRegion, time.Now().Add(-10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	before := h.S3Hits.Load()
	resp, err := h.Gateway.Client().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 || resp.Header.Get("X-Gatehouse-Error") != "AccessDenied" {
		t.Fatalf("expired presigned URL: %d %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"))
	}
	if h.S3Hits.Load() != before {
		t.Fatal("expired presigned request was forwarded")
	}
}

// recordingTransport answers every outbound request itself and records
// where it would have gone: nothing leaves the process.
type recordingTransport struct {
	mu    sync.Mutex
	reqs  []*http.Request
	hosts []string
}

func (rt *recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	rt.mu.Lock()
	rt.reqs = append(rt.reqs, r)
	rt.hosts = append(rt.hosts, r.URL.Scheme+"://"+r.URL.Host+r.URL.EscapedPath())
	rt.mu.Unlock()
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"0"}}, Body: http.NoBody, Request: r}, nil
}

func (rt *recordingTransport) last() (string, *http.Request) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if len(rt.hosts) == 0 {
		return "", nil
	}
	return rt.hosts[len(rt.hosts)-1], rt.reqs[len(rt.reqs)-1]
}

// TestSSRFInvariant: the upstream host comes only from the validated
// service and region; nothing the client sends can choose it.
func TestSSRFInvariant(t *testing.T) {
	rt := &recordingTransport{}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Upstreams = nil // real endpoint rules
		c.Transport = rt
		c.VirtualHostDomains = []string{"s3.gw.test"}
	}})
	tests := []struct {
		name    string
		spec    reqSpec
		header  http.Header
		want    string // full upstream URL without query; "" means refused
		refused string
	}{
		{name: "s3 us-east-1", spec: reqSpec{path: "/b/k"}, want: "https://s3.amazonaws.com/b/k"},
		{name: "s3 eu-west-1", spec: reqSpec{path: "/b/k", region: "eu-west-1"}, want: "https://s3.eu-west-1.amazonaws.com/b/k"},
		{name: "s3 china", spec: reqSpec{path: "/b/k", region: "cn-north-1"}, want: "https://s3.cn-north-1.amazonaws.com.cn/b/k"},
		{name: "iam global", spec: reqSpec{path: "/", service: "iam"}, want: "https://iam.amazonaws.com/"},
		{name: "iam gov", spec: reqSpec{path: "/", service: "iam", region: "us-gov-west-1"}, want: "https://iam.us-gov.amazonaws.com/"},
		{name: "iam china", spec: reqSpec{path: "/", service: "iam", region: "cn-north-1"}, want: "https://iam.cn-north-1.amazonaws.com.cn/"},
		{name: "sts global", spec: reqSpec{path: "/", service: "sts"}, want: "https://sts.amazonaws.com/"},
		{name: "sts regional", spec: reqSpec{path: "/", service: "sts", region: "eu-central-1"}, want: "https://sts.eu-central-1.amazonaws.com/"},
		{name: "route53", spec: reqSpec{path: "/2013-04-01/hostedzone", service: "route53"}, want: "https://route53.amazonaws.com/2013-04-01/hostedzone"},
		{name: "cloudfront", spec: reqSpec{path: "/2020-05-31/distribution", service: "cloudfront"}, want: "https://cloudfront.amazonaws.com/2020-05-31/distribution"},
		{name: "organizations", spec: reqSpec{path: "/", service: "organizations"}, want: "https://organizations.us-east-1.amazonaws.com/"},
		{name: "ses uses its endpoint prefix", spec: reqSpec{path: "/", service: "ses", region: "eu-west-1"}, want: "https://email.eu-west-1.amazonaws.com/"},
		{name: "hostile Host header", spec: reqSpec{path: "/b/k", host: "169.254.169.254"}, want: "https://s3.amazonaws.com/b/k"},
		{name: "hostile X-Forwarded-Host", spec: reqSpec{path: "/b/k", header: http.Header{"X-Forwarded-Host": {"evil.example"}, "Forwarded": {"host=evil.example"}}}, want: "https://s3.amazonaws.com/b/k"},
		{name: "virtual-host bucket", spec: reqSpec{path: "/k", host: "mybucket.s3.gw.test"}, want: "https://s3.amazonaws.com/mybucket/k"},
		{name: "virtual-host bucket root", spec: reqSpec{path: "/", host: "mybucket.s3.gw.test"}, want: "https://s3.amazonaws.com/mybucket"},
		{name: "virtual-host lookalike is path-style", spec: reqSpec{path: "/k", host: "evil.example"}, want: "https://s3.amazonaws.com/k"},
		{name: "dotted bucket stays in the path", spec: reqSpec{path: "/k", host: "169.254.169.254.s3.gw.test"}, want: "https://s3.amazonaws.com/169.254.169.254/k"},
		{name: "s3 control host prefix from the account id", spec: reqSpec{path: "/v20180820/accesspoint", header: http.Header{"X-Amz-Account-Id": {"111122223333"}}}, want: "https://111122223333.s3-control.us-east-1.amazonaws.com/v20180820/accesspoint"},
		{name: "s3 control account id that is not a label", spec: reqSpec{path: "/v20180820/accesspoint", header: http.Header{"X-Amz-Account-Id": {"evil.example"}}}, refused: "InvalidRequest"},
		{name: "service with a dot", spec: reqSpec{path: "/", service: "evil.example"}, refused: "InvalidRequest"},
		{name: "region with an at sign", spec: reqSpec{path: "/", region: "us-east-1@evil"}, refused: "InvalidRequest"},
		{name: "region with a port", spec: reqSpec{path: "/", region: "us-east-1:80"}, refused: "InvalidRequest"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := h.do(t, h.signed(t, tc.spec))
			got, out := rt.last()
			if tc.refused != "" {
				if resp.Header.Get("X-Gatehouse-Error") != tc.refused {
					t.Fatalf("want refusal %s, got %d %s", tc.refused, resp.StatusCode, body)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			if got != tc.want {
				t.Fatalf("upstream = %s, want %s", got, tc.want)
			}
			for _, hdr := range []string{"X-Forwarded-Host", "Forwarded", "X-Amz-Security-Token"} {
				if out.Header.Get(hdr) != "" {
					t.Errorf("outbound request carries %s", hdr)
				}
			}
			if !strings.Contains(out.Header.Get("Authorization"), "Credential="+upAKID+"/") {
				t.Errorf("outbound request not signed with the upstream key: %s", out.Header.Get("Authorization"))
			}
		})
	}
}

// TestAbsoluteFormAndFramingRefused sends raw HTTP/1.1 that net/http's
// client would never produce.
func TestAbsoluteFormAndFramingRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	signedReq := h.signed(t, reqSpec{path: "/b/k"})
	signedPut := h.signed(t, reqSpec{method: "PUT", path: "/b/k", body: []byte("abc")})
	addr := strings.TrimPrefix(h.Gateway.URL, "http://")
	tests := []struct {
		name string
		raw  string
	}{
		{"absolute-form target", "GET http://169.254.169.254/b/k HTTP/1.1\r\nHost: " + addr + "\r\n" + headerLines(signedReq) + "\r\n"},
		{"content-length and transfer-encoding", "PUT /b/k HTTP/1.1\r\nHost: " + addr + "\r\n" + headerLines(signedPut) + "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := h.S3Hits.Load()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			io.WriteString(conn, tc.raw)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Fatalf("status = %d, want 400", resp.StatusCode)
			}
			if h.S3Hits.Load() != before {
				t.Fatal("request reached the upstream")
			}
		})
	}
}

func headerLines(r *http.Request) string {
	var b strings.Builder
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	return b.String()
}

// TestUnsignedAmzHeadersDropped: an x-amz-* header the client did not sign
// is never signed by the gateway on its behalf.
func TestUnsignedAmzHeadersDropped(t *testing.T) {
	rt := &recordingTransport{}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) { c.Upstreams = nil; c.Transport = rt }})
	r := h.signed(t, reqSpec{method: "PUT", path: "/b/k", body: []byte("x"), header: http.Header{"X-Amz-Meta-Signed": {"yes"}}})
	r.Header.Set("X-Amz-Acl", "public-read")
	r.Header.Set("Content-Type", "text/plain")
	resp, body := h.do(t, r)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	_, out := rt.last()
	if out.Header.Get("X-Amz-Acl") != "" {
		t.Fatal("unsigned X-Amz-Acl was forwarded")
	}
	if out.Header.Get("X-Amz-Meta-Signed") != "yes" {
		t.Fatal("signed X-Amz-Meta-Signed was dropped")
	}
}

// TestVirtualHostedS3 drives a stock SDK client in virtual-hosted mode
// against a gateway domain; the gateway forwards path-style to gofakes3.
func TestVirtualHostedS3(t *testing.T) {
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) { c.VirtualHostDomains = []string{"s3.gw.test"} }})
	addr := strings.TrimPrefix(h.Gateway.URL, "http://")
	_, port, _ := net.SplitHostPort(addr)
	cfg := h.awsConfig(t, clientAKID, clientSecret)
	cfg.HTTPClient = &http.Client{Transport: &http.Transport{
		// Every *.s3.gw.test name dials the gateway: no DNS needed.
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://s3.gw.test:" + port)
		o.UsePathStyle = false
	})
	ctx := context.Background()
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("vhost-bucket")}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("vhost-bucket"), Key: aws.String("a/b.txt"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("vhost-bucket")})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("ListObjectsV2: %v %+v", err, list)
	}
	var sawBucket bool
	for _, c := range h.Calls() {
		if c.Bucket == "vhost-bucket" && strings.HasPrefix(c.Request.Host, "vhost-bucket.s3.gw.test") {
			sawBucket = true
		}
	}
	if !sawBucket {
		t.Fatal("no call was addressed virtual-host style")
	}
}

// TestExpectContinueRefusedBodyNotSent: with Expect: 100-continue a refused
// upload is answered before the client sends its body.
func TestExpectContinueRefusedBodyNotSent(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.mustCreateBucket(t, "ecbucket")
	for _, tc := range []struct {
		name   string
		secret string
		status int
	}{
		{"accepted", clientSecret, 200},
		{"refused", "wrong", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(4<<20, 3)
			r := h.signed(t, reqSpec{method: "PUT", path: "/ecbucket/obj", body: data, hash: "UNSIGNED-PAYLOAD", akid: clientAKID, secret: tc.secret, header: http.Header{"Expect": {"100-continue"}}})
			var sent atomic.Int64
			r.Body = io.NopCloser(&countReader{r: bytes.NewReader(data), n: &sent})
			tr := h.Gateway.Client().Transport.(*http.Transport).Clone()
			tr.ExpectContinueTimeout = 5 * time.Second
			resp, err := (&http.Client{Transport: tr}).Do(r)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 && sent.Load() != int64(len(data)) {
				t.Fatalf("accepted upload sent %d of %d bytes", sent.Load(), len(data))
			}
			if tc.status != 200 && sent.Load() != 0 {
				t.Fatalf("refused upload still sent %d body bytes", sent.Load())
			}
		})
	}
}

type countReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// chunkSig computes one link of the aws-chunked signature chain, written
// out here from the SigV4 streaming definition rather than taken from the
// package, so the test checks the package against an independent reading.
func chunkSig(key []byte, amzDate, scope, prev string, data []byte, trailer bool) string {
	var sts string
	if trailer {
		sts = "AWS4-HMAC-SHA256-TRAILER\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hexSHA(data)
	} else {
		sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + emptyHash + "\n" + hexSHA(data)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(sts))
	return hex.EncodeToString(m.Sum(nil))
}

func deriveKey(secret, date, region, service string) []byte {
	k := []byte("AWS4" + secret)
	for _, s := range []string{date, region, service, "aws4_request"} {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(s))
		k = m.Sum(nil)
	}
	return k
}

// signedChunkedBody encodes data as signed aws-chunked chunks chained from
// seed. A non-empty trailer ("name:value") is signed too.
func signedChunkedBody(key []byte, amzDate, scope, seed string, data []byte, chunk int, trailer string) []byte {
	var b bytes.Buffer
	prev := seed
	for off := 0; ; off += chunk {
		part := data[min(off, len(data)):min(off+chunk, len(data))]
		prev = chunkSig(key, amzDate, scope, prev, part, false)
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(part), prev)
		b.Write(part)
		if len(part) == 0 {
			break
		}
		b.WriteString("\r\n")
	}
	if trailer == "" {
		b.WriteString("\r\n")
		return b.Bytes()
	}
	name, value, _ := strings.Cut(trailer, ":")
	canon := strings.ToLower(name) + ":" + strings.TrimSpace(value) + "\n"
	b.WriteString(trailer + "\r\n")
	b.WriteString("x-amz-trailer-signature:" + chunkSig(key, amzDate, scope, prev, []byte(canon), true) + "\r\n\r\n")
	return b.Bytes()
}

// verifyChunkChain checks every chunk and trailer signature of a signed
// aws-chunked body against key and seed, and returns the decoded data.
func verifyChunkChain(t *testing.T, raw, key []byte, amzDate, scope, seed string) []byte {
	t.Helper()
	var data []byte
	prev := seed
	rest := raw
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			t.Fatal("chunk header without CRLF")
		}
		sizeHex, sig, ok := strings.Cut(string(line), ";chunk-signature=")
		if !ok {
			t.Fatalf("chunk header %q lacks a signature", line)
		}
		var size int
		fmt.Sscanf(sizeHex, "%x", &size)
		part := after[:size]
		prev = chunkSig(key, amzDate, scope, prev, part, false)
		if sig != prev {
			t.Fatalf("chunk at decoded offset %d: signature %s, want %s", len(data), sig, prev)
		}
		data = append(data, part...)
		rest = after[size:]
		if size == 0 {
			break
		}
		rest = rest[2:]
	}
	if trailers := string(rest); trailers != "\r\n" {
		lines := strings.Split(strings.TrimSuffix(trailers, "\r\n\r\n"), "\r\n")
		last := lines[len(lines)-1]
		var canon string
		for _, l := range lines[:len(lines)-1] {
			n, v, _ := strings.Cut(l, ":")
			canon += strings.ToLower(n) + ":" + strings.TrimSpace(v) + "\n"
		}
		if want := "x-amz-trailer-signature:" + chunkSig(key, amzDate, scope, prev, []byte(canon), true); last != want {
			t.Fatalf("trailer signature line %q, want %q", last, want)
		}
	}
	return data
}

// TestSignedStreamingUpload sends STREAMING-AWS4-HMAC-SHA256-PAYLOAD bodies
// (with and without a signed trailer) through the gateway. The upstream
// must receive the same data under a valid signature chain of the
// gateway's key, seeded by the re-signed request; a tampered chunk is
// refused and never completes upstream.
func TestSignedStreamingUpload(t *testing.T) {
	for _, tc := range []struct {
		name, mode, trailer string
		tamper, truncate    bool
		maxChunk            int64 // Config.MaxChunkSize, below the client's 64 KiB chunks
	}{
		{name: "payload", mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
		{name: "payload-trailer", mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", trailer: "x-amz-checksum-crc32:placeholder"},
		{name: "tampered chunk", mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", tamper: true},
		{name: "truncated body", mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", truncate: true},
		{name: "chunk over the bound", mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", maxChunk: 16 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs syncbuf.Buffer
			h := newHarness(t, harnessOptions{Config: func(cfg *awsproxy.Config) {
				cfg.MaxChunkSize = int(tc.maxChunk)
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			}})
			h.mustCreateBucket(t, "stream")
			data := randomBytes(200<<10+5, 11)
			if tc.trailer != "" {
				tc.trailer = "x-amz-checksum-crc32:" + crc32Base64(data)
			}
			now := time.Now().UTC()
			amzDate := now.Format("20060102T150405Z")
			scope := now.Format("20060102") + "/" + testRegion + "/s3/aws4_request"
			key := deriveKey(clientSecret, now.Format("20060102"), testRegion, "s3")
			// Build the request with a placeholder body of the right length,
			// sign it, then encode the chunks from the seed signature.
			lengthProbe := signedChunkedBody(key, amzDate, scope, strings.Repeat("0", 64), data, 64<<10, tc.trailer)
			if tc.truncate {
				lengthProbe = lengthProbe[:len(lengthProbe)/2]
			}
			hdr := http.Header{
				"Content-Encoding":             {"aws-chunked"},
				"X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data))},
				"X-Amz-Content-Sha256":         {tc.mode},
			}
			if tc.trailer != "" {
				hdr.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
			}
			r := h.signed(t, reqSpec{method: "PUT", path: "/stream/obj", body: lengthProbe, hash: tc.mode, at: now, header: hdr})
			auth := r.Header.Get("Authorization")
			seed := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
			body := signedChunkedBody(key, amzDate, scope, seed, data, 64<<10, tc.trailer)
			if tc.tamper {
				body[len(body)/2] ^= 1
			}
			if tc.truncate {
				body = body[:len(body)/2]
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			resp, msg := h.do(t, r)
			if tc.tamper || tc.truncate || tc.maxChunk > 0 {
				status, code := 403, "SignatureDoesNotMatch"
				switch {
				case tc.truncate:
					status, code = 400, "InvalidRequest"
				case tc.maxChunk > 0:
					status, code = 400, "EntityTooLarge"
				}
				if resp.StatusCode != status || resp.Header.Get("X-Gatehouse-Error") != code {
					t.Fatalf("got %d %s, want %d %s: %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"), status, code, msg)
				}
				// The client's fault, not the upstream's: no warning.
				if l := logs.String(); strings.Contains(l, "upstream failure") {
					t.Fatalf("a refused client body was logged as an upstream failure: %s", l)
				}
				head, _ := h.do(t, h.signed(t, reqSpec{method: "HEAD", path: "/stream/obj"}))
				if head.StatusCode != 404 {
					t.Fatalf("object stored despite a tampered chunk: HEAD %d", head.StatusCode)
				}
				return
			}
			if resp.StatusCode != 200 {
				t.Fatalf("upload: %d %s", resp.StatusCode, msg)
			}
			h.mu.Lock()
			raw := h.chunked[len(h.chunked)-1]
			h.mu.Unlock()
			if len(raw) != len(body) {
				t.Fatalf("upstream body is %d bytes, client sent %d: the encoded length must not change", len(raw), len(body))
			}
			// The upstream signature chain is seeded by the gateway's own
			// request signature: find it in the call record.
			h.mu.Lock()
			upAuth, upDate := h.chunkedAuth[len(h.chunkedAuth)-1], h.chunkedDate[len(h.chunkedDate)-1]
			h.mu.Unlock()
			upSeed := upAuth[strings.LastIndex(upAuth, "Signature=")+len("Signature="):]
			upKey := deriveKey(upSecret, upDate[:8], testRegion, "s3")
			got := verifyChunkChain(t, raw, upKey, upDate, upDate[:8]+"/"+testRegion+"/s3/aws4_request", upSeed)
			if !bytes.Equal(got, data) {
				t.Fatal("upstream decoded data differs from what the client sent")
			}
			if tc.trailer == "" {
				// gofakes3 v0.0.12 mis-stores bodies with trailers; the chain
				// check above is the proof for that case.
				checkObject(t, h.s3Client(t), "stream", "obj", data)
			}
		})
	}
}

// TestStalledClientBody: a client that stops sending its body mid-upload
// is cut off after BodyReadTimeout and the upload never completes upstream.
func TestStalledClientBody(t *testing.T) {
	for _, tc := range []struct{ name, hash string }{
		{"streamed unsigned payload", "UNSIGNED-PAYLOAD"},
		{"buffered small body", ""},
		{"unsigned aws-chunked", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"},
		{"signed aws-chunked", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) { c.BodyReadTimeout = 300 * time.Millisecond }})
			h.mustCreateBucket(t, "stall")
			data := randomBytes(64<<10, 9)
			var hdr http.Header
			if strings.HasPrefix(tc.hash, "STREAMING-") {
				// One 64 KiB chunk; the client stalls inside it, so its
				// signature (signed mode) is never reached.
				ext := ""
				if tc.hash != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
					ext = ";chunk-signature=" + strings.Repeat("0", 64)
				}
				hdr = http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data))}}
				data = append([]byte(fmt.Sprintf("%x%s\r\n", len(data), ext)), data...)
				data = append(data, "\r\n0"+ext+"\r\n\r\n"...)
			}
			r := h.signed(t, reqSpec{method: "PUT", path: "/stall/obj", body: data, hash: tc.hash, header: hdr})
			addr := strings.TrimPrefix(h.Gateway.URL, "http://")
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(20 * time.Second))
			head := "PUT /stall/obj HTTP/1.1\r\nHost: " + addr + "\r\n" + headerLines(r) + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(data))
			io.WriteString(conn, head)
			conn.Write(data[:1000]) // then stall
			start := time.Now()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response to a stalled upload: %v", err)
			}
			resp.Body.Close()
			if waited := time.Since(start); waited > 10*time.Second {
				t.Fatalf("gateway waited %v for a stalled body", waited)
			}
			if resp.StatusCode != 400 || resp.Header.Get("X-Gatehouse-Error") != "RequestTimeout" {
				for _, c := range h.Calls() {
					t.Logf("call %s %s status %d in %d err %v", c.Request.Method, c.Request.URL, c.Status, c.BytesIn, c.Err)
				}
				b, _ := io.ReadAll(resp.Body)
				t.Logf("headers %v body %q", resp.Header, b)
				t.Fatalf("stalled upload answered %d %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"))
			}
			head2, _ := h.do(t, h.signed(t, reqSpec{method: "HEAD", path: "/stall/obj"}))
			if head2.StatusCode != 404 {
				t.Fatalf("stalled upload was stored: HEAD %d", head2.StatusCode)
			}
		})
	}
}

// TestBodyOverBufferLimit: a body the gateway must hold to verify it (every
// service but S3 signs the body's hash without sending it) is refused past
// MaxBodyBuffer, as the caller's fault, in the protocol's own error shape,
// and nothing reaches the upstream.
func TestBodyOverBufferLimit(t *testing.T) {
	var upstreamHits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { upstreamHits.Add(1) }))
	defer up.Close()
	for _, tc := range []struct{ service, target, wantCode string }{
		{"dynamodb", "DynamoDB_20120810.PutItem", "RequestEntityTooLargeException"},
		{"sts", "", "RequestEntityTooLarge"},
	} {
		t.Run(tc.service, func(t *testing.T) {
			var logs syncbuf.Buffer
			h := newHarness(t, harnessOptions{Upstreams: map[string]string{tc.service: up.URL}, Config: func(cfg *awsproxy.Config) {
				cfg.MaxBodyBuffer = 1 << 10
				cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			}})
			hdr := http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amz-Target": {tc.target}}
			body := []byte(`{"pad":"` + strings.Repeat("x", 2<<10) + `"}`)
			if tc.service == "sts" {
				hdr = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
				body = []byte("Action=GetCallerIdentity&Version=2011-06-15&Pad=" + strings.Repeat("x", 2<<10))
			}
			resp, msg := h.do(t, h.signed(t, reqSpec{method: "POST", path: "/", service: tc.service, body: body, header: hdr}))
			if resp.StatusCode != 400 || resp.Header.Get("X-Gatehouse-Error") != tc.wantCode {
				t.Fatalf("got %d %s, want 400 %s: %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"), tc.wantCode, msg)
			}
			if n := upstreamHits.Load(); n != 0 {
				t.Fatalf("upstream called %d times", n)
			}
			if l := logs.String(); strings.Contains(l, "upstream failure") {
				t.Fatalf("logged as an upstream failure: %s", l)
			}
		})
	}
}
