package pgsink

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

// TestCheck: the sink acknowledges stored events, so a fail-closed trail
// accepts it, and its Check fails while its table is gone and after Close.
func TestCheck(t *testing.T) {
	pgtest.Require(t)
	pool := newPool(t)
	schema := pgtest.Schema(t, "audit_test_")
	ctx := context.Background()
	s := openSink(t, pool, schema, "check")
	trail, err := audit.NewTrail(audit.TrailConfig{Sink: s})
	if err != nil {
		t.Fatalf("fail-closed trail on pgsink: %v", err)
	}
	if err := trail.Check(ctx); err != nil {
		t.Fatalf("Check = %v", err)
	}
	pgtest.Exec(t, `ALTER TABLE `+pgx.Identifier{schema, Table}.Sanitize()+` RENAME TO gone`)
	if err := trail.Check(ctx); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Check with the table gone = %v", err)
	}
	pgtest.Exec(t, `ALTER TABLE `+pgx.Identifier{schema, "gone"}.Sanitize()+` RENAME TO `+pgx.Identifier{Table}.Sanitize())
	if err := trail.Check(ctx); err != nil {
		t.Fatalf("Check with the table back = %v", err)
	}
	e := audittest.NewEvent(1)
	e.Phase = audit.PhaseIntent
	if err := trail.Intent(ctx, e); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Check(ctx); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Check after Close = %v", err)
	}
}
