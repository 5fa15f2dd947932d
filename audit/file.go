package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// Defaults of FileConfig.
const (
	DefaultMaxFileBytes   = 64 << 20
	DefaultBufferBytes    = 256 << 10
	DefaultMaxRecordBytes = 1 << 20
	// DefaultCheckpointInterval is FileConfig.CheckpointInterval's default.
	DefaultCheckpointInterval = time.Minute
)

// FileConfig configures a FileSink. The zero value of every optional field
// is the safe choice: synchronous writes, no loss on acknowledgement.
type FileConfig struct {
	// Dir holds the chain's files; it is created (0700) if missing.
	// Required. One Dir is one chain: give each replica its own.
	Dir string
	// Prefix starts every file name; default "audit". It must match
	// [A-Za-z0-9_-]{1,64}.
	Prefix string
	// MaxBytes rotates to a new file before a record would make the
	// current one larger; default DefaultMaxFileBytes. A file always
	// takes at least its header and one event.
	MaxBytes int64
	// MaxAge rotates a file at the first write after it is this old; zero
	// means files are rotated by size only.
	MaxAge time.Duration
	// Sync calls fsync after every batch of records (and on the directory
	// after creating a file), so that an acknowledged event survives a
	// power loss, not only a process crash.
	Sync bool
	// FlushInterval selects buffered mode when positive: Write returns as
	// soon as the event is queued in memory, and queued events are written
	// when BufferBytes accumulate, at least every FlushInterval, on Flush
	// and on Close. An event acknowledged in buffered mode is lost if the
	// process dies before the next flush; a failed flush is reported by
	// the next Write, Flush or Close and counted in Stats. Zero (the
	// default) is synchronous: Write returns once its record was written
	// (and synced with Sync); concurrent writers share one write (group
	// commit).
	FlushInterval time.Duration
	// BufferBytes bounds the bytes queued in buffered mode before a
	// writer flushes them itself; default DefaultBufferBytes. Writers wait
	// while a flush runs and twice this much is queued.
	BufferBytes int
	// MaxRecordBytes bounds one encoded event; a larger one is refused
	// with ErrTooLarge. Default DefaultMaxRecordBytes.
	MaxRecordBytes int
	// Key, if set, makes the chain use HMAC-SHA256 with this key instead
	// of SHA-256: then only a holder of the key can extend or rewrite the
	// chain undetected, and Verify needs the key (VerifyConfig.Key).
	Key []byte
	// Signer, if set, makes the sink write signed checkpoints (see
	// Checkpoint and the package documentation): every
	// CheckpointInterval while the chain grows, before every rotation,
	// and in Close, each into the file CheckpointFileName(Prefix) in Dir
	// (replaced atomically) and then to CheckpointWriter. LoadSigner reads
	// one from a key file; nothing here ever writes or logs the key.
	Signer note.Signer
	// CheckpointOrigin names the chain in its checkpoints; default
	// "<Signer.Name()>/<Prefix>". Chains whose checkpoints end up in one
	// store (a CheckpointWriter shared by replicas) need distinct
	// origins: give each replica its own key name, or set this.
	CheckpointOrigin string
	// CheckpointInterval is how often a checkpoint is written while new
	// records arrive; default DefaultCheckpointInterval. Records written
	// since the last checkpoint are not covered by any signature.
	CheckpointInterval time.Duration
	// CheckpointWriter, if set, also receives every checkpoint, after it
	// is stored in Dir: keep the newest one where the writer of Dir
	// cannot change it (pgsink.CheckpointStore), since only that copy
	// exposes a directory rolled back as a whole.
	CheckpointWriter CheckpointWriter
	// SkipCheckpointSync skips the fsyncs of a checkpoint: of the chain
	// file before signing, and of the checkpoint file and Dir after. By
	// default a checkpoint never covers a record a power loss could take
	// back; without them a power loss can leave a checkpoint ahead of the
	// files, which Verify then reports as truncation, or behind their
	// headers, which the next NewFileSink refuses as a rollback.
	SkipCheckpointSync bool
	// InsecureResumeWithoutCheckpoint lets a sink with a Signer resume a
	// chain whose files show it was checkpointed although Dir holds no
	// checkpoint, which NewFileSink otherwise refuses with
	// ErrCheckpointMissing: the checkpoint file was the only evidence in
	// Dir of records removed from the chain's end, and the sink's next
	// checkpoint signs the chain as it finds it. The first file the sink
	// writes then says so in its header, and Verify with verifier keys
	// reports it. Set it for one start, when the checkpoint was lost for a
	// known reason and the chain verified against a checkpoint kept
	// elsewhere; it MUST NOT stay set: while it is, removing the newest
	// records together with the checkpoint file again goes unnoticed when
	// the sink restarts.
	InsecureResumeWithoutCheckpoint bool
	// Now is the clock (file names, headers and MaxAge); nil means
	// time.Now.
	Now func() time.Time
	// Logger, if set, receives failures of background flushes and of
	// checkpoints.
	Logger *slog.Logger
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// FileSink writes events as JSON Lines into a SHA-256 hash chain that
// spans rotated files. The chain format is in the package documentation;
// Verify checks it. FileSink is a synchronous Sink unless
// FileConfig.FlushInterval is set. It is safe for concurrent use.
//
// A FileSink always starts a new file when opened: on an existing Dir it
// finds the last intact record of the newest file and links the new file
// to it, leaving older files untouched (a torn last line, the trace of a
// crash, stays where it is, and Verify reports it as truncated).
//
// With FileConfig.Signer it also writes signed checkpoints of the chain's
// end (see Checkpoint), so that Verify detects records removed from the
// end, and marks the header of every file it creates as checkpointed; it
// then refuses to resume a chain shorter than, or different from, the
// newest checkpoint in Dir, or one whose files show it was checkpointed
// when Dir holds no checkpoint (ErrCheckpointMissing) or an older one
// than their headers record.
type FileSink struct {
	cfg      FileConfig
	buffered bool

	mu       sync.Mutex
	cond     sync.Cond
	cur      *fileBatch
	flushing bool
	closed   bool
	broken   error
	bgErr    error // a failed buffered flush, reported once
	stop     chan struct{}
	bgDone   chan struct{}
	stats    FileStats
	origin   string        // of checkpoints
	cpStop   chan struct{} // stops checkpointLoop
	cpDone   chan struct{}
	export   *checkpointExporter // nil without CheckpointWriter

	// Owned by the flushing goroutine (flushing == true).
	hasher   *chain.Hasher
	f        *os.File
	name     string
	size     int64
	created  time.Time
	events   int // events in the current file
	seq      uint64
	prev     string
	prevFile string
	buf      []byte
	cpSize   uint64           // records the newest stored checkpoint covers
	cpLast   SignedCheckpoint // the newest stored checkpoint
	wrote    bool             // a batch was written: only then are checkpoints
	// cpCovered is the records covered by the newest checkpoint in Dir,
	// whatever its origin: what new file headers record.
	cpCovered uint64
	// cpNone: Dir holds no checkpoint yet; the first batch is followed
	// by one, so that a checkpointed chain soon has one.
	cpNone bool
	// unchecked: the sink resumed a checkpointed chain without its
	// checkpoint (InsecureResumeWithoutCheckpoint); the next header
	// written says so.
	unchecked bool
}

// FileStats counts what a FileSink did.
type FileStats struct {
	Events  uint64 // events written
	Batches uint64 // write calls
	Files   uint64 // files created
	Failed  uint64 // events whose batch failed
	// Checkpoints counts checkpoints stored in Dir, CheckpointFailures
	// those that could not be, CheckpointWriterFailures the calls of
	// FileConfig.CheckpointWriter that failed.
	Checkpoints              uint64
	CheckpointFailures       uint64
	CheckpointWriterFailures uint64
}

type fileBatch struct {
	events [][]byte
	bytes  int
	done   bool
	err    error
}

// NewFileSink validates cfg, resumes the chain found in cfg.Dir (or
// starts one) and returns the sink.
func NewFileSink(cfg FileConfig) (*FileSink, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: FileConfig.Dir is required")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "audit"
	}
	if !prefixRE.MatchString(cfg.Prefix) {
		return nil, fmt.Errorf("audit: FileConfig.Prefix %q must match %s", cfg.Prefix, prefixRE)
	}
	switch {
	case cfg.MaxBytes < 0:
		return nil, errors.New("audit: FileConfig.MaxBytes must not be negative")
	case cfg.MaxAge < 0:
		return nil, errors.New("audit: FileConfig.MaxAge must not be negative")
	case cfg.FlushInterval < 0:
		return nil, errors.New("audit: FileConfig.FlushInterval must not be negative")
	case cfg.BufferBytes < 0:
		return nil, errors.New("audit: FileConfig.BufferBytes must not be negative")
	case cfg.MaxRecordBytes < 0:
		return nil, errors.New("audit: FileConfig.MaxRecordBytes must not be negative")
	case cfg.CheckpointInterval < 0:
		return nil, errors.New("audit: FileConfig.CheckpointInterval must not be negative")
	case cfg.Signer == nil && (cfg.CheckpointWriter != nil || cfg.CheckpointOrigin != "" || cfg.CheckpointInterval != 0):
		return nil, errors.New("audit: FileConfig.CheckpointWriter, CheckpointOrigin and CheckpointInterval need FileConfig.Signer")
	}
	origin := cfg.CheckpointOrigin
	if cfg.Signer != nil {
		if origin == "" {
			origin = cfg.Signer.Name() + "/" + cfg.Prefix
		}
		if !validOrigin(origin) {
			return nil, fmt.Errorf("audit: FileConfig.CheckpointOrigin %q must be 1 to %d bytes of UTF-8 without control characters or surrounding space", origin, MaxOriginBytes)
		}
		if cfg.CheckpointInterval == 0 {
			cfg.CheckpointInterval = DefaultCheckpointInterval
		}
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxFileBytes
	}
	if cfg.BufferBytes == 0 {
		cfg.BufferBytes = DefaultBufferBytes
	}
	if cfg.MaxRecordBytes == 0 {
		cfg.MaxRecordBytes = DefaultMaxRecordBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Key = slices.Clone(cfg.Key)
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: FileConfig.Dir: %w", err)
	}
	s := &FileSink{
		cfg:      cfg,
		buffered: cfg.FlushInterval > 0,
		cur:      &fileBatch{},
		hasher:   chain.NewHasher(cfg.Key),
		prev:     chain.Genesis,
		origin:   origin,
	}
	s.cond.L = &s.mu
	if err := s.resume(); err != nil {
		return nil, err
	}
	if err := s.checkResume(); err != nil {
		return nil, err
	}
	if s.buffered {
		s.stop = make(chan struct{})
		s.bgDone = make(chan struct{})
		go s.background()
	}
	if cfg.Signer != nil {
		if cfg.CheckpointWriter != nil {
			s.export = newCheckpointExporter(cfg.CheckpointWriter, cfg.Logger)
		}
		s.cpStop = make(chan struct{})
		s.cpDone = make(chan struct{})
		go s.checkpointLoop()
	}
	return s, nil
}

// chainFiles lists the files of prefix in dir, oldest first.
func chainFiles(dir, prefix string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if rest, ok := strings.CutPrefix(n, prefix+"-"); ok && e.Type().IsRegular() &&
			strings.HasSuffix(n, ".jsonl") && len(rest) > 21 && rest[20] == '-' && allDigits(rest[:20]) {
			names = append(names, n)
		}
	}
	slices.Sort(names) // zero-padded first sequence numbers sort in chain order
	return names, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// resume finds the newest intact record in Dir.
func (s *FileSink) resume() error {
	names, err := chainFiles(s.cfg.Dir, s.cfg.Prefix)
	if err != nil {
		return fmt.Errorf("audit: FileConfig.Dir: %w", err)
	}
	for i := len(names) - 1; i >= 0; i-- {
		rec, ok, err := lastRecord(filepath.Join(s.cfg.Dir, names[i]), s.hasher, s.cfg.MaxRecordBytes)
		if err != nil {
			return err
		}
		if !ok {
			continue // empty file: created, never written
		}
		s.seq, s.prev, s.prevFile = rec.Seq, rec.Hash, names[i]
		return nil
	}
	return nil
}

// lastRecord returns the last intact record of a file, reading at most
// about two records' worth from its end. ok is false for an empty file; a
// non-empty file without an intact record there is an error: resuming
// would have to guess.
func lastRecord(path string, h *chain.Hasher, maxRecord int) (chain.Record, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return chain.Record{}, false, fmt.Errorf("audit: resume: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return chain.Record{}, false, fmt.Errorf("audit: resume: %w", err)
	}
	if fi.Size() == 0 {
		return chain.Record{}, false, nil
	}
	n := int64(2*maxRecord + 4096)
	off := max(fi.Size()-n, 0)
	b := make([]byte, fi.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && err != io.EOF {
		return chain.Record{}, false, fmt.Errorf("audit: resume: %w", err)
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if i == 0 && off > 0 {
			break // possibly a partial line
		}
		rec, sum, err := h.Parse([]byte(lines[i]))
		if err == nil && sum == rec.Hash {
			return rec, true, nil
		}
	}
	return chain.Record{}, false, fmt.Errorf("audit: resume: %s has no intact record near its end; verify the chain before writing to it", path)
}

// Write implements Sink. In synchronous mode it returns after the event's
// record was written (and synced with Sync); ctx is not consulted, since
// the write does not wait on anything but the disk.
func (s *FileSink) Write(_ context.Context, e *Event) error {
	data, err := Encode(e)
	if err != nil {
		return err
	}
	if len(data) > s.cfg.MaxRecordBytes {
		return fmt.Errorf("%w: event %s is %d bytes, FileConfig.MaxRecordBytes is %d", ErrTooLarge, e.ID, len(data), s.cfg.MaxRecordBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.buffered {
		for !s.closed && s.broken == nil && s.flushing && s.cur.bytes >= 2*s.cfg.BufferBytes {
			s.cond.Wait()
		}
	}
	if s.closed {
		return ErrClosed
	}
	if s.broken != nil {
		return s.broken
	}
	if s.bgErr != nil {
		err := s.bgErr
		s.bgErr = nil
		return err
	}
	b := s.cur
	b.events = append(b.events, data)
	b.bytes += len(data)
	if s.buffered {
		if b.bytes >= s.cfg.BufferBytes && !s.flushing {
			s.flushLocked()
			if b.err != nil {
				s.bgErr = nil // reported here
				return b.err
			}
		}
		return nil
	}
	for !b.done {
		if !s.flushing {
			s.flushLocked()
			continue
		}
		s.cond.Wait()
	}
	return b.err
}

// Flush writes every queued event and waits for it. It matters only in
// buffered mode; it returns the error of a failed flush not yet reported.
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushAllLocked()
}

func (s *FileSink) flushAllLocked() error {
	b := s.cur
	for len(b.events) > 0 && !b.done {
		if !s.flushing {
			s.flushLocked()
			continue
		}
		s.cond.Wait()
	}
	for s.flushing {
		s.cond.Wait()
	}
	err := s.bgErr
	s.bgErr = nil
	if err == nil && len(b.events) > 0 {
		err = b.err
	}
	return err
}

// flushLocked writes the current batch. It is called with s.mu held and
// s.flushing false; it releases the lock during I/O.
func (s *FileSink) flushLocked() {
	b := s.cur
	s.cur = &fileBatch{}
	s.flushing = true
	s.mu.Unlock()
	err := s.writeBatch(b.events)
	s.mu.Lock()
	s.flushing = false
	b.done, b.err = true, err
	s.stats.Batches++
	if err != nil {
		s.stats.Failed += uint64(len(b.events))
		if errors.Is(err, ErrBroken) {
			s.broken = err
		}
		if s.buffered {
			s.bgErr = err
			if s.cfg.Logger != nil {
				s.cfg.Logger.Error("audit: file sink flush failed", "events", len(b.events), "err", err)
			}
		}
	} else {
		s.stats.Events += uint64(len(b.events))
	}
	s.cond.Broadcast()
}

// writeBatch appends the records of events to the chain. On an I/O error
// it rolls the current file back to its last good size and the chain
// back to its last written record; if that fails the sink is broken.
func (s *FileSink) writeBatch(events [][]byte) error {
	// Committed state: what is on disk.
	cSeq, cPrev, cPrevFile := s.seq, s.prev, s.prevFile
	s.wrote = s.wrote || len(events) > 0
	fresh := false
	uncheckedIn := false // buf holds the header that says s.unchecked
	buf := s.buf[:0]
	defer func() { s.buf = buf[:0] }()
	fail := func(err error) error {
		s.seq, s.prev, s.prevFile = cSeq, cPrev, cPrevFile
		if s.f == nil {
			return err
		}
		if fresh {
			name := s.f.Name()
			s.f.Close()
			s.f = nil
			if rmErr := os.Remove(name); rmErr != nil {
				return fmt.Errorf("%w: %w (and removing %s failed: %w)", ErrBroken, err, name, rmErr)
			}
			return err
		}
		if trErr := s.f.Truncate(s.size); trErr != nil {
			return fmt.Errorf("%w: %w (and rolling %s back failed: %w)", ErrBroken, err, s.name, trErr)
		}
		return err
	}
	write := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := s.f.Write(buf); err != nil {
			return err
		}
		if s.cfg.Sync {
			if err := s.f.Sync(); err != nil {
				return err
			}
		}
		s.size += int64(len(buf))
		cSeq, cPrev, cPrevFile = s.seq, s.prev, s.prevFile
		fresh = false
		if uncheckedIn {
			s.unchecked, uncheckedIn = false, false
		}
		buf = buf[:0]
		return nil
	}
	now := s.cfg.Now()
	for _, ev := range events {
		need := int64(len(buf) + len(ev) + 200)
		if s.f == nil || (s.events > 0 && (s.size+need > s.cfg.MaxBytes ||
			s.cfg.MaxAge > 0 && now.Sub(s.created) >= s.cfg.MaxAge)) {
			if err := write(); err != nil {
				return fail(fmt.Errorf("audit: write %s: %w", s.name, err))
			}
			// Every file's end is checkpointed. A failed checkpoint is
			// counted and logged; it never fails the events.
			s.checkpoint()
			if err := s.rotate(now); err != nil {
				return fail(err)
			}
			fresh = true
			h := chain.Header{Format: chain.Format, Name: s.name, PrevFile: s.prevFile, Created: s.created.UTC().Format(time.RFC3339Nano)}
			if s.cfg.Signer != nil {
				covered := s.cpCovered
				h.Checkpointed = &covered
				h.ResumedWithoutCheckpoint = s.unchecked
				uncheckedIn = s.unchecked
			}
			hdr, _ := json.Marshal(h)
			s.seq++
			buf, s.prev = s.hasher.Append(buf, s.seq, s.prev, "file", hdr)
			s.prevFile = s.name
		}
		s.seq++
		buf, s.prev = s.hasher.Append(buf, s.seq, s.prev, "event", ev)
		s.events++
	}
	if err := write(); err != nil {
		return fail(fmt.Errorf("audit: write %s: %w", s.name, err))
	}
	if s.cpNone {
		// The chain's first checkpoint follows its first records at
		// once: a checkpointed chain without one is refused on resume.
		s.checkpoint()
	}
	return nil
}

// rotate closes the current file and creates the next one.
func (s *FileSink) rotate(now time.Time) error {
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			s.f = nil
			return fmt.Errorf("audit: close %s: %w", s.name, err)
		}
		s.f = nil
	}
	name := fmt.Sprintf("%s-%020d-%s.jsonl", s.cfg.Prefix, s.seq+1, now.UTC().Format("20060102T150405Z"))
	f, err := os.OpenFile(filepath.Join(s.cfg.Dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: create %s: %w", name, err)
	}
	if s.cfg.Sync {
		if d, err := os.Open(s.cfg.Dir); err == nil {
			err = d.Sync()
			d.Close()
			if err != nil {
				f.Close()
				os.Remove(f.Name())
				return fmt.Errorf("audit: sync %s: %w", s.cfg.Dir, err)
			}
		}
	}
	s.f, s.name, s.size, s.created, s.events = f, name, 0, now, 0
	s.stats.Files++ // read under s.mu only after the flush ends
	return nil
}

func (s *FileSink) background() {
	defer close(s.bgDone)
	t := time.NewTicker(s.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			if !s.flushing && len(s.cur.events) > 0 {
				s.flushLocked()
			}
			s.mu.Unlock()
		}
	}
}

// Head returns the position of the last written record: publish it
// somewhere the writer of these files cannot change (another sink, a
// ticket, a signed message) and pass it to VerifyConfig.Head to detect
// records removed from the end of the newest file. FileConfig.Signer does
// this with signed checkpoints.
func (s *FileSink) Head() Anchor {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing {
		s.cond.Wait()
	}
	return Anchor{Seq: s.seq, Hash: s.prev}
}

// Stats returns counters of the sink's work so far.
func (s *FileSink) Stats() FileStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing {
		s.cond.Wait()
	}
	st := s.stats
	if s.export != nil {
		st.CheckpointWriterFailures = s.export.failures()
	}
	return st
}

// Close writes what is queued, writes a final checkpoint (with a
// Signer), closes the current file, stops the background work and hands
// the final checkpoint to the CheckpointWriter, waiting for it at most
// CheckpointWriteTimeout. Later Writes return ErrClosed.
func (s *FileSink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.flushAllLocked()
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.bgDone
	}
	if s.cpStop != nil {
		close(s.cpStop)
		<-s.cpDone
	}
	s.mu.Lock()
	if s.cfg.Signer != nil && s.broken == nil {
		if cerr := s.checkpointLocked(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}
	for s.flushing {
		s.cond.Wait()
	}
	if s.f != nil {
		if cerr := s.f.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("audit: close %s: %w", s.name, cerr))
		}
		s.f = nil
	}
	s.mu.Unlock()
	if s.export != nil {
		if xerr := s.export.close(); xerr != nil {
			err = errors.Join(err, xerr)
		}
	}
	return err
}
