package approval_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

// BenchmarkGateQueueMemory is the proxy's queue path on a new request:
// grant lookup miss, create, notify (none).
func BenchmarkGateQueueMemory(b *testing.B) {
	s, _ := approval.NewMemoryStore(approval.MemoryConfig{MaxRecords: 1 << 30})
	br, _ := approval.New(approval.Config{Store: s})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		req := approvaltest.Request(agent, fmt.Sprint("b", i), "ops")
		if res, err := br.Gate(ctx, req, approval.GateOptions{}); err != nil || res.Outcome != approval.OutcomePending {
			b.Fatal(res.Outcome, err)
		}
	}
}

// BenchmarkApproveConsumeMemory is one approval and the grant's use.
func BenchmarkApproveConsumeMemory(b *testing.B) {
	s, _ := approval.NewMemoryStore(approval.MemoryConfig{MaxRecords: 1 << 30})
	br, _ := approval.New(approval.Config{Store: s})
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		req := approvaltest.Request(agent, fmt.Sprint("b", i), "ops")
		rec, _, _ := br.Request(ctx, req)
		if _, err := br.Approve(ctx, rec.ID, alice, ""); err != nil {
			b.Fatal(err)
		}
		if _, ok, _ := br.ConsumeGrant(ctx, agent, req.Fingerprint); !ok {
			b.Fatal("not consumed")
		}
	}
}
