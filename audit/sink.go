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
//     statistics. A non-nil error means the event may not be recorded:
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

// Discard is a Sink that accepts and drops every valid event. It never
// reports ErrClosed.
var Discard Sink = discard{}

type discard struct{}

func (discard) Write(_ context.Context, e *Event) error { return e.Validate() }
func (discard) Close() error                            { return nil }

// Multi returns a Sink that writes every event to each of sinks in turn
// and returns the errors of all that failed, joined (errors.Join): one
// failing sink is enough to fail the write, so a fail-closed caller
// refuses calls that any sink could not record. Close closes every sink.
// Nil sinks are skipped. Multi is synchronous exactly when all of its sinks
// are.
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
