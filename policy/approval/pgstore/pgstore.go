// Package pgstore is an approval.Store on PostgreSQL, for several gateway
// replicas behind a load balancer.
//
// # Schema
//
// New migrates the schema unless Config.SkipMigrate is set. The migration
// is idempotent and serialised across replicas with a transaction-scoped
// advisory lock; applied versions are recorded in
// <schema>.gatehouse_approval_migrations. Version 1 creates:
//
//	CREATE TABLE <schema>.gatehouse_approvals (
//	    id               text PRIMARY KEY,
//	    state            text NOT NULL CHECK (state IN ('pending','approved','denied','expired','consumed')),
//	    principal        text NOT NULL,
//	    fingerprint      text NOT NULL,
//	    action           text NOT NULL,
//	    created_at       timestamptz NOT NULL,
//	    updated_at       timestamptz NOT NULL,
//	    expires_at       timestamptz NOT NULL,
//	    grant_expires_at timestamptz,
//	    record           jsonb NOT NULL   -- the whole approval.Record, authoritative
//	);
//	-- at most one active record per exact request: create-or-attach is one INSERT
//	CREATE UNIQUE INDEX gatehouse_approvals_active ON ... (principal, fingerprint)
//	    WHERE state IN ('pending','approved');
//	CREATE INDEX gatehouse_approvals_state_created ON ... (state, created_at DESC);
//	CREATE INDEX gatehouse_approvals_request ON ... (principal, fingerprint, created_at DESC);
//	-- the janitor's scans
//	CREATE INDEX gatehouse_approvals_pending_due ON ... (expires_at) WHERE state = 'pending';
//	CREATE INDEX gatehouse_approvals_grant_due ON ... (grant_expires_at) WHERE state = 'approved';
//	CREATE INDEX gatehouse_approvals_final_updated ON ... (updated_at) WHERE state IN ('denied','expired','consumed');
//
// The columns beside record are copies of record fields, kept for
// filtering, locking and the uniqueness rule.
//
// # Atomicity
//
// Update runs in a transaction that reads the row with SELECT ... FOR
// UPDATE, so racing approvers (on any replica) are serialised on the row
// and grant consumption happens exactly once; the new row and a
// pg_notify(channel, id) commit together. Create is a single INSERT ... ON
// CONFLICT DO NOTHING against the partial unique index, then a SELECT of
// the winner.
//
// # Notification
//
// Watch is served by one listener goroutine per Store, started with the
// first Watch: a dedicated connection (not from the pool) that LISTENs on
// the store's channel and forwards each notified id to that id's watchers.
// When the connection fails it reconnects with backoff (100ms doubling to
// 5s) and then signals every watcher, since notifications sent meanwhile
// are lost; Broker.Wait also re-reads every PollInterval, so a missed
// notification delays a hold but never hangs it. An idle listener pings
// its connection every 30s, so a silently dropped one is replaced
// promptly. Close the Store when done: it stops the listener.
//
// # Outages
//
// Every method returns the database error as is; the broker fails closed
// on it (no grant, no approval). Records and grants survive an outage:
// nothing is decided while the database is unreachable.
package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// Config configures a Store. Exactly one of Pool and DSN is required.
type Config struct {
	// Pool is a caller-owned pool; Close leaves it open.
	Pool *pgxpool.Pool
	// DSN, when Pool is nil, is used to open a pool the Store owns and
	// closes.
	DSN string
	// Schema holds the tables; default "public". It must match
	// [a-z_][a-z0-9_]{0,39}. New creates it if it does not exist.
	// Several gateways (or parallel tests) isolate themselves with
	// different schemas.
	Schema string
	// SkipMigrate skips the schema migration in New (when a deployment
	// runs migrations separately with Migrate).
	SkipMigrate bool
	// Logger, if set, receives listener connection failures.
	Logger *slog.Logger
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)

// Store is an approval.Store on PostgreSQL. It is safe for concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	owned   bool
	schema  string
	table   string // quoted, schema-qualified
	channel string // NOTIFY channel: "gatehouse_approvals:<schema>"
	log     *slog.Logger
	health  time.Duration // idle time after which the listener pings

	mu        sync.Mutex
	watchers  approval.Watchers
	listening bool
	started   bool
	closed    bool
	stop      context.CancelFunc
	done      chan struct{}
	pid       uint32 // the listener connection's backend pid, 0 when down
}

var _ approval.Store = (*Store)(nil)

// New validates cfg, opens the pool if needed, checks the connection and
// migrates the schema.
func New(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if !schemaRE.MatchString(cfg.Schema) {
		return nil, fmt.Errorf("pgstore: Config.Schema %q must match %s", cfg.Schema, schemaRE)
	}
	s := &Store{
		pool:    cfg.Pool,
		schema:  cfg.Schema,
		table:   pgx.Identifier{cfg.Schema, "gatehouse_approvals"}.Sanitize(),
		channel: "gatehouse_approvals:" + cfg.Schema,
		log:     cfg.Logger,
		health:  healthInterval,
	}
	switch {
	case cfg.Pool != nil && cfg.DSN != "":
		return nil, errors.New("pgstore: set Config.Pool or Config.DSN, not both")
	case cfg.Pool == nil && cfg.DSN == "":
		return nil, errors.New("pgstore: Config.Pool or Config.DSN is required")
	case cfg.Pool == nil:
		pool, err := pgxpool.New(ctx, cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("pgstore: Config.DSN: %w", err)
		}
		s.pool, s.owned = pool, true
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.closePool()
		return nil, fmt.Errorf("pgstore: connect: %w", err)
	}
	if !cfg.SkipMigrate {
		if err := s.Migrate(ctx); err != nil {
			s.closePool()
			return nil, err
		}
	}
	return s, nil
}

func (s *Store) closePool() {
	if s.owned {
		s.pool.Close()
	}
}

// Close stops the listener and, if the Store opened the pool, closes it.
// Watch channels stop receiving signals; other methods fail afterwards if
// the pool was closed.
func (s *Store) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	stop, done := s.stop, s.done
	s.mu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	s.closePool()
}

// Schema returns the schema holding the tables.
func (s *Store) Schema() string { return s.schema }

// columns are written by Create and Update, in this order.
const columns = "id, state, principal, fingerprint, action, created_at, updated_at, expires_at, grant_expires_at, record"

func rowValues(r approval.Record) ([]any, error) {
	raw, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("pgstore: encode record: %w", err)
	}
	var grant any
	if !r.GrantExpiresAt.IsZero() {
		grant = r.GrantExpiresAt
	}
	return []any{r.ID, string(r.State), r.Principal, r.Fingerprint, r.Action, r.CreatedAt, r.UpdatedAt, r.ExpiresAt, grant, raw}, nil
}

func decode(raw []byte) (approval.Record, error) {
	var r approval.Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return approval.Record{}, fmt.Errorf("pgstore: decode record: %w", err)
	}
	return r, nil
}

// createAttempts bounds Create's insert-or-select loop.
const createAttempts = 5

// Create implements approval.Store.
func (s *Store) Create(ctx context.Context, rec approval.Record) (approval.Record, bool, error) {
	if err := approval.CheckNew(rec); err != nil {
		return approval.Record{}, false, err
	}
	vals, err := rowValues(rec)
	if err != nil {
		return approval.Record{}, false, err
	}
	insert := `INSERT INTO ` + s.table + ` (` + columns + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)
		ON CONFLICT (principal, fingerprint) WHERE state IN ('pending','approved') DO NOTHING`
	active := `SELECT record FROM ` + s.table + ` WHERE principal = $1 AND fingerprint = $2 AND state IN ('pending','approved')`
	for range createAttempts {
		tag, err := s.pool.Exec(ctx, insert, vals...)
		if err != nil {
			return approval.Record{}, false, fmt.Errorf("pgstore: create: %w", err)
		}
		if tag.RowsAffected() == 1 {
			return rec.Clone(), true, nil
		}
		var raw []byte
		err = s.pool.QueryRow(ctx, active, rec.Principal, rec.Fingerprint).Scan(&raw)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // the active record was decided in between: try again
		}
		if err != nil {
			return approval.Record{}, false, fmt.Errorf("pgstore: create: %w", err)
		}
		got, err := decode(raw)
		return got, false, err
	}
	return approval.Record{}, false, errors.New("pgstore: create: the active record kept changing")
}

// Get implements approval.Store.
func (s *Store) Get(ctx context.Context, id string) (approval.Record, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT record FROM `+s.table+` WHERE id = $1`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return approval.Record{}, fmt.Errorf("%w: %s", approval.ErrNotFound, id)
	}
	if err != nil {
		return approval.Record{}, fmt.Errorf("pgstore: get: %w", err)
	}
	return decode(raw)
}

// List implements approval.Store.
func (s *Store) List(ctx context.Context, f approval.Filter) ([]approval.Record, error) {
	f, err := f.Check()
	if err != nil {
		return nil, err
	}
	q := `SELECT record FROM ` + s.table + ` WHERE true`
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.State != "" {
		q += ` AND state = ` + arg(string(f.State))
	}
	if f.Principal != "" {
		q += ` AND principal = ` + arg(f.Principal)
	}
	if f.Action != "" {
		q += ` AND action = ` + arg(f.Action)
	}
	if f.Fingerprint != "" {
		q += ` AND fingerprint = ` + arg(f.Fingerprint)
	}
	if !f.DueBefore.IsZero() {
		t := arg(f.DueBefore)
		q += ` AND ((state = 'pending' AND expires_at <= ` + t + `) OR (state = 'approved' AND grant_expires_at <= ` + t + `))`
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(f.Limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	raws, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, fmt.Errorf("pgstore: list: %w", err)
	}
	out := make([]approval.Record, 0, len(raws))
	for _, raw := range raws {
		r, err := decode(raw)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Update implements approval.Store: SELECT ... FOR UPDATE, fn, UPDATE and
// pg_notify in one transaction.
func (s *Store) Update(ctx context.Context, id string, fn func(*approval.Record) error) (approval.Record, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return approval.Record{}, fmt.Errorf("pgstore: update: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) // no-op after Commit
	var raw []byte
	err = tx.QueryRow(ctx, `SELECT record FROM `+s.table+` WHERE id = $1 FOR UPDATE`, id).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return approval.Record{}, fmt.Errorf("%w: %s", approval.ErrNotFound, id)
	}
	if err != nil {
		return approval.Record{}, fmt.Errorf("pgstore: update: %w", err)
	}
	cur, err := decode(raw)
	if err != nil {
		return approval.Record{}, err
	}
	next := cur.Clone()
	if err := fn(&next); err != nil {
		return cur, err
	}
	if err := approval.CheckUpdate(cur, next); err != nil {
		return cur, err
	}
	vals, err := rowValues(next)
	if err != nil {
		return cur, err
	}
	if _, err := tx.Exec(ctx, `UPDATE `+s.table+` SET state = $2, updated_at = $3, expires_at = $4, grant_expires_at = $5, record = $6 WHERE id = $1`,
		next.ID, vals[1], next.UpdatedAt, next.ExpiresAt, vals[8], vals[9]); err != nil {
		return cur, fmt.Errorf("pgstore: update: %w", err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel, id); err != nil {
		return cur, fmt.Errorf("pgstore: update: notify: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return cur, fmt.Errorf("pgstore: update: commit: %w", err)
	}
	return next, nil
}

// Prune implements approval.Store.
func (s *Store) Prune(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+s.table+` WHERE id IN (
		SELECT id FROM `+s.table+` WHERE state IN ('denied','expired','consumed') AND updated_at < $1 LIMIT $2)`,
		before, approval.PruneBatch)
	if err != nil {
		return 0, fmt.Errorf("pgstore: prune: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
