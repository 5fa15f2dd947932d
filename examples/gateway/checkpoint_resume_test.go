package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// TestCheckpointMissingRefused: the gateway does not start on a
// checkpointed trail whose newest records and checkpoint file were
// removed (a restart used to sign the cut trail and hide the cut), and
// says which setting starts it anyway; with that setting it starts once,
// and replay verify -key reports where the trail was resumed.
func TestCheckpointMissingRefused(t *testing.T) {
	e := newEnv(t)
	skey, vkey, err := note.GenerateKey(rand.Reader, "gw-resume")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	trail := filepath.Join(t.TempDir(), "trail")
	section := fmt.Sprintf("audit:\n  sinks: [file]\n  dir: %s\n  checkpoint:\n    keyFile: %s\n    interval: 1h\n", trail, e.write("gw-resume.key", skey+"\n"))
	cfg := e.withAudit(section)
	ctx := context.Background()
	calls := func(cfg string) {
		gw := e.start(cfg)
		for range 3 {
			if _, err := s3Client(e.agent(gw.url, "agent")).ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := gw.stop(); err != nil {
			t.Fatal(err)
		}
	}
	calls(cfg)

	// Remove the last three records and the checkpoint file.
	files, _ := filepath.Glob(filepath.Join(trail, "audit-*.jsonl"))
	last := files[len(files)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if err := os.WriteFile(last, bytes.Join(lines[:len(lines)-4], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(trail, audit.CheckpointFileName(""))); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"-check"}, nil} {
		var stdout, stderr bytes.Buffer
		err := run(ctx, append([]string{"-config", e.write("cut.yaml", cfg)}, args...), &stdout, &stderr)
		if !errors.Is(err, audit.ErrCheckpointMissing) ||
			!strings.Contains(err.Error(), "gateway: config: audit.dir: audit: chain verification failed: the chain's checkpoint is missing: "+trail) ||
			!strings.Contains(err.Error(), "audit.checkpoint.insecureResumeWithoutCheckpoint") {
			t.Fatalf("start %v on the cut trail: %v\n%s", args, err, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(trail, audit.CheckpointFileName(""))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the refused start wrote a checkpoint: %v", err)
	}

	// Started once on purpose: the trail says so for good.
	calls(e.withAudit(section + "    insecureResumeWithoutCheckpoint: true\n"))
	rep, err := audit.VerifyDir(trail, "", audit.VerifyConfig{Verifiers: []note.Verifier{verifier}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK() || rep.Problems[0].Kind != audit.BadCheckpoint || !strings.Contains(rep.Problems[0].Detail, "without its checkpoint") {
		t.Fatalf("the resumed trail: %v", rep.Problems)
	}
	// The checkpoint is there again: the setting is not needed any more.
	calls(cfg)
}
