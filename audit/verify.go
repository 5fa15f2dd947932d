package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// Anchor is a position in a chain: a record's sequence number and hash.
type Anchor struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// ProblemKind classifies what Verify found wrong.
type ProblemKind string

// The kinds of problems.
const (
	// Altered: a record's content does not match its hash, or its prev
	// does not match the hash of the record before it (which was then
	// rewritten with a recomputed hash, or replaced).
	Altered ProblemKind = "altered"
	// Missing: sequence numbers are skipped: records, or whole files, were
	// removed.
	Missing ProblemKind = "missing"
	// Reordered: a record appears after records that follow it in the
	// chain, or appears twice.
	Reordered ProblemKind = "reordered"
	// Truncated: the last line of a file is incomplete (an interrupted
	// write, or a cut file), or the chain ends before VerifyConfig.Head.
	Truncated ProblemKind = "truncated"
	// Malformed: a line is not a chain record at all.
	Malformed ProblemKind = "malformed"
	// BadCheckpoint: a checkpoint does not verify (malformed, a bad
	// signature, no known key, another origin), no checkpoint covers
	// the chain although VerifyConfig.Verifiers asks for one, or a file's
	// header says its sink resumed the chain without its checkpoint
	// (FileConfig.InsecureResumeWithoutCheckpoint).
	BadCheckpoint ProblemKind = "checkpoint"
	// Rollback: checkpoints go backwards: one covers fewer records than
	// an earlier one, or two cover the same number of records with
	// different heads. The chain was rolled back (and perhaps extended
	// again).
	Rollback ProblemKind = "rollback"
)

// Problem is one finding, located as precisely as the evidence allows.
type Problem struct {
	Kind ProblemKind `json:"kind"`
	File string      `json:"file,omitempty"` // path as given to Verify
	Line int         `json:"line,omitempty"` // 1-based; 0 when not about one line
	// Seq is the sequence number concerned: the record's own, or for
	// Missing the first missing one.
	Seq    uint64 `json:"seq,omitempty"`
	Detail string `json:"detail"`
}

func (p Problem) String() string {
	loc := p.File
	if p.Line > 0 {
		loc = fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	if loc == "" {
		return fmt.Sprintf("%s: %s", p.Kind, p.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", loc, p.Kind, p.Detail)
}

// FileSummary describes one verified file.
type FileSummary struct {
	Path     string `json:"path"`
	Records  int    `json:"records"`
	Events   int    `json:"events"`
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	// PrevFile is what the file's header names as the previous file.
	PrevFile string `json:"prev_file,omitempty"`
}

// Report is the result of Verify.
type Report struct {
	Files   []FileSummary `json:"files"`
	Records int           `json:"records"` // lines that parsed as records
	Events  int           `json:"events"`
	// Head is the last record of the chain as verified: compare it with
	// an anchor published elsewhere to detect removal of the newest
	// records (no chain can detect that on its own).
	Head Anchor `json:"head"`
	// Checkpoint is the newest valid checkpoint (the one covering the
	// most records) the chain was checked against; nil without
	// VerifyConfig.Verifiers or when none verified.
	Checkpoint *CheckpointInfo `json:"checkpoint,omitempty"`
	// Problems are in file order (files in chain order, then lines), at
	// most VerifyConfig.MaxProblems of them; Problems[0] is the first
	// place the chain went wrong. Problems with checkpoints themselves
	// come last.
	Problems []Problem `json:"problems,omitempty"`
	// MoreProblems counts problems found past MaxProblems.
	MoreProblems int `json:"more_problems,omitempty"`
}

// CheckpointInfo describes the checkpoint a chain was checked against.
type CheckpointInfo struct {
	Checkpoint
	Source  string   `json:"source"`
	Signers []string `json:"signers"`
	// After counts the chain's records after the checkpoint: records no
	// signature covers yet, which could be removed undetected.
	After uint64 `json:"after"`
}

// OK reports whether the chain verified without any problem.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

// Err returns nil for an intact chain, else an error wrapping ErrTampered
// that describes the first problem.
func (r *Report) Err() error {
	if r.OK() {
		return nil
	}
	n := len(r.Problems) + r.MoreProblems
	return fmt.Errorf("%w: %s (%d problem(s))", ErrTampered, r.Problems[0], n)
}

// ErrTampered is wrapped by Report.Err.
var ErrTampered = errors.New("audit: chain verification failed")

// Defaults of VerifyConfig.
const (
	DefaultMaxLine     = 16 << 20
	DefaultMaxProblems = 100
)

// VerifyConfig adjusts Verify.
type VerifyConfig struct {
	// Key is the chain's HMAC key (FileConfig.Key), if it has one.
	Key []byte
	// Head, if set, is an anchor the chain must reach: a Head with a
	// larger Seq than the chain's last record reports Truncated, one whose
	// hash differs from the record at Head.Seq reports Altered.
	Head *Anchor
	// Verifiers are the keys checkpoints must be signed with (see
	// LoadVerifiers). With at least one, Verify checks the chain against
	// every checkpoint in Checkpoints (and VerifyDir against the one in
	// the directory too): a chain shorter than a checkpoint reports
	// Truncated, a record that differs from the head a checkpoint signed
	// reports Altered, a checkpoint that does not verify reports
	// BadCheckpoint, checkpoints going backwards report Rollback, and a
	// chain no checkpoint covers, or one resumed without its checkpoint
	// (a file header says so), reports BadCheckpoint. Without Verifiers,
	// checkpoints are not read at all.
	Verifiers []note.Verifier
	// Checkpoints are signed checkpoints, oldest first: those kept
	// outside the directory (pgsink.CheckpointStore, a copy the auditor
	// holds) and, from VerifyDir, the directory's own, which comes last.
	// Only a checkpoint kept where the writer of the files cannot reach
	// exposes a directory rolled back as a whole.
	Checkpoints []CheckpointNote
	// Origin, if set, is the origin every checkpoint must name.
	Origin string
	// MaxLine bounds one line; longer lines are Malformed. Default
	// DefaultMaxLine.
	MaxLine int
	// MaxProblems bounds the problems kept; default DefaultMaxProblems.
	MaxProblems int
}

// Verify checks a chain written by FileSink: every file of it, in any
// order (they are sorted by the sequence number of their first record).
// The chain must start at its genesis record. The error is only for files
// that cannot be read; what is wrong with the chain is in the Report.
func Verify(files ...string) (Report, error) { return VerifyConfig{}.Verify(files...) }

// Verify is Verify with c's settings.
func (c VerifyConfig) Verify(files ...string) (Report, error) {
	if len(files) == 0 {
		return Report{}, errors.New("audit: verify: no files given")
	}
	v := newVerifier(c)
	v.checkpoints(c.Checkpoints)
	for _, path := range chainOrder(files, v.h) {
		f, err := os.Open(path)
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify: %w", err)
		}
		err = v.file(path, f)
		f.Close()
		if err != nil {
			return Report{}, fmt.Errorf("audit: verify %s: %w", path, err)
		}
	}
	return v.finish(), nil
}

// chainOrder sorts files by the sequence number of their first record;
// files without a readable first record go last, in the order given.
func chainOrder(files []string, h *chain.Hasher) []string {
	type ordered struct {
		path  string
		first uint64
		known bool
	}
	fs := make([]ordered, 0, len(files))
	for _, p := range files {
		o := ordered{path: p}
		o.first, o.known = firstSeq(p, h)
		fs = append(fs, o)
	}
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.known != b.known {
			return a.known
		}
		return a.known && a.first < b.first
	})
	out := make([]string, len(fs))
	for i, o := range fs {
		out[i] = o.path
	}
	return out
}

// firstSeq reads the sequence number of a file's first record.
func firstSeq(path string, h *chain.Hasher) (uint64, bool) {
	rec, ok, _ := firstRecord(path, h)
	return rec.Seq, ok
}

// firstRecord reads a file's first record, the first 64 KiB at most; ok
// is false when they hold no complete record. The error is for a file
// that cannot be read.
func firstRecord(path string, h *chain.Hasher) (chain.Record, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return chain.Record{}, false, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(io.LimitReader(f, 64<<10), 64<<10).ReadSlice('\n')
	if err == io.EOF || err == bufio.ErrBufferFull {
		return chain.Record{}, false, nil
	}
	if err != nil {
		return chain.Record{}, false, err
	}
	rec, _, err := h.Parse(bytes.TrimSuffix(line, []byte("\n")))
	if err != nil {
		return chain.Record{}, false, nil
	}
	return rec, true, nil
}

// window is how many records ahead of a gap the verifier holds before it
// declares the gap's records missing rather than reordered.
const window = 64

type pos struct {
	file string
	line int
	fi   int // index of the file in the report
}

type vrec struct {
	seq        uint64
	prev, hash string
	at         pos
}

type verifier struct {
	cfg     VerifyConfig
	h       *chain.Hasher
	rep     Report
	probs   []problemAt
	next    uint64 // expected sequence number
	prev    string // hash of the last accepted record
	last    pos
	gap     bool // the last accepted record followed a gap
	ahead   map[uint64]vrec
	dropped int // problems not kept
	cps     []vcheckpoint
	cpAt    map[uint64][]int // checkpoint size -> indices into cps
	cpNotes int              // checkpoints given
	marked  string           // a file whose header says the chain is checkpointed
}

// vcheckpoint is a checkpoint that verified.
type vcheckpoint struct {
	src string
	SignedCheckpoint
}

// cpPos is where problems with the checkpoints themselves sort: after
// every file.
const cpPos = 1 << 30

type problemAt struct {
	Problem
	fi, line int
	order    int
}

func newVerifier(c VerifyConfig) *verifier {
	if c.MaxLine <= 0 {
		c.MaxLine = DefaultMaxLine
	}
	if c.MaxProblems <= 0 {
		c.MaxProblems = DefaultMaxProblems
	}
	return &verifier{cfg: c, h: chain.NewHasher(c.Key), next: 1, prev: chain.Genesis, ahead: map[uint64]vrec{}}
}

func (v *verifier) problem(at pos, kind ProblemKind, seq uint64, format string, args ...any) {
	if len(v.probs) >= v.cfg.MaxProblems+4*window {
		v.dropped++ // bounded memory; problems are found almost in file order
		return
	}
	v.probs = append(v.probs, problemAt{
		Problem: Problem{Kind: kind, File: at.file, Line: at.line, Seq: seq, Detail: fmt.Sprintf(format, args...)},
		fi:      at.fi, line: at.line, order: len(v.probs),
	})
}

// file verifies the records of one file, read from r.
func (v *verifier) file(name string, r io.Reader) error {
	fi := len(v.rep.Files)
	v.rep.Files = append(v.rep.Files, FileSummary{Path: name})
	sum := &v.rep.Files[fi]
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A line longer than the buffer: gather it, bounded.
			long = append(long[:0], line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				if len(long) <= v.cfg.MaxLine {
					long = append(long, line...)
				}
			}
			line = long
		}
		if err != nil && err != io.EOF {
			return err
		}
		if len(line) == 0 && err == io.EOF {
			return nil
		}
		at := pos{file: name, line: n, fi: fi}
		complete := bytes.HasSuffix(line, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\n"))
		switch {
		case len(line) > v.cfg.MaxLine:
			v.problem(at, Malformed, 0, "line of %d bytes or more exceeds the %d-byte bound", len(line), v.cfg.MaxLine)
		default:
			v.line(at, line, complete, sum)
		}
		if err == io.EOF {
			return nil
		}
	}
}

func (v *verifier) line(at pos, line []byte, complete bool, sum *FileSummary) {
	rec, got, err := v.h.Parse(line)
	if err != nil {
		if !complete {
			v.problem(at, Truncated, 0, "the file ends in the middle of a record (%d bytes without a newline)", len(line))
		} else {
			v.problem(at, Malformed, 0, "%v", err)
		}
		return
	}
	if !complete {
		v.problem(at, Truncated, rec.Seq, "the file's last record lacks its newline")
	}
	if got != rec.Hash {
		v.problem(at, Altered, rec.Seq, "content does not match the record's hash")
	}
	v.rep.Records++
	sum.Records++
	if rec.Event != nil {
		v.rep.Events++
		sum.Events++
	}
	if sum.FirstSeq == 0 {
		sum.FirstSeq = rec.Seq
		if rec.File != nil {
			sum.PrevFile = rec.File.PrevFile
		}
	}
	sum.LastSeq = rec.Seq
	if rec.File != nil {
		v.header(at, rec.Seq, rec.File)
	}
	v.record(vrec{seq: rec.Seq, prev: rec.Prev, hash: rec.Hash, at: at})
}

// record places one parsed record in the chain.
func (v *verifier) record(r vrec) {
	switch {
	case r.seq == v.next:
		if len(v.ahead) > 0 {
			first := v.firstAhead()
			v.problem(r.at, Reordered, r.seq, "record %d comes after record %d (%s:%d)", r.seq, first.seq, first.at.file, first.at.line)
		}
		v.accept(r)
		v.drain()
	case r.seq > v.next:
		if _, dup := v.ahead[r.seq]; dup {
			v.problem(r.at, Reordered, r.seq, "record %d appears twice", r.seq)
			return
		}
		v.ahead[r.seq] = r
		if len(v.ahead) > window {
			v.skipGap()
		}
	default:
		v.problem(r.at, Reordered, r.seq, "record %d comes after record %d: duplicated or out of order", r.seq, v.next-1)
	}
}

func (v *verifier) firstAhead() vrec {
	var first vrec
	for _, a := range v.ahead {
		if first.seq == 0 || a.at.fi < first.at.fi || a.at.fi == first.at.fi && a.at.line < first.at.line {
			first = a
		}
	}
	return first
}

func (v *verifier) accept(r vrec) {
	if r.prev != v.prev && !v.gap {
		if r.seq == 1 {
			v.problem(r.at, Altered, r.seq, "the first record's prev is not the genesis value")
		} else {
			v.problem(r.at, Altered, r.seq, "prev does not match the hash of record %d (%s:%d): that record was rewritten or replaced", r.seq-1, v.last.file, v.last.line)
		}
	}
	if h := v.cfg.Head; h != nil && h.Seq == r.seq && h.Hash != r.hash {
		v.problem(r.at, Altered, r.seq, "record %d's hash differs from the anchor's", r.seq)
	}
	for _, i := range v.cpAt[r.seq] {
		if c := v.cps[i]; c.Hash != r.hash {
			v.problem(r.at, Altered, r.seq, "record %d differs from the head that checkpoint %s (signed by %s) covers: the chain was rewritten or replaced after it was signed",
				r.seq, c.src, strings.Join(c.Signers, ", "))
		}
	}
	v.gap = false
	v.prev, v.next, v.last = r.hash, r.seq+1, r.at
	v.rep.Head = Anchor{Seq: r.seq, Hash: r.hash}
}

func (v *verifier) drain() {
	for {
		r, ok := v.ahead[v.next]
		if !ok {
			return
		}
		delete(v.ahead, v.next)
		v.accept(r)
	}
}

// skipGap declares the records before the lowest held-back one missing.
func (v *verifier) skipGap() {
	low := uint64(0)
	for s := range v.ahead {
		if low == 0 || s < low {
			low = s
		}
	}
	r := v.ahead[low]
	delete(v.ahead, low)
	if low-v.next == 1 {
		v.problem(r.at, Missing, v.next, "record %d is missing before record %d", v.next, low)
	} else {
		v.problem(r.at, Missing, v.next, "records %d to %d are missing before record %d", v.next, low-1, low)
	}
	v.gap = true
	v.accept(r)
	v.drain()
}

func (v *verifier) finish() Report {
	for len(v.ahead) > 0 {
		v.skipGap()
	}
	if h := v.cfg.Head; h != nil && h.Seq > v.rep.Head.Seq {
		at := v.last
		v.problem(at, Truncated, v.rep.Head.Seq+1, "the chain ends at record %d but the anchor is at record %d: records were removed from the end", v.rep.Head.Seq, h.Seq)
	}
	v.finishCheckpoints()
	slices.SortStableFunc(v.probs, func(a, b problemAt) int {
		switch {
		case a.fi != b.fi:
			return a.fi - b.fi
		case a.line != b.line:
			return a.line - b.line
		}
		return a.order - b.order
	})
	for i, p := range v.probs {
		if i >= v.cfg.MaxProblems {
			v.rep.MoreProblems = len(v.probs) - i
			break
		}
		v.rep.Problems = append(v.rep.Problems, p.Problem)
	}
	v.rep.MoreProblems += v.dropped
	if v.rep.Files == nil {
		v.rep.Files = []FileSummary{}
	}
	return v.rep
}

// VerifyDir verifies every chain file of prefix ("" means "audit") in dir.
// With c.Verifiers it also checks the chain against the directory's
// checkpoint file (CheckpointFileName), after c.Checkpoints.
func VerifyDir(dir, prefix string, c VerifyConfig) (Report, error) {
	if prefix == "" {
		prefix = "audit"
	}
	names, err := chainFiles(dir, prefix)
	if err != nil {
		return Report{}, fmt.Errorf("audit: verify: %w", err)
	}
	if len(names) == 0 {
		return Report{}, fmt.Errorf("audit: verify: no %s-*.jsonl files in %s", prefix, dir)
	}
	for i, n := range names {
		names[i] = filepath.Join(dir, n)
	}
	if len(c.Verifiers) > 0 {
		cn, ok, err := ReadDirCheckpoint(dir, prefix)
		if err != nil {
			return Report{}, err
		}
		if ok {
			c.Checkpoints = append(slices.Clip(c.Checkpoints), cn)
		}
	}
	return c.Verify(names...)
}

// ReadEvents returns the events of chain files, in chain order (files are
// sorted as Verify sorts them). It does not verify anything: run Verify
// for that. Lines that are not event records are skipped.
func ReadEvents(files ...string) ([]Event, error) {
	var out []Event
	for _, path := range chainOrder(files, chain.NewHasher(nil)) {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("audit: read events: %w", err)
		}
		br := bufio.NewReaderSize(f, 64<<10)
		for {
			line, err := readLine(br, DefaultMaxLine)
			if len(line) > 0 {
				var rec struct {
					Event json.RawMessage `json:"event"`
				}
				if json.Unmarshal(line, &rec) == nil && len(rec.Event) > 0 && !bytes.Equal(rec.Event, []byte("null")) {
					var e Event
					if err := json.Unmarshal(rec.Event, &e); err == nil {
						out = append(out, e)
					}
				}
			}
			if err != nil {
				f.Close()
				if err != io.EOF {
					return nil, fmt.Errorf("audit: read events %s: %w", path, err)
				}
				break
			}
		}
	}
	return out, nil
}

// readLine reads one line without its newline; a line longer than max is
// returned empty (skipped).
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var long []byte
	tooLong := false
	for {
		part, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			if len(long)+len(part) > max {
				tooLong = true
			} else {
				long = append(long, part...)
			}
			continue
		}
		if tooLong || len(long)+len(part) > max {
			return nil, err
		}
		if long != nil {
			part = append(long, part...)
		}
		return bytes.TrimSuffix(part, []byte("\n")), err
	}
}
