package audit_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// A fail-closed trail on a hash-chained file sink: the intent is written
// before the call goes ahead, the completion after it; then the chain is
// verified, edited, and verified again.
func Example() {
	dir, _ := os.MkdirTemp("", "audit-example")
	defer os.RemoveAll(dir)
	clock := func() time.Time { return time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC) }

	sink, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Now: clock})
	if err != nil {
		panic(err)
	}
	trail, _ := audit.NewTrail(audit.TrailConfig{Sink: sink}) // FailClosed
	ctx := context.Background()

	ev := &audit.Event{
		ID: "ev-1", CallID: "call-1", Time: clock(), Phase: audit.PhaseIntent, SessionID: "ASIA1",
		Principal: audit.PrincipalInfo{ID: "https://issuer.example#agent-7", Subject: "agent-7", Role: "ops"},
		Request:   audit.RequestInfo{Service: "s3", Region: "eu-west-1", Action: "s3:DeleteBucket", Resources: []string{"arn:aws:s3:::old-logs"}},
		Decision:  &audit.DecisionInfo{Effect: "approve", Rule: "bucket-deletes"},
		Approval:  &audit.ApprovalInfo{ID: "A1", State: "approved", Approvers: []audit.Approver{{Principal: "https://issuer.example#alice", Approve: true, Time: clock()}}},
	}
	if err := trail.Intent(ctx, ev); err != nil {
		fmt.Println("refuse the call:", err) // fail closed
		return
	}
	// ... forward the call ...
	done := *ev
	done.ID, done.Phase = "ev-2", audit.PhaseCompletion
	done.Response = &audit.ResponseInfo{Status: 204, AWSRequestID: "4442587FB7D0A2F9", Duration: 80 * time.Millisecond}
	trail.Record(ctx, &done)
	trail.Close()

	rep, _ := audit.VerifyDir(dir, "", audit.VerifyConfig{})
	fmt.Println("intact:", rep.OK(), "records:", rep.Records, "events:", rep.Events)

	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	b, _ := os.ReadFile(files[0])
	os.WriteFile(files[0], []byte(replaceOnce(string(b), "alice", "mallory")), 0o600)
	rep, _ = audit.VerifyDir(dir, "", audit.VerifyConfig{})
	p := rep.Problems[0]
	fmt.Println("after the edit:", p.Kind, "at line", p.Line, "seq", p.Seq)
	// Output:
	// intact: true records: 3 events: 2
	// after the edit: altered at line 2 seq 2
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}
