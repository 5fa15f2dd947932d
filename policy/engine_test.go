package policy

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	policyA   = "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n"
	policyB   = "rules:\n  - name: b\n    effect: deny\n    when: 'true'\n"
	policyBad = "rules:\n  - name: bad\n    effect: allow\n    when: request.nope\n"
)

// writeFile replaces path atomically, as a deployment would.
func writeFile(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestEngineReloadKeepsGoodPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyA)
	var logs bytes.Buffer
	e, err := NewEngine(EngineConfig{Files: []string{path}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	in := agentInput("s3:GetObject", "")
	revA := e.Policy().Revision()
	if d := e.Decide(in); d.Effect != Allow || d.Revision != revA {
		t.Fatalf("got %s", d)
	}

	writeFile(t, path, policyBad)
	err = e.Reload()
	var pe *Error
	if !errors.As(err, &pe) || pe.Pos.Line != 4 || !strings.HasSuffix(pe.Pos.File, "policy.yaml") {
		t.Fatalf("Reload error = %v, want a positioned error", err)
	}
	if d := e.Decide(in); d.Effect != Allow || d.Revision != revA {
		t.Fatalf("after a bad reload: %s (revision %s)", d, d.Revision)
	}
	if !strings.Contains(logs.String(), "reload failed") {
		t.Errorf("no log line for the failed reload: %q", logs.String())
	}

	writeFile(t, path, policyB)
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(in); d.Effect != Deny || d.Rule != "b" || d.Revision == revA {
		t.Fatalf("after a good reload: %s", d)
	}
	if d := e.Explain(in); len(d.Trace) != 1 {
		t.Errorf("Explain trace = %+v", d.Trace)
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := e.Reload(); err == nil {
		t.Fatal("Reload of a missing file succeeded")
	}
	if d := e.Decide(in); d.Rule != "b" {
		t.Fatalf("after a failed reload: %s", d)
	}
}

func TestNewEngineRejectsBadPolicy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyBad)
	if _, err := NewEngine(EngineConfig{Files: []string{path}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v", err)
	}
	if _, err := NewEngine(EngineConfig{}); err == nil {
		t.Fatal("NewEngine without files succeeded")
	}
}

func TestStaticEngine(t *testing.T) {
	p := mustCompile(t, policyA, Options{})
	e := NewStaticEngine(p)
	if err := e.Reload(); err == nil {
		t.Fatal("Reload on a static engine succeeded")
	}
	if err := e.Replace(Config{Rules: []Rule{{Name: "x", Effect: Allow, When: "nope"}}}); err == nil {
		t.Fatal("Replace with a bad config succeeded")
	}
	if e.Policy() != p {
		t.Fatal("a bad Replace replaced the policy")
	}
	if err := e.Replace(Config{Rules: []Rule{{Name: "x", Effect: Deny, When: "true"}}}); err != nil {
		t.Fatal(err)
	}
	if d := e.Decide(agentInput("s3:GetObject", "")); d.Rule != "x" {
		t.Fatalf("got %s", d)
	}
}

// TestEngineReloadRace reloads good and bad policies while other
// goroutines decide. Run with -race. Every decision must come from one of
// the two good policies, whole.
func TestEngineReloadRace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyA)
	e, err := NewEngine(EngineConfig{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	revA := e.Policy().Revision()
	revB := mustCompile(t, policyB, Options{}).Revision()
	var stop atomic.Bool
	var decisions atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			in := agentInput("s3:GetObject", "arn:aws:s3:::b/k")
			for !stop.Load() {
				d := e.Decide(in)
				decisions.Add(1)
				switch {
				case d.Effect == Allow && d.Rule == "a" && d.Revision == revA:
				case d.Effect == Deny && d.Rule == "b" && d.Revision == revB:
				default:
					t.Errorf("torn or unexpected decision: %s (revision %s)", d, d.Revision)
					return
				}
			}
		})
	}
	good, bad := 0, 0
	for i := range 60 {
		content := []string{policyA, policyBad, policyB}[i%3]
		writeFile(t, path, content)
		if err := e.Reload(); err != nil {
			bad++
		} else {
			good++
		}
	}
	stop.Store(true)
	wg.Wait()
	if good != 40 || bad != 20 || decisions.Load() == 0 {
		t.Fatalf("good reloads %d, bad %d, decisions %d", good, bad, decisions.Load())
	}
}

func TestEngineWatch(t *testing.T) {
	if testing.Short() {
		t.Skip("polls the file system")
	}
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyA)
	e, err := NewEngine(EngineConfig{Files: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Watch(ctx, 10*time.Millisecond) }()
	defer func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v", err)
		}
	}()
	revA := e.Policy().Revision()
	writeFile(t, path, policyBad)
	writeFile(t, path, policyB)
	deadline := time.Now().Add(10 * time.Second)
	for e.Policy().Revision() == revA {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not pick up the change")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := e.Decide(agentInput("s3:GetObject", "")); d.Rule != "b" {
		t.Fatalf("got %s", d)
	}
}
