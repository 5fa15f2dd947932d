package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// CheckpointWriteTimeout bounds one call of FileConfig.CheckpointWriter.
const CheckpointWriteTimeout = 10 * time.Second

// Checkpoint writes the events still queued, then a checkpoint of the
// chain's last record unless the newest stored checkpoint already covers
// it, and returns the newest checkpoint. It needs FileConfig.Signer.
func (s *FileSink) Checkpoint() (SignedCheckpoint, error) {
	if s.cfg.Signer == nil {
		return SignedCheckpoint{}, errors.New("audit: checkpoint: FileConfig.Signer is not set")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return SignedCheckpoint{}, ErrClosed
	}
	if err := s.flushAllLocked(); err != nil {
		return SignedCheckpoint{}, err
	}
	if err := s.checkpointLocked(); err != nil {
		return SignedCheckpoint{}, err
	}
	if s.cpLast.Note == nil {
		return SignedCheckpoint{}, errors.New("audit: checkpoint: the chain is empty")
	}
	return s.cpLast, nil
}

// checkpointLocked takes the flusher's role and writes a checkpoint. It
// is called with s.mu held; it releases the lock during I/O.
func (s *FileSink) checkpointLocked() error {
	for s.flushing {
		s.cond.Wait()
	}
	if s.broken != nil {
		return s.broken
	}
	s.flushing = true
	s.mu.Unlock()
	err := s.checkpoint()
	s.mu.Lock()
	s.flushing = false
	s.cond.Broadcast()
	return err
}

// checkpoint signs and stores a checkpoint of the last committed record
// unless the newest stored one covers it already, or this sink has not
// written anything (a sink opened and closed without writes, as by
// "gateway -check", leaves the directory as it found it). It runs as the
// flusher (s.flushing), counts and logs a failure, and returns it.
func (s *FileSink) checkpoint() error {
	if s.cfg.Signer == nil || !s.wrote || s.seq == 0 || s.seq == s.cpSize {
		return nil
	}
	if err := s.storeCheckpoint(); err != nil {
		s.stats.CheckpointFailures++
		if s.cfg.Logger != nil {
			s.cfg.Logger.Error("audit: checkpoint failed", "records", s.seq, "err", err)
		}
		return err
	}
	s.stats.Checkpoints++
	return nil
}

func (s *FileSink) storeCheckpoint() error {
	sync := !s.cfg.SkipCheckpointSync
	if sync {
		// The checkpoint must not cover a record a power loss can take
		// back: sync the file holding the last one (every earlier file
		// was synced by the checkpoint before its rotation).
		switch {
		case s.f != nil && !s.cfg.Sync:
			if err := s.f.Sync(); err != nil {
				return fmt.Errorf("audit: checkpoint: sync %s: %w", s.name, err)
			}
		case s.f == nil && s.prevFile != "":
			if err := syncFile(filepath.Join(s.cfg.Dir, s.prevFile)); err != nil {
				return fmt.Errorf("audit: checkpoint: sync %s: %w", s.prevFile, err)
			}
		}
	}
	sc, err := Checkpoint{Origin: s.origin, Size: s.seq, Hash: s.prev}.Sign(s.cfg.Signer)
	if err != nil {
		return err
	}
	name := CheckpointFileName(s.cfg.Prefix)
	if err := writeFileAtomic(s.cfg.Dir, name, sc.Note, sync); err != nil {
		return fmt.Errorf("audit: checkpoint: write %s: %w", name, err)
	}
	s.cpSize, s.cpLast = sc.Size, sc
	if s.export != nil {
		s.export.offer(sc)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkpointLoop writes a checkpoint every CheckpointInterval while the
// chain grows.
func (s *FileSink) checkpointLoop() {
	defer close(s.cpDone)
	t := time.NewTicker(s.cfg.CheckpointInterval)
	defer t.Stop()
	for {
		select {
		case <-s.cpStop:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.closed {
				s.checkpointLocked() // counted and logged
			}
			s.mu.Unlock()
		}
	}
}

// checkResume compares the chain found in Dir with the newest checkpoint
// stored there, so that a sink never extends a chain that lost records
// its own checkpoint covers (extending it, then checkpointing, would
// replace the evidence). The note's signature is not checked here: the
// sink may hold a different key than the one that signed it, and a forged
// note can only keep the sink from starting.
func (s *FileSink) checkResume() error {
	path := filepath.Join(s.cfg.Dir, CheckpointFileName(s.cfg.Prefix))
	msg, err := readBounded(path, MaxCheckpointBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("audit: resume: %w", err)
	}
	cp, err := checkpointText(msg)
	if err != nil {
		return fmt.Errorf("audit: resume: %s: %w", path, err)
	}
	hint := fmt.Sprintf("check the chain with replay verify --key, and to start anyway move %s aside (keep it as evidence)", path)
	switch {
	case cp.Size > s.seq:
		return fmt.Errorf("%w: %s covers %d records but the chain in %s ends at record %d: records were removed, or the directory was restored from an older copy; %s",
			ErrTampered, path, cp.Size, s.cfg.Dir, s.seq, hint)
	case cp.Size == s.seq:
		if cp.Hash != s.prev {
			return fmt.Errorf("%w: record %d does not match %s: the chain was rewritten after the checkpoint; %s", ErrTampered, cp.Size, path, hint)
		}
	default:
		h, err := s.recordHash(cp.Size)
		if err != nil {
			return fmt.Errorf("%w: record %d of the checkpoint %s: %w; %s", ErrTampered, cp.Size, path, err, hint)
		}
		if h != cp.Hash {
			return fmt.Errorf("%w: record %d does not match %s: the chain was rewritten after the checkpoint; %s", ErrTampered, cp.Size, path, hint)
		}
	}
	if cp.Origin == s.origin {
		s.cpSize = cp.Size
		s.cpLast = SignedCheckpoint{Checkpoint: cp, Note: msg}
	}
	return nil
}

// recordHash finds record seq in the chain's files and returns its hash,
// checked against its content. It reads at most the one file whose name
// says it holds seq.
func (s *FileSink) recordHash(seq uint64) (string, error) {
	names, err := chainFiles(s.cfg.Dir, s.cfg.Prefix)
	if err != nil {
		return "", err
	}
	file := ""
	for _, n := range names {
		first, err := strconv.ParseUint(n[len(s.cfg.Prefix)+1:len(s.cfg.Prefix)+21], 10, 64)
		if err == nil && first <= seq {
			file = n
		}
	}
	if file == "" {
		return "", errors.New("no file holds it")
	}
	f, err := os.Open(filepath.Join(s.cfg.Dir, file))
	if err != nil {
		return "", err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, rerr := readLine(br, 2*s.cfg.MaxRecordBytes+4096)
		if len(line) > 0 {
			rec, sum, err := s.hasher.Parse(line)
			if err == nil && rec.Seq == seq {
				if sum != rec.Hash {
					return "", fmt.Errorf("%s holds it altered", file)
				}
				return rec.Hash, nil
			}
		}
		if rerr == io.EOF {
			return "", fmt.Errorf("%s does not hold it", file)
		}
		if rerr != nil {
			return "", rerr
		}
	}
}

// checkpointExporter hands checkpoints to a CheckpointWriter from one
// goroutine, newest first: a checkpoint offered while a call runs
// replaces any older one not yet delivered.
type checkpointExporter struct {
	w    CheckpointWriter
	log  *slog.Logger
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending *SignedCheckpoint
	err     error // of the newest attempt
	failed  uint64
}

func newCheckpointExporter(w CheckpointWriter, log *slog.Logger) *checkpointExporter {
	x := &checkpointExporter{w: w, log: log, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go x.run()
	return x
}

func (x *checkpointExporter) offer(sc SignedCheckpoint) {
	x.mu.Lock()
	x.pending = &sc
	x.mu.Unlock()
	select {
	case x.wake <- struct{}{}:
	default:
	}
}

func (x *checkpointExporter) run() {
	defer close(x.done)
	for {
		select {
		case <-x.wake:
			x.deliver()
		case <-x.stop:
			x.deliver()
			return
		}
	}
}

func (x *checkpointExporter) deliver() {
	x.mu.Lock()
	sc := x.pending
	x.pending = nil
	x.mu.Unlock()
	if sc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), CheckpointWriteTimeout)
	err := x.w.WriteCheckpoint(ctx, *sc)
	cancel()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.err = err
	if err != nil {
		x.failed++
		if x.pending == nil {
			x.pending = sc // retried with the next checkpoint
		}
		if x.log != nil {
			x.log.Error("audit: checkpoint writer failed", "records", sc.Size, "err", err)
		}
	}
}

func (x *checkpointExporter) failures() uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.failed
}

// close delivers what is pending and returns the error of the newest
// attempt.
func (x *checkpointExporter) close() error {
	close(x.stop)
	<-x.done
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		return fmt.Errorf("audit: checkpoint writer: %w", x.err)
	}
	return nil
}
