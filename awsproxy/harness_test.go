package awsproxy_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
)

// Keys of the test world: the client (the MCP server) holds only the
// gateway key; the upstream accepts only the upstream key.
const (
	clientAKID   = "GHCLIENTKEY0000001"
	clientSecret = "client-secret-never-reaches-aws"
	upAKID       = "AKIAUPSTREAM0000001"
	upSecret     = "upstream-secret-held-by-gateway"
	testRegion   = "us-east-1"
)

var testPrincipal = identity.Principal{Issuer: "https://idp.test", Subject: "agent-1", ClientID: "mcp-agent", Groups: []string{"mcp-agents"}}

// harness is a gateway in front of a SigV4-verifying S3 (gofakes3 with
// WithV4Auth) plus optional extra upstreams, all on 127.0.0.1.
type harness struct {
	Gateway *httptest.Server
	Handler *awsproxy.Handler
	S3      *httptest.Server
	S3Hits  atomic.Int64 // requests that reached the S3 upstream
	mu      sync.Mutex
	calls   []*awsproxy.Call
	// raw aws-chunked bodies that reached the S3 upstream, with the
	// Authorization and X-Amz-Date they came with
	chunked     [][]byte
	chunkedAuth []string
	chunkedDate []string
	Insecure    bool
}

type harnessOptions struct {
	TLS       bool                       // serve the gateway over HTTPS
	Upstreams map[string]string          // extra service overrides
	Config    func(cfg *awsproxy.Config) // last-minute changes
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	h := &harness{}
	fake := gofakes3.New(s3mem.New(), gofakes3.WithV4Auth(map[string]string{upAKID: upSecret}))
	fakeHandler := fake.Server()
	h.S3 = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.S3Hits.Add(1)
		if strings.Contains(r.Header.Get("Content-Encoding"), "aws-chunked") {
			raw, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			h.mu.Lock()
			h.chunked = append(h.chunked, raw)
			h.chunkedAuth = append(h.chunkedAuth, r.Header.Get("Authorization"))
			h.chunkedDate = append(h.chunkedDate, r.Header.Get("X-Amz-Date"))
			h.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(raw))
		}
		fakeHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(h.S3.Close)
	ups := map[string]string{"s3": h.S3.URL}
	for k, v := range o.Upstreams {
		ups[k] = v
	}
	cfg := awsproxy.Config{
		Authenticator: awsproxy.StaticAuthenticator{clientAKID: {SecretAccessKey: clientSecret, Principal: testPrincipal}},
		Credentials:   awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider(upAKID, upSecret, "")),
		Upstreams:     ups,
		OnDone: func(c *awsproxy.Call) {
			h.mu.Lock()
			h.calls = append(h.calls, c)
			h.mu.Unlock()
		},
	}
	if o.Config != nil {
		o.Config(&cfg)
	}
	var err error
	h.Handler, err = awsproxy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS {
		h.Gateway = httptest.NewTLSServer(h.Handler)
	} else {
		h.Gateway = httptest.NewServer(h.Handler)
	}
	t.Cleanup(h.Gateway.Close)
	return h
}

// Calls returns the calls the gateway has finished so far.
func (h *harness) Calls() []*awsproxy.Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*awsproxy.Call(nil), h.calls...)
}

// awsConfig is a stock SDK configuration pointed at the gateway with the
// client's gateway key. AWS_CA_BUNDLE is cleared because it conflicts with
// a custom HTTP client.
func (h *harness) awsConfig(t testing.TB, akid, secret string) aws.Config {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		tt.Setenv("AWS_CA_BUNDLE", "")
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(akid, secret, "")),
		config.WithHTTPClient(h.Gateway.Client()),
		config.WithBaseEndpoint(h.Gateway.URL),
		config.WithRetryMaxAttempts(1),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func (h *harness) s3Client(t testing.TB, opts ...func(*s3.Options)) *s3.Client {
	t.Helper()
	cfg := h.awsConfig(t, clientAKID, clientSecret)
	return s3.NewFromConfig(cfg, append([]func(*s3.Options){func(o *s3.Options) { o.UsePathStyle = true }}, opts...)...)
}

// checkChunkedUpload decodes the last aws-chunked body that reached the S3
// upstream with a decoder of its own and checks the data and its CRC32
// trailer against want.
func checkChunkedUpload(t *testing.T, h *harness, want []byte) {
	t.Helper()
	h.mu.Lock()
	if len(h.chunked) == 0 {
		h.mu.Unlock()
		t.Fatal("no aws-chunked body reached the upstream")
	}
	raw := h.chunked[len(h.chunked)-1]
	h.mu.Unlock()
	var data []byte
	rest := raw
	for {
		line, after, ok := bytes.Cut(rest, []byte("\r\n"))
		if !ok {
			t.Fatalf("chunk header without CRLF at offset %d", len(raw)-len(rest))
		}
		size, err := strconv.ParseInt(string(bytes.SplitN(line, []byte(";"), 2)[0]), 16, 64)
		if err != nil {
			t.Fatalf("bad chunk size %q", line)
		}
		rest = after
		if size == 0 {
			break
		}
		data = append(data, rest[:size]...)
		if string(rest[size:size+2]) != "\r\n" {
			t.Fatal("chunk data not followed by CRLF")
		}
		rest = rest[size+2:]
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("upstream received %d decoded bytes, want %d (equal=%v)", len(data), len(want), bytes.Equal(data, want))
	}
	trailer := string(rest)
	wantTrailer := "x-amz-checksum-crc32:" + crc32Base64(want) + "\r\n\r\n"
	if trailer != wantTrailer {
		t.Fatalf("upstream trailer = %q, want %q", trailer, wantTrailer)
	}
}

// crc32Base64 is the x-amz-checksum-crc32 value of b.
func crc32Base64(b []byte) string {
	sum := crc32.ChecksumIEEE(b)
	return base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
}
