package audit_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// testKey is a checkpoint key pair.
type testKey struct {
	signer   note.Signer
	verifier note.Verifier
	skey     string
	vkey     string
}

func newTestKey(t testing.TB, name string) testKey {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: s, verifier: v, skey: skey, vkey: vkey}
}

func (k testKey) verify() audit.VerifyConfig {
	return audit.VerifyConfig{Verifiers: []note.Verifier{k.verifier}}
}

// signedSink opens a FileSink with checkpoints in dir.
func signedSink(t *testing.T, dir string, k testKey, cfg audit.FileConfig) *audit.FileSink {
	t.Helper()
	cfg.Dir, cfg.Signer = dir, k.signer
	if cfg.Now == nil {
		cfg.Now = newClock().Now
	}
	s, err := audit.NewFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writeEvents(t *testing.T, s audit.Sink, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func verifyDir(t *testing.T, dir string, c audit.VerifyConfig) audit.Report {
	t.Helper()
	rep, err := audit.VerifyDir(dir, "", c)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func wantProblem(t *testing.T, rep audit.Report, kind audit.ProblemKind, detail string) {
	t.Helper()
	for _, p := range rep.Problems {
		if p.Kind == kind && strings.Contains(p.Detail, detail) {
			return
		}
	}
	t.Fatalf("no %s problem mentioning %q in %v", kind, detail, rep.Problems)
}

func checkpointPath(dir string) string { return filepath.Join(dir, audit.CheckpointFileName("")) }

// removeTail drops the last n records of the chain, cleanly: whole
// lines, and whole files when they empty.
func removeTail(t *testing.T, dir string, n int) {
	t.Helper()
	files := chainFiles(t, dir)
	for i := len(files) - 1; n > 0; i-- {
		if i < 0 {
			t.Fatal("the chain is shorter than the cut")
		}
		lines := readLines(t, files[i])
		records := len(lines) - 1
		if records <= n {
			os.Remove(files[i])
			n -= records
			continue
		}
		writeLines(t, files[i], lines[:records-n])
		n = 0
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(to)
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCheckpointFormat checks a checkpoint byte for byte against the
// documented shape (the C2SP tlog-checkpoint body in a signed note).
func TestCheckpointFormat(t *testing.T) {
	k := newTestKey(t, "gw-1")
	hash := strings.Repeat("0f", 32)
	sc, err := audit.Checkpoint{Origin: "gw-1/audit", Size: 1234, Hash: hash}.Sign(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	raw := bytes.Repeat([]byte{0x0f}, 32)
	wantBody := "gw-1/audit\n1234\n" + base64.StdEncoding.EncodeToString(raw) + "\n"
	body, sigs, ok := strings.Cut(string(sc.Note), "\n\n")
	if !ok || body+"\n" != wantBody || !strings.HasPrefix(sigs, "— gw-1 ") || strings.Count(sigs, "\n") != 1 {
		t.Fatalf("note:\n%s\nwant body:\n%s", sc.Note, wantBody)
	}
	opened, err := audit.OpenCheckpoint(sc.Note, []note.Verifier{k.verifier})
	if err != nil {
		t.Fatal(err)
	}
	if opened.Checkpoint != sc.Checkpoint || len(opened.Signers) != 1 || opened.Signers[0] != "gw-1" {
		t.Fatalf("opened %+v, signed %+v", opened, sc)
	}
	// The note package opens it as any signed note.
	n, err := note.Open(sc.Note, note.VerifierList(k.verifier))
	if err != nil || n.Text != wantBody {
		t.Fatalf("note.Open: %v %+v", err, n)
	}
}

// TestParseCheckpointBadInput is the table of malformed checkpoint bodies.
func TestParseCheckpointBadInput(t *testing.T) {
	h := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32))
	good := "o\n1\n" + h + "\n"
	if _, err := audit.ParseCheckpoint([]byte(good)); err != nil {
		t.Fatalf("good body: %v", err)
	}
	nonCanonical := []byte(h)
	nonCanonical[len(nonCanonical)-2] = 'F' // sets bits base64 ignores
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"no trailing newline", strings.TrimSuffix(good, "\n")},
		{"two lines", "o\n1\n"},
		{"extension line", good + "extra\n"},
		{"blank line", "o\n\n1\n" + h + "\n"},
		{"CRLF", "o\r\n1\r\n" + h + "\r\n"},
		{"empty origin", "\n1\n" + h + "\n"},
		{"origin with leading space", " o\n1\n" + h + "\n"},
		{"origin with control character", "o\x01\n1\n" + h + "\n"},
		{"origin not UTF-8", "o\xff\n1\n" + h + "\n"},
		{"origin too long", strings.Repeat("o", audit.MaxOriginBytes+1) + "\n1\n" + h + "\n"},
		{"size zero", "o\n0\n" + h + "\n"},
		{"size leading zero", "o\n01\n" + h + "\n"},
		{"size with sign", "o\n+1\n" + h + "\n"},
		{"size negative", "o\n-1\n" + h + "\n"},
		{"size hex", "o\n0x10\n" + h + "\n"},
		{"size past uint64", "o\n18446744073709551616\n" + h + "\n"},
		{"size past int64", "o\n9223372036854775808\n" + h + "\n"},
		{"size with space", "o\n 1\n" + h + "\n"},
		{"hash hex", "o\n1\n" + strings.Repeat("ab", 32) + "\n"},
		{"hash 31 bytes", "o\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 31)) + "\n"},
		{"hash 33 bytes", "o\n1\n" + base64.StdEncoding.EncodeToString(make([]byte, 33)) + "\n"},
		{"hash unpadded", "o\n1\n" + strings.TrimRight(h, "=") + "\n"},
		{"hash URL alphabet", "o\n1\n" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32)) + "\n"},
		{"hash non-canonical", "o\n1\n" + string(nonCanonical) + "\n"},
		{"too large", strings.Repeat("o", audit.MaxCheckpointBytes) + "\n1\n" + h + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := audit.ParseCheckpoint([]byte(tc.body))
			if !errors.Is(err, audit.ErrBadCheckpoint) {
				t.Fatalf("ParseCheckpoint(%q) = %+v, %v; want ErrBadCheckpoint", tc.body, c, err)
			}
		})
	}
}

// TestOpenCheckpointErrors checks the signature side: a bad signature, a
// wrong key and malformed notes, each with its sentinel error.
func TestOpenCheckpointErrors(t *testing.T) {
	k, other := newTestKey(t, "gw-1"), newTestKey(t, "gw-2")
	sc, err := audit.Checkpoint{Origin: "gw-1/audit", Size: 7, Hash: strings.Repeat("ab", 32)}.Sign(k.signer)
	if err != nil {
		t.Fatal(err)
	}
	known := []note.Verifier{k.verifier}
	edited := bytes.Replace(sc.Note, []byte("\n7\n"), []byte("\n8\n"), 1)
	// Flip a bit of the Ed25519 signature itself (after the 4-byte key
	// hash), in the decoded bytes: flipping a bit of the base64 text can
	// make it an invalid character, a malformed note instead.
	sig := bytes.LastIndex(sc.Note, []byte(" ")) + 1
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(string(sc.Note[sig:]), "\n"))
	if err != nil {
		t.Fatal(err)
	}
	raw[10] ^= 1
	badSig := append(bytes.Clone(sc.Note[:sig]), base64.StdEncoding.EncodeToString(raw)+"\n"...)
	sameName, _ := audit.Checkpoint{Origin: "gw-1/audit", Size: 7, Hash: strings.Repeat("ab", 32)}.Sign(newTestKey(t, "gw-1").signer)
	for _, tc := range []struct {
		name  string
		note  []byte
		known []note.Verifier
		want  error
	}{
		{"size edited", edited, known, audit.ErrCheckpointSignature},
		{"signature flipped", badSig, known, audit.ErrCheckpointSignature},
		{"other key", sc.Note, []note.Verifier{other.verifier}, audit.ErrCheckpointKey},
		{"same name, other key", sameName.Note, known, audit.ErrCheckpointKey},
		{"no verifiers", sc.Note, nil, audit.ErrCheckpointKey},
		{"body only", sc.Body(), known, audit.ErrBadCheckpoint},
		{"empty", nil, known, audit.ErrBadCheckpoint},
		{"garbage", []byte("hello\n\n— x y\n"), known, audit.ErrBadCheckpoint},
		{"truncated", sc.Note[:len(sc.Note)-5], known, audit.ErrBadCheckpoint},
		{"too large", append(bytes.Repeat([]byte("x"), audit.MaxCheckpointBytes), sc.Note...), known, audit.ErrBadCheckpoint},
		{"valid signature, malformed body", mustSignText(t, k.signer, "gw-1/audit\n7\n"), known, audit.ErrBadCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := audit.OpenCheckpoint(tc.note, tc.known)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	_, err = audit.OpenCheckpoint(badSig, known)
	var invalid *note.InvalidSignatureError
	if !errors.As(err, &invalid) || invalid.Name != "gw-1" {
		t.Fatalf("bad signature: %v, want a *note.InvalidSignatureError", err)
	}
	// A second, unknown signer does not matter.
	both, err := note.Sign(&note.Note{Text: string(sc.Body())}, k.signer, other.signer)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := audit.OpenCheckpoint(both, known); err != nil || got.Size != 7 {
		t.Fatalf("co-signed note: %+v %v", got, err)
	}
}

func mustSignText(t *testing.T, s note.Signer, text string) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, s)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// TestCheckpointIntact: a chain written with a signer verifies against
// its checkpoint, which covers every record, and one is written at every
// rotation and in Close.
func TestCheckpointIntact(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, "gw-1")
	s := signedSink(t, dir, k, audit.FileConfig{MaxBytes: 6 << 10})
	writeEvents(t, s, 0, 30)
	head := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := chainFiles(t, dir)
	st := s.Stats()
	// One after the chain's first record (a new chain gets its first
	// checkpoint at once), one before each rotation but the first, one in
	// Close.
	if len(files) < 3 || st.Checkpoints != uint64(len(files))+1 || st.CheckpointFailures != 0 {
		t.Fatalf("%d files, stats %+v", len(files), st)
	}
	rep := verifyDir(t, dir, k.verify())
	if !rep.OK() {
		t.Fatalf("intact chain: %v", rep.Problems)
	}
	c := rep.Checkpoint
	if c == nil || c.Size != head.Seq || c.Hash != head.Hash || c.Origin != "gw-1/audit" || c.After != 0 ||
		c.Source != checkpointPath(dir) || len(c.Signers) != 1 {
		t.Fatalf("checkpoint %+v, head %+v", c, head)
	}
	if err := os.WriteFile(filepath.Join(dir, "gw.vkey"), []byte(k.vkey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vs, err := audit.LoadVerifiers(filepath.Join(dir, "gw.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	if rep := verifyDir(t, dir, audit.VerifyConfig{Verifiers: vs, Origin: "gw-1/audit"}); !rep.OK() {
		t.Fatalf("with the loaded key and the origin: %v", rep.Problems)
	}
}

// TestCheckpointTruncation removes the newest records in the ways an
// attacker with the files can, and checks what the files alone show and
// what the newest checkpoint kept elsewhere shows.
func TestCheckpointTruncation(t *testing.T) {
	k := newTestKey(t, "gw-1")
	// build writes 20 events, takes a copy of the checkpoint at that
	// point, writes 20 more and closes: the final checkpoint is the
	// newest, the copy an older one an attacker could have kept.
	var olderSize, newestSize uint64
	build := func(t *testing.T) (dir string, older, newest audit.CheckpointNote) {
		dir = t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{MaxBytes: 6 << 10})
		writeEvents(t, s, 0, 20)
		sc, err := s.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		older, olderSize = audit.CheckpointNote{Source: "older copy", Note: sc.Note}, sc.Size
		writeEvents(t, s, 20, 20)
		newestSize = s.Head().Seq
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		newest, err = audit.ReadCheckpointFile(checkpointPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		newest.Source = "external"
		return dir, older, newest
	}

	t.Run("tail removed", func(t *testing.T) {
		dir, _, _ := build(t)
		removeTail(t, dir, 3)
		if rep := verifyDir(t, dir, audit.VerifyConfig{}); !rep.OK() {
			t.Fatalf("without a key the cut is invisible to the chain, yet: %v", rep.Problems)
		}
		rep := verifyDir(t, dir, k.verify())
		wantProblem(t, rep, audit.Truncated, fmt.Sprintf("the chain ends at record %d but checkpoint %s (signed by gw-1) covers %d records", newestSize-3, checkpointPath(dir), newestSize))
		if p := rep.Problems[0]; p.Kind != audit.Truncated || p.Seq != newestSize-2 {
			t.Fatalf("first problem %v", p)
		}
		if !errors.Is(rep.Err(), audit.ErrTampered) {
			t.Fatal(rep.Err())
		}
	})
	t.Run("newest file removed", func(t *testing.T) {
		dir, _, _ := build(t)
		files := chainFiles(t, dir)
		os.Remove(files[len(files)-1])
		wantProblem(t, verifyDir(t, dir, k.verify()), audit.Truncated, "records were removed from the end")
	})
	t.Run("tail and checkpoint removed", func(t *testing.T) {
		dir, _, newest := build(t)
		removeTail(t, dir, 3)
		os.Remove(checkpointPath(dir))
		wantProblem(t, verifyDir(t, dir, k.verify()), audit.BadCheckpoint, "no checkpoint was given")
		c := k.verify()
		c.Checkpoints = []audit.CheckpointNote{newest}
		wantProblem(t, verifyDir(t, dir, c), audit.Truncated, "checkpoint external")
	})
	t.Run("tail removed, older checkpoint put back", func(t *testing.T) {
		dir, older, newest := build(t)
		removeTail(t, dir, 3)
		if err := os.WriteFile(checkpointPath(dir), older.Note, 0o600); err != nil {
			t.Fatal(err)
		}
		// From the files alone this is a consistent, shorter chain:
		// the documented limit.
		if rep := verifyDir(t, dir, k.verify()); !rep.OK() || rep.Checkpoint.Size != olderSize || rep.Checkpoint.After != newestSize-3-olderSize {
			t.Fatalf("files alone: %+v", rep)
		}
		c := k.verify()
		c.Checkpoints = []audit.CheckpointNote{newest}
		rep := verifyDir(t, dir, c)
		wantProblem(t, rep, audit.Truncated, "checkpoint external")
		wantProblem(t, rep, audit.Rollback, "fewer than the earlier checkpoint external")
	})
	t.Run("rollback to an older copy", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{MaxBytes: 6 << 10})
		writeEvents(t, s, 0, 20)
		if _, err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		backup := filepath.Join(t.TempDir(), "backup")
		copyDir(t, dir, backup)
		writeEvents(t, s, 20, 20)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		newest, err := audit.ReadCheckpointFile(checkpointPath(dir))
		if err != nil {
			t.Fatal(err)
		}
		newest.Source = "external"
		copyDir(t, backup, dir)
		if rep := verifyDir(t, dir, k.verify()); !rep.OK() {
			t.Fatalf("a whole older copy is consistent on its own, yet: %v", rep.Problems)
		}
		c := k.verify()
		c.Checkpoints = []audit.CheckpointNote{newest}
		rep := verifyDir(t, dir, c)
		wantProblem(t, rep, audit.Truncated, fmt.Sprintf("checkpoint external (signed by gw-1) covers %d records", s.Head().Seq))
		wantProblem(t, rep, audit.Rollback, "fewer than the earlier checkpoint external")
		// The sink refuses to extend the rolled-back copy only if it
		// sees a newer checkpoint: here only the external one is.
	})
}

// TestCheckpointRewrite rewrites the newest record with a recomputed
// hash, which an unkeyed chain cannot detect on its own: the checkpoint
// does.
func TestCheckpointRewrite(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, "gw-1")
	s := signedSink(t, dir, k, audit.FileConfig{})
	writeEvents(t, s, 0, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := chainFiles(t, dir)
	lines := readLines(t, files[0])
	last := bytes.TrimSuffix(lines[len(lines)-2], []byte("\n"))
	rec, _, err := chain.NewHasher(nil).Parse(last)
	if err != nil {
		t.Fatal(err)
	}
	ev := bytes.Replace(rec.Event, []byte("s3:DeleteObject"), []byte("s3:GetObject"), 1)
	line, _ := chain.NewHasher(nil).Append(nil, rec.Seq, rec.Prev, "event", ev)
	lines[len(lines)-2] = line
	writeLines(t, files[0], lines)
	if rep := verifyDir(t, dir, audit.VerifyConfig{}); !rep.OK() {
		t.Fatalf("the rewrite should be invisible to the chain alone: %v", rep.Problems)
	}
	rep := verifyDir(t, dir, k.verify())
	wantProblem(t, rep, audit.Altered, "record 6 differs from the head that checkpoint")
	if p := rep.Problems[0]; p.Line != 6 || p.File != files[0] {
		t.Fatalf("first problem %v, want %s:6", p, files[0])
	}
}

// TestCheckpointBadInput: a damaged, forged or foreign checkpoint file is
// reported, never trusted.
func TestCheckpointBadInput(t *testing.T) {
	k, other := newTestKey(t, "gw-1"), newTestKey(t, "gw-1")
	dir := t.TempDir()
	s := signedSink(t, dir, k, audit.FileConfig{})
	writeEvents(t, s, 0, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(checkpointPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := audit.Checkpoint{Origin: "gw-1/audit", Size: 6, Hash: strings.Repeat("ab", 32)}.Sign(other.signer)
	body, _, _ := bytes.Cut(good, []byte("\n\n"))
	for _, tc := range []struct {
		name   string
		note   []byte
		detail string
	}{
		{"empty file", nil, "malformed"},
		{"garbage", []byte("not a checkpoint\n"), "malformed"},
		{"cut", good[:len(good)-10], "malformed"},
		{"body edited", bytes.Replace(good, []byte("\n6\n"), []byte("\n5\n"), 1), "signature does not verify"},
		{"signatures removed", append(body, '\n'), "malformed"},
		{"signed by another key of the same name", forged.Note, "not signed by a known key"},
		{"oversized", append(bytes.Repeat([]byte("x\n"), audit.MaxCheckpointBytes), good...), "malformed"},
		{"binary", []byte{0, 1, 2, '\n', '\n'}, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(checkpointPath(dir), tc.note, 0o600); err != nil {
				t.Fatal(err)
			}
			rep := verifyDir(t, dir, k.verify())
			wantProblem(t, rep, audit.BadCheckpoint, tc.detail)
			if p := rep.Problems[len(rep.Problems)-1]; p.File != checkpointPath(dir) {
				t.Fatalf("problem names %q", p.File)
			}
		})
	}
	os.WriteFile(checkpointPath(dir), good, 0o600)
	rep := verifyDir(t, dir, other.verify())
	wantProblem(t, rep, audit.BadCheckpoint, "not signed by a known key")
	c := k.verify()
	c.Origin = "gw-2/audit"
	wantProblem(t, verifyDir(t, dir, c), audit.BadCheckpoint, `names the chain "gw-1/audit", not "gw-2/audit"`)
}

// TestCheckpointsBackwards: checkpoints given oldest first must not go
// backwards or fork.
func TestCheckpointsBackwards(t *testing.T) {
	k := newTestKey(t, "gw-1")
	dir := t.TempDir()
	s := signedSink(t, dir, k, audit.FileConfig{})
	writeEvents(t, s, 0, 3)
	a, _ := s.Checkpoint()
	writeEvents(t, s, 3, 3)
	b, _ := s.Checkpoint()
	s.Close()
	files := chainFiles(t, dir)
	note := func(src string, sc audit.SignedCheckpoint) audit.CheckpointNote {
		return audit.CheckpointNote{Source: src, Note: sc.Note}
	}
	c := k.verify()
	c.Checkpoints = []audit.CheckpointNote{note("a", a), note("b", b)}
	if rep, _ := c.Verify(files...); !rep.OK() || rep.Checkpoint.Source != "b" {
		t.Fatalf("in order: %+v", rep)
	}
	c.Checkpoints = []audit.CheckpointNote{note("b", b), note("a", a)}
	rep, _ := c.Verify(files...)
	wantProblem(t, rep, audit.Rollback, "covers 4 records, fewer than the earlier checkpoint b (7 records)")
	fork, _ := audit.Checkpoint{Origin: a.Origin, Size: a.Size, Hash: strings.Repeat("cd", 32)}.Sign(k.signer)
	c.Checkpoints = []audit.CheckpointNote{note("a", a), note("fork", fork)}
	rep, _ = c.Verify(files...)
	wantProblem(t, rep, audit.Rollback, "both cover 4 records but sign different heads")
	wantProblem(t, rep, audit.Altered, "record 4 differs from the head that checkpoint fork")
}

// TestCheckpointResume: a sink does not extend a chain shorter than, or
// different from, its newest checkpoint; it does resume after a crash
// that left records after the checkpoint.
func TestCheckpointResume(t *testing.T) {
	k := newTestKey(t, "gw-1")
	t.Run("truncated", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 0, 5)
		s.Close()
		removeTail(t, dir, 2)
		_, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer})
		if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "covers 6 records but the chain") {
			t.Fatalf("err = %v", err)
		}
		// Without a signer too: the check is about the files.
		if _, err := audit.NewFileSink(audit.FileConfig{Dir: dir}); !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("without a signer: %v", err)
		}
		// Moving the checkpoint aside is not enough: the files show the
		// chain was checkpointed (TestCheckpointMissing).
		os.Rename(checkpointPath(dir), checkpointPath(dir)+".evidence")
		if _, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer}); !errors.Is(err, audit.ErrCheckpointMissing) {
			t.Fatalf("checkpoint moved aside: %v", err)
		}
		s = signedSink(t, dir, k, audit.FileConfig{InsecureResumeWithoutCheckpoint: true})
		writeEvents(t, s, 5, 1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("crash after the checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{MaxBytes: 6 << 10})
		writeEvents(t, s, 0, 10)
		if _, err := s.Checkpoint(); err != nil {
			t.Fatal(err)
		}
		writeEvents(t, s, 10, 10)
		// The newest checkpoint before Close (the one of the last
		// rotation) is what a crash leaves behind.
		saved, _ := os.ReadFile(checkpointPath(dir))
		if head := s.Head(); bytes.Contains(saved, fmt.Appendf(nil, "\n%d\n", head.Seq)) {
			t.Fatalf("the last records are covered already: %s", saved)
		}
		s.Close()
		// As if the process had died before its next checkpoint.
		os.WriteFile(checkpointPath(dir), saved, 0o600)
		s = signedSink(t, dir, k, audit.FileConfig{MaxBytes: 6 << 10})
		writeEvents(t, s, 20, 1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if rep := verifyDir(t, dir, k.verify()); !rep.OK() || rep.Checkpoint.After != 0 {
			t.Fatalf("%+v", rep)
		}
	})
	t.Run("opened and closed without writes", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 0, 5)
		s.Checkpoint()
		saved, _ := os.ReadFile(checkpointPath(dir))
		writeEvents(t, s, 5, 2)
		s.Close()
		os.WriteFile(checkpointPath(dir), saved, 0o600)
		// As "gateway -check" does: it must leave the directory alone.
		s = signedSink(t, dir, k, audit.FileConfig{})
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if now, _ := os.ReadFile(checkpointPath(dir)); !bytes.Equal(now, saved) {
			t.Fatal("a sink that wrote nothing replaced the checkpoint")
		}
		// The first write signs the records of the previous run too.
		s = signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 7, 1)
		if st := s.Stats(); st.Checkpoints != 1 {
			t.Fatalf("no checkpoint at the first write: %+v", st)
		}
		s.Close()
	})
	t.Run("rewritten under the checkpoint", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 0, 5)
		s.Checkpoint()
		saved, _ := os.ReadFile(checkpointPath(dir))
		writeEvents(t, s, 5, 2)
		s.Close()
		os.WriteFile(checkpointPath(dir), saved, 0o600)
		files := chainFiles(t, dir)
		lines := readLines(t, files[0])
		// Record 6 (line 6) is the checkpoint's head: swap in record 7's
		// event with a consistent hash.
		rec, _, _ := chain.NewHasher(nil).Parse(bytes.TrimSuffix(lines[5], []byte("\n")))
		other, _, _ := chain.NewHasher(nil).Parse(bytes.TrimSuffix(lines[6], []byte("\n")))
		lines[5], _ = chain.NewHasher(nil).Append(nil, rec.Seq, rec.Prev, "event", other.Event)
		writeLines(t, files[0], lines)
		_, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer})
		if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), "record 6") {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestCheckpointInterval: checkpoints follow the chain while it grows.
func TestCheckpointInterval(t *testing.T) {
	dir := t.TempDir()
	k := newTestKey(t, "gw-1")
	s := signedSink(t, dir, k, audit.FileConfig{CheckpointInterval: 5 * time.Millisecond})
	defer s.Close()
	for round := range 3 {
		writeEvents(t, s, round*3, 3)
		head := s.Head()
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, err := audit.ReadCheckpointFile(checkpointPath(dir))
			if err == nil {
				if c, err := audit.OpenCheckpoint(n.Note, []note.Verifier{k.verifier}); err == nil && c.Size == head.Seq {
					if c.Hash != head.Hash {
						t.Fatalf("checkpoint %+v, head %+v", c, head)
					}
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no checkpoint of record %d after 10s", round, head.Seq)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	before := s.Stats().Checkpoints
	time.Sleep(50 * time.Millisecond)
	if after := s.Stats().Checkpoints; after != before {
		t.Fatalf("an idle chain was checkpointed again: %d -> %d", before, after)
	}
}

// memCheckpoints is a CheckpointWriter keeping what it receives.
type memCheckpoints struct {
	mu   sync.Mutex
	got  []audit.SignedCheckpoint
	fail error
}

func (m *memCheckpoints) WriteCheckpoint(_ context.Context, c audit.SignedCheckpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.got = append(m.got, c)
	return nil
}

func TestCheckpointWriter(t *testing.T) {
	k := newTestKey(t, "gw-1")
	dir := t.TempDir()
	ext := &memCheckpoints{}
	s := signedSink(t, dir, k, audit.FileConfig{CheckpointWriter: ext, CheckpointOrigin: "replica-a"})
	writeEvents(t, s, 0, 4)
	head := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if len(ext.got) == 0 {
		t.Fatal("the writer got nothing")
	}
	last := ext.got[len(ext.got)-1]
	local, _ := os.ReadFile(checkpointPath(dir))
	if last.Size != head.Seq || last.Hash != head.Hash || last.Origin != "replica-a" || !bytes.Equal(last.Note, local) {
		t.Fatalf("writer got %+v, head %+v", last, head)
	}

	failing := &memCheckpoints{fail: errors.New("database down")}
	s = signedSink(t, t.TempDir(), k, audit.FileConfig{CheckpointWriter: failing})
	writeEvents(t, s, 0, 2)
	err := s.Close()
	if err == nil || !strings.Contains(err.Error(), "database down") {
		t.Fatalf("Close = %v, want the writer's failure", err)
	}
	// The chain's first checkpoint, after its first record, and the one
	// of Close, both stored although the writer fails.
	if st := s.Stats(); st.CheckpointWriterFailures == 0 || st.Checkpoints != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCheckpointModes: buffered and keyed chains, and a failing
// checkpoint that must not fail the events.
func TestCheckpointModes(t *testing.T) {
	k := newTestKey(t, "gw-1")
	t.Run("buffered", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{FlushInterval: time.Hour})
		writeEvents(t, s, 0, 3)
		sc, err := s.Checkpoint() // flushes first
		if err != nil || sc.Size != 4 {
			t.Fatalf("%+v %v", sc, err)
		}
		s.Close()
		if rep := verifyDir(t, dir, k.verify()); !rep.OK() {
			t.Fatal(rep.Problems)
		}
	})
	t.Run("keyed chain", func(t *testing.T) {
		dir := t.TempDir()
		key := []byte("chain key")
		s := signedSink(t, dir, k, audit.FileConfig{Key: key, SkipCheckpointSync: true})
		writeEvents(t, s, 0, 3)
		s.Close()
		c := k.verify()
		c.Key = key
		if rep := verifyDir(t, dir, c); !rep.OK() || rep.Checkpoint == nil {
			t.Fatal(rep.Problems)
		}
		removeTail(t, dir, 1)
		wantProblem(t, verifyDir(t, dir, c), audit.Truncated, "covers 4 records")
	})
	t.Run("checkpoint fails, events do not", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 0, 2)
		// A directory where the checkpoint file goes makes its rename fail.
		os.Remove(checkpointPath(dir))
		os.Mkdir(checkpointPath(dir), 0o700)
		os.WriteFile(filepath.Join(checkpointPath(dir), "x"), nil, 0o600)
		if _, err := s.Checkpoint(); err == nil {
			t.Fatal("checkpoint over a directory succeeded")
		}
		writeEvents(t, s, 2, 2)
		if st := s.Stats(); st.CheckpointFailures != 1 || st.Events != 4 {
			t.Fatalf("stats %+v", st)
		}
		if err := s.Close(); err == nil {
			t.Fatal("Close hid the failed final checkpoint")
		}
	})
	t.Run("no signer", func(t *testing.T) {
		s, _ := audit.NewFileSink(audit.FileConfig{Dir: t.TempDir()})
		defer s.Close()
		if _, err := s.Checkpoint(); err == nil {
			t.Fatal("Checkpoint without a signer")
		}
	})
}

func TestCheckpointConfigErrors(t *testing.T) {
	k := newTestKey(t, "gw-1")
	for _, tc := range []struct {
		cfg  audit.FileConfig
		want string
	}{
		{audit.FileConfig{CheckpointWriter: &memCheckpoints{}}, "need FileConfig.Signer"},
		{audit.FileConfig{CheckpointInterval: time.Second}, "need FileConfig.Signer"},
		{audit.FileConfig{CheckpointOrigin: "x"}, "need FileConfig.Signer"},
		{audit.FileConfig{Signer: k.signer, CheckpointInterval: -1}, "CheckpointInterval must not be negative"},
		{audit.FileConfig{Signer: k.signer, CheckpointOrigin: "a\nb"}, "CheckpointOrigin"},
		{audit.FileConfig{Signer: k.signer, CheckpointOrigin: strings.Repeat("o", 300)}, "CheckpointOrigin"},
	} {
		tc.cfg.Dir = t.TempDir()
		_, err := audit.NewFileSink(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want %q", tc.cfg, err, tc.want)
		}
	}
}

// TestCheckpointKeyFiles: key files load, the wrong kind is refused, and
// no error quotes a private key.
func TestCheckpointKeyFiles(t *testing.T) {
	k := newTestKey(t, "gw-1")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	if s, err := audit.LoadSigner(write("ok.key", k.skey+"\n")); err != nil || s.Name() != "gw-1" {
		t.Fatalf("LoadSigner: %v", err)
	}
	other := newTestKey(t, "gw-2")
	vs, err := audit.LoadVerifiers(write("ok.pub", "# current and previous key\n"+k.vkey+"\n\n"+other.vkey+"\n"))
	if err != nil || len(vs) != 2 {
		t.Fatalf("LoadVerifiers: %d %v", len(vs), err)
	}
	tampered := k.skey[:len(k.skey)-6] + "AAAAA="
	for name, content := range map[string]string{
		"verifier key": k.vkey,
		"two lines":    k.skey + "\n" + k.skey,
		"tampered":     tampered,
		"empty":        "",
		"wrong hash":   strings.Replace(k.skey, "+gw-1+", "+gw-9+", 1),
		"huge":         strings.Repeat("P", 70<<10),
		"garbage":      "PRIVATE+KEY+x",
	} {
		_, err := audit.LoadSigner(write("bad.key", content))
		if err == nil {
			t.Errorf("LoadSigner(%s) succeeded", name)
			continue
		}
		secret := strings.SplitN(k.skey, "+", 5)[4]
		if strings.Contains(err.Error(), secret[:20]) || strings.Contains(err.Error(), tampered[len(tampered)-30:]) {
			t.Errorf("LoadSigner(%s) error quotes the key: %v", name, err)
		}
	}
	for name, content := range map[string]string{
		"signer key": k.skey,
		"empty":      "# nothing\n",
		"garbage":    "gw-1+zz+zz",
	} {
		if _, err := audit.LoadVerifiers(write("bad.pub", content)); err == nil {
			t.Errorf("LoadVerifiers(%s) succeeded", name)
		} else if strings.Contains(err.Error(), strings.SplitN(k.skey, "+", 5)[4][:20]) {
			t.Errorf("LoadVerifiers(%s) error quotes the key: %v", name, err)
		}
	}
	if _, err := audit.LoadSigner(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing key file loaded")
	}
}

// TestCheckpointConformance runs the sink contract over a FileSink that
// writes checkpoints often, rotates and exports them; after Close every
// chain must verify against its checkpoint with nothing left uncovered.
func TestCheckpointConformance(t *testing.T) {
	k := newTestKey(t, "gw-1")
	audittest.Run(t, func(t *testing.T) (audit.Sink, func() []audit.Event) {
		dir := t.TempDir()
		ext := &memCheckpoints{}
		s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer, CheckpointInterval: time.Millisecond,
			MaxBytes: 8 << 10, CheckpointWriter: ext})
		if err != nil {
			t.Fatal(err)
		}
		return s, func() []audit.Event {
			files := chainFiles(t, dir)
			if len(files) == 0 {
				return nil
			}
			c := k.verify()
			ext.mu.Lock()
			for _, sc := range ext.got {
				c.Checkpoints = append(c.Checkpoints, audit.CheckpointNote{Source: "writer", Note: sc.Note})
			}
			ext.mu.Unlock()
			rep := verifyDir(t, dir, c)
			if !rep.OK() || rep.Checkpoint == nil || rep.Checkpoint.After != 0 {
				t.Fatalf("chain against its checkpoints: %+v", rep)
			}
			evs, err := audit.ReadEvents(files...)
			if err != nil {
				t.Fatal(err)
			}
			return evs
		}
	})
}
