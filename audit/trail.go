package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Mode says what a Trail does when its sink fails.
type Mode int

const (
	// FailClosed (the zero value) writes an intent event before every
	// call is forwarded; when that write fails the call must be refused.
	FailClosed Mode = iota
	// FailOpen writes completion events only; a call goes ahead whatever
	// the sink does, and events the sink could not take are counted as
	// lost (TrailStats.Lost) and logged.
	FailOpen
)

func (m Mode) String() string {
	switch m {
	case FailClosed:
		return "fail-closed"
	case FailOpen:
		return "fail-open"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ErrUnavailable is wrapped by Trail.Intent when a fail-closed trail could
// not record the intent: the caller refuses the call (awsproxy answers
// with an AWS-shaped ServiceUnavailable). Trail.Check wraps it too.
var ErrUnavailable = errors.New("audit: trail unavailable: the call cannot be recorded")

// ErrQueueingSink is wrapped by NewTrail when a fail-closed trail is given a
// sink that does not acknowledge stored events (see Acknowledger): behind
// a queue, an intent that was accepted can still be lost after the call
// went ahead, which fail-closed promises never happens.
var ErrQueueingSink = errors.New("audit: a fail-closed trail needs a sink that acknowledges only stored events")

// Defaults of TrailConfig.
const (
	DefaultIntentTimeout     = 2 * time.Second
	DefaultCompletionTimeout = 5 * time.Second
)

// TrailConfig configures a Trail.
type TrailConfig struct {
	// Sink stores the events. Required. A fail-closed trail needs a sink
	// whose nil error means stored (AcknowledgesStored: FileSink without
	// FlushInterval, pgsink, SlogSink, Multi of those); NewTrail refuses
	// any other with ErrQueueingSink. Behind Async or Webhook an accepted
	// intent is only queued.
	Sink Sink
	// Mode is FailClosed (the zero value) or FailOpen.
	Mode Mode
	// IntentTimeout bounds the intent write, which the call waits for;
	// default DefaultIntentTimeout. Past it the call is refused.
	IntentTimeout time.Duration
	// CompletionTimeout bounds completion and approval writes; default
	// DefaultCompletionTimeout.
	CompletionTimeout time.Duration
	// Logger, if set, receives every failed write at Error level.
	Logger *slog.Logger
}

// TrailStats counts a Trail's writes.
type TrailStats struct {
	Intents     uint64 // intent events the sink accepted
	Refused     uint64 // intents that failed: calls the caller had to refuse
	Completions uint64 // completion and approval events the sink accepted
	// Lost counts events that will never be stored: completion and
	// approval events the sink refused, plus every event a queueing sink
	// accepted and lost later (LossReporter: dropped, failed delivery,
	// abandoned at Close).
	Lost uint64
}

// Trail is the front end the gateway writes through: it knows the
// fail-closed and fail-open semantics, the sink knows storage. It is safe
// for concurrent use.
type Trail struct {
	cfg                                 TrailConfig
	intents, refused, completions, lost atomic.Uint64
	// failed is the error of the last write if it failed for a reason of
	// the sink's (not of the event's); nil after a write succeeded.
	failed atomic.Pointer[error]
}

// NewTrail validates cfg and returns a Trail.
func NewTrail(cfg TrailConfig) (*Trail, error) {
	switch {
	case cfg.Sink == nil:
		return nil, errors.New("audit: TrailConfig.Sink is required")
	case cfg.Mode != FailClosed && cfg.Mode != FailOpen:
		return nil, fmt.Errorf("audit: TrailConfig.Mode %d is not FailClosed or FailOpen", int(cfg.Mode))
	case cfg.IntentTimeout < 0 || cfg.CompletionTimeout < 0:
		return nil, errors.New("audit: TrailConfig timeouts must not be negative")
	case cfg.Mode == FailClosed && !AcknowledgesStored(cfg.Sink):
		return nil, fmt.Errorf("%w: TrailConfig.Sink %T only queues (or does not implement audit.Acknowledger); use a synchronous sink or Mode FailOpen", ErrQueueingSink, cfg.Sink)
	}
	if cfg.IntentTimeout == 0 {
		cfg.IntentTimeout = DefaultIntentTimeout
	}
	if cfg.CompletionTimeout == 0 {
		cfg.CompletionTimeout = DefaultCompletionTimeout
	}
	return &Trail{cfg: cfg}, nil
}

// Mode returns the trail's mode.
func (t *Trail) Mode() Mode { return t.cfg.Mode }

// Intent records that the call described by e (Phase PhaseIntent) is
// about to be forwarded. In fail-closed mode it writes e and returns an
// error wrapping ErrUnavailable and the sink's error if that failed: the
// caller must then refuse the call. In fail-open mode it writes nothing
// and returns nil.
func (t *Trail) Intent(ctx context.Context, e *Event) error {
	if t.cfg.Mode == FailOpen {
		return nil
	}
	if e != nil && e.Phase != PhaseIntent {
		return fmt.Errorf("%w: Trail.Intent needs Phase %q, got %q", ErrInvalidEvent, PhaseIntent, e.Phase)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.IntentTimeout)
	defer cancel()
	if err := t.cfg.Sink.Write(ctx, e); err != nil {
		t.refused.Add(1)
		t.noteFailure(err)
		if t.cfg.Logger != nil {
			t.cfg.Logger.Error("audit: intent not recorded: refusing the call", "err", err)
		}
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	t.failed.Store(nil)
	t.intents.Add(1)
	return nil
}

// Record writes a completion or approval event. The call it describes has
// already happened, so a failure cannot undo anything: it is counted as
// lost, logged, and returned for the caller's information. The write is
// not cancelled with ctx (a client that went away still leaves a trail),
// only bounded by CompletionTimeout.
func (t *Trail) Record(ctx context.Context, e *Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.CompletionTimeout)
	defer cancel()
	if err := t.cfg.Sink.Write(ctx, e); err != nil {
		t.lost.Add(1)
		t.noteFailure(err)
		if t.cfg.Logger != nil {
			id := ""
			if e != nil {
				id = e.ID
			}
			t.cfg.Logger.Error("audit: event lost", "event", id, "mode", t.cfg.Mode.String(), "err", err)
		}
		return err
	}
	t.failed.Store(nil)
	t.completions.Add(1)
	return nil
}

// noteFailure remembers err for Check, unless it is about the event
// itself (invalid, too large) rather than the sink.
func (t *Trail) noteFailure(err error) {
	if errors.Is(err, ErrInvalidEvent) || errors.Is(err, ErrTooLarge) {
		return
	}
	t.failed.Store(&err)
}

// Check reports whether the trail can record events now; the error wraps
// ErrUnavailable. If the sink implements Checker, its Check decides (and a
// passing check forgets an earlier failed write, so a gateway that
// stopped taking calls sees the sink recover without calls). Otherwise
// the last write decides: Check fails from a write the sink failed until
// a write succeeds. Failures of one event (ErrInvalidEvent, ErrTooLarge)
// do not count. Check never writes an event. In FailClosed mode a failing
// Check means calls are being refused; in FailOpen mode it means events
// are being lost while calls go ahead.
func (t *Trail) Check(ctx context.Context) error {
	if c, ok := t.cfg.Sink.(Checker); ok {
		if err := c.Check(ctx); err != nil {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		t.failed.Store(nil)
		return nil
	}
	if p := t.failed.Load(); p != nil {
		return fmt.Errorf("%w: the last write failed: %w", ErrUnavailable, *p)
	}
	return nil
}

// Stats returns the trail's counters. Lost includes what the sink reports
// it lost after accepting (LossReporter), read now.
func (t *Trail) Stats() TrailStats {
	return TrailStats{Intents: t.intents.Load(), Refused: t.refused.Load(), Completions: t.completions.Load(), Lost: t.lost.Load() + lostBy(t.cfg.Sink)}
}

// Close closes the sink.
func (t *Trail) Close() error { return t.cfg.Sink.Close() }
