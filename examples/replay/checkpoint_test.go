package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/audit/pgsink"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

// keys runs replay keygen in a temporary directory.
func keys(t *testing.T, name string) (priv, pub string) {
	t.Helper()
	dir := t.TempDir()
	code, out, stderr := runCmd(t, "keygen", "-o", dir, name)
	if code != 0 {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	skey, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(priv); fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", priv, fi.Mode().Perm())
	}
	secret := strings.TrimSpace(string(skey))
	if strings.Contains(out, secret[len(secret)-40:]) || strings.Contains(stderr, secret[len(secret)-40:]) {
		t.Fatal("keygen printed the private key")
	}
	vkey, _ := os.ReadFile(pub)
	if !strings.Contains(out, strings.TrimSpace(string(vkey))) {
		t.Errorf("keygen did not print the verifier key:\n%s", out)
	}
	return priv, pub
}

// chainWithCheckpoints writes n events with a signer loaded from priv.
func chainWithCheckpoints(t *testing.T, dir, priv string, cfg audit.FileConfig, from, n int) {
	t.Helper()
	signer, err := audit.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dir, cfg.Signer, cfg.MaxBytes = dir, signer, 6<<10
	s, err := audit.NewFileSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < from+n; i++ {
		if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// cutTail removes the last n lines of the newest chain file.
func cutTail(t *testing.T, dir string, n int) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	last := files[len(files)-1]
	b, _ := os.ReadFile(last)
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines)-1 <= n {
		t.Fatalf("%s has %d lines", last, len(lines)-1)
	}
	os.WriteFile(last, []byte(strings.Join(lines[:len(lines)-1-n], "")), 0o600)
}

func snapshot(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	ents, _ := os.ReadDir(from)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(from, e.Name()))
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
	}
	return to
}

func restore(t *testing.T, snap, dir string) {
	t.Helper()
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o700)
	ents, _ := os.ReadDir(snap)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(snap, e.Name()))
		os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600)
	}
}

func TestVerifyCheckpoints(t *testing.T) {
	priv, pub := keys(t, "gw-1")
	dir := t.TempDir()
	chainWithCheckpoints(t, dir, priv, audit.FileConfig{}, 0, 6)
	older := snapshot(t, dir)
	chainWithCheckpoints(t, dir, priv, audit.FileConfig{}, 6, 6)
	newest := filepath.Join(t.TempDir(), "newest.checkpoint")
	b, _ := os.ReadFile(filepath.Join(dir, "audit.checkpoint"))
	os.WriteFile(newest, b, 0o600)
	intact := snapshot(t, dir)

	code, out, stderr := runCmd(t, "verify", dir)
	if code != 0 || !strings.Contains(stderr, "holds a signed checkpoint: pass -key") {
		t.Fatalf("without -key: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = runCmd(t, "verify", "-key", pub, dir)
	if code != 0 || !strings.Contains(out, "checkpoint: ") || !strings.Contains(out, "records of gw-1/audit signed by gw-1") || !strings.Contains(out, "OK: ") {
		t.Fatalf("intact: exit %d\n%s%s", code, out, stderr)
	}

	// The tail cut cleanly: only the checkpoint shows it.
	cutTail(t, dir, 3)
	if code, out, _ := runCmd(t, "verify", dir); code != 0 {
		t.Fatalf("a clean cut is invisible without -key, yet: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "verify", "--key", pub, dir)
	if code != 1 || !strings.Contains(out, ": truncated: the chain ends at record") || !strings.Contains(out, "records were removed from the end") || !strings.Contains(out, "FAILED") {
		t.Fatalf("cut tail: exit %d\n%s", code, out)
	}

	// The tail and the checkpoint file removed: the chain's headers show
	// it was checkpointed.
	os.Remove(filepath.Join(dir, "audit.checkpoint"))
	code, out, _ = runCmd(t, "verify", "-key", pub, dir)
	if code != 1 || !strings.Contains(out, "checkpoint: no checkpoint was given, although the header of "+dir) {
		t.Fatalf("checkpoint removed: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "verify", "-key", pub, "-checkpoint", newest, dir)
	if code != 1 || !strings.Contains(out, "truncated: the chain ends at record") || !strings.Contains(out, newest) {
		t.Fatalf("checkpoint removed, newest kept elsewhere: exit %d\n%s", code, out)
	}

	// Rolled back as a whole to the older copy.
	restore(t, older, dir)
	if code, out, _ := runCmd(t, "verify", "-key", pub, dir); code != 0 {
		t.Fatalf("an older copy is consistent on its own: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "verify", "-key", pub, "-checkpoint", newest, dir)
	if code != 1 || !strings.Contains(out, "rollback: checkpoint covers") || !strings.Contains(out, "truncated") {
		t.Fatalf("rolled back: exit %d\n%s", code, out)
	}

	// A forged checkpoint, and a wrong key.
	restore(t, intact, dir)
	other, otherPub := keys(t, "gw-1")
	forgedDir := t.TempDir()
	chainWithCheckpoints(t, forgedDir, other, audit.FileConfig{}, 0, 12)
	b, _ = os.ReadFile(filepath.Join(forgedDir, "audit.checkpoint"))
	os.WriteFile(filepath.Join(dir, "audit.checkpoint"), b, 0o600)
	code, out, _ = runCmd(t, "verify", "-key", pub, dir)
	if code != 1 || !strings.Contains(out, "checkpoint: checkpoint does not verify: audit: checkpoint is not signed by a known key") {
		t.Fatalf("forged checkpoint: exit %d\n%s", code, out)
	}
	restore(t, intact, dir)
	if code, out, _ := runCmd(t, "verify", "-key", otherPub, dir); code != 1 || !strings.Contains(out, "not signed by a known key") {
		t.Fatalf("wrong key: exit %d\n%s", code, out)
	}
	if code, out, _ := runCmd(t, "verify", "-key", pub, "-origin", "gw-2/audit", dir); code != 1 || !strings.Contains(out, `not "gw-2/audit"`) {
		t.Fatalf("wrong origin: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{
		{"verify", "-checkpoint", newest, dir},                     // needs -key
		{"verify", "-key", priv, dir},                              // a private key
		{"verify", "-key", filepath.Join(dir, "nope"), dir},        // missing
		{"verify", "-key", pub, "-checkpoint", dir + "/nope", dir}, // missing
		{"verify", "-key", pub, "-postgres", "::not a dsn::", dir}, // bad DSN
		{"keygen"}, {"keygen", "a b"}, {"keygen", "../x"}, {"keygen", "a+b"},
	} {
		if code, _, stderr := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2 (%s)", args, code, stderr)
		}
		if strings.Contains(strings.Join(args, " "), priv) {
			if _, _, stderr := runCmd(t, args...); strings.Contains(stderr, "PRIVATE+KEY") {
				t.Errorf("error quotes the private key: %s", stderr)
			}
		}
	}
	if code, _, _ := runCmd(t, "keygen", "-o", filepath.Dir(priv), "gw-1"); code != 1 {
		t.Errorf("keygen over existing files: exit %d, want 1", code)
	}
}

// TestVerifyPostgres: replay verify -postgres takes the newest checkpoints
// from the audit/pgsink table.
func TestVerifyPostgres(t *testing.T) {
	schema := pgtest.Schema(t, "replay_test_")
	ctx := context.Background()
	store, err := pgsink.NewCheckpointStore(ctx, pgsink.CheckpointStoreConfig{DSN: pgtest.DSN(), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	priv, pub := keys(t, "gw-1")
	dir := t.TempDir()
	chainWithCheckpoints(t, dir, priv, audit.FileConfig{CheckpointWriter: store}, 0, 6)
	older := snapshot(t, dir)
	chainWithCheckpoints(t, dir, priv, audit.FileConfig{CheckpointWriter: store}, 6, 6)

	args := []string{"verify", "-key", pub, "-postgres", pgtest.DSN(), "-schema", schema, dir}
	if code, out, stderr := runCmd(t, args...); code != 0 {
		t.Fatalf("intact: exit %d\n%s%s", code, out, stderr)
	}
	restore(t, older, dir)
	code, out, _ := runCmd(t, args...)
	if code != 1 || !strings.Contains(out, "postgres "+schema+".gatehouse_audit_checkpoints id ") || !strings.Contains(out, "truncated") {
		t.Fatalf("rolled back: exit %d\n%s", code, out)
	}
	code, _, stderr := runCmd(t, "verify", "-key", pub, "-postgres", pgtest.DSN(), "-schema", schema, "-origin", "elsewhere", dir)
	if code != 1 || !strings.Contains(stderr, `holds no checkpoint of origin "elsewhere"`) {
		t.Fatalf("unknown origin: exit %d\n%s", code, stderr)
	}
}

// TestVerifyResumedWithoutCheckpoint: a trail resumed without its
// checkpoint (FileConfig.InsecureResumeWithoutCheckpoint, after the
// newest records and the checkpoint were removed) fails verify -key,
// naming the record where it was resumed.
func TestVerifyResumedWithoutCheckpoint(t *testing.T) {
	priv, pub := keys(t, "gw-1")
	dir := t.TempDir()
	chainWithCheckpoints(t, dir, priv, audit.FileConfig{}, 0, 6)
	cutTail(t, dir, 2)
	os.Remove(filepath.Join(dir, "audit.checkpoint"))
	chainWithCheckpoints(t, dir, priv, audit.FileConfig{InsecureResumeWithoutCheckpoint: true}, 6, 2)
	code, out, _ := runCmd(t, "verify", "-key", pub, dir)
	if code != 1 || !regexp.MustCompile(`:1: checkpoint: the chain was resumed at record \d+ without its checkpoint`).MatchString(out) || !strings.Contains(out, "FAILED") {
		t.Fatalf("exit %d\n%s", code, out)
	}
	if code, out, _ := runCmd(t, "verify", dir); code != 0 {
		t.Fatalf("the chain alone is intact: exit %d\n%s", code, out)
	}
}
