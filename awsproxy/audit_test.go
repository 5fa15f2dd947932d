package awsproxy_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// TestAuditTrail: every call leaves an intent and a completion event in a
// hash-chained file that verifies, naming the principal, the action, the
// decision and the upstream's request id; a refused call leaves a
// completion event marked refused.
func TestAuditTrail(t *testing.T) {
	dir := t.TempDir()
	sink, err := audit.NewFileSink(audit.FileConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	trail, err := audit.NewTrail(audit.TrailConfig{Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.Parse("p.yaml", []byte("default: deny\nrules:\n  - name: s3-ok\n    effect: allow\n    when: request.service == \"s3\" && request.action != \"s3:DeleteBucket\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	recDir := t.TempDir()
	rec, err := audit.NewFileRecorder(audit.FileRecorderConfig{Dir: recDir})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Audit = trail
		c.Recorder = rec
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(p), nil)}
	}})
	ctx := context.Background()
	client := h.s3Client(t)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("audited")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("audited"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("audited")}); apiCode(err) != "AccessDenied" {
		t.Fatalf("DeleteBucket: %v", err)
	}
	if err := trail.Close(); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	rep, err := audit.Verify(files...)
	if err != nil {
		t.Fatalf("chain does not verify: %v (%+v)", err, rep)
	}
	events, err := audit.ReadEvents(files...)
	if err != nil {
		t.Fatal(err)
	}
	var putIntent, putDone, deleteDone *audit.Event
	for i := range events {
		e := &events[i]
		switch {
		case e.Request.Action == "s3:PutObject" && e.Phase == audit.PhaseIntent:
			putIntent = e
		case e.Request.Action == "s3:PutObject" && e.Phase == audit.PhaseCompletion:
			putDone = e
		case e.Request.Action == "s3:DeleteBucket" && e.Phase == audit.PhaseCompletion:
			deleteDone = e
		}
	}
	if putIntent == nil || putDone == nil || deleteDone == nil {
		t.Fatalf("missing events among %d", len(events))
	}
	if putDone.Principal.Subject != testPrincipal.Subject || putDone.Decision == nil || putDone.Decision.Rule != "s3-ok" {
		t.Fatalf("completion event lacks the principal or decision: %+v", putDone)
	}
	if putDone.Response == nil || putDone.Response.Status != 200 || putDone.Response.AWSRequestID == "" || putDone.Response.BytesIn != 1 {
		t.Fatalf("completion response: %+v", putDone.Response)
	}
	if !deleteDone.Response.Refused || deleteDone.Response.ErrorCode != "AccessDenied" || deleteDone.Decision.Effect != "deny" {
		t.Fatalf("refused call's event: %+v %+v", deleteDone.Response, deleteDone.Decision)
	}
	for _, e := range events {
		if strings.Contains(string(mustJSON(t, e)), clientSecret) {
			t.Fatal("an audit event contains the client's secret")
		}
	}
	// The session recording has every call, without credentials.
	exchanges, err := audit.LoadSession(recDir, clientAKID)
	if err != nil {
		t.Fatal(err)
	}
	if len(exchanges) != 3 {
		t.Fatalf("recorded %d exchanges, want 3", len(exchanges))
	}
	for _, x := range exchanges {
		if x.Request.Header.Get("Authorization") != "" || x.Event == nil || x.Event.Principal.Subject != testPrincipal.Subject {
			t.Fatalf("recorded exchange leaks credentials or lacks its event: %+v", x.Request.Header)
		}
	}
	if last := exchanges[2]; last.Response.Status != 403 || !strings.Contains(last.Response.Body.Text, "AccessDenied") {
		t.Fatalf("refused call recorded as %d %q", last.Response.Status, last.Response.Body.Text)
	}
}

// TestAuditFailClosed: when the trail cannot write the intent event, the
// call is refused and never reaches the upstream.
func TestAuditFailClosed(t *testing.T) {
	trail, err := audit.NewTrail(audit.TrailConfig{Sink: &audittest.Failing{Err: errors.New("disk full")}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) { c.Audit = trail }})
	before := h.S3Hits.Load()
	_, err = h.s3Client(t).ListBuckets(context.Background(), &s3.ListBucketsInput{})
	if got := apiCode(err); got != "ServiceUnavailable" {
		t.Fatalf("code %q (%v), want ServiceUnavailable", got, err)
	}
	if h.S3Hits.Load() != before {
		t.Fatal("a call whose intent could not be audited reached the upstream")
	}
}

func mustJSON(t *testing.T, e audit.Event) []byte {
	t.Helper()
	b, err := audit.Encode(&e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestApprovalEventsReachTheTrail: every approval transition is written to
// the audit trail with the requester, the action and the approver.
func TestApprovalEventsReachTheTrail(t *testing.T) {
	mem := &audittest.Memory{}
	trail, err := audit.NewTrail(audit.TrailConfig{Sink: mem})
	if err != nil {
		t.Fatal(err)
	}
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := approval.New(approval.Config{Store: store, Events: awsproxy.ApprovalEvents(trail)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec, _, err := broker.Request(ctx, approval.Request{
		Principal: testPrincipal, Action: "s3:DeleteBucket", Resources: []string{"arn:aws:s3:::prod-x"},
		Fingerprint: "fp-1", Requirements: []approval.Requirement{{Rule: "r", Groups: []string{"sec"}, MinApprovals: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	alice := identity.Principal{Issuer: "https://idp.test", Subject: "alice", Groups: []string{"sec"}}
	if _, err := broker.Approve(ctx, rec.ID, alice, "ok"); err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range mem.Events() {
		if e.Phase != audit.PhaseApproval || e.Approval == nil || e.Approval.ID != rec.ID || e.Request.Action != "s3:DeleteBucket" || e.Principal.Subject != testPrincipal.Subject {
			t.Fatalf("approval event: %+v", e)
		}
		types = append(types, e.Approval.Event)
	}
	if got := strings.Join(types, ","); !strings.Contains(got, "requested") || !strings.Contains(got, "approved") {
		t.Fatalf("approval events %q, want requested and approved", got)
	}
}
