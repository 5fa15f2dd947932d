package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// defaultDSN is the PostgreSQL the development and CI machines run.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func testDSN() string {
	if dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return defaultDSN
}

// requirePostgres skips t when no server answers at testDSN.
func requirePostgres(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Skipf("pgstore: PostgreSQL not reachable at %s (%v): set GATEHOUSE_TEST_POSTGRES to a reachable server to run these tests", testDSN(), err)
	}
	conn.Close(ctx)
}

// admin runs one statement on a fresh connection.
func admin(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// newSchema returns a schema name private to t, dropped when t ends.
func newSchema(t testing.TB) string {
	t.Helper()
	requirePostgres(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "approval_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() { admin(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	return schema
}

// open returns a Store with its own pool on schema, closed when t ends
// (before the schema is dropped).
func open(t testing.TB, schema string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{DSN: testDSN(), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newStore(t *testing.T) approval.Store { return open(t, newSchema(t)) }

// waitListening waits until s's listener is up (started by a Watch).
func waitListening(t testing.TB, s *Store) {
	t.Helper()
	_, stop := s.Watch("warm-up")
	defer stop()
	for deadline := time.Now().Add(10 * time.Second); !s.Listening(); {
		if time.Now().After(deadline) {
			t.Fatal("listener did not connect within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
