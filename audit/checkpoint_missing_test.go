package audit_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// TestCheckpointMissing: a chain whose files show it was checkpointed is
// not resumed without its checkpoint. Removing the newest records and the
// checkpoint file, then restarting, used to hide the cut: the sink signed
// new checkpoints over the cut chain and Verify said ok.
func TestCheckpointMissing(t *testing.T) {
	k := newTestKey(t, "gw-1")
	// cut writes 20 events, closes, then removes the last 5 records and
	// the checkpoint file.
	cut := func(t *testing.T) string {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 0, 20)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		removeTail(t, dir, 5)
		if err := os.Remove(checkpointPath(dir)); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	t.Run("refused on restart", func(t *testing.T) {
		dir := cut(t)
		files := chainFiles(t, dir)
		wantProblem(t, verifyDir(t, dir, k.verify()), audit.BadCheckpoint,
			"no checkpoint was given, although the header of "+files[0]+" shows the chain was checkpointed")
		_, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer})
		if !errors.Is(err, audit.ErrCheckpointMissing) || !errors.Is(err, audit.ErrTampered) ||
			!strings.Contains(err.Error(), "holds 16 records and the header of "+filepath.Base(files[0])+" shows they were checkpointed, but there is no audit.checkpoint") ||
			!strings.Contains(err.Error(), "FileConfig.InsecureResumeWithoutCheckpoint") {
			t.Fatalf("err = %v", err)
		}
		// The refusal leaves the directory as it was: still detected.
		if got := chainFiles(t, dir); len(got) != 1 {
			t.Fatalf("files after the refusal: %v", got)
		}
		if _, err := os.Stat(checkpointPath(dir)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a checkpoint appeared: %v", err)
		}
		wantProblem(t, verifyDir(t, dir, k.verify()), audit.BadCheckpoint, "no checkpoint was given")
	})

	t.Run("insecure resume is reported by Verify", func(t *testing.T) {
		dir := cut(t)
		s := signedSink(t, dir, k, audit.FileConfig{InsecureResumeWithoutCheckpoint: true})
		writeEvents(t, s, 20, 3)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		files := chainFiles(t, dir)
		if len(files) != 2 || !bytes.Contains(readLines(t, files[1])[0], []byte(`"checkpointed":16,"resumed_without_checkpoint":true}`)) {
			t.Fatalf("header of the resumed file: %s", readLines(t, files[1])[0])
		}
		rep := verifyDir(t, dir, k.verify())
		wantProblem(t, rep, audit.BadCheckpoint, "the chain was resumed at record 17 without its checkpoint (FileConfig.InsecureResumeWithoutCheckpoint)")
		if p := rep.Problems[0]; p.File != files[1] || p.Line != 1 || p.Seq != 17 || len(rep.Problems) != 1 {
			t.Fatalf("problems %v", rep.Problems)
		}
		// The chain alone is intact, and the next start finds the
		// checkpoint: the setting is needed once.
		if rep := verifyDir(t, dir, audit.VerifyConfig{}); !rep.OK() {
			t.Fatal(rep.Problems)
		}
		s = signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 23, 1)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if h := readLines(t, chainFiles(t, dir)[2])[0]; bytes.Contains(h, []byte("resumed_without_checkpoint")) {
			t.Fatalf("the mark repeats: %s", h)
		}
	})

	t.Run("without a signer the sink resumes, signing nothing", func(t *testing.T) {
		dir := cut(t)
		s, err := audit.NewFileSink(audit.FileConfig{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		writeEvents(t, s, 20, 1)
		s.Close()
		wantProblem(t, verifyDir(t, dir, k.verify()), audit.BadCheckpoint, "shows the chain was checkpointed")
		if _, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer}); !errors.Is(err, audit.ErrCheckpointMissing) {
			t.Fatalf("with a signer again: %v", err)
		}
	})

	t.Run("checkpoints enabled on an existing trail", func(t *testing.T) {
		dir := t.TempDir()
		s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Now: newClock().Now})
		if err != nil {
			t.Fatal(err)
		}
		writeEvents(t, s, 0, 10)
		s.Close()
		s = signedSink(t, dir, k, audit.FileConfig{})
		writeEvents(t, s, 10, 2)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		files := chainFiles(t, dir)
		if len(files) != 2 || bytes.Contains(readLines(t, files[0])[0], []byte("checkpointed")) ||
			!bytes.Contains(readLines(t, files[1])[0], []byte(`"checkpointed":11}`)) {
			t.Fatalf("headers: %s %s", readLines(t, files[0])[0], readLines(t, files[1])[0])
		}
		rep := verifyDir(t, dir, k.verify())
		if !rep.OK() || rep.Checkpoint == nil || rep.Checkpoint.After != 0 || rep.Checkpoint.Size != 14 {
			t.Fatalf("%+v", rep)
		}
		// From now on the trail is a checkpointed one.
		os.Remove(checkpointPath(dir))
		if _, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer}); !errors.Is(err, audit.ErrCheckpointMissing) {
			t.Fatalf("checkpoint removed: %v", err)
		}
	})

	t.Run("a new chain has a checkpoint after its first record", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{CheckpointInterval: 1 << 62})
		writeEvents(t, s, 0, 1)
		// As if the process died now: the chain can be resumed.
		n, ok, err := audit.ReadDirCheckpoint(dir, "")
		if err != nil || !ok {
			t.Fatalf("no checkpoint after the first record: %v", err)
		}
		if c, err := audit.OpenCheckpoint(n.Note, k.verify().Verifiers); err != nil || c.Size != 2 {
			t.Fatalf("%+v %v", c, err)
		}
		s2 := signedSink(t, dir, k, audit.FileConfig{})
		s2.Close()
		s.Close()
	})

	t.Run("older checkpoint put back", func(t *testing.T) {
		dir := t.TempDir()
		s := signedSink(t, dir, k, audit.FileConfig{MaxBytes: 6 << 10})
		writeEvents(t, s, 0, 10)
		sc, err := s.Checkpoint()
		if err != nil {
			t.Fatal(err)
		}
		older, _ := os.ReadFile(checkpointPath(dir))
		writeEvents(t, s, 10, 20)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		removeTail(t, dir, 3)
		os.WriteFile(checkpointPath(dir), older, 0o600)
		_, err = audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: k.signer})
		if !errors.Is(err, audit.ErrTampered) || !strings.Contains(err.Error(), fmt.Sprintf("covers %d records, but when", sc.Size)) ||
			!strings.Contains(err.Error(), "the checkpoint was replaced by an older one") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("a chain written before checkpoints without one", func(t *testing.T) {
		// No header says checkpointed: Verify keeps its plain message.
		dir := t.TempDir()
		s, _ := audit.NewFileSink(audit.FileConfig{Dir: dir, Now: newClock().Now})
		writeEvents(t, s, 0, 2)
		s.Close()
		rep := verifyDir(t, dir, k.verify())
		wantProblem(t, rep, audit.BadCheckpoint, "no checkpoint was given: nothing shows where the chain ends")
	})
}
