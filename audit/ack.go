package audit

import (
	"context"
	"fmt"
	"os"
)

// This file holds the Acknowledger and Checker methods of FileSink and
// SlogSink (see sink.go for the interfaces).

// AcknowledgesStored implements Acknowledger: true unless
// FileConfig.FlushInterval selects buffered mode, where Write returns
// before the event is written.
func (s *FileSink) AcknowledgesStored() bool { return !s.buffered }

// probeBytes is what FileSink.Check writes: about a few records' worth.
var probeBytes = make([]byte, 4096)

// Check implements Checker. It fails after Close (ErrClosed) and once the
// sink is broken (ErrBroken); otherwise it checks that Dir takes a write
// now, the way the next record would need it: it creates a file named
// ".probe-*" in Dir (never part of the chain: chain files are
// <prefix>-*.jsonl), writes 4 KiB to it, syncs it and removes it. A full
// disk, a read-only or missing directory fail the check.
func (s *FileSink) Check(ctx context.Context) error {
	s.mu.Lock()
	closed, broken := s.closed, s.broken
	s.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case broken != nil:
		return broken
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: file sink check: %w", err)
	}
	f, err := os.CreateTemp(s.cfg.Dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("audit: file sink check: %w", err)
	}
	_, err = f.Write(probeBytes)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if rerr := os.Remove(f.Name()); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("audit: file sink check: %w", err)
	}
	return nil
}

// AcknowledgesStored implements Acknowledger: true, since Write returns
// only after the logger's handler has handled the record. It trusts the
// handler: over a handler that buffers or hands records to another
// goroutine, do not use the sink for a fail-closed Trail.
func (s *SlogSink) AcknowledgesStored() bool { return true }
