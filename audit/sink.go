package audit

import (
	"context"
	"errors"
)

// Sentinel errors. Sinks wrap them with %w.
var (
	// ErrClosed is returned by Write after Close.
	ErrClosed = errors.New("audit: sink is closed")
	// ErrInvalidEvent is returned for an event that fails Validate.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrTooLarge is returned for an event whose encoding exceeds a
	// sink's record bound.
	ErrTooLarge = errors.New("audit: event too large")
	// ErrBroken is returned by a sink that hit an error it cannot recover
	// from without being reopened (a file it could not roll back).
	ErrBroken = errors.New("audit: sink is broken")
)

// Sink stores audit events. It is the back end of the audit trail, shaped
// like slog.Handler: a small interface with a written contract, the
// ready-made Discard and Multi, and a conformance kit (package audittest)
// that every implementation passes.
//
// Contract:
//
//   - Concurrency: Write and Close may be called from many goroutines at
//     once.
//   - Validation: Write refuses an event that fails Event.Validate with an
//     error wrapping ErrInvalidEvent, and never panics on a nil event.
//   - Ownership: Write neither modifies e nor retains it after it
//     returns; a sink that needs the event later keeps Event.Clone or its
//     encoding.
//   - Meaning of the result: a nil error means the sink accepted the
//     event. Each sink documents what accepted means: synchronous sinks
//     (FileSink without FlushInterval, pgsink, Multi of synchronous sinks)
//     have stored it durably as configured; queueing sinks (Async,
//     Webhook) have queued it and report later failures through their
//     statistics (and LossReporter). A sink says which it is by
//     implementing Acknowledger; one that does not is taken to queue. A
//     non-nil error means the event may not be recorded:
//     a fail-closed caller must refuse the call. An error does not prove
//     the event is absent (a write may fail after it reached the disk).
//   - Ordering: events that one goroutine writes one after the other are
//     stored in that order. Events written concurrently are stored in some
//     order.
//   - Context: ctx bounds waiting (for queue space, a connection, the
//     network). A sink that can record the event without waiting does so
//     even if ctx is done; one that gives up returns an error wrapping
//     ctx.Err(). Write never reads hidden inputs from ctx. Completion
//     events should be written with a context that the client's
//     disconnection does not cancel (context.WithoutCancel).
//   - Close flushes what was accepted, releases resources and returns the
//     first error met doing so. Write after Close returns an error
//     wrapping ErrClosed. Close may be called more than once; later calls
//     return nil.
type Sink interface {
	Write(ctx context.Context, e *Event) error
	Close() error
}

// Acknowledger is implemented by a Sink that states what a nil error from
// its Write means. A fail-closed Trail needs a sink whose acknowledgement
// means stored, and NewTrail refuses any other: a Sink that does not
// implement Acknowledger is taken to only queue.
type Acknowledger interface {
	// AcknowledgesStored reports whether a nil error from Write means the
	// event is stored (as durably as the sink is configured), not only
	// accepted into a queue that can still lose it. The answer never
	// changes over the sink's life.
	AcknowledgesStored() bool
}

// AcknowledgesStored reports whether s acknowledges only stored events:
// whether it implements Acknowledger and says so.
func AcknowledgesStored(s Sink) bool {
	a, ok := s.(Acknowledger)
	return ok && a.AcknowledgesStored()
}

// LossReporter is implemented by a Sink that can lose events after Write
// accepted them (a queueing sink): Trail.Stats adds its losses to
// TrailStats.Lost, so that every event a trail lost is counted once.
type LossReporter interface {
	// Lost returns how many events Write accepted that were not stored
	// and never will be: dropped from a full queue, refused or failed by
	// the back end, or abandoned at Close. It only grows.
	Lost() uint64
}

// Checker is implemented by a Sink that can tell, without writing an
// event, whether a Write would succeed now. Trail.Check asks it, so that a
// gateway that stopped taking calls because its sink failed sees the sink
// recover without sending calls to find out.
type Checker interface {
	// Check returns nil if the sink can store events now, as far as it
	// can tell, and otherwise the reason it cannot. ctx bounds the check.
	Check(ctx context.Context) error
}

// Discard is a Sink that accepts and drops every valid event. It never
// reports ErrClosed. It does not implement Acknowledger: a fail-closed
// Trail refuses it.
var Discard Sink = discard{}

type discard struct{}

func (discard) Write(_ context.Context, e *Event) error { return e.Validate() }
func (discard) Close() error                            { return nil }

// Multi returns a Sink that writes every event to each of sinks in turn
// and returns the errors of all that failed, joined (errors.Join): one
// failing sink is enough to fail the write, so a fail-closed caller
// refuses calls that any sink could not record. Close closes every sink.
// Nil sinks are skipped. Multi acknowledges stored events exactly when it
// has sinks and all of them do (Acknowledger); its Lost is the sum of its
// sinks' (LossReporter), and its Check checks every sink that implements
// Checker.
func Multi(sinks ...Sink) Sink {
	m := make(multi, 0, len(sinks))
	for _, s := range sinks {
		if s != nil {
			m = append(m, s)
		}
	}
	return m
}

type multi []Sink

func (m multi) Write(ctx context.Context, e *Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	var errs []error
	for _, s := range m {
		if err := s.Write(ctx, e); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m multi) Close() error {
	var errs []error
	for _, s := range m {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// AcknowledgesStored implements Acknowledger.
func (m multi) AcknowledgesStored() bool {
	for _, s := range m {
		if !AcknowledgesStored(s) {
			return false
		}
	}
	return len(m) > 0
}

// Lost implements LossReporter.
func (m multi) Lost() uint64 {
	var n uint64
	for _, s := range m {
		n += lostBy(s)
	}
	return n
}

// Check implements Checker.
func (m multi) Check(ctx context.Context) error {
	var errs []error
	for _, s := range m {
		if c, ok := s.(Checker); ok {
			if err := c.Check(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// lostBy is s's LossReporter count, or 0.
func lostBy(s Sink) uint64 {
	if l, ok := s.(LossReporter); ok {
		return l.Lost()
	}
	return 0
}
