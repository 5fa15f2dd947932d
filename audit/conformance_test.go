package audit_test

import (
	"bufio"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/internal/syncbuf"
)

// TestConformance runs the audittest kit over every sink of this package.
func TestConformance(t *testing.T) {
	tests := []struct {
		name string
		open audittest.Open
	}{
		{"Memory", func(t *testing.T) (audit.Sink, func() []audit.Event) {
			m := &audittest.Memory{}
			return m, m.Events
		}},
		{"FileSync", fileOpen(audit.FileConfig{})},
		{"FileSyncFsync", fileOpen(audit.FileConfig{Sync: true})},
		{"FileBuffered", fileOpen(audit.FileConfig{FlushInterval: 5 * time.Millisecond, BufferBytes: 4 << 10})},
		{"FileRotating", fileOpen(audit.FileConfig{MaxBytes: 8 << 10})},
		{"FileKeyed", fileOpen(audit.FileConfig{Key: []byte("0123456789abcdef0123456789abcdef")})},
		{"Slog", slogOpen},
		{"AsyncBlock", asyncOpen(audit.AsyncConfig{Queue: 4})},
		{"AsyncDropLargeQueue", asyncOpen(audit.AsyncConfig{Queue: 100000, Overflow: audit.Drop})},
		{"Webhook", webhookOpen(audit.WebhookConfig{BatchSize: 7, FlushInterval: 2 * time.Millisecond})},
		{"WebhookSmallQueue", webhookOpen(audit.WebhookConfig{BatchSize: 3, Queue: 2, MaxBatchBytes: 400 << 10})},
		{"Multi", func(t *testing.T) (audit.Sink, func() []audit.Event) {
			a, b := &audittest.Memory{}, &audittest.Memory{}
			return audit.Multi(a, nil, b), func() []audit.Event {
				ea, eb := a.Events(), b.Events()
				if len(ea) != len(eb) {
					t.Errorf("Multi: sinks hold %d and %d events", len(ea), len(eb))
				}
				return ea
			}
		}},
		{"MultiFileAsync", func(t *testing.T) (audit.Sink, func() []audit.Event) {
			f, readFile := fileOpen(audit.FileConfig{})(t)
			m := &audittest.Memory{}
			a, err := audit.NewAsync(m, audit.AsyncConfig{})
			if err != nil {
				t.Fatal(err)
			}
			return audit.Multi(f, a), func() []audit.Event {
				if got, want := len(m.Events()), len(readFile()); got != want {
					t.Errorf("async branch holds %d events, file %d", got, want)
				}
				return readFile()
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { audittest.Run(t, tt.open) })
	}
}

// fileOpen opens a FileSink in a fresh directory; reading back verifies
// the chain first.
func fileOpen(cfg audit.FileConfig) audittest.Open {
	return func(t *testing.T) (audit.Sink, func() []audit.Event) {
		c := cfg
		c.Dir = t.TempDir()
		s, err := audit.NewFileSink(c)
		if err != nil {
			t.Fatal(err)
		}
		return s, func() []audit.Event {
			files, _ := filepath.Glob(filepath.Join(c.Dir, "audit-*.jsonl"))
			if len(files) == 0 {
				return nil
			}
			rep, err := audit.VerifyConfig{Key: c.Key}.Verify(files...)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() {
				t.Fatalf("chain does not verify: %v", rep.Err())
			}
			evs, err := audit.ReadEvents(files...)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Events != len(evs) {
				t.Fatalf("Verify counted %d events, ReadEvents %d", rep.Events, len(evs))
			}
			return evs
		}
	}
}

// slogOpen logs through a JSONHandler and reads the "event" groups back.
func slogOpen(t *testing.T) (audit.Sink, func() []audit.Event) {
	buf := &syncbuf.Buffer{}
	s, err := audit.NewSlogSink(audit.SlogConfig{Logger: slog.New(slog.NewJSONHandler(buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return s, func() []audit.Event {
		var out []audit.Event
		sc := bufio.NewScanner(strings.NewReader(buf.String()))
		sc.Buffer(nil, 8<<20)
		for sc.Scan() {
			var rec struct {
				Msg   string          `json:"msg"`
				Event json.RawMessage `json:"event"`
			}
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
				t.Fatalf("slog line: %v", err)
			}
			var e audit.Event
			if err := json.Unmarshal(rec.Event, &e); err != nil {
				t.Fatalf("slog event: %v: %s", err, rec.Event)
			}
			out = append(out, e)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
}

func asyncOpen(cfg audit.AsyncConfig) audittest.Open {
	return func(t *testing.T) (audit.Sink, func() []audit.Event) {
		m := &audittest.Memory{}
		a, err := audit.NewAsync(m, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return a, func() []audit.Event {
			if st := a.Stats(); st.Dropped != 0 || st.Failed != 0 {
				t.Errorf("async stats %+v", st)
			}
			return m.Events()
		}
	}
}

// receiver is a webhook endpoint on 127.0.0.1 that checks signatures and
// keeps the events of every batch, in order. Every third first attempt is
// answered 503, so retries are exercised too.
type receiver struct {
	mu      sync.Mutex
	events  []audit.Event
	batches map[string]bool
	n       int
	secret  []byte
	t       *testing.T
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := audit.VerifyWebhookSignature(r.secret, req.Header.Get(audit.HeaderSignature), body, time.Now(), time.Minute); err != nil {
		r.t.Errorf("webhook signature: %v", err)
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	if r.n%3 == 0 && req.Header.Get(audit.HeaderAttempt) == "1" {
		http.Error(w, "try again", http.StatusServiceUnavailable)
		return
	}
	id := req.Header.Get(audit.HeaderBatch)
	if r.batches[id] {
		r.t.Errorf("batch %s delivered twice after success", id)
	}
	r.batches[id] = true
	var evs []audit.Event
	if err := json.Unmarshal(body, &evs); err != nil {
		r.t.Errorf("webhook body: %v", err)
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.events = append(r.events, evs...)
}

func webhookOpen(cfg audit.WebhookConfig) audittest.Open {
	return func(t *testing.T) (audit.Sink, func() []audit.Event) {
		rcv := &receiver{secret: []byte("webhook-secret-0123456789abcdef!"), batches: map[string]bool{}, t: t}
		srv := httptest.NewServer(rcv)
		t.Cleanup(srv.Close)
		c := cfg
		c.URL = srv.URL + "/audit"
		c.Secret = rcv.secret
		c.Client = srv.Client()
		c.Retry = audit.RetryConfig{MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
		w, err := audit.NewWebhook(c)
		if err != nil {
			t.Fatal(err)
		}
		return w, func() []audit.Event {
			if st := w.Stats(); st.Dropped != 0 || st.Failed != 0 {
				t.Errorf("webhook stats %+v", st)
			}
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			return append([]audit.Event(nil), rcv.events...)
		}
	}
}
