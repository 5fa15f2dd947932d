package approval_test

import (
	"context"
	"errors"
	"testing"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

func newMemory(t *testing.T) approval.Store {
	s, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestMemoryConformance(t *testing.T) {
	approvaltest.Run(t, newMemory)
}

func TestMemoryStoreFull(t *testing.T) {
	s, err := approval.NewMemoryStore(approval.MemoryConfig{MaxRecords: 2})
	if err != nil {
		t.Fatal(err)
	}
	e := approvaltest.NewEnv(t, s, nil)
	ctx := context.Background()
	for i, bucket := range []string{"a", "b", "c"} {
		_, _, err := e.Broker.Request(ctx, approvaltest.Request(approvaltest.Principal("agent"), bucket, "ops"))
		if wantFull := i == 2; errors.Is(err, approval.ErrStoreFull) != wantFull {
			t.Fatalf("request %d: err = %v", i, err)
		}
	}
}
