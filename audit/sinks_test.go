package audit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// gate is a sink whose Write blocks until released (or its ctx ends).
type gate struct {
	entered chan struct{}
	release chan struct{}
	audittest.Memory
}

func newGate() *gate { return &gate{entered: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) Write(ctx context.Context, e *audit.Event) error {
	g.entered <- struct{}{}
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Memory.Write(ctx, e)
}

func TestAsyncOverflow(t *testing.T) {
	ctx := context.Background()
	t.Run("drop counts", func(t *testing.T) {
		g := newGate()
		a, err := audit.NewAsync(g, audit.AsyncConfig{Queue: 2, Overflow: audit.Drop})
		if err != nil {
			t.Fatal(err)
		}
		a.Write(ctx, audittest.NewEvent(0))
		<-g.entered // the worker holds event 0
		for i := 1; i <= 5; i++ {
			start := time.Now()
			if err := a.Write(ctx, audittest.NewEvent(i)); err != nil {
				t.Fatalf("Write %d under Drop: %v", i, err)
			}
			if d := time.Since(start); d > time.Second {
				t.Fatalf("Write under Drop waited %v", d)
			}
		}
		if got := a.Dropped(); got != 3 {
			t.Fatalf("Dropped = %d, want 3 (queue of 2, 5 writes while the worker was busy)", got)
		}
		close(g.release)
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		st := a.Stats()
		if st != (audit.AsyncStats{Queued: 3, Written: 3, Dropped: 3}) {
			t.Fatalf("stats %+v", st)
		}
		evs := g.Events()
		if len(evs) != 3 || evs[0].ID != audittest.NewEvent(0).ID || evs[2].ID != audittest.NewEvent(2).ID {
			t.Fatalf("written %v", evs)
		}
	})
	t.Run("block waits and honours ctx", func(t *testing.T) {
		g := newGate()
		a, err := audit.NewAsync(g, audit.AsyncConfig{Queue: 1})
		if err != nil {
			t.Fatal(err)
		}
		a.Write(ctx, audittest.NewEvent(0))
		<-g.entered
		if err := a.Write(ctx, audittest.NewEvent(1)); err != nil { // fills the queue
			t.Fatal(err)
		}
		tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		err = a.Write(tctx, audittest.NewEvent(2))
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Write on a full queue = %v, want DeadlineExceeded", err)
		}
		done := make(chan error)
		go func() { done <- a.Write(ctx, audittest.NewEvent(3)) }()
		select {
		case err := <-done:
			t.Fatalf("Write under Block returned %v with a full queue", err)
		case <-time.After(20 * time.Millisecond):
		}
		close(g.release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		a.Close()
		if st := a.Stats(); st != (audit.AsyncStats{Queued: 3, Written: 3}) {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("close gives up after its timeout", func(t *testing.T) {
		g := newGate()
		var failed atomic.Int32
		a, err := audit.NewAsync(g, audit.AsyncConfig{Queue: 4, CloseTimeout: 30 * time.Millisecond,
			OnError: func(e *audit.Event, err error) { failed.Add(1) }})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			a.Write(ctx, audittest.NewEvent(i))
		}
		<-g.entered
		err = a.Close()
		if err == nil || !strings.Contains(err.Error(), "2 event(s) dropped") {
			t.Fatalf("Close = %v", err)
		}
		if st := a.Stats(); st.Dropped != 2 || st.Failed != 1 || failed.Load() != 1 {
			t.Fatalf("stats %+v", st)
		}
		if err := a.Write(ctx, audittest.NewEvent(9)); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("Write after Close = %v", err)
		}
	})
	t.Run("blocked writers are released by close", func(t *testing.T) {
		g := newGate()
		a, _ := audit.NewAsync(g, audit.AsyncConfig{Queue: 1, CloseTimeout: 30 * time.Millisecond})
		a.Write(ctx, audittest.NewEvent(0))
		<-g.entered
		a.Write(ctx, audittest.NewEvent(1))
		done := make(chan error)
		go func() { done <- a.Write(ctx, audittest.NewEvent(2)) }()
		time.Sleep(10 * time.Millisecond)
		a.Close()
		if err := <-done; !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("blocked Write = %v, want ErrClosed", err)
		}
	})
}

func TestAsyncBackendErrors(t *testing.T) {
	var logBuf bytes.Buffer
	a, _ := audit.NewAsync(audittest.Failing{}, audit.AsyncConfig{Logger: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err := a.Write(context.Background(), audittest.NewEvent(1)); err != nil {
		t.Fatalf("Async reports back-end failures later, not from Write: %v", err)
	}
	a.Close()
	if st := a.Stats(); st.Failed != 1 || !strings.Contains(logBuf.String(), "async sink write failed") {
		t.Fatalf("stats %+v, log %q", st, logBuf.String())
	}
}

func TestTrail(t *testing.T) {
	ctx := context.Background()
	intent := func() *audit.Event {
		e := audittest.NewEvent(1)
		e.Phase, e.Response = audit.PhaseIntent, nil
		return e
	}
	tests := []struct {
		name        string
		mode        audit.Mode
		sink        audit.Sink
		wantIntent  error
		wantRecord  bool // Record returns an error
		wantStats   audit.TrailStats
		wantWritten int
	}{
		{"fail-closed, healthy", audit.FailClosed, &audittest.Memory{}, nil, false, audit.TrailStats{Intents: 1, Completions: 1}, 2},
		{"fail-closed, failing sink refuses", audit.FailClosed, audittest.Failing{}, audit.ErrUnavailable, true, audit.TrailStats{Refused: 1, Lost: 1}, 0},
		{"fail-closed, one of several sinks fails", audit.FailClosed, audit.Multi(&audittest.Memory{}, audittest.Failing{}), audit.ErrUnavailable, true, audit.TrailStats{Refused: 1, Lost: 1}, 0},
		{"fail-open, healthy: no intent", audit.FailOpen, &audittest.Memory{}, nil, false, audit.TrailStats{Completions: 1}, 1},
		{"fail-open, failing sink counts the loss", audit.FailOpen, audittest.Failing{}, nil, true, audit.TrailStats{Lost: 1}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := audit.NewTrail(audit.TrailConfig{Sink: tt.sink, Mode: tt.mode})
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Intent(ctx, intent()); !errors.Is(err, tt.wantIntent) || (tt.wantIntent == nil) != (err == nil) {
				t.Fatalf("Intent = %v, want %v", err, tt.wantIntent)
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel() // the client went away: the completion is still written
			if err := tr.Record(cctx, audittest.NewEvent(1)); (err != nil) != tt.wantRecord {
				t.Fatalf("Record = %v", err)
			}
			if st := tr.Stats(); st != tt.wantStats {
				t.Fatalf("stats %+v, want %+v", st, tt.wantStats)
			}
			if m, ok := tt.sink.(*audittest.Memory); ok {
				evs := m.Events()
				if len(evs) != tt.wantWritten {
					t.Fatalf("%d events written, want %d", len(evs), tt.wantWritten)
				}
				if len(evs) == 2 && (evs[0].Phase != audit.PhaseIntent || evs[1].Phase != audit.PhaseCompletion || evs[0].CallID != evs[1].CallID) {
					t.Fatalf("events %+v", evs)
				}
			}
		})
	}
	t.Run("intent needs the intent phase", func(t *testing.T) {
		tr, _ := audit.NewTrail(audit.TrailConfig{Sink: &audittest.Memory{}})
		if err := tr.Intent(ctx, audittest.NewEvent(1)); !errors.Is(err, audit.ErrInvalidEvent) {
			t.Fatalf("Intent = %v", err)
		}
	})
	t.Run("intent write is bounded", func(t *testing.T) {
		// A synchronous sink stuck until its ctx is done (a fail-closed
		// trail refuses queueing sinks such as Async).
		g := newGate()
		defer close(g.release)
		tr, err := audit.NewTrail(audit.TrailConfig{Sink: g, IntentTimeout: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Intent(ctx, intent()); !errors.Is(err, audit.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Intent = %v", err)
		}
	})
}

func TestWebhookFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("refused batches are not retried", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			http.Error(w, "no", http.StatusForbidden)
		}))
		defer srv.Close()
		w, _ := audit.NewWebhook(audit.WebhookConfig{URL: srv.URL, BatchSize: 2})
		w.Write(ctx, audittest.NewEvent(1))
		w.Write(ctx, audittest.NewEvent(2))
		if err := w.Flush(ctx); err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("Flush = %v", err)
		}
		w.Close()
		// The two events go out as one batch or, if the sender was quicker
		// than the second Write, as two; either way each is tried once.
		if st := w.Stats(); st.Failed != 2 || st.Retries != 0 || calls.Load() < 1 || calls.Load() > 2 {
			t.Fatalf("stats %+v, calls %d", st, calls.Load())
		}
	})
	t.Run("retries stop after Attempts", func(t *testing.T) {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			http.Error(w, "busy", http.StatusServiceUnavailable)
		}))
		defer srv.Close()
		w, _ := audit.NewWebhook(audit.WebhookConfig{URL: srv.URL, Retry: audit.RetryConfig{Attempts: 3, MinBackoff: time.Millisecond}})
		w.Write(ctx, audittest.NewEvent(1))
		err := w.Close()
		if err == nil || calls.Load() != 3 {
			t.Fatalf("Close = %v after %d calls", err, calls.Load())
		}
		if st := w.Stats(); st.Failed != 1 || st.Retries != 2 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("drop policy counts when the receiver is stuck", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			<-release
		}))
		defer srv.Close()
		defer close(release)
		w, _ := audit.NewWebhook(audit.WebhookConfig{URL: srv.URL, BatchSize: 1, Queue: 3, Overflow: audit.Drop, CloseTimeout: 20 * time.Millisecond})
		for i := range 20 {
			if err := w.Write(ctx, audittest.NewEvent(i)); err != nil {
				t.Fatal(err)
			}
		}
		if d := w.Dropped(); d < 16 {
			t.Fatalf("Dropped = %d, want at least 16 of 20 (one in flight, three queued)", d)
		}
		if err := w.Close(); err == nil {
			t.Fatal("Close reported no loss with a stuck receiver")
		}
		st := w.Stats()
		if st.Dropped+st.Failed != 20 || st.Delivered != 0 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("config", func(t *testing.T) {
		for _, u := range []string{"", "ftp://x", "http://", "/relative"} {
			if _, err := audit.NewWebhook(audit.WebhookConfig{URL: u}); err == nil || !strings.Contains(err.Error(), "WebhookConfig.URL") {
				t.Errorf("URL %q: %v", u, err)
			}
		}
	})
}

func TestWebhookSignature(t *testing.T) {
	secret := []byte("s3cr3t-s3cr3t-s3cr3t-s3cr3t-s3cr3t")
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`[{"id":"x"}]`)
	sig := audit.SignWebhook(secret, now, body)
	tests := []struct {
		name    string
		header  string
		body    []byte
		now     time.Time
		wantErr bool
	}{
		{"valid", sig, body, now, false},
		{"valid within tolerance", sig, body, now.Add(4 * time.Minute), false},
		{"stale", sig, body, now.Add(6 * time.Minute), true},
		{"body changed", sig, []byte(`[{"id":"y"}]`), now, true},
		{"missing", "", body, now, true},
		{"garbage", "t=x,v1=y", body, now, true},
		{"other secret", audit.SignWebhook([]byte("other"), now, body), body, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := audit.VerifyWebhookSignature(secret, tt.header, tt.body, tt.now, 5*time.Minute)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestSlogSink(t *testing.T) {
	ctx := context.Background()
	t.Run("text handler prints JSON arrays", func(t *testing.T) {
		var buf bytes.Buffer
		s, _ := audit.NewSlogSink(audit.SlogConfig{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
		if err := s.Write(ctx, audittest.NewEvent(1)); err != nil {
			t.Fatal(err)
		}
		out := buf.String()
		for _, want := range []string{"msg=audit", "event.id=ev-00000001", "event.principal.subject=agent-7", `event.request.resources="[\"arn:aws:s3:::reports/2026/q4.csv\"]"`, "event.response.status=204"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %s in %s", want, out)
			}
		}
	})
	t.Run("a logger that filters audit records is an error", func(t *testing.T) {
		h := slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn})
		s, _ := audit.NewSlogSink(audit.SlogConfig{Logger: slog.New(h)})
		if err := s.Write(ctx, audittest.NewEvent(1)); err == nil {
			t.Fatal("Write succeeded though the logger drops Info records")
		}
	})
	t.Run("handler errors reach the caller", func(t *testing.T) {
		s, _ := audit.NewSlogSink(audit.SlogConfig{Logger: slog.New(failingHandler{})})
		if err := s.Write(ctx, audittest.NewEvent(1)); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Write = %v", err)
		}
	})
}

type failingHandler struct{ slog.Handler }

func (failingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (failingHandler) Handle(context.Context, slog.Record) error {
	return errors.New("disk full")
}

func TestDiscardAndMulti(t *testing.T) {
	ctx := context.Background()
	if err := audit.Discard.Write(ctx, audittest.NewEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := audit.Discard.Write(ctx, nil); !errors.Is(err, audit.ErrInvalidEvent) {
		t.Fatalf("Discard accepted a nil event: %v", err)
	}
	m := &audittest.Memory{}
	e1, e2 := errors.New("one"), errors.New("two")
	s := audit.Multi(audittest.Failing{Err: e1}, m, audittest.Failing{Err: e2})
	err := s.Write(ctx, audittest.NewEvent(1))
	if !errors.Is(err, e1) || !errors.Is(err, e2) {
		t.Fatalf("Multi joined %v", err)
	}
	if len(m.Events()) != 1 {
		t.Fatal("Multi stopped at the first failing sink")
	}
	if err := audit.Multi().Write(ctx, audittest.NewEvent(1)); err != nil {
		t.Fatal(err)
	}
}

func TestEventHelpers(t *testing.T) {
	h := http.Header{}
	h.Set("x-amzn-RequestId", "abc")
	if id, ext := audit.AWSRequestIDs(h); id != "abc" || ext != "" {
		t.Fatalf("%q %q", id, ext)
	}
	h.Set("x-amz-request-id", "s3id")
	h.Set("x-amz-id-2", "ext")
	if id, ext := audit.AWSRequestIDs(h); id != "s3id" || ext != "ext" {
		t.Fatalf("%q %q", id, ext)
	}
	a, b := audit.NewID(), audit.NewID()
	if len(a) != 32 || a == b {
		t.Fatalf("ids %q %q", a, b)
	}
}
