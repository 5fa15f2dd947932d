package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Overflow is what a queueing sink does when its queue is full.
type Overflow int

const (
	// Block makes Write wait for queue space, as long as its ctx allows
	// (the zero value: nothing is lost silently, but a stuck back end
	// slows callers down).
	Block Overflow = iota
	// Drop makes Write discard the event at once, count it (Dropped) and
	// return nil: the caller is never slowed down, and accepts losing
	// events. Never use Drop in front of a fail-closed trail.
	Drop
)

func (o Overflow) String() string {
	switch o {
	case Block:
		return "block"
	case Drop:
		return "drop"
	}
	return fmt.Sprintf("Overflow(%d)", int(o))
}

// Defaults of AsyncConfig.
const (
	DefaultQueue        = 1024
	DefaultCloseTimeout = 5 * time.Second
)

// AsyncConfig configures an Async sink.
type AsyncConfig struct {
	// Queue is the number of events held for the back end; default
	// DefaultQueue.
	Queue int
	// Overflow is the policy when the queue is full; the zero value is
	// Block.
	Overflow Overflow
	// CloseTimeout bounds how long Close waits for the queue to drain;
	// default DefaultCloseTimeout. Events still queued then are counted as
	// dropped.
	CloseTimeout time.Duration
	// WriteTimeout bounds each back-end Write; zero means no bound beyond
	// CloseTimeout during Close.
	WriteTimeout time.Duration
	// OnError, if set, is called from the worker goroutine with each error
	// of the back end (the event is then counted in Failed).
	OnError func(e *Event, err error)
	// Logger, if set, receives back-end errors at Error level.
	Logger *slog.Logger
}

// AsyncStats counts an Async sink's events.
type AsyncStats struct {
	Queued  uint64 // accepted by Write
	Written uint64 // written by the back end without error
	Failed  uint64 // the back end returned an error
	Dropped uint64 // discarded: queue full under Drop, or still queued when Close gave up
}

// Async is a Sink that takes events off the request path: Write clones
// the event into a bounded queue and one worker goroutine writes them to
// the back end in order. A nil error from Write means queued, not
// recorded: back-end failures are counted (Stats, Lost) and reported
// through OnError and Logger. Use it for fail-open trails: it does not
// acknowledge stored events (Acknowledger), so a fail-closed Trail refuses
// it.
type Async struct {
	next Sink
	cfg  AsyncConfig
	q    chan *Event

	mu      sync.RWMutex // Write holds it shared while sending; Close exclusively
	closed  atomic.Bool
	stop    chan struct{} // closed by Close: blocked Writes give up
	done    chan struct{} // closed when the worker exits
	ctx     context.Context
	cancel  context.CancelFunc
	closeMu sync.Mutex

	queued, written, failed, dropped atomic.Uint64
}

// NewAsync returns an Async sink in front of next and starts its worker.
func NewAsync(next Sink, cfg AsyncConfig) (*Async, error) {
	if next == nil {
		return nil, errors.New("audit: NewAsync: next sink is nil")
	}
	switch {
	case cfg.Queue < 0:
		return nil, errors.New("audit: AsyncConfig.Queue must not be negative")
	case cfg.Overflow != Block && cfg.Overflow != Drop:
		return nil, fmt.Errorf("audit: AsyncConfig.Overflow %d is not Block or Drop", int(cfg.Overflow))
	case cfg.CloseTimeout < 0 || cfg.WriteTimeout < 0:
		return nil, errors.New("audit: AsyncConfig timeouts must not be negative")
	}
	if cfg.Queue == 0 {
		cfg.Queue = DefaultQueue
	}
	if cfg.CloseTimeout == 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	a := &Async{next: next, cfg: cfg, q: make(chan *Event, cfg.Queue), stop: make(chan struct{}), done: make(chan struct{})}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	go a.run()
	return a, nil
}

// Write implements Sink: it validates and clones e and queues it. Under
// Block it waits for space until ctx is done (then the error wraps
// ctx.Err()) or the sink is closed; under Drop it never waits.
func (a *Async) Write(ctx context.Context, e *Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if a.closed.Load() {
		return ErrClosed
	}
	c := e.Clone()
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.closed.Load() {
		return ErrClosed
	}
	select {
	case a.q <- c:
		a.queued.Add(1)
		return nil
	default:
	}
	if a.cfg.Overflow == Drop {
		a.dropped.Add(1)
		return nil
	}
	select {
	case a.q <- c:
		a.queued.Add(1)
		return nil
	case <-a.stop:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("audit: async queue full: %w", ctx.Err())
	}
}

func (a *Async) run() {
	defer close(a.done)
	for e := range a.q {
		if a.ctx.Err() != nil {
			a.dropped.Add(1) // Close gave up waiting
			continue
		}
		ctx, cancel := a.ctx, context.CancelFunc(func() {})
		if a.cfg.WriteTimeout > 0 {
			ctx, cancel = context.WithTimeout(a.ctx, a.cfg.WriteTimeout)
		}
		err := a.next.Write(ctx, e)
		cancel()
		if err != nil {
			a.failed.Add(1)
			if a.cfg.OnError != nil {
				a.cfg.OnError(e, err)
			}
			if a.cfg.Logger != nil {
				a.cfg.Logger.Error("audit: async sink write failed", "event", e.ID, "err", err)
			}
			continue
		}
		a.written.Add(1)
	}
}

// Dropped returns the number of events dropped so far: refused for lack
// of queue space under Drop, or abandoned by Close.
func (a *Async) Dropped() uint64 { return a.dropped.Load() }

// AcknowledgesStored implements Acknowledger: false, Write only queues.
func (a *Async) AcknowledgesStored() bool { return false }

// Lost implements LossReporter: the events Write accepted that were
// dropped or that the back end failed, plus what the back end itself
// lost after accepting them.
func (a *Async) Lost() uint64 { return a.dropped.Load() + a.failed.Load() + lostBy(a.next) }

// Stats returns the sink's counters.
func (a *Async) Stats() AsyncStats {
	return AsyncStats{Queued: a.queued.Load(), Written: a.written.Load(), Failed: a.failed.Load(), Dropped: a.dropped.Load()}
}

// Len returns the number of events waiting in the queue.
func (a *Async) Len() int { return len(a.q) }

// Close stops accepting events (Writes blocked on a full queue return
// ErrClosed), waits up to CloseTimeout for the queue to drain, then closes
// the back end. If the queue did not drain in time it cancels the back
// end's context, counts what is left as dropped and returns an error
// saying how many were lost.
func (a *Async) Close() error {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	if a.closed.Swap(true) {
		return nil
	}
	close(a.stop)
	a.mu.Lock() // waits for Writes in flight
	close(a.q)
	a.mu.Unlock()
	t := time.NewTimer(a.cfg.CloseTimeout)
	defer t.Stop()
	var errs []error
	select {
	case <-a.done:
	case <-t.C:
		before := a.dropped.Load()
		a.cancel()
		<-a.done
		errs = append(errs, fmt.Errorf("audit: async close: queue not drained within %v: %d event(s) dropped", a.cfg.CloseTimeout, a.dropped.Load()-before))
	}
	a.cancel()
	if err := a.next.Close(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
