// Package pgtest gives tests a PostgreSQL to work in: the server named by
// GATEHOUSE_TEST_POSTGRES (default the one the development and CI machines
// run at 127.0.0.1:5432, database test), a skip with a clear message where
// none answers, and private schemas dropped when the test ends.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultDSN is the PostgreSQL the development and CI machines run.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN is GATEHOUSE_TEST_POSTGRES, or DefaultDSN.
func DSN() string {
	if dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES"); dsn != "" {
		return dsn
	}
	return DefaultDSN
}

// Require skips t when no server answers at DSN.
func Require(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, DSN())
	if err != nil {
		t.Skipf("PostgreSQL not reachable at %s (%v): set GATEHOUSE_TEST_POSTGRES to a reachable server to run these tests", DSN(), err)
	}
	conn.Close(ctx)
}

// Exec runs one statement on a fresh connection and fails t on error.
func Exec(t testing.TB, sql string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Schema skips t without a server, else returns a schema name private to
// t (prefix plus random hex), dropped when t ends.
func Schema(t testing.TB, prefix string) string {
	t.Helper()
	Require(t)
	var b [6]byte
	rand.Read(b[:])
	schema := prefix + hex.EncodeToString(b[:])
	t.Cleanup(func() { Exec(t, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE") })
	return schema
}
