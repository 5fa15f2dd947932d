package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

// oneShot is an S3 client that does not retry, so a refused call is seen
// at once.
func oneShot(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle, o.RetryMaxAttempts = true, 1 })
}

// readStatus fetches /@gatehouse/status.
func readStatus(t *testing.T, gw *running) (int, statusDoc) {
	t.Helper()
	code, body := get(t, gw.url+OwnPrefix+"status")
	var doc statusDoc
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatalf("status %d: %v: %q", code, err, body)
	}
	return code, doc
}

func dependencyOK(t *testing.T, doc statusDoc, name string) bool {
	t.Helper()
	for _, d := range doc.Dependencies {
		if d.Name == name {
			return d.OK
		}
	}
	t.Fatalf("status has no dependency %q: %+v", name, doc)
	return false
}

// TestReadinessFollowsFailClosedTrail: while the fail-closed audit trail
// cannot record (its directory is gone: a lost volume, a full disk), every
// call is refused, and /@gatehouse/readyz says so (503) so the replica
// leaves the load balancer; the status page and the metrics name the
// audit trail. Once the directory is back, readiness returns without any
// call having to succeed first, and calls work again.
func TestReadinessFollowsFailClosedTrail(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "trail")
	gw := e.start(e.withAudit("audit:\n  sinks: [slog, file]\n  dir: " + dir + "\n"))
	ctx := context.Background()
	if code, body := get(t, gw.url+OwnPrefix+"readyz"); code != http.StatusOK {
		t.Fatalf("readyz at start = %d %q", code, body)
	}

	// The trail's directory disappears before its first record.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	s3c := oneShot(e.agent(gw.url, "agent"))
	_, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{})
	wantCode(t, err, "ServiceUnavailable")
	if code, body := get(t, gw.url+OwnPrefix+"readyz"); code != http.StatusServiceUnavailable {
		t.Fatalf("readyz while the fail-closed trail refuses every call = %d %q, want 503", code, body)
	}
	code, doc := readStatus(t, gw)
	if code != http.StatusServiceUnavailable || doc.Ready || dependencyOK(t, doc, "audit") || !dependencyOK(t, doc, "approvals") {
		t.Fatalf("status = %d %+v, want not ready, audit failing, approvals ok", code, doc)
	}
	if _, m := get(t, gw.url+OwnPrefix+"metrics"); !strings.Contains(m, `gatehouse_dependency_up{dependency="audit"} 0`) {
		t.Fatalf("metrics lack the failing audit dependency:\n%s", m)
	}

	// Back: ready again with no call in between, and calls work.
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, gw.url+OwnPrefix+"readyz"); code != http.StatusOK {
		t.Fatalf("readyz after the directory came back = %d %q", code, body)
	}
	if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets after recovery: %v", err)
	}
	if _, m := get(t, gw.url+OwnPrefix+"metrics"); !strings.Contains(m, `gatehouse_dependency_up{dependency="audit"} 1`) {
		t.Fatalf("metrics lack the recovered audit dependency:\n%s", m)
	}
	if !strings.Contains(gw.stderr.String(), `"msg":"dependency failing","dependency":"audit"`) {
		t.Errorf("the failure was not logged:\n%s", gw.stderr.String())
	}
}

// TestReadinessFailOpenTrail: a fail-open trail that cannot record loses
// events but refuses nothing, so the replica stays ready; the status page
// and the metrics report the trail.
func TestReadinessFailOpenTrail(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(e.dir, "trail")
	gw := e.start(e.withAudit("audit:\n  sinks: [file]\n  dir: " + dir + "\n  mode: fail-open\n"))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := oneShot(e.agent(gw.url, "agent")).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets with a fail-open trail that cannot record: %v", err)
	}
	if code, body := get(t, gw.url+OwnPrefix+"readyz"); code != http.StatusOK {
		t.Fatalf("readyz = %d %q, want 200: no call fails", code, body)
	}
	if code, doc := readStatus(t, gw); code != http.StatusOK || !doc.Ready || dependencyOK(t, doc, "audit") {
		t.Fatalf("status = %d %+v, want ready with the audit trail failing", code, doc)
	}
	if _, m := get(t, gw.url+OwnPrefix+"metrics"); !strings.Contains(m, `gatehouse_dependency_up{dependency="audit"} 0`) || strings.Contains(m, "gatehouse_audit_dropped_total 0") {
		t.Fatalf("metrics lack the failing trail and its losses:\n%s", m)
	}
}

// cutProxy is a TCP proxy to a PostgreSQL server that the test can cut:
// the database outage, as the gateway sees it.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	t.Cleanup(p.Cut)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.cut {
				c.Close()
				up.Close()
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
	return p
}

// Cut refuses new connections and closes the open ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestReadinessIgnoresApprovalStore: with the shared approval store down,
// calls that need no approval still work, so the replica stays ready (one
// database outage must not drain every replica); the status page and the
// metrics report the store, and a call that needs an approval is refused.
func TestReadinessIgnoresApprovalStore(t *testing.T) {
	schema := pgtest.Schema(t, "gateway_test_")
	u, err := url.Parse(pgtest.DSN())
	if err != nil || u.Scheme != "postgres" && u.Scheme != "postgresql" {
		t.Skipf("GATEHOUSE_TEST_POSTGRES %q is not a postgres:// URL", pgtest.DSN())
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.ln.Addr().String()

	e := newEnv(t)
	t.Setenv("GATEHOUSE_TEST_DSN", u.String())
	cfg := strings.Replace(e.config(), "  store: memory\n", "  store: postgres\n  dsnEnv: GATEHOUSE_TEST_DSN\n  schema: "+schema+"\n", 1)
	gw := e.start(cfg)
	ctx := context.Background()
	s3c := oneShot(e.agent(gw.url, "agent"))
	if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}
	if code, _ := readStatus(t, gw); code != http.StatusOK {
		t.Fatalf("status with the store up = %d", code)
	}

	proxy.Cut()
	if code, body := get(t, gw.url+OwnPrefix+"readyz"); code != http.StatusOK {
		t.Fatalf("readyz with only the approval store down = %d %q, want 200", code, body)
	}
	if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
		t.Fatalf("ListBuckets (needs no approval) with the store down: %v", err)
	}
	code, doc := readStatus(t, gw)
	if code != http.StatusOK || !doc.Ready || dependencyOK(t, doc, "approvals") {
		t.Fatalf("status = %d %+v, want ready with approvals failing", code, doc)
	}
	if _, m := get(t, gw.url+OwnPrefix+"metrics"); !strings.Contains(m, `gatehouse_dependency_up{dependency="approvals"} 0`) {
		t.Fatalf("metrics lack the failing approval store:\n%s", m)
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := s3c.DeleteBucket(dctx, &s3.DeleteBucketInput{Bucket: aws.String("prod-reports")}); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("DeleteBucket needing an approval with the store down = %v, want a refusal", err)
	}
}
