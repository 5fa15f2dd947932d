package audit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
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
	s.cpCovered, s.cpNone = sc.Size, false
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

// ErrCheckpointMissing is wrapped by the error of NewFileSink, with a
// Signer, on a chain whose files show it was checkpointed (their headers
// say so) when Dir holds no checkpoint: the checkpoint file was removed,
// and with it the evidence of any records removed from the chain's end.
// Resuming would sign the chain as it is and hide that. See
// FileConfig.InsecureResumeWithoutCheckpoint. It wraps ErrTampered.
var ErrCheckpointMissing = fmt.Errorf("%w: the chain's checkpoint is missing", ErrTampered)

// checkResume compares the chain found in Dir with the newest checkpoint
// stored there, so that a sink never extends a chain that lost records
// its own checkpoint covers (extending it, then checkpointing, would
// replace the evidence). With a Signer it also reads the files' headers:
// a chain they show was checkpointed must still have its checkpoint, no
// older than the newest a header records. The note's signature is not
// checked here: the sink may hold a different key than the one that
// signed it, and a forged note can only keep the sink from starting.
func (s *FileSink) checkResume() error {
	n, found, err := ReadDirCheckpoint(s.cfg.Dir, s.cfg.Prefix)
	if err != nil {
		return err
	}
	var hs chainHeaders
	if s.cfg.Signer != nil && s.seq > 0 {
		if hs, err = readHeaders(s.cfg.Dir, s.cfg.Prefix, s.hasher); err != nil {
			return fmt.Errorf("audit: resume: %w", err)
		}
	}
	path := n.Source
	if !found {
		s.cpNone = true
		if hs.marked == "" {
			// A new chain, or one written without checkpoints until
			// now: the first checkpoint covers it as it is.
			return nil
		}
		if !s.cfg.InsecureResumeWithoutCheckpoint {
			return fmt.Errorf("%w: %s holds %d records and the header of %s shows they were checkpointed, but there is no %s: it was removed, and with it the evidence of records removed from the chain's end; check the chain with replay verify --key against a checkpoint kept elsewhere, then set FileConfig.InsecureResumeWithoutCheckpoint for one start, or move %s aside (keep it as evidence) to start a new chain",
				ErrCheckpointMissing, s.cfg.Dir, s.seq, hs.marked, CheckpointFileName(s.cfg.Prefix), s.cfg.Dir)
		}
		s.unchecked = true
		if s.cfg.Logger != nil {
			s.cfg.Logger.Warn("audit: resuming a checkpointed chain without its checkpoint (FileConfig.InsecureResumeWithoutCheckpoint)",
				"dir", s.cfg.Dir, "records", s.seq, "checkpointed", hs.marked)
		}
		return nil
	}
	cp, err := checkpointText(n.Note)
	if err != nil {
		return fmt.Errorf("audit: resume: %s: %w", path, err)
	}
	hint := fmt.Sprintf("check the chain with replay verify --key; to start anyway, move %s aside (keep it as evidence) and set FileConfig.InsecureResumeWithoutCheckpoint for one start", path)
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
	if cp.Size < hs.covered {
		return fmt.Errorf("%w: %s covers %d records, but when %s was created a checkpoint covered %d: the checkpoint was replaced by an older one, and records after it may have been removed; %s",
			ErrTampered, path, cp.Size, hs.coveredIn, hs.covered, hint)
	}
	s.cpCovered = cp.Size
	if cp.Origin == s.origin {
		s.cpSize = cp.Size
		s.cpLast = SignedCheckpoint{Checkpoint: cp, Note: n.Note}
	}
	return nil
}

// chainHeaders is what the headers of a chain's files say about its
// checkpoints.
type chainHeaders struct {
	marked    string // the newest file whose header says it is checkpointed
	covered   uint64 // the most records a header says a checkpoint covered
	coveredIn string // the file whose header says so
}

// readHeaders reads the header of every file of the chain: one bounded
// read of each file's first line. A header that does not parse is
// skipped (Verify reports it); one whose hash does not match still
// counts, since it can only have gained its marker by an edit.
func readHeaders(dir, prefix string, h *chain.Hasher) (chainHeaders, error) {
	var hs chainHeaders
	names, err := chainFiles(dir, prefix)
	if err != nil {
		return hs, err
	}
	for _, name := range names {
		rec, ok, err := firstRecord(filepath.Join(dir, name), h)
		if err != nil {
			return hs, err
		}
		if !ok || rec.File == nil || rec.File.Checkpointed == nil {
			continue
		}
		hs.marked = name
		if c := *rec.File.Checkpointed; c > hs.covered {
			hs.covered, hs.coveredIn = c, name
		}
	}
	return hs, nil
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
