package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4test"
	"github.com/gatehouse-dev/gatehouse/internal/syncbuf"
	"github.com/gatehouse-dev/gatehouse/policy/approval"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
)

const (
	testRegion     = "us-east-1"
	testRoleARN    = "arn:aws:iam::111122223333:role/mcp-agents"
	testAudience   = "gatehouse"
	upstreamKey    = "AKIATESTUPSTREAM0001"
	upstreamSecret = "upstream-secret-held-only-by-the-gateway"
)

// extraPolicy is merged after the starter policy: agents may write to
// sandbox-* buckets.
const extraPolicy = `rules:
  - name: allow-sandbox-writes
    effect: allow
    when: |
      request.action == "s3:PutObject" &&
      request.resources.exists(r, r.iamLike("arn:aws:s3:::sandbox-*"))
    reason: agents may write to sandbox buckets
`

// env is one test's world: identity provider, S3 stand-in, files.
type env struct {
	// slow, if set, receives a value when the S3 stand-in starts serving
	// an object named "slow", which it then answers after 500ms.
	slow chan struct{}
	// s3Tokens are the X-Amz-Security-Token values the S3 stand-in saw;
	// s3Targets the request targets (path and query) exactly as they came
	// off the wire, and s3Errors the requests the stand-in refused itself.
	mu        sync.Mutex
	s3Tokens  []string
	s3Targets []string
	s3Errors  []string
	t         *testing.T
	dir       string
	idp       *testidp.IdP
	backend   *s3mem.Backend
	s3URL     string
	policy    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "")
	t.Setenv("GATEHOUSE_TEST_KEY_ID", upstreamKey)
	t.Setenv("GATEHOUSE_TEST_SECRET", upstreamSecret)
	idp, err := testidp.Start(testAudience, map[string]testidp.Client{
		"agent":    {Secret: "agent-secret", Subject: "agent", Groups: []string{"mcp-agents"}},
		"stranger": {Secret: "stranger-secret", Subject: "stranger", Groups: []string{"visitors"}},
		"alice":    {Secret: "alice-secret", Subject: "alice", Groups: []string{"platform-oncall"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)

	backend := s3mem.New()
	for _, b := range []string{"reports", "sandbox-1", "prod-reports"} {
		if err := backend.CreateBucket(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := backend.PutObject(context.Background(), "reports", "slow", map[string]string{}, strings.NewReader("worth the wait"), 14); err != nil {
		t.Fatal(err)
	}
	fake := gofakes3.New(backend, gofakes3.WithV4Auth(map[string]string{upstreamKey: upstreamSecret})).Server()
	// gofakes3 checks signatures over the decoded path encoded again, so
	// it refuses a request whose path encodes "/" or "." (%2F, %2E), which
	// AWS accepts: S3 signs the path as sent. The stand-in checks those
	// signatures itself, over the exact request target, and hands them to
	// a gofakes3 without authentication over the same buckets.
	unauthenticated := gofakes3.New(backend).Server()
	e := &env{t: t, dir: t.TempDir(), idp: idp, backend: backend, slow: make(chan struct{}, 1)}
	// The default audit.dir is under $STATE_DIRECTORY: never the machine's
	// /var/lib/gatehouse in tests.
	t.Setenv("STATE_DIRECTORY", filepath.Join(e.dir, "state"))
	s3srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.s3Tokens = append(e.s3Tokens, r.Header.Get("X-Amz-Security-Token"))
		e.s3Targets = append(e.s3Targets, r.RequestURI)
		e.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/slow") {
			e.slow <- struct{}{}
			time.Sleep(500 * time.Millisecond)
		}
		if target := strings.ToUpper(r.RequestURI); strings.Contains(target, "%2F") || strings.Contains(target, "%2E") {
			body, _ := io.ReadAll(r.Body)
			if _, err := sigv4test.Verify(r, body, aws.Credentials{AccessKeyID: upstreamKey, SecretAccessKey: upstreamSecret}); err != nil {
				e.mu.Lock()
				e.s3Errors = append(e.s3Errors, r.RequestURI+": "+err.Error())
				e.mu.Unlock()
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			unauthenticated.ServeHTTP(w, r)
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(s3srv.Close)
	e.s3URL = s3srv.URL
	e.write("session.key", strings.Repeat("ab", 32)+"\n")
	e.policy = e.write("extra-policy.yaml", extraPolicy)
	return e
}

func (e *env) write(name, content string) string {
	e.t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// config is a complete configuration for this world.
func (e *env) config() string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
oidc:
  issuers:
    - url: %s
      audiences: [%s]
sessions:
  keyFiles: [%s]
  maxDuration: 15m
roles:
  - name: mcp-agents
    arn: %s
    when: '"mcp-agents" in principal.groups'
aws:
  credentials: static
  static:
    accessKeyIdEnv: GATEHOUSE_TEST_KEY_ID
    secretAccessKeyEnv: GATEHOUSE_TEST_SECRET
upstreams:
  s3: %s
policy:
  files: ["starter:mcp-agents", %s]
masks:
  maxBody: 1048576
approvals:
  store: memory
audit:
  sinks: [slog]
  mode: fail-open
limits:
  maxSkew: 5m
  shutdownTimeout: 5s
`, e.idp.Issuer, testAudience, filepath.Join(e.dir, "session.key"), testRoleARN, e.s3URL, e.policy)
}

// baseAudit is the audit section of config: the slog lines only, which
// records nothing a call could wait for, so fail-open.
const baseAudit = "audit:\n  sinks: [slog]\n  mode: fail-open\n"

// withAudit is config with its audit section replaced by section.
func (e *env) withAudit(section string) string {
	e.t.Helper()
	cfg := e.config()
	if !strings.Contains(cfg, baseAudit) {
		e.t.Fatal("the test config has no audit section to replace")
	}
	return strings.Replace(cfg, baseAudit, section, 1)
}

// running is a gateway started by run in-process.
type running struct {
	url    string
	stderr *syncbuf.Buffer
	stop   func() error // cancels run's context and returns run's error
}

func (e *env) start(config string, args ...string) *running {
	e.t.Helper()
	path := e.write("gateway.yaml", config)
	args = append([]string{"-config", path}, args...)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	stderr := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		err := run(ctx, args, pw, stderr)
		pw.CloseWithError(errors.New("run returned"))
		done <- err
	}()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				lines <- addr
			}
		}
		close(lines)
		io.Copy(io.Discard, pr)
	}()
	var url string
	select {
	case u, ok := <-lines:
		if !ok {
			cancel()
			e.t.Fatalf("gateway did not start: %v\n%s", <-done, stderr.String())
		}
		url = u
	case <-time.After(30 * time.Second):
		cancel()
		e.t.Fatalf("gateway did not start in time\n%s", stderr.String())
	}
	var once sync.Once
	var runErr error
	r := &running{url: url, stderr: stderr, stop: func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
		})
		return runErr
	}}
	e.t.Cleanup(func() { r.stop() })
	return r
}

// agent is the stock SDK configuration of a workload whose only credential
// is its OIDC token, exchanged at the gateway's STS endpoint.
func (e *env) agent(gateway, client string) aws.Config {
	e.t.Helper()
	return e.agentWith(gateway, client, nil)
}

// agentWith is agent with an HTTP client (nil means the SDK's default).
func (e *env) agentWith(gateway, client string, hc *http.Client) aws.Config {
	e.t.Helper()
	token, err := e.idp.Token(client)
	if err != nil {
		e.t.Fatal(err)
	}
	tokenFile := e.write("token-"+client, token)
	stsOpts := sts.Options{Region: testRegion, BaseEndpoint: aws.String(gateway)}
	if hc != nil {
		stsOpts.HTTPClient = hc
	}
	cfg := aws.Config{
		Region:       testRegion,
		BaseEndpoint: aws.String(gateway),
		Credentials:  aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(sts.New(stsOpts), testRoleARN, stscreds.IdentityTokenFile(tokenFile))),
		Logger:       logging.Nop{},
	}
	if hc != nil {
		cfg.HTTPClient = hc
	}
	return cfg
}

func s3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != code {
		t.Fatalf("error = %v, want %s", err, code)
	}
}

// TestGateway starts the binary from a config file and drives it with the
// AWS SDK: reads are allowed, writes denied except where the extra policy
// file allows them, probes and metrics answer, and shutdown drains.
func TestGateway(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	ctx := context.Background()

	for _, p := range []string{OwnPrefix + "healthz", OwnPrefix + "readyz"} {
		if code, body := get(t, gw.url+p); code != http.StatusOK {
			t.Errorf("GET %s = %d %q, want 200", p, code, body)
		}
	}

	agent := e.agent(gw.url, "agent")
	who, err := sts.NewFromConfig(agent).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if !strings.Contains(aws.ToString(who.Arn), "assumed-role/mcp-agents/") {
		t.Errorf("caller = %s", aws.ToString(who.Arn))
	}

	s3c := s3Client(agent)
	list, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{})
	if err != nil {
		t.Fatalf("ListBuckets (read-only, allowed): %v", err)
	}
	if len(list.Buckets) != 3 {
		t.Errorf("ListBuckets returned %d buckets, want 3", len(list.Buckets))
	}
	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("reports"), Key: aws.String("x"), Body: strings.NewReader("no")})
	wantCode(t, err, "AccessDenied")
	_, err = s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sandbox-1"), Key: aws.String("x"), Body: strings.NewReader("yes")})
	if err != nil {
		t.Fatalf("PutObject to sandbox-1 (allowed by the extra policy file): %v", err)
	}

	// A principal no role admits gets no session at all.
	_, err = s3Client(e.agent(gw.url, "stranger")).ListBuckets(ctx, &s3.ListBucketsInput{})
	if err == nil {
		t.Fatal("a stranger listed buckets")
	}

	_, metrics := get(t, gw.url+OwnPrefix+"metrics")
	for _, want := range []string{
		`gatehouse_requests_total{action="s3:ListAllMyBuckets",decision="allow"} 1`,
		`gatehouse_requests_total{action="s3:PutObject",decision="deny"} 1`,
		`gatehouse_requests_total{action="s3:PutObject",decision="allow"} 1`,
		`gatehouse_request_duration_seconds_count{decision="allow"}`,
		`gatehouse_approvals_pending 0`,
		`gatehouse_audit_dropped_total 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if !strings.Contains(gw.stderr.String(), `"msg":"audit"`) {
		t.Error("the slog audit sink wrote no line")
	}
	if err := gw.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if !strings.Contains(gw.stderr.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", gw.stderr.String())
	}
}

// TestReload sends SIGHUP after breaking a policy file: the reload fails,
// is logged and counted, and the old policy keeps serving; a good file is
// then picked up by the next SIGHUP.
func TestReload(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	ctx := context.Background()
	s3c := s3Client(e.agent(gw.url, "agent"))
	put := func() error {
		_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sandbox-1"), Key: aws.String("k"), Body: strings.NewReader("v")})
		return err
	}
	if err := put(); err != nil {
		t.Fatalf("PutObject before reload: %v", err)
	}

	e.write("extra-policy.yaml", "rules:\n  - name: broken\n    effect: allow\n    when: 'request.action ==\n")
	hup(t, gw, `policy reload failed`)
	if err := put(); err != nil {
		t.Fatalf("PutObject after a failed reload (the old policy must keep serving): %v", err)
	}
	if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets after a failed reload: %v", err)
	}

	e.write("extra-policy.yaml", "rules: []\n")
	hup(t, gw, `"msg":"policy reloaded"`)
	wantCode(t, put(), "AccessDenied")

	_, metrics := get(t, gw.url+OwnPrefix+"metrics")
	for _, want := range []string{`gatehouse_policy_reloads_total{result="error"} 1`, `gatehouse_policy_reloads_total{result="ok"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// hup sends SIGHUP to this process (the gateway under test has
// registered for it) and waits for want in the log.
func hup(t *testing.T, gw *running, want string) {
	t.Helper()
	before := strings.Count(gw.stderr.String(), want)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Count(gw.stderr.String(), want) > before {
			return
		}
	}
	t.Fatalf("no %q in the log after SIGHUP:\n%s", want, gw.stderr.String())
}

// TestStartErrors: problems found while building the gateway name the
// field too, and the process does not start.
func TestStartErrors(t *testing.T) {
	e := newEnv(t)
	short := e.write("short.key", "too short")
	tests := []struct {
		name    string
		edit    func(string) string
		wantErr string
	}{
		{"short session key", func(c string) string {
			return strings.Replace(c, filepath.Join(e.dir, "session.key"), short, 1)
		}, "sessions.keyFiles[0]: key shorter than 32 bytes"},
		{"unset static key env", func(c string) string {
			return strings.Replace(c, "GATEHOUSE_TEST_SECRET", "GATEHOUSE_TEST_UNSET", 1)
		}, "aws.static.secretAccessKeyEnv: environment variable GATEHOUSE_TEST_UNSET is empty or unset"},
		{"bad policy file", func(c string) string {
			return strings.Replace(c, e.policy, filepath.Join(e.dir, "missing.yaml"), 1)
		}, "policy.files"},
		{"missing TLS certificate", func(c string) string {
			return strings.Replace(c, "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:0\ntls:\n  cert: /nonexistent/tls.crt\n  key: /nonexistent/tls.key\n", 1)
		}, "tls.cert: open /nonexistent/tls.crt"},
		{"bad role condition", func(c string) string {
			return strings.Replace(c, `'"mcp-agents" in principal.groups'`, `'principal.nope +'`, 1)
		}, "roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := e.write("bad.yaml", tt.edit(e.config()))
			var out, errb bytes.Buffer
			err := run(context.Background(), []string{"-config", path, "-check"}, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("run = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
	// -check asks STS about the base key when assumeRole is set.
	t.Setenv("AWS_ENDPOINT_URL_STS", fakeSTS(t, upstreamKey, upstreamSecret))
	for name, cfg := range map[string]string{
		"static":             e.config(),
		"static, assumeRole": strings.Replace(e.config(), "  credentials: static\n", "  credentials: static\n  assumeRole: true\n  region: eu-west-1\n", 1),
	} {
		path := e.write("good.yaml", cfg)
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{"-config", path, "-check"}, &out, &errb); err != nil || !strings.Contains(out.String(), "configuration ok") {
			t.Fatalf("%s: -check on a good config = %v, %q", name, err, out.String())
		}
	}
}

// TestApproval: a destructive call on a production bucket is held until
// an approver approves it through /@gatehouse/approvals/ with an OIDC bearer token;
// the pending gauge sees it meanwhile.
func TestApproval(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	ctx := context.Background()

	if code, _ := get(t, gw.url+OwnPrefix+"approvals/approvals?state=pending"); code != http.StatusUnauthorized {
		t.Fatalf("approval API without a token = %d, want 401", code)
	}
	token, err := e.idp.Token("alice")
	if err != nil {
		t.Fatal(err)
	}
	approver := func(method, path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, method, gw.url+OwnPrefix+"approvals"+path, strings.NewReader(`{"reason":"ticket 42"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	approved := make(chan string, 1)
	go func() {
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			_, body := approver(http.MethodGet, "/approvals?state=pending")
			id, ok := between(body, `"id":"`, `"`)
			if !ok {
				continue
			}
			resp, err := http.Get(gw.url + OwnPrefix + "metrics")
			if err != nil {
				approved <- err.Error()
				return
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(metrics), "gatehouse_approvals_pending 1") {
				approved <- "gauge did not show the pending approval"
				return
			}
			code, body := approver(http.MethodPost, "/approvals/"+id+"/approve")
			approved <- fmt.Sprintf("%d %s", code, body)
			return
		}
		approved <- "no pending approval appeared"
	}()
	_, err = s3Client(e.agent(gw.url, "agent")).DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("prod-reports")})
	if got := <-approved; !strings.HasPrefix(got, "200 ") {
		t.Fatalf("approver: %s", got)
	}
	if err != nil {
		t.Fatalf("DeleteBucket after approval: %v", err)
	}
	_, metrics := get(t, gw.url+OwnPrefix+"metrics")
	if !strings.Contains(metrics, `gatehouse_requests_total{action="s3:DeleteBucket",decision="approve"} 1`) {
		t.Errorf("/metrics lacks the approved DeleteBucket:\n%s", metrics)
	}
}

func between(s, start, end string) (string, bool) {
	_, rest, ok := strings.Cut(s, start)
	if !ok {
		return "", false
	}
	v, _, ok := strings.Cut(rest, end)
	return v, ok && v != ""
}

// TestPostgres starts the gateway with the PostgreSQL approval store (in a
// private schema) and checks /readyz; it skips when no server answers at
// GATEHOUSE_TEST_POSTGRES (default the development machine's).
func TestPostgres(t *testing.T) {
	schema := pgtest.Schema(t, "gateway_test_")
	dsn := pgtest.DSN()

	e := newEnv(t)
	t.Setenv("GATEHOUSE_TEST_DSN", dsn)
	cfg := strings.Replace(e.config(), "  store: memory\n", "  store: postgres\n  dsnEnv: GATEHOUSE_TEST_DSN\n  schema: "+schema+"\n", 1)
	gw := e.start(cfg)
	if code, body := get(t, gw.url+OwnPrefix+"readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d %q", code, body)
	}
	if _, err := s3Client(e.agent(gw.url, "agent")).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets: %v", err)
	}
	_, metrics := get(t, gw.url+OwnPrefix+"metrics")
	if !strings.Contains(metrics, "gatehouse_approvals_pending 0") {
		t.Error("/metrics lacks the pending gauge read from PostgreSQL")
	}
}

// TestDrain: a call in flight when the gateway is told to stop completes,
// and run returns cleanly.
func TestDrain(t *testing.T) {
	e := newEnv(t)
	gw := e.start(e.config())
	s3c := s3Client(e.agent(gw.url, "agent"))
	ctx := context.Background()
	if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil { // mint the session first
		t.Fatal(err)
	}
	type result struct {
		body string
		err  error
	}
	done := make(chan result, 1)
	go func() {
		out, err := s3c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String("slow")})
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(out.Body)
		out.Body.Close()
		done <- result{string(b), err}
	}()
	select {
	case <-e.slow:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow call never reached the upstream")
	}
	if err := gw.stop(); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	r := <-done
	if r.err != nil || r.body != "worth the wait" {
		t.Fatalf("in-flight GetObject = %q, %v; want it drained", r.body, r.err)
	}
	if _, err := http.Get(gw.url + OwnPrefix + "healthz"); err == nil {
		t.Error("the gateway still answers after shutdown")
	}
}

// TestTLS serves HTTPS from tls.cert and tls.key, with the listen address
// overridden by -listen, and picks up a rotated certificate on SIGHUP.
func TestTLS(t *testing.T) {
	e := newEnv(t)
	first := e.selfSigned(1)
	cfg := strings.Replace(e.config(), "listen: 127.0.0.1:0\n", "listen: 127.0.0.1:1\ntls:\n  cert: "+filepath.Join(e.dir, "tls.crt")+"\n  key: "+filepath.Join(e.dir, "tls.key")+"\n", 1)
	gw := e.start(cfg, "-listen", "127.0.0.1:0")
	if !strings.HasPrefix(gw.url, "https://127.0.0.1:") || strings.HasSuffix(gw.url, ":1") {
		t.Fatalf("gateway URL %s: want https on the -listen address", gw.url)
	}
	client := trusting(first)
	agent := e.agentWith(gw.url, "agent", client)
	if _, err := s3Client(agent).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets over TLS: %v", err)
	}

	second := e.selfSigned(2)
	hup(t, gw, `"msg":"TLS certificate reloaded"`)
	resp, err := trusting(second).Get(gw.url + OwnPrefix + "healthz")
	if err != nil {
		t.Fatalf("GET /healthz with the rotated certificate: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz over TLS = %d", resp.StatusCode)
	}
}

// selfSigned writes tls.crt and tls.key for 127.0.0.1 and returns the
// certificate.
func (e *env) selfSigned(serial int64) *x509.Certificate {
	e.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		e.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		e.t.Fatal(err)
	}
	e.write("tls.crt", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	e.write("tls.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		e.t.Fatal(err)
	}
	return cert
}

// trusting is an HTTP client that trusts only cert.
func trusting(cert *x509.Certificate) *http.Client {
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

// TestFileAudit: with the file sink the gateway writes a hash-chained trail
// that verifies and names the workload, and records the session.
func TestFileAudit(t *testing.T) {
	e := newEnv(t)
	dir, rec := filepath.Join(t.TempDir(), "trail"), filepath.Join(t.TempDir(), "sessions")
	cfg := e.withAudit("audit:\n  sinks: [slog, file]\n  dir: " + dir + "\n  recordingsDir: " + rec + "\n")
	gw := e.start(cfg)
	if _, err := s3Client(e.agent(gw.url, "agent")).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}
	if err := gw.stop(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	rep, err := audit.Verify(files...)
	if err != nil || rep.Events == 0 {
		t.Fatalf("trail: %v, %d events", err, rep.Events)
	}
	events, err := audit.ReadEvents(files...)
	if err != nil {
		t.Fatal(err)
	}
	var listed bool
	for _, ev := range events {
		listed = listed || (ev.Request.Action == "s3:ListAllMyBuckets" && ev.Phase == audit.PhaseCompletion && ev.Principal.Subject != "")
	}
	if !listed {
		t.Fatalf("no completion event for ListBuckets among %d events", len(events))
	}
	sessions, err := audit.Sessions(rec)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("no recorded session: %v", err)
	}
}

func TestAuditConfigErrors(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, audit, field string }{
		{"fail-closed without the file sink", "audit:\n  sinks: [slog]\n", "audit.sinks: fail-closed"},
		{"fail-closed with no sink", "audit:\n  sinks: []\n", "audit.sinks: fail-closed"},
		{"unknown sink", "audit:\n  sinks: [kafka]\n", "audit.sinks[0]"},
		{"bad mode", "audit:\n  sinks: [slog]\n  mode: maybe\n", "audit.mode"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.withAudit(tc.audit)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-config", e.write("bad.yaml", cfg), "-check"}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
		})
	}
}

// TestAssumeRoleAndWebhook runs the binary as a deployment would: a base key
// good only for STS (aws.credentials: static with aws.assumeRole), the STS
// endpoint taken from the SDK's environment, and approvers told through a
// signed webhook. The STS stand-in verifies the gateway's SigV4 signature
// with the base key and checks the AssumeRole parameters; the S3 stand-in
// only knows the temporary key STS handed out; the webhook receiver checks
// the HMAC signature and approves the held call through the approval API.
func TestAssumeRoleAndWebhook(t *testing.T) {
	e := newEnv(t)
	const (
		baseKey      = "AKIATESTBASEKEY00001"
		baseSecret   = "base-secret-good-only-for-sts"
		sessionToken = "temporary-session-token-from-sts"
		hookSecret   = "webhook-secret-of-at-least-32-bytes!"
	)
	t.Setenv("GATEHOUSE_BASE_KEY_ID", baseKey)
	t.Setenv("GATEHOUSE_BASE_SECRET", baseSecret)
	t.Setenv("GATEHOUSE_HOOK_SECRET", hookSecret)
	// Nothing from this machine's AWS configuration.
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(e.dir, "no-aws-config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(e.dir, "no-aws-credentials"))
	t.Setenv("AWS_PROFILE", "")

	var mu sync.Mutex
	var assumed []url.Values
	var refused []string
	stsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		_, err := sigv4test.Verify(r, body, aws.Credentials{AccessKeyID: baseKey, SecretAccessKey: baseSecret})
		form, _ := url.ParseQuery(string(body))
		mu.Lock()
		defer mu.Unlock()
		if err == nil && form.Get("Action") == "GetCallerIdentity" {
			// The gateway checks its base key at start.
			callerIdentity(w, "arn:aws:iam::111122223333:user/gatehouse-base")
			return
		}
		if err != nil || form.Get("Action") != "AssumeRole" {
			refused = append(refused, fmt.Sprintf("%v: %v", err, form))
			http.Error(w, "refused", http.StatusForbidden)
			return
		}
		assumed = append(assumed, form)
		w.Header().Set("Content-Type", "text/xml")
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>`+
			`<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s</Expiration></Credentials>`+
			`</AssumeRoleResult><ResponseMetadata><RequestId>sts-1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			upstreamKey, upstreamSecret, sessionToken, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	}))
	defer stsSrv.Close()
	t.Setenv("AWS_ENDPOINT_URL_STS", stsSrv.URL)

	hooks := make(chan approval.WebhookPayload, 4)
	hookSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !approval.VerifySignature([]byte(hookSecret), body, r.Header.Get(approval.SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p approval.WebhookPayload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		hooks <- p
	}))
	defer hookSrv.Close()

	cfg := e.config()
	for old, repl := range map[string]string{
		"  credentials: static\n  static:\n    accessKeyIdEnv: GATEHOUSE_TEST_KEY_ID\n    secretAccessKeyEnv: GATEHOUSE_TEST_SECRET\n": "  credentials: static\n  assumeRole: true\n  static:\n    accessKeyIdEnv: GATEHOUSE_BASE_KEY_ID\n    secretAccessKeyEnv: GATEHOUSE_BASE_SECRET\n",
		"approvals:\n  store: memory\n": "approvals:\n  store: memory\n  notifiers:\n    webhook:\n      url: " + hookSrv.URL + "\n      secretEnv: GATEHOUSE_HOOK_SECRET\n",
	} {
		if !strings.Contains(cfg, old) {
			t.Fatalf("config lacks %q", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	gw := e.start(cfg)
	ctx := context.Background()
	client := s3Client(e.agent(gw.url, "agent"))

	// An allowed call: the gateway assumes the agent's role and signs with
	// the temporary key and its session token.
	if _, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("reports")}); err != nil {
		t.Fatalf("ListObjectsV2: %v\n%s", err, gw.stderr.String())
	}
	mu.Lock()
	if len(refused) > 0 || len(assumed) != 1 {
		t.Fatalf("STS: %d AssumeRole calls, refused %q", len(assumed), refused)
	}
	a := assumed[0]
	mu.Unlock()
	if a.Get("RoleArn") != testRoleARN || a.Get("SourceIdentity") != "agent" || !strings.Contains(a.Get("RoleSessionName"), "-agent-") {
		t.Fatalf("AssumeRole parameters: %v", a)
	}
	e.mu.Lock()
	last := e.s3Tokens[len(e.s3Tokens)-1]
	e.mu.Unlock()
	if last != sessionToken {
		t.Fatalf("S3 saw session token %q, want the one STS issued", last)
	}

	// A held call: the webhook hears of it, signed, and an approver
	// approves it through the API.
	token, err := e.idp.Token("alice")
	if err != nil {
		t.Fatal(err)
	}
	approvedBy := make(chan string, 1)
	go func() {
		select {
		case p := <-hooks:
			req, _ := http.NewRequest(http.MethodPost, gw.url+OwnPrefix+"approvals/approvals/"+p.ID+"/approve", strings.NewReader(`{"reason":"change 7"}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				approvedBy <- err.Error()
				return
			}
			resp.Body.Close()
			approvedBy <- fmt.Sprintf("%d %s %s", resp.StatusCode, p.Action, p.Principal)
		case <-time.After(20 * time.Second):
			approvedBy <- "no webhook arrived"
		}
	}()
	_, err = client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("prod-reports")})
	if got := <-approvedBy; !strings.HasPrefix(got, "200 s3:DeleteBucket ") {
		t.Fatalf("webhook approval: %s", got)
	}
	if err != nil {
		t.Fatalf("DeleteBucket after approval: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) > 0 {
		t.Fatalf("STS refused %q", refused)
	}
}
