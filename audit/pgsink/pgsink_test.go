package pgsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

func newPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pgtest.DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

func openSink(t testing.TB, pool *pgxpool.Pool, schema, chain string) *Sink {
	t.Helper()
	s, err := New(context.Background(), Config{Pool: pool, Schema: schema, Chain: chain})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustVerify(t testing.TB, pool *pgxpool.Pool, schema, chain string) audit.Report {
	t.Helper()
	rep, err := Verify(context.Background(), pool, VerifyConfig{Schema: schema, Chain: chain})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func TestConformance(t *testing.T) {
	pgtest.Require(t)
	audittest.Run(t, func(t *testing.T) (audit.Sink, func() []audit.Event) {
		schema := pgtest.Schema(t, "audit_test_")
		s, err := New(context.Background(), Config{DSN: pgtest.DSN(), Schema: schema, Chain: "replica-a"})
		if err != nil {
			t.Fatal(err)
		}
		return s, func() []audit.Event {
			pool := newPool(t)
			rep := mustVerify(t, pool, schema, "replica-a")
			if !rep.OK() {
				t.Fatalf("chain does not verify: %v", rep.Err())
			}
			evs, err := ReadEvents(context.Background(), pool, schema, "replica-a", 0, 100000)
			if err != nil {
				t.Fatal(err)
			}
			return evs
		}
	})
}

// TestReplicas writes from two replicas at once, each on its own chain,
// reopens one (it resumes its chain) and verifies both.
func TestReplicas(t *testing.T) {
	schema := pgtest.Schema(t, "audit_test_")
	pool := newPool(t)
	ctx := context.Background()
	a, b := openSink(t, pool, schema, "gw-a"), openSink(t, pool, schema, "gw-b")
	var wg sync.WaitGroup
	for w := range 8 {
		s := a
		if w%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range 25 {
				if err := s.Write(ctx, audittest.NewEvent(w*100+i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	a.Close()
	a = openSink(t, pool, schema, "gw-a")
	if h := a.Head(); h.Seq != 100 {
		t.Fatalf("reopened chain head %+v, want seq 100", h)
	}
	a.Write(ctx, audittest.NewEvent(999))
	head := a.Head()
	a.Close()
	b.Close()
	chains, err := Chains(ctx, pool, schema)
	if err != nil || strings.Join(chains, ",") != "gw-a,gw-b" {
		t.Fatalf("chains %v %v", chains, err)
	}
	for _, c := range chains {
		rep := mustVerify(t, pool, schema, c)
		if !rep.OK() {
			t.Fatalf("%s: %v", c, rep.Problems)
		}
	}
	rep, _ := Verify(ctx, pool, VerifyConfig{Schema: schema, Chain: "gw-a", Head: &head})
	if !rep.OK() || rep.Events != 101 {
		t.Fatalf("%+v", rep)
	}
}

func TestAppendOnly(t *testing.T) {
	schema := pgtest.Schema(t, "audit_test_")
	pool := newPool(t)
	s := openSink(t, pool, schema, "r1")
	s.Write(context.Background(), audittest.NewEvent(1))
	s.Close()
	tbl := pgx.Identifier{schema, Table}.Sanitize()
	for _, stmt := range []string{
		`UPDATE ` + tbl + ` SET event = '{}'`,
		`DELETE FROM ` + tbl,
		`TRUNCATE ` + tbl,
	} {
		_, err := pool.Exec(context.Background(), stmt)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	// Migrating again is harmless.
	if err := Migrate(context.Background(), pool, schema); err != nil {
		t.Fatal(err)
	}
}

// TestTamper disables the triggers, as a database superuser could, and
// changes rows: Verify finds each change.
func TestTamper(t *testing.T) {
	tests := []struct {
		name     string
		sql      string
		wantKind audit.ProblemKind
		wantSeq  uint64
	}{
		{"edit an event", `UPDATE %s SET event = replace(event, 'agent-7', 'agent-8') WHERE seq = 4`, audit.Altered, 4},
		{"delete a row", `DELETE FROM %s WHERE seq = 6`, audit.Missing, 6},
		{"delete the tail beyond the anchor", `DELETE FROM %s WHERE seq > 8`, audit.Truncated, 9},
		{"swap two events", `UPDATE %[1]s SET event = CASE seq WHEN 3 THEN (SELECT event FROM %[1]s WHERE seq = 5) ELSE (SELECT event FROM %[1]s WHERE seq = 3) END WHERE seq IN (3, 5)`, audit.Altered, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := pgtest.Schema(t, "audit_test_")
			pool := newPool(t)
			s := openSink(t, pool, schema, "r1")
			for i := range 10 {
				if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
					t.Fatal(err)
				}
			}
			head := s.Head()
			s.Close()
			tbl := pgx.Identifier{schema, Table}.Sanitize()
			pgtest.Exec(t, `ALTER TABLE `+tbl+` DISABLE TRIGGER USER`)
			pgtest.Exec(t, fmt.Sprintf(tt.sql, tbl))
			rep, err := Verify(context.Background(), pool, VerifyConfig{Schema: schema, Chain: "r1", Head: &head})
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() || rep.Problems[0].Kind != tt.wantKind || rep.Problems[0].Seq != tt.wantSeq {
				t.Fatalf("problems %v, want %s at %d", rep.Problems, tt.wantKind, tt.wantSeq)
			}
		})
	}
}

// TestFailsClosed: a write the database refuses is an error from Write,
// and a second live writer on the same chain is refused.
func TestFailsClosed(t *testing.T) {
	schema := pgtest.Schema(t, "audit_test_")
	pool := newPool(t)
	ctx := context.Background()
	a := openSink(t, pool, schema, "same")
	b := openSink(t, pool, schema, "same")
	if err := a.Write(ctx, audittest.NewEvent(1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Write(ctx, audittest.NewEvent(2)); err == nil {
		t.Fatal("two writers appended to one chain")
	}
	// b re-read the head after the failure: it now links correctly.
	if err := b.Write(ctx, audittest.NewEvent(3)); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b.Close()
	if rep := mustVerify(t, pool, schema, "same"); !rep.OK() || rep.Events != 2 {
		t.Fatalf("%+v", rep)
	}
	c := openSink(t, pool, schema, "c")
	pgtest.Exec(t, `DROP TABLE `+pgx.Identifier{schema, Table}.Sanitize())
	trail, _ := audit.NewTrail(audit.TrailConfig{Sink: c})
	e := audittest.NewEvent(4)
	e.Phase = audit.PhaseIntent
	if err := trail.Intent(ctx, e); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Intent with the table gone = %v", err)
	}
	c.Close()
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"neither pool nor dsn", Config{Chain: "a"}, "Config.Pool"},
		{"bad schema", Config{DSN: "postgres://x", Schema: "Robert'); DROP", Chain: "a"}, "Config.Schema"},
		{"no chain", Config{DSN: "postgres://x"}, "Config.Chain"},
		{"bad chain", Config{DSN: "postgres://x", Chain: "a b"}, "Config.Chain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
