package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

// receiver is a 127.0.0.1 webhook endpoint that answers with the given
// statuses in turn (the last one repeats) and records what it got.
type receiver struct {
	srv      *httptest.Server
	statuses []int
	calls    atomic.Int32
	mu       sync.Mutex
	bodies   [][]byte
	headers  []http.Header
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		n := int(r.calls.Add(1)) - 1
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.headers = append(r.headers, req.Header.Clone())
		r.mu.Unlock()
		w.WriteHeader(r.statuses[min(n, len(r.statuses)-1)])
		io.WriteString(w, "reply")
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func notification() approval.Notification {
	now := approvaltest.Start
	return approval.Notification{
		URL: "https://gw.test/approvals/ui/abc",
		Record: approval.Record{
			ID: "abc", State: approval.Pending, Principal: agent.String(),
			Requester: approval.Requester{Subject: "agent-1", Email: "agent-1@example.test"},
			Action:    "s3:DeleteBucket", Resources: []string{"arn:aws:s3:::prod"}, Fingerprint: "fp",
			Requirements: []approval.Requirement{{Rule: "prod-delete", Reason: "prod <danger> & co", Groups: []string{"ops"}, MinApprovals: 1}},
			Summary:      map[string]string{"bucket": "prod", "region": "us-east-1"},
			CreatedAt:    now, ExpiresAt: now.Add(time.Hour),
		},
	}
}

var fastRetry = approval.Retry{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxElapsed: 5 * time.Second}

func TestWebhook(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int
		wantErr   bool
		wantCalls int32
	}{
		{"delivered", []int{200}, false, 1},
		{"retried after 5xx", []int{503, 500, 204}, false, 3},
		{"retried after 429", []int{429, 200}, false, 2},
		{"gives up after max attempts", []int{502}, true, 4},
		{"4xx is final", []int{400}, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReceiver(t, tt.statuses...)
			w, err := approval.NewWebhook(approval.WebhookConfig{URL: r.srv.URL, Secret: secret, Retry: fastRetry,
				Header: map[string][]string{"Authorization": {"Bearer receiver-token"}}})
			if err != nil {
				t.Fatal(err)
			}
			err = w.Notify(context.Background(), notification())
			if (err != nil) != tt.wantErr || r.calls.Load() != tt.wantCalls {
				t.Fatalf("err = %v after %d calls; want error %v after %d", err, r.calls.Load(), tt.wantErr, tt.wantCalls)
			}
			var de *approval.DeliveryError
			if tt.wantErr && (!errors.As(err, &de) || de.Attempts != int(tt.wantCalls) || strings.Contains(err.Error(), r.srv.URL)) {
				t.Errorf("err = %#v: want a *DeliveryError with the attempts and without the URL", err)
			}
			for i, body := range r.bodies {
				h := r.headers[i]
				if !approval.VerifySignature(secret, body, h.Get(approval.SignatureHeader)) {
					t.Errorf("attempt %d: signature %q does not verify", i, h.Get(approval.SignatureHeader))
				}
				if approval.VerifySignature([]byte("another secret, just as long"), body, h.Get(approval.SignatureHeader)) {
					t.Error("signature verifies under another secret")
				}
				if h.Get(approval.DeliveryHeader) != "abc" || h.Get("Content-Type") != "application/json" || h.Get("Authorization") != "Bearer receiver-token" {
					t.Errorf("headers %v", h)
				}
				var p approval.WebhookPayload
				if err := json.Unmarshal(body, &p); err != nil || p.ID != "abc" || p.URL != "https://gw.test/approvals/ui/abc" ||
					p.Action != "s3:DeleteBucket" || p.Type != "approval.requested" || p.Requirements[0].Reason != "prod <danger> & co" {
					t.Errorf("payload %s (%v)", body, err)
				}
			}
		})
	}
}

func TestWebhookTamperedBody(t *testing.T) {
	body := []byte(`{"id":"abc"}`)
	sig := approval.Sign(secret, body)
	tests := []struct {
		name string
		body string
		sig  string
		want bool
	}{
		{"valid", `{"id":"abc"}`, sig, true},
		{"tampered body", `{"id":"abd"}`, sig, false},
		{"no prefix", `{"id":"abc"}`, strings.TrimPrefix(sig, "sha256="), false},
		{"not hex", `{"id":"abc"}`, "sha256=zz", false},
		{"empty", `{"id":"abc"}`, "", false},
	}
	for _, tt := range tests {
		if got := approval.VerifySignature(secret, []byte(tt.body), tt.sig); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestWebhookBoundedByTime(t *testing.T) {
	r := newReceiver(t, 503)
	w, _ := approval.NewWebhook(approval.WebhookConfig{URL: r.srv.URL, Secret: secret,
		Retry: approval.Retry{MaxAttempts: 10, InitialBackoff: 200 * time.Millisecond, MaxElapsed: 300 * time.Millisecond}})
	start := time.Now()
	if err := w.Notify(context.Background(), notification()); err == nil {
		t.Fatal("delivered to a failing receiver")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v despite MaxElapsed 300ms", d)
	}
	if n := r.calls.Load(); n >= 10 {
		t.Errorf("%d attempts within 300ms", n)
	}
}

func TestNotifierConfig(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"webhook no url", func() error { _, err := approval.NewWebhook(approval.WebhookConfig{Secret: secret}); return err }(), "WebhookConfig.URL"},
		{"webhook ftp", func() error {
			_, err := approval.NewWebhook(approval.WebhookConfig{URL: "ftp://x", Secret: secret})
			return err
		}(), "WebhookConfig.URL"},
		{"webhook short secret", func() error {
			_, err := approval.NewWebhook(approval.WebhookConfig{URL: "http://127.0.0.1/", Secret: []byte("short")})
			return err
		}(), "WebhookConfig.Secret"},
		{"webhook attempts", func() error {
			_, err := approval.NewWebhook(approval.WebhookConfig{URL: "http://127.0.0.1/", Secret: secret, Retry: approval.Retry{MaxAttempts: 99}})
			return err
		}(), "WebhookConfig.Retry.MaxAttempts"},
		{"slack no url", func() error { _, err := approval.NewSlack(approval.SlackConfig{}); return err }(), "SlackConfig.WebhookURL"},
	}
	for _, tt := range tests {
		if !errors.Is(tt.err, approval.ErrInvalid) || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: err = %v, want one naming %s", tt.name, tt.err, tt.want)
		}
	}
}

func TestSlack(t *testing.T) {
	r := newReceiver(t, 500, 200)
	s, err := approval.NewSlack(approval.SlackConfig{WebhookURL: r.srv.URL + "/services/T000/B000/XXXX", Retry: fastRetry})
	if err != nil {
		t.Fatal(err)
	}
	n := notification()
	n.Record.Resources = make([]string, 15)
	for i := range n.Record.Resources {
		n.Record.Resources[i] = "arn:aws:s3:::bucket-" + string(rune('a'+i))
	}
	if err := s.Notify(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	if r.calls.Load() != 2 {
		t.Errorf("%d calls, want a retry after the 500", r.calls.Load())
	}
	var msg struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text *struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
			Fields []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"fields"`
			Elements []map[string]any `json:"elements"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(r.bodies[1], &msg); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(msg.Text, "s3:DeleteBucket") || !strings.Contains(msg.Text, n.URL) {
		t.Errorf("fallback text %q lacks the action or the link", msg.Text)
	}
	var types []string
	for _, b := range msg.Blocks {
		types = append(types, b.Type)
	}
	if got := strings.Join(types, ","); got != "header,section,section,actions,context" {
		t.Fatalf("blocks %s", got)
	}
	if msg.Blocks[0].Text.Type != "plain_text" || msg.Blocks[1].Text.Type != "mrkdwn" {
		t.Error("text types")
	}
	if main := msg.Blocks[1].Text.Text; !strings.Contains(main, "prod &lt;danger&gt; &amp; co") || !strings.Contains(main, "`s3:DeleteBucket`") {
		t.Errorf("main section %q: reason not escaped for mrkdwn or action missing", main)
	}
	fields := msg.Blocks[2].Fields
	if len(fields) != 3 || !strings.Contains(fields[0].Text, "and 5 more") || !strings.HasPrefix(fields[1].Text, "*bucket*") {
		t.Errorf("fields %+v", fields)
	}
	button := msg.Blocks[3].Elements[0]
	if button["type"] != "button" || button["url"] != n.URL || button["text"].(map[string]any)["text"] != "Review" {
		t.Errorf("button %v", button)
	}
}

func TestSlackWithoutURL(t *testing.T) {
	n := notification()
	n.URL = ""
	for _, b := range approval.SlackMessageFor(n).Blocks {
		if b.Type == "actions" {
			t.Error("a button without a link")
		}
	}
}

// TestNotifierFailureIsUnavailable: when every notifier fails the broker
// returns *UnavailableError with the record, logs nothing without a
// logger, and emits one notify_failed event per notifier; one working
// notifier is enough.
func TestNotifierFailureIsUnavailable(t *testing.T) {
	down := newReceiver(t, 500)
	up := newReceiver(t, 200)
	hook := func(r *receiver) approval.Notifier {
		w, err := approval.NewWebhook(approval.WebhookConfig{URL: r.srv.URL, Secret: secret, Retry: approval.Retry{MaxAttempts: 2, InitialBackoff: time.Millisecond}})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	tests := []struct {
		name       string
		notifiers  []approval.Notifier
		wantUnavl  bool
		wantFailed int
	}{
		{"all down", []approval.Notifier{hook(down), hook(down)}, true, 2},
		{"one up", []approval.Notifier{hook(down), hook(up)}, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := approvaltest.NewEnv(t, newMemory(t), func(c *approval.Config) { c.Notifiers = tt.notifiers })
			rec, created, err := e.Broker.Request(context.Background(), approvaltest.Request(agent, "prod", "ops"))
			var ue *approval.UnavailableError
			if errors.As(err, &ue) != tt.wantUnavl || !created || rec.ID == "" {
				t.Fatalf("Request = %s created=%v, %v", rec.ID, created, err)
			}
			if tt.wantUnavl && (!errors.Is(err, approval.ErrUnavailable) || ue.Record.ID != rec.ID) {
				t.Errorf("err = %v", err)
			}
			if n := e.Events.Count(approval.EventNotifyFailed, rec.ID); n != tt.wantFailed {
				t.Errorf("%d notify_failed events, want %d", n, tt.wantFailed)
			}
		})
	}
}
