package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// TestHeldCallCutAtShutdownIsRecorded: a call waiting for approval when
// the gateway shuts down (the drain timeout runs out first) still gets its
// completion record in the trail, which the gateway closes only after
// every handler has finished.
func TestHeldCallCutAtShutdownIsRecorded(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "trail")
	cfg := e.withAudit("audit:\n  sinks: [file]\n  dir: " + dir + "\n")
	cfg = strings.Replace(cfg, "shutdownTimeout: 5s", "shutdownTimeout: 300ms", 1)
	if !strings.Contains(cfg, "shutdownTimeout: 300ms") {
		t.Fatal("the test config has no shutdownTimeout to shorten")
	}
	gw := e.start(cfg)
	agent := e.agent(gw.url, "agent")
	if _, err := agent.Credentials.Retrieve(context.Background()); err != nil {
		t.Fatal(err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := s3Client(agent).DeleteBucket(context.Background(), &s3.DeleteBucketInput{Bucket: aws.String("prod-reports")},
			func(o *s3.Options) { o.RetryMaxAttempts = 1 })
		held <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, metrics := get(t, gw.url+OwnPrefix+"metrics"); strings.Contains(metrics, "gatehouse_approvals_pending 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the DeleteBucket was never held")
		}
	}
	gw.stop() // the drain times out on the held call
	select {
	case err := <-held:
		if err == nil {
			t.Fatal("the held DeleteBucket succeeded")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held call never ended")
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	if rep, err := audit.Verify(files...); err != nil || !rep.OK() {
		t.Fatalf("trail: %v %v", err, rep.Problems)
	}
	events, err := audit.ReadEvents(files...)
	if err != nil {
		t.Fatal(err)
	}
	var completion *audit.Event
	for i, ev := range events {
		if ev.Request.Action == "s3:DeleteBucket" && ev.Phase == audit.PhaseCompletion {
			completion = &events[i]
		}
	}
	if completion == nil {
		t.Fatalf("no completion record for the held DeleteBucket among %d events", len(events))
	}
	if r := completion.Response; r == nil || r.Status < 400 || r.ErrorCode == "" || completion.Approval == nil {
		t.Fatalf("completion record %+v", completion.Response)
	}
}
