package approval

import (
	"context"
	"time"
)

// Store keeps approval records. The broker holds every rule (separation of
// duties, vote counting, expiry, exactly-once grants); a store supplies
// atomicity and change notification. MemoryStore is the single-process
// implementation, policy/approval/pgstore the shared PostgreSQL one, and
// policy/approval/approvaltest a conformance kit every implementation must
// pass.
//
// Contract:
//   - All methods are safe for concurrent use, including from several
//     processes sharing one backing database.
//   - A store never decides anything: an error is returned as an error and
//     the broker fails closed (no error is ever read as an approval).
//   - Records returned are copies the caller may modify.
//   - Methods honour ctx cancellation where they block.
type Store interface {
	// Create stores rec (pending, see CheckNew) unless an active record
	// (pending or approved) with the same Principal and Fingerprint exists;
	// then it stores nothing and returns that record with created false.
	// Create is atomic: of any number of concurrent Creates for one
	// Principal and Fingerprint, at most one creates while none is active.
	Create(ctx context.Context, rec Record) (stored Record, created bool, err error)

	// Get returns the record with id, or an error wrapping ErrNotFound.
	Get(ctx context.Context, id string) (Record, error)

	// List returns the records matching f (already checked with
	// Filter.Check, so Limit is set), newest CreatedAt first, ties broken
	// by ID descending.
	List(ctx context.Context, f Filter) ([]Record, error)

	// Update is the only way records change. It locks the record with id
	// against every other Update (in any process), calls fn once with a
	// copy of the current record, and, if fn returns nil, verifies the
	// result with CheckUpdate, stores it and signals watchers of id. If fn
	// returns an error nothing is written and Update returns the current
	// record and that error unchanged. A missing id gives ErrNotFound
	// without calling fn. fn runs while the lock is held: it must be quick
	// and must not call the store.
	Update(ctx context.Context, id string, fn func(*Record) error) (Record, error)

	// Watch returns a channel that receives a value (coalesced, never
	// blocking the sender) after any Update of id is stored, and a stop
	// function that releases it; stop is idempotent. Stores may also signal
	// spuriously (after reconnecting, say): watchers re-read the record.
	// Watch starts no goroutine per watcher.
	Watch(id string) (changed <-chan struct{}, stop func())

	// Prune deletes records in a final state (denied, expired, consumed)
	// whose UpdatedAt is before the given time, at most a bounded batch per
	// call, and returns how many it deleted.
	Prune(ctx context.Context, before time.Time) (int, error)
}
