package approval_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

// fakeProxy stands in for the awsproxy integration: it derives the
// fingerprint from the exact request, runs Broker.Gate, and forwards to the
// upstream only on OutcomeGranted. It is how the lead's handler is expected
// to use the broker.
type fakeProxy struct {
	b     *approval.Broker
	hold  time.Duration
	queue bool // rule's unavailable setting
	up    *httptest.Server
}

func fingerprint(principal, method, path, query string, body []byte) string {
	bh := sha256.Sum256(body)
	h := sha256.Sum256([]byte(strings.Join([]string{principal, method, path, query, hex.EncodeToString(bh[:])}, "\n")))
	return hex.EncodeToString(h[:])
}

func (p *fakeProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	who, ok := testTokens[r.Header.Get("X-Test-Principal")]
	if !ok {
		http.Error(w, "unauthenticated", http.StatusForbidden)
		return
	}
	body, _ := io.ReadAll(r.Body)
	bucket := strings.Trim(r.URL.Path, "/")
	req := approval.Request{
		Principal:   who,
		Action:      "s3:DeleteBucket",
		Resources:   []string{"arn:aws:s3:::" + bucket},
		Fingerprint: fingerprint(who.String(), r.Method, r.URL.Path, r.URL.RawQuery, body),
		Requirements: []approval.Requirement{{
			Rule: "prod-delete", Reason: "deleting a production bucket", Groups: []string{"ops"}, MinApprovals: 1,
		}},
		Summary: map[string]string{"bucket": bucket, "method": r.Method},
	}
	res, err := p.b.Gate(r.Context(), req, approval.GateOptions{Hold: p.hold, QueueWhenUnavailable: p.queue})
	if err != nil {
		awsError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "approval service unavailable")
		return
	}
	switch res.Outcome {
	case approval.OutcomeGranted:
		resp, err := http.Post(p.up.URL+r.URL.Path, "application/octet-stream", strings.NewReader(string(body)))
		if err != nil {
			awsError(w, http.StatusBadGateway, "InternalError", "upstream failed")
			return
		}
		defer resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	case approval.OutcomePending:
		awsError(w, http.StatusForbidden, "ApprovalPending", fmt.Sprintf("approval %s is pending: %s", res.Record.ID, res.URL))
	default:
		awsError(w, http.StatusForbidden, "AccessDenied", "approval "+res.Outcome.String())
	}
}

func awsError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

type proxyEnv struct {
	*approvaltest.Env
	proxy    *httptest.Server
	upstream atomic.Int32
}

func newProxy(t *testing.T, hold time.Duration) *proxyEnv {
	e := &proxyEnv{Env: approvaltest.NewEnv(t, newMemory(t), func(c *approval.Config) { c.Now = time.Now })}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.upstream.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(up.Close)
	e.proxy = httptest.NewServer(&fakeProxy{b: e.Broker, hold: hold, up: up})
	t.Cleanup(e.proxy.Close)
	return e
}

func (e *proxyEnv) call(t *testing.T, who, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", e.proxy.URL+path, strings.NewReader(body))
	req.Header.Set("X-Test-Principal", who)
	resp, err := e.proxy.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// decideSoon approves or denies the first pending record once it appears.
func (e *proxyEnv) decideSoon(deny bool) {
	go func() {
		ctx := context.Background()
		for range 500 {
			if recs, _ := e.Broker.List(ctx, approval.Filter{State: approval.Pending}); len(recs) > 0 {
				if deny {
					e.Broker.Deny(ctx, recs[0].ID, alice, "no")
				} else {
					e.Broker.Approve(ctx, recs[0].ID, alice, "ok")
				}
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
}

func TestProxyHoldApprove(t *testing.T) {
	e := newProxy(t, 10*time.Second)
	e.decideSoon(false)
	if status, body := e.call(t, "agent", "/prod", ""); status != http.StatusNoContent {
		t.Fatalf("held call: %d %s, want the upstream's 204", status, body)
	}
	if n := e.upstream.Load(); n != 1 {
		t.Errorf("upstream called %d times, want 1", n)
	}
}

func TestProxyHoldDeny(t *testing.T) {
	e := newProxy(t, 10*time.Second)
	e.decideSoon(true)
	status, body := e.call(t, "agent", "/prod", "")
	if status != http.StatusForbidden || !strings.Contains(body, "<Code>AccessDenied</Code>") {
		t.Fatalf("held call: %d %s, want AccessDenied", status, body)
	}
	if e.upstream.Load() != 0 {
		t.Error("a denied call reached the upstream")
	}
}

func TestProxyHoldTimeoutThenGrant(t *testing.T) {
	e := newProxy(t, 50*time.Millisecond)
	status, body := e.call(t, "agent", "/prod", "body-1")
	if status != http.StatusForbidden || !strings.Contains(body, "<Code>ApprovalPending</Code>") || !strings.Contains(body, "https://gw.test/approvals/ui/") {
		t.Fatalf("timed-out hold: %d %s, want ApprovalPending with the URL", status, body)
	}
	recs, _ := e.Broker.List(context.Background(), approval.Filter{State: approval.Pending})
	if len(recs) != 1 || !strings.Contains(body, recs[0].ID) {
		t.Fatalf("the error does not carry the approval id: %s", body)
	}
	// An identical retry before the decision attaches to the same record.
	e.call(t, "agent", "/prod", "body-1")
	if recs, _ := e.Broker.List(context.Background(), approval.Filter{}); len(recs) != 1 {
		t.Fatalf("%d records after a retry, want 1", len(recs))
	}
	if _, err := e.Broker.Approve(context.Background(), recs[0].ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	refused := []struct{ name, who, path, body string }{
		{"another body", "agent", "/prod", "body-2"},
		{"another key", "agent", "/prod-other", "body-1"},
		{"another principal", "bob", "/prod", "body-1"},
	}
	for _, r := range refused {
		if status, _ := e.call(t, r.who, r.path, r.body); status == http.StatusNoContent {
			t.Errorf("%s rode on the grant", r.name)
		}
	}
	if e.upstream.Load() != 0 {
		t.Fatal("upstream reached without a grant")
	}
	if status, body := e.call(t, "agent", "/prod", "body-1"); status != http.StatusNoContent {
		t.Fatalf("retry after approval: %d %s", status, body)
	}
	if status, _ := e.call(t, "agent", "/prod", "body-1"); status == http.StatusNoContent {
		t.Error("a consumed grant was replayed")
	}
	if n := e.upstream.Load(); n != 1 {
		t.Errorf("upstream called %d times, want exactly 1", n)
	}
}
