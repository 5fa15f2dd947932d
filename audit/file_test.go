package audit_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// clock is an injectable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// writeChain writes n events into a new FileSink in dir and closes it.
func writeChain(t *testing.T, cfg audit.FileConfig, n int) []string {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = newClock().Now
	}
	s, err := audit.NewFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return chainFiles(t, cfg.Dir)
}

func chainFiles(t *testing.T, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func readLines(t *testing.T, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte("\n"))
}

func writeLines(t *testing.T, path string, lines [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRecordFormat checks one record byte for byte against the documented
// format, recomputing the hash with crypto/sha256 as a third party would.
func TestRecordFormat(t *testing.T) {
	dir := t.TempDir()
	files := writeChain(t, audit.FileConfig{Dir: dir}, 1)
	if len(files) != 1 || filepath.Base(files[0]) != "audit-00000000000000000001-20261125T220000Z.jsonl" {
		t.Fatalf("files = %v", files)
	}
	lines := readLines(t, files[0])
	if len(lines) != 3 || len(lines[2]) != 0 {
		t.Fatalf("want a header and one event, got %d lines", len(lines))
	}
	wantHeader := `{"seq":1,"prev":"0000000000000000000000000000000000000000000000000000000000000000","file":{"format":"gatehouse-audit-chain/1","name":"audit-00000000000000000001-20261125T220000Z.jsonl","created":"2026-11-25T22:00:00Z"},"hash":"`
	if !strings.HasPrefix(string(lines[0]), wantHeader) {
		t.Fatalf("header:\n got %s\nwant %s...", lines[0], wantHeader)
	}
	prev := ""
	for i, line := range lines[:2] {
		line = bytes.TrimSuffix(line, []byte("\n"))
		// hash = hex(SHA-256(line without `,"hash":"<64 hex>"` and with its closing brace))
		body := append(bytes.Clone(line[:len(line)-75]), '}')
		sum := sha256.Sum256(body)
		want := hex.EncodeToString(sum[:])
		var rec struct {
			Seq  uint64
			Prev string
			Hash string
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Hash != want || !bytes.HasSuffix(line, []byte(`,"hash":"`+want+`"}`)) {
			t.Fatalf("line %d: hash %s, want %s", i+1, rec.Hash, want)
		}
		if rec.Seq != uint64(i+1) || (i > 0 && rec.Prev != prev) {
			t.Fatalf("line %d: seq %d prev %s", i+1, rec.Seq, rec.Prev)
		}
		prev = rec.Hash
	}
	ev, _ := audit.Encode(audittest.NewEvent(0))
	wantEvent := fmt.Sprintf(`{"seq":2,"prev":"%s","event":%s,"hash":"`, prev[:0]+mustHash(t, lines[0]), ev)
	if !strings.HasPrefix(string(lines[1]), wantEvent) {
		t.Fatalf("event record:\n got %s\nwant %s...", lines[1], wantEvent)
	}
	golden := filepath.Join("testdata", "chain-golden.jsonl")
	got := bytes.Join(lines, nil)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, got, 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("chain differs from %s (UPDATE_GOLDEN=1 after a deliberate format change bumps the format version):\n%s", golden, got)
	}
}

func mustHash(t *testing.T, line []byte) string {
	var rec struct{ Hash string }
	if err := json.Unmarshal(line, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Hash
}

// TestVerifyTamper alters a verified chain in every way the issue names
// and checks that Verify pinpoints the first damaged record.
func TestVerifyTamper(t *testing.T) {
	type loc struct {
		file, line int // indexes into the sorted chain files, 1-based line
	}
	tests := []struct {
		name     string
		tamper   func(t *testing.T, files []string) []string // returns the files to verify
		wantKind []audit.ProblemKind
		want     loc
	}{
		{
			name: "edit a byte",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[1])
				lines[4] = bytes.Replace(lines[4], []byte("agent-7"), []byte("agent-8"), 1)
				writeLines(t, files[1], lines)
				return files
			},
			wantKind: []audit.ProblemKind{audit.Altered}, want: loc{1, 5},
		},
		{
			name: "edit and recompute the hash",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[0])
				l := bytes.TrimSuffix(lines[3], []byte("\n"))
				l = bytes.Replace(l, []byte(`"status":204`), []byte(`"status":200`), 1)
				body := append(bytes.Clone(l[:len(l)-75]), '}')
				sum := sha256.Sum256(body)
				l = append(l[:len(l)-75], []byte(`,"hash":"`+hex.EncodeToString(sum[:])+`"}`+"\n")...)
				lines[3] = l
				writeLines(t, files[0], lines)
				return files
			},
			// The record itself is consistent; its successor's prev is not.
			wantKind: []audit.ProblemKind{audit.Altered}, want: loc{0, 5},
		},
		{
			name: "delete a line",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[1])
				writeLines(t, files[1], slices.Delete(lines, 3, 4))
				return files
			},
			wantKind: []audit.ProblemKind{audit.Missing}, want: loc{1, 4},
		},
		{
			name: "swap two lines",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[1])
				lines[2], lines[3] = lines[3], lines[2]
				writeLines(t, files[1], lines)
				return files
			},
			wantKind: []audit.ProblemKind{audit.Reordered}, want: loc{1, 4},
		},
		{
			name: "truncate in the middle of a record",
			tamper: func(t *testing.T, files []string) []string {
				last := files[len(files)-1]
				b, _ := os.ReadFile(last)
				os.WriteFile(last, b[:len(b)-40], 0o600)
				return files
			},
			wantKind: []audit.ProblemKind{audit.Truncated}, want: loc{-1, -1},
		},
		{
			name: "truncate a rotated file by whole records",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[0])
				writeLines(t, files[0], lines[:len(lines)-3])
				return files
			},
			wantKind: []audit.ProblemKind{audit.Missing}, want: loc{1, 1},
		},
		{
			name: "delete a whole rotated file",
			tamper: func(t *testing.T, files []string) []string {
				os.Remove(files[1])
				return slices.Delete(files, 1, 2)
			},
			wantKind: []audit.ProblemKind{audit.Missing}, want: loc{2, 1},
		},
		{
			name: "delete the first file",
			tamper: func(t *testing.T, files []string) []string {
				return files[1:]
			},
			wantKind: []audit.ProblemKind{audit.Missing}, want: loc{1, 1},
		},
		{
			name: "garbage line",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[0])
				lines = slices.Insert(lines, 2, []byte("not a record\n"))
				writeLines(t, files[0], lines)
				return files
			},
			wantKind: []audit.ProblemKind{audit.Malformed}, want: loc{0, 3},
		},
		{
			name: "duplicate a record",
			tamper: func(t *testing.T, files []string) []string {
				lines := readLines(t, files[2])
				lines = slices.Insert(lines, 3, lines[1])
				writeLines(t, files[2], lines)
				return files
			},
			wantKind: []audit.ProblemKind{audit.Reordered}, want: loc{2, 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			files := writeChain(t, audit.FileConfig{Dir: dir, MaxBytes: 12 << 10}, 30)
			if len(files) < 3 {
				t.Fatalf("want at least 3 rotated files, got %d", len(files))
			}
			rep, err := audit.Verify(files...)
			if err != nil || !rep.OK() || rep.Events != 30 || rep.Records != 30+len(files) {
				t.Fatalf("untouched chain: %+v, %v", rep, err)
			}
			verifyFiles := slices.Clone(tt.tamper(t, slices.Clone(files)))
			// Verify sorts the files itself: pass them reversed.
			slices.Reverse(verifyFiles)
			rep, err = audit.Verify(verifyFiles...)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("tampered chain verified")
			}
			p := rep.Problems[0]
			if tt.want.file < 0 {
				tt.want.file = len(files) - 1
			}
			wantLine := tt.want.line
			if wantLine < 0 {
				wantLine = len(readLines(t, files[tt.want.file]))
			}
			if !slices.Contains(tt.wantKind, p.Kind) || p.File != files[tt.want.file] || p.Line != wantLine {
				t.Fatalf("first problem %v; want %v at %s:%d\nall: %v", p, tt.wantKind, files[tt.want.file], wantLine, rep.Problems)
			}
			if !errors.Is(rep.Err(), audit.ErrTampered) {
				t.Fatalf("Err() = %v", rep.Err())
			}
		})
	}
}

func TestVerifyHeadAnchor(t *testing.T) {
	dir := t.TempDir()
	s, err := audit.NewFileSink(audit.FileConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		s.Write(context.Background(), audittest.NewEvent(i))
	}
	head := s.Head()
	s.Close()
	files := chainFiles(t, dir)
	rep, _ := audit.VerifyConfig{Head: &head}.Verify(files...)
	if !rep.OK() || rep.Head != head {
		t.Fatalf("intact chain with its anchor: %+v", rep)
	}
	// Remove the last two records: only the anchor can tell.
	lines := readLines(t, files[0])
	writeLines(t, files[0], lines[:len(lines)-3])
	if rep, _ := audit.Verify(files...); !rep.OK() {
		t.Fatalf("without an anchor a cut at a record boundary is invisible, yet: %v", rep.Problems)
	}
	rep, _ = audit.VerifyConfig{Head: &head}.Verify(files...)
	if rep.OK() || rep.Problems[0].Kind != audit.Truncated {
		t.Fatalf("anchor check: %+v", rep)
	}
	bad := audit.Anchor{Seq: 3, Hash: strings.Repeat("ab", 32)}
	rep, _ = audit.VerifyConfig{Head: &bad}.Verify(files...)
	if rep.OK() || rep.Problems[0].Kind != audit.Altered || rep.Problems[0].Seq != 3 {
		t.Fatalf("wrong anchor hash: %+v", rep)
	}
}

func TestRotation(t *testing.T) {
	t.Run("by size", func(t *testing.T) {
		dir := t.TempDir()
		files := writeChain(t, audit.FileConfig{Dir: dir, MaxBytes: 4 << 10}, 40)
		if len(files) < 5 {
			t.Fatalf("%d files", len(files))
		}
		prev := ""
		for _, f := range files {
			fi, _ := os.Stat(f)
			if fi.Size() > 4<<10 {
				t.Errorf("%s is %d bytes, over MaxBytes", f, fi.Size())
			}
			var hdr struct {
				Seq  uint64
				File struct {
					Name     string
					PrevFile string `json:"prev_file"`
				}
			}
			json.Unmarshal(readLines(t, f)[0], &hdr)
			if hdr.File.Name != filepath.Base(f) || hdr.File.PrevFile != prev {
				t.Errorf("%s header: %+v, want prev_file %q", f, hdr, prev)
			}
			prev = filepath.Base(f)
		}
		rep, err := audit.Verify(files...)
		if err != nil || !rep.OK() || rep.Events != 40 {
			t.Fatalf("%+v %v", rep, err)
		}
	})
	t.Run("by age", func(t *testing.T) {
		dir := t.TempDir()
		clk := newClock()
		s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, MaxAge: time.Hour, Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
				t.Fatal(err)
			}
			clk.Add(40 * time.Minute) // a new file every second write
		}
		s.Close()
		files := chainFiles(t, dir)
		if len(files) != 3 {
			t.Fatalf("files %v", files)
		}
		if want := "audit-00000000000000000004-20261125T232000Z.jsonl"; filepath.Base(files[1]) != want {
			t.Fatalf("second file %s, want %s", files[1], want)
		}
		if rep, _ := audit.Verify(files...); !rep.OK() || rep.Events != 6 {
			t.Fatalf("%+v", rep)
		}
	})
}

func TestResume(t *testing.T) {
	dir := t.TempDir()
	writeChain(t, audit.FileConfig{Dir: dir}, 5)
	writeChain(t, audit.FileConfig{Dir: dir}, 5)
	files := chainFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("a reopened sink starts a new file: %v", files)
	}
	if rep, _ := audit.Verify(files...); !rep.OK() || rep.Events != 10 || rep.Head.Seq != 12 {
		t.Fatalf("%+v", rep)
	}
	// A crash left a torn record: the next sink links to the last intact
	// one; Verify reports the torn tail and nothing else.
	f, _ := os.OpenFile(files[1], os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":13,"prev":"ab`)
	f.Close()
	writeChain(t, audit.FileConfig{Dir: dir}, 2)
	files = chainFiles(t, dir)
	rep, _ := audit.Verify(files...)
	if len(rep.Problems) != 1 || rep.Problems[0].Kind != audit.Truncated || rep.Problems[0].File != files[1] || rep.Events != 12 {
		t.Fatalf("%+v", rep)
	}
	// A newest file with no intact record at its end: refuse to guess.
	os.WriteFile(files[2], []byte("garbage\n"), 0o600)
	if _, err := audit.NewFileSink(audit.FileConfig{Dir: dir}); err == nil {
		t.Fatal("opened a chain whose newest file has no intact record")
	}
}

func TestKeyedChain(t *testing.T) {
	dir := t.TempDir()
	key := []byte("k3y-k3y-k3y-k3y-k3y-k3y-k3y-k3y!")
	files := writeChain(t, audit.FileConfig{Dir: dir, Key: key}, 3)
	if rep, _ := (audit.VerifyConfig{Key: key}).Verify(files...); !rep.OK() {
		t.Fatalf("%v", rep.Problems)
	}
	if rep, _ := audit.Verify(files...); rep.OK() {
		t.Fatal("an HMAC chain verified as plain SHA-256")
	}
	if rep, _ := (audit.VerifyConfig{Key: []byte("wrong")}).Verify(files...); rep.OK() {
		t.Fatal("verified with the wrong key")
	}
}

// TestFileSinkFailsClosed removes the directory under a sink that rotates
// on every write: the next Write must return the error itself, and the
// sink must recover once the directory is back.
func TestFileSinkFailsClosed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "chain")
	s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, MaxBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Write(ctx, audittest.NewEvent(0)); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(dir)
	if err := s.Write(ctx, audittest.NewEvent(1)); err == nil {
		t.Fatal("Write succeeded with its directory gone")
	}
	trail, _ := audit.NewTrail(audit.TrailConfig{Sink: s})
	intent := audittest.NewEvent(2)
	intent.Phase = audit.PhaseIntent
	if err := trail.Intent(ctx, intent); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Trail.Intent = %v, want ErrUnavailable", err)
	}
	os.MkdirAll(dir, 0o700)
	if err := s.Write(ctx, audittest.NewEvent(3)); err != nil {
		t.Fatalf("after the directory came back: %v", err)
	}
	s.Close()
	if st := s.Stats(); st.Failed != 2 || st.Events != 2 {
		t.Fatalf("stats %+v", st)
	}
	// The chain continues across the failure: the new file links to the
	// record in the removed one, which Verify reports missing.
	files := chainFiles(t, dir)
	rep, _ := audit.Verify(files...)
	if rep.OK() || rep.Problems[0].Kind != audit.Missing || rep.Events != 1 {
		t.Fatalf("%+v", rep)
	}
}

func TestFileSinkBuffered(t *testing.T) {
	dir := t.TempDir()
	s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, FlushInterval: time.Hour, BufferBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if files := chainFiles(t, dir); len(files) != 0 {
		t.Fatalf("buffered events reached the disk before a flush: %v", files)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if rep, _ := audit.Verify(chainFiles(t, dir)...); !rep.OK() || rep.Events != 10 {
		t.Fatalf("%+v", rep)
	}
	s.Close()
}

func TestFileSinkRecordBound(t *testing.T) {
	s, err := audit.NewFileSink(audit.FileConfig{Dir: t.TempDir(), MaxRecordBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e := audittest.NewEvent(1)
	e.Request.Params["Big"] = strings.Repeat("x", 3000)
	if err := s.Write(context.Background(), e); !errors.Is(err, audit.ErrTooLarge) {
		t.Fatalf("Write = %v, want ErrTooLarge", err)
	}
}

func TestFileConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     audit.FileConfig
		wantErr string
	}{
		{"no dir", audit.FileConfig{}, "FileConfig.Dir"},
		{"bad prefix", audit.FileConfig{Dir: t.TempDir(), Prefix: "../x"}, "FileConfig.Prefix"},
		{"negative size", audit.FileConfig{Dir: t.TempDir(), MaxBytes: -1}, "FileConfig.MaxBytes"},
		{"negative age", audit.FileConfig{Dir: t.TempDir(), MaxAge: -1}, "FileConfig.MaxAge"},
		{"negative interval", audit.FileConfig{Dir: t.TempDir(), FlushInterval: -1}, "FileConfig.FlushInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := audit.NewFileSink(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
}
