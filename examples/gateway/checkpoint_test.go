package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/pgsink"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

// buildBinaries builds the gateway and replay commands into a temporary
// directory.
func buildBinaries(t *testing.T) (gateway, replay string) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/gatehouse-dev/gatehouse/examples/gateway", "github.com/gatehouse-dev/gatehouse/examples/replay")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(dir, "gateway"), filepath.Join(dir, "replay")
}

// process is the gateway binary running in its own process.
type process struct {
	cmd    *exec.Cmd
	url    string
	stderr *bytes.Buffer
	done   chan error
}

func startProcess(t *testing.T, bin, config string) (*process, error) {
	t.Helper()
	cmd := exec.Command(bin, "-config", config)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				urls <- u
			}
		}
		close(urls)
	}()
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case u, ok := <-urls:
		if !ok {
			err := <-p.done
			return nil, fmt.Errorf("gateway exited (%v): %s", err, p.stderr)
		}
		p.url = u
		return p, nil
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("gateway did not start in time: %s", p.stderr)
	}
}

// sigterm stops the process as an orchestrator would and waits for it.
func (p *process) sigterm(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("gateway exited with %v after SIGTERM:\n%s", err, p.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway still running 30s after SIGTERM:\n%s", p.stderr)
	}
}

// replayCmd runs the replay binary and returns its exit status and output.
func replayCmd(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	}
	t.Fatalf("replay %v: %v", args, err)
	return 0, ""
}

// TestCheckpointBinary runs the gateway binary with signed checkpoints,
// drives it with the SDK, stops it with SIGTERM (the shutdown checkpoint
// is the only one: the interval is an hour), and shows that
// `replay verify -key` passes on the trail as written and fails once its
// last records are removed, which the chain alone does not show; the
// gateway then refuses to extend the cut trail.
func TestCheckpointBinary(t *testing.T) {
	e := newEnv(t)
	gwBin, replayBin := buildBinaries(t)
	keys := t.TempDir()
	if code, out := replayCmd(t, replayBin, "keygen", "-o", keys, "gw-test"); code != 0 {
		t.Fatalf("keygen: exit %d\n%s", code, out)
	}
	priv, pub := filepath.Join(keys, "gw-test.key"), filepath.Join(keys, "gw-test.pub")
	trail := filepath.Join(t.TempDir(), "trail")
	config := e.write("checkpoint.yaml", e.withAudit(fmt.Sprintf(`audit:
  sinks: [file]
  dir: %s
  checkpoint:
    keyFile: %s
    interval: 1h
`, trail, priv)))

	gw, err := startProcess(t, gwBin, config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s3c := s3Client(e.agent(gw.url, "agent"))
	for i := range 5 {
		if _, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
		key := fmt.Sprintf("k%d", i)
		if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sandbox-1"), Key: &key, Body: strings.NewReader("x")}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
	}
	gw.sigterm(t)
	skey, _ := os.ReadFile(priv)
	secret := strings.TrimSpace(string(skey))
	if strings.Contains(gw.stderr.String(), secret[len(secret)-40:]) {
		t.Fatal("the gateway logged its checkpoint key")
	}

	code, out := replayCmd(t, replayBin, "verify", "-key", pub, trail)
	m := regexp.MustCompile(`checkpoint: (\d+) records of gw-test/audit signed by gw-test`).FindStringSubmatch(out)
	if code != 0 || m == nil || !strings.Contains(out, "OK: ") || strings.Contains(out, "not covered") {
		t.Fatalf("the trail as written: exit %d\n%s", code, out)
	}
	records := m[1]
	if !strings.Contains(out, "; head "+records+":") {
		t.Fatalf("the shutdown checkpoint does not cover the whole trail (%s records):\n%s", records, out)
	}

	// Remove the last four records, cleanly.
	files, _ := filepath.Glob(filepath.Join(trail, "audit-*.jsonl"))
	last := files[len(files)-1]
	b, err := os.ReadFile(last)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	if len(lines) < 6 {
		t.Fatalf("%s has %d lines", last, len(lines)-1)
	}
	if err := os.WriteFile(last, bytes.Join(lines[:len(lines)-5], nil), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := replayCmd(t, replayBin, "verify", trail); code != 0 {
		t.Fatalf("without -key the hash chain alone cannot see a clean cut, yet: exit %d\n%s", code, out)
	}
	code, out = replayCmd(t, replayBin, "verify", "-key", pub, trail)
	if code != 1 || !strings.Contains(out, "truncated: the chain ends at record") ||
		!strings.Contains(out, "covers "+records+" records: records were removed from the end") || !strings.Contains(out, "FAILED") {
		t.Fatalf("the cut trail: exit %d\n%s", code, out)
	}

	// The gateway will not extend (and re-checkpoint) a cut trail.
	if _, err := startProcess(t, gwBin, config); err == nil || !strings.Contains(err.Error(), "covers "+records+" records but the chain") {
		t.Fatalf("restart on the cut trail: %v", err)
	}
}

// TestCheckpointConfig: the checkpoint entry is checked with the rest of
// the configuration, naming the field.
func TestCheckpointConfig(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	skey, vkey, err := note.GenerateKey(rand.Reader, "gw")
	if err != nil {
		t.Fatal(err)
	}
	priv, verifierOnly := e.write("gw.key", skey+"\n"), e.write("gw.pub", vkey+"\n")
	for _, tc := range []struct{ name, audit, field string }{
		{"without the file sink", "audit:\n  sinks: [slog]\n  checkpoint:\n    keyFile: x\n", "audit.checkpoint"},
		{"without a key", "audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    interval: 1m\n", "audit.checkpoint.keyFile"},
		{"negative interval", "audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    keyFile: x\n    interval: -1m\n", "audit.checkpoint.interval"},
		{"missing key file", "audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    keyFile: " + filepath.Join(dir, "none") + "\n", "audit.checkpoint.keyFile"},
		{"not a signer key", "audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    keyFile: " + verifierOnly + "\n", "audit.checkpoint.keyFile"},
		{"unknown field", "audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    key: x\n", "audit.checkpoint.key"},
		{"empty DSN variable", "audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    keyFile: " + priv + "\n    dsnEnv: GATEHOUSE_TEST_UNSET_DSN\n", "audit.checkpoint.dsnEnv"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e.withAudit(tc.audit)
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-config", e.write("bad.yaml", cfg), "-check"}, &stdout, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %v, want one naming %s", err, tc.field)
			}
			if strings.Contains(err.Error()+stderr.String(), skey[len(skey)-40:]) {
				t.Fatalf("the error quotes the private key: %v", err)
			}
		})
	}
	// A good entry passes -check.
	cfg := e.withAudit("audit:\n  sinks: [file]\n  dir: " + dir + "\n  checkpoint:\n    keyFile: " + priv + "\n    interval: 30s\n    origin: gw/replica-a\n")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"-config", e.write("good.yaml", cfg), "-check"}, &stdout, &stderr); err != nil || !strings.Contains(stdout.String(), "configuration ok") {
		t.Fatalf("-check: %v\n%s", err, stderr.String())
	}
}

// TestCheckpointPostgres: with audit.checkpoint.dsnEnv every checkpoint,
// the shutdown one included, is also kept in PostgreSQL, where it exposes
// the trail directory restored from an older copy.
func TestCheckpointPostgres(t *testing.T) {
	schema := pgtest.Schema(t, "gateway_test_")
	e := newEnv(t)
	t.Setenv("GATEHOUSE_TEST_CHECKPOINT_DSN", pgtest.DSN())
	skey, vkey, err := note.GenerateKey(rand.Reader, "gw-pg")
	if err != nil {
		t.Fatal(err)
	}
	verifier, _ := note.NewVerifier(vkey)
	trail := filepath.Join(t.TempDir(), "trail")
	cfg := e.withAudit(fmt.Sprintf(`audit:
  sinks: [file]
  dir: %s
  checkpoint:
    keyFile: %s
    dsnEnv: GATEHOUSE_TEST_CHECKPOINT_DSN
    schema: %s
`, trail, e.write("gw-pg.key", skey+"\n"), schema))
	ctx := context.Background()
	call := func() {
		gw := e.start(cfg)
		if _, err := s3Client(e.agent(gw.url, "agent")).ListBuckets(ctx, &s3.ListBucketsInput{}); err != nil {
			t.Fatal(err)
		}
		if err := gw.stop(); err != nil {
			t.Fatal(err)
		}
	}
	call()
	older := t.TempDir()
	copyFiles(t, trail, older)
	call()

	pool, err := pgxpool.New(ctx, pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	newest, err := pgsink.ReadCheckpoints(ctx, pool, schema, "gw-pg/audit", 1)
	if err != nil || len(newest) != 1 {
		t.Fatalf("checkpoints in PostgreSQL: %v %v", newest, err)
	}
	local, _ := os.ReadFile(filepath.Join(trail, audit.CheckpointFileName("")))
	if !bytes.Equal(newest[0].Note, local) {
		t.Fatalf("PostgreSQL's newest checkpoint\n%s\nis not the shutdown checkpoint\n%s", newest[0].Note, local)
	}
	check := audit.VerifyConfig{Verifiers: []note.Verifier{verifier}, Checkpoints: newest}
	if rep, err := audit.VerifyDir(trail, "", check); err != nil || !rep.OK() {
		t.Fatalf("the trail as written: %v %v", err, rep.Problems)
	}
	os.RemoveAll(trail)
	copyFiles(t, older, trail)
	rep, err := audit.VerifyDir(trail, "", check)
	if err != nil || rep.OK() || rep.Problems[0].Kind != audit.Truncated {
		t.Fatalf("the trail rolled back: %v %v", err, rep.Problems)
	}
}

func copyFiles(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, ent := range ents {
		b, err := os.ReadFile(filepath.Join(from, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, ent.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
