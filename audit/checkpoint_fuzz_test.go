package audit_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// FuzzCheckpoint feeds arbitrary bytes to the checkpoint parsers and to
// Verify as a checkpoint: nothing panics, a body that parses is canonical
// (it re-encodes to the same bytes), a note that opens was signed by the
// known key, and a chain is never reported intact against a checkpoint
// that does not open.
func FuzzCheckpoint(f *testing.F) {
	k := newTestKey(f, "gw-1")
	golden := filepath.Join("testdata", "chain-golden.jsonl")
	rep, err := audit.Verify(golden)
	if err != nil || !rep.OK() {
		f.Fatalf("golden chain: %v %v", err, rep.Problems)
	}
	head := rep.Head
	good, err := audit.Checkpoint{Origin: "gw-1/audit", Size: head.Seq, Hash: head.Hash}.Sign(k.signer)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good.Note)
	f.Add(good.Body())
	f.Add([]byte("o\n1\nAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n"))
	f.Add([]byte("o\n01\n\n\n— gw-1 AAAA\n"))
	f.Add(bytes.Replace(good.Note, []byte("\n2\n"), []byte("\n3\n"), 1))
	known := []note.Verifier{k.verifier}
	f.Fuzz(func(t *testing.T, data []byte) {
		if c, err := audit.ParseCheckpoint(data); err == nil {
			if !bytes.Equal(c.Body(), data) || c.Size == 0 {
				t.Fatalf("parsed %+v from %q, which re-encodes as %q", c, data, c.Body())
			}
		} else if !errors.Is(err, audit.ErrBadCheckpoint) {
			t.Fatalf("ParseCheckpoint error %v does not wrap ErrBadCheckpoint", err)
		}
		sc, openErr := audit.OpenCheckpoint(data, known)
		if openErr == nil {
			if len(sc.Signers) == 0 || sc.Signers[0] != "gw-1" {
				t.Fatalf("opened without the known key's signature: %+v", sc)
			}
			if _, err := audit.ParseCheckpoint(sc.Body()); err != nil {
				t.Fatalf("opened a checkpoint whose body does not parse: %v", err)
			}
		}
		rep, err := audit.VerifyConfig{Verifiers: known, MaxProblems: 5,
			Checkpoints: []audit.CheckpointNote{{Source: "fuzz", Note: data}}}.Verify(golden)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) > 5 {
			t.Fatalf("%d problems kept, bound 5", len(rep.Problems))
		}
		if rep.OK() && openErr != nil {
			t.Fatalf("intact against a checkpoint that does not open (%v)", openErr)
		}
	})
}
