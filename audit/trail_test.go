package audit_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// plainSink is a synchronous sink that does not say so (no Acknowledger).
type plainSink struct{ m audittest.Memory }

func (p *plainSink) Write(ctx context.Context, e *audit.Event) error { return p.m.Write(ctx, e) }
func (p *plainSink) Close() error                                    { return p.m.Close() }

// TestTrailRefusesQueueingSinks: a fail-closed trail is built only on a
// sink whose acknowledgement means stored; a queue anywhere in front of
// the storage (Async, Webhook, buffered FileSink, inside Multi or behind
// Async) is refused at construction, as is a sink that does not say.
func TestTrailRefusesQueueingSinks(t *testing.T) {
	hook := func(t *testing.T) *audit.Webhook {
		w, err := audit.NewWebhook(audit.WebhookConfig{URL: "http://127.0.0.1:1/hook"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		return w
	}
	async := func(t *testing.T, next audit.Sink) *audit.Async {
		a, err := audit.NewAsync(next, audit.AsyncConfig{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { a.Close() })
		return a
	}
	file := func(t *testing.T, flush time.Duration) *audit.FileSink {
		s, err := audit.NewFileSink(audit.FileConfig{Dir: t.TempDir(), FlushInterval: flush})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	slogSink, err := audit.NewSlogSink(audit.SlogConfig{Logger: slog.New(slog.NewJSONHandler(&bytes.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		sink   func(t *testing.T) audit.Sink
		stored bool
	}{
		{"webhook", func(t *testing.T) audit.Sink { return hook(t) }, false},
		{"async", func(t *testing.T) audit.Sink { return async(t, &audittest.Memory{}) }, false},
		{"buffered file", func(t *testing.T) audit.Sink { return file(t, time.Second) }, false},
		{"multi with a webhook", func(t *testing.T) audit.Sink { return audit.Multi(file(t, 0), hook(t)) }, false},
		{"async in multi", func(t *testing.T) audit.Sink { return audit.Multi(&audittest.Memory{}, async(t, file(t, 0))) }, false},
		{"empty multi", func(t *testing.T) audit.Sink { return audit.Multi() }, false},
		{"discard", func(t *testing.T) audit.Sink { return audit.Discard }, false},
		{"sink that does not say", func(t *testing.T) audit.Sink { return &plainSink{} }, false},
		{"file", func(t *testing.T) audit.Sink { return file(t, 0) }, true},
		{"memory", func(t *testing.T) audit.Sink { return &audittest.Memory{} }, true},
		{"slog", func(t *testing.T) audit.Sink { return slogSink }, true},
		{"multi of synchronous sinks", func(t *testing.T) audit.Sink { return audit.Multi(file(t, 0), &audittest.Memory{}, nil) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := tt.sink(t)
			if got := audit.AcknowledgesStored(sink); got != tt.stored {
				t.Fatalf("AcknowledgesStored = %v, want %v", got, tt.stored)
			}
			_, err := audit.NewTrail(audit.TrailConfig{Sink: sink})
			if tt.stored && err != nil {
				t.Fatalf("fail-closed NewTrail = %v", err)
			}
			if !tt.stored && !errors.Is(err, audit.ErrQueueingSink) {
				t.Fatalf("fail-closed NewTrail = %v, want ErrQueueingSink", err)
			}
			if _, err := audit.NewTrail(audit.TrailConfig{Sink: sink, Mode: audit.FailOpen}); err != nil {
				t.Fatalf("fail-open NewTrail = %v", err)
			}
		})
	}
}

// TestTrailCountsQueuedLosses: events a queueing sink accepted and then
// failed to deliver are the trail's losses too. A webhook whose receiver
// fails every delivery loses all 20 events, and the trail says 20.
func TestTrailCountsQueuedLosses(t *testing.T) {
	ctx := context.Background()
	var posts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for _, tc := range []struct {
		name string
		wrap func(w *audit.Webhook) audit.Sink
	}{
		{"webhook", func(w *audit.Webhook) audit.Sink { return w }},
		{"multi with a webhook", func(w *audit.Webhook) audit.Sink { return audit.Multi(&audittest.Memory{}, w) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := audit.NewWebhook(audit.WebhookConfig{URL: srv.URL, BatchSize: 1, Retry: audit.RetryConfig{Attempts: 1}})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			tr, err := audit.NewTrail(audit.TrailConfig{Sink: tc.wrap(w), Mode: audit.FailOpen})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 20 {
				if err := tr.Record(ctx, audittest.NewEvent(i)); err != nil {
					t.Fatalf("Record %d = %v (a queueing sink accepts)", i, err)
				}
			}
			if err := w.Flush(ctx); err == nil {
				t.Fatal("Flush reported no delivery failure")
			}
			if st := tr.Stats(); st.Lost != 20 || st.Completions != 20 {
				t.Fatalf("trail stats %+v, want 20 completions accepted and 20 lost", st)
			}
		})
	}
	t.Run("async drops", func(t *testing.T) {
		g := newGate()
		a, err := audit.NewAsync(g, audit.AsyncConfig{Queue: 1, Overflow: audit.Drop})
		if err != nil {
			t.Fatal(err)
		}
		tr, _ := audit.NewTrail(audit.TrailConfig{Sink: a, Mode: audit.FailOpen})
		tr.Record(ctx, audittest.NewEvent(0)) // taken by the worker, which waits at the gate
		<-g.entered
		tr.Record(ctx, audittest.NewEvent(1)) // queued
		tr.Record(ctx, audittest.NewEvent(2)) // dropped
		tr.Record(ctx, audittest.NewEvent(3)) // dropped
		if st := tr.Stats(); st.Lost != 2 {
			t.Fatalf("trail stats %+v, want 2 lost", st)
		}
		close(g.release)
		a.Close()
		if st := tr.Stats(); st.Lost != 2 {
			t.Fatalf("after close: trail stats %+v, want 2 lost", st)
		}
	})
}

// flaky is a synchronous sink that fails while fail is set; it has no
// Checker, so a Trail knows its health only from writes.
type flaky struct {
	fail atomic.Bool
	audittest.Memory
}

func (f *flaky) Write(ctx context.Context, e *audit.Event) error {
	if f.fail.Load() {
		return errors.New("flaky: disk full")
	}
	return f.Memory.Write(ctx, e)
}

// TestTrailCheck: a trail reports that it cannot record from the failed
// write on, and recovers: through the sink's Checker when it has one
// (without any write), else at the next write that succeeds.
func TestTrailCheck(t *testing.T) {
	ctx := context.Background()
	intent := func(i int) *audit.Event {
		e := audittest.NewEvent(i)
		e.Phase, e.Response = audit.PhaseIntent, nil
		return e
	}
	t.Run("without a checker", func(t *testing.T) {
		s := &flaky{}
		tr, err := audit.NewTrail(audit.TrailConfig{Sink: s})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Check(ctx); err != nil {
			t.Fatalf("Check before any write = %v", err)
		}
		s.fail.Store(true)
		if err := tr.Intent(ctx, intent(1)); err == nil {
			t.Fatal("Intent succeeded on a failing sink")
		}
		if err := tr.Check(ctx); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Check after a refused intent = %v, want ErrUnavailable", err)
		}
		s.fail.Store(false)
		if err := tr.Check(ctx); err == nil {
			t.Fatal("Check passed before any write showed the sink recovered")
		}
		if err := tr.Record(ctx, audittest.NewEvent(2)); err != nil {
			t.Fatal(err)
		}
		if err := tr.Check(ctx); err != nil {
			t.Fatalf("Check after a good write = %v", err)
		}
		big := audittest.NewEvent(3)
		big.Request.Params = map[string]string{"x": string(make([]byte, 2<<20))}
		fs, err := audit.NewFileSink(audit.FileConfig{Dir: t.TempDir(), MaxRecordBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		tr2, _ := audit.NewTrail(audit.TrailConfig{Sink: audit.Multi(&flaky{}, &plainSink{}, fs), Mode: audit.FailOpen})
		if err := tr2.Record(ctx, big); !errors.Is(err, audit.ErrTooLarge) {
			t.Fatalf("Record of a huge event = %v", err)
		}
		if err := tr2.Check(ctx); err != nil {
			t.Fatalf("one oversized event made the trail unhealthy: %v", err)
		}
	})
	t.Run("file sink checker", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "trail")
		fs, err := audit.NewFileSink(audit.FileConfig{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer fs.Close()
		tr, err := audit.NewTrail(audit.TrailConfig{Sink: fs})
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Check(ctx); err != nil {
			t.Fatalf("Check of a healthy file sink = %v", err)
		}
		// The directory is gone (a lost mount, say) before the first
		// record opens a file: every intent fails, and so does Check.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := tr.Intent(ctx, intent(1)); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Intent = %v", err)
		}
		if err := tr.Check(ctx); !errors.Is(err, audit.ErrUnavailable) {
			t.Fatalf("Check with the directory gone = %v", err)
		}
		// Back: Check sees it without a write, and writes work.
		os.Remove(dir)
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := tr.Check(ctx); err != nil {
			t.Fatalf("Check with the directory back = %v", err)
		}
		if err := tr.Intent(ctx, intent(2)); err != nil {
			t.Fatalf("Intent after recovery = %v", err)
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if filepath.Ext(e.Name()) != ".jsonl" {
				t.Errorf("Check left %s behind", e.Name())
			}
		}
		fs.Close()
		if err := tr.Check(ctx); !errors.Is(err, audit.ErrClosed) {
			t.Fatalf("Check after Close = %v", err)
		}
	})
}
