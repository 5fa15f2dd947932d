package pgstore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/pgtest"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// open returns a Store with its own pool on schema, closed when t ends
// (before the schema is dropped).
func open(t testing.TB, schema string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{DSN: pgtest.DSN(), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func newStore(t *testing.T) approval.Store { return open(t, pgtest.Schema(t, "approval_test_")) }

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
