package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// A chain written with a checkpoint key proves its own end: records cut
// from its end are found by Verify with the verifier key, not by the hash
// chain alone. The key pair is an example's: make yours with
// note.GenerateKey or "replay keygen NAME", and keep the signer key to
// the gateway.
func ExampleFileSink_checkpoints() {
	const (
		signerKey   = "PRIVATE+KEY+gw-1+60e6474b+AQglQwMoTkjS/880Uwkb2vXDwc7yeOgVNkdvnVKxtUz5"
		verifierKey = "gw-1+60e6474b+AarlrcdMaNoQ02B1Y6JWTA3TY1ggitNgbNTK/w8Tux+b"
	)
	dir, _ := os.MkdirTemp("", "audit-checkpoints")
	defer os.RemoveAll(dir)
	signer, _ := note.NewSigner(signerKey)
	verifier, _ := note.NewVerifier(verifierKey)
	clock := func() time.Time { return time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC) }

	sink, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: signer, Now: clock})
	if err != nil {
		panic(err)
	}
	for i := range 5 {
		sink.Write(context.Background(), audittest.NewEvent(i))
	}
	sink.Close() // writes the final checkpoint

	cp, _ := os.ReadFile(filepath.Join(dir, audit.CheckpointFileName("")))
	body, _, _ := strings.Cut(string(cp), "\n\n")
	origin, size, _ := strings.Cut(body, "\n")
	fmt.Println("checkpoint:", origin, strings.SplitN(size, "\n", 2)[0], "records")

	check := audit.VerifyConfig{Verifiers: []note.Verifier{verifier}}
	rep, _ := audit.VerifyDir(dir, "", check)
	fmt.Println("intact:", rep.OK())

	// Cut the last two records off the end, cleanly.
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	b, _ := os.ReadFile(files[0])
	lines := strings.SplitAfter(string(b), "\n")
	os.WriteFile(files[0], []byte(strings.Join(lines[:len(lines)-3], "")), 0o600)

	rep, _ = audit.VerifyDir(dir, "", audit.VerifyConfig{})
	fmt.Println("hash chain alone:", rep.OK())
	rep, _ = audit.VerifyDir(dir, "", check)
	fmt.Println("with the verifier key:", rep.Problems[0].Kind, "at record", rep.Problems[0].Seq)
	// Output:
	// checkpoint: gw-1/audit 6 records
	// intact: true
	// hash chain alone: true
	// with the verifier key: truncated at record 5
}
