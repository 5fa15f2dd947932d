// Package pgsink is an audit.Sink on PostgreSQL, for gateways with several
// replicas: every replica appends to its own hash chain in one shared,
// append-only table, and Verify checks each chain.
//
// # Table
//
// New migrates the schema unless Config.SkipMigrate is set. The migration
// is idempotent and serialised across replicas with a transaction-scoped
// advisory lock; applied versions are recorded in
// <schema>.gatehouse_audit_migrations. Version 1 creates:
//
//	CREATE TABLE <schema>.gatehouse_audit_events (
//	    chain      text        NOT NULL,  -- Config.Chain: one per replica
//	    seq        bigint      NOT NULL CHECK (seq > 0),
//	    prev       text        NOT NULL,  -- hash of record seq-1 of the chain
//	    hash       text        NOT NULL,
//	    event_id   text        NOT NULL,
//	    call_id    text,
//	    time       timestamptz NOT NULL,
//	    phase      text        NOT NULL,
//	    session_id text,
//	    principal  text,
//	    action     text,
//	    event      text        NOT NULL,  -- the event's JSON, exactly the bytes hashed
//	    written_at timestamptz NOT NULL DEFAULT now(),
//	    PRIMARY KEY (chain, seq)
//	);
//	-- plus indexes on (time), (session_id, time) and (principal, time), and
//	-- triggers that refuse UPDATE, DELETE and TRUNCATE.
//
// Version 2 adds the table of CheckpointStore, append-only the same way:
//
//	CREATE TABLE <schema>.gatehouse_audit_checkpoints (
//	    id         bigserial   PRIMARY KEY,  -- the order they were written in
//	    origin     text        NOT NULL,     -- the chain (audit.Checkpoint.Origin)
//	    size       bigint      NOT NULL CHECK (size > 0),
//	    hash       text        NOT NULL,     -- hex, as in the chain
//	    note       text        NOT NULL,     -- the signed note, exactly as signed
//	    written_at timestamptz NOT NULL DEFAULT now(),
//	    UNIQUE (origin, size, hash)
//	);
//
// The columns between hash and event are copies of event members for
// queries (event::jsonb reaches the rest). The event is stored as text, not
// jsonb, because jsonb normalises its input and the chain hashes exact
// bytes.
//
// # Chain
//
// Row (chain, seq) has hash = hex(SHA-256(`{"seq":<seq>,"prev":"<prev>","event":<event>}`)),
// the audit file format's record without its hash member (HMAC-SHA256 with
// Config.Key). The first row of a chain has seq 1 and prev 64 zeros. The
// triggers stop accidental and casual changes; the chain makes deliberate
// ones (by a superuser, say) detectable. Grant the gateway's role INSERT
// and SELECT only.
//
// # Writes
//
// Write is synchronous: it returns once the row is committed. Concurrent
// writers are grouped into one COPY (group commit), so throughput grows
// with concurrency. A Sink resumes its chain from the table when created;
// two live Sinks must never share a Chain (the primary key refuses the
// second writer's rows, which fails its writes closed).
//
// # Checkpoints of file chains
//
// CheckpointStore keeps the signed checkpoints an audit.FileSink writes
// (audit.FileConfig.CheckpointWriter) in the append-only table
// gatehouse_audit_checkpoints, away from the files they cover; the
// newest of them is what exposes a chain directory truncated together with
// its checkpoint file, or restored as a whole from an older copy.
// ReadCheckpoints returns the newest ones of an origin, oldest first, for
// audit.VerifyConfig.Checkpoints.
package pgsink

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// Table is the table name inside the schema.
const Table = "gatehouse_audit_events"

// Defaults of Config.
const (
	DefaultMaxBatch = 500
)

// Config configures a Sink. Exactly one of Pool and DSN is required.
type Config struct {
	// Pool is a caller-owned pool; Close leaves it open.
	Pool *pgxpool.Pool
	// DSN, when Pool is nil, opens a pool the Sink owns and closes.
	DSN string
	// Schema holds the table; default "public". It must match
	// [a-z_][a-z0-9_]{0,39}; New creates it if needed.
	Schema string
	// Chain names this replica's chain. Required; it must match
	// [A-Za-z0-9_.:-]{1,128} and be unique among live replicas.
	Chain string
	// Key, if set, makes the chain use HMAC-SHA256 with it.
	Key []byte
	// SkipMigrate skips the migration in New.
	SkipMigrate bool
	// MaxBatch bounds the rows of one COPY; default DefaultMaxBatch.
	MaxBatch int
	// MaxRecordBytes bounds one encoded event; default
	// audit.DefaultMaxRecordBytes.
	MaxRecordBytes int
}

var (
	schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,39}$`)
	chainRE  = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,128}$`)
)

// Sink is a synchronous audit.Sink on PostgreSQL. It is safe for
// concurrent use.
type Sink struct {
	cfg    Config
	pool   *pgxpool.Pool
	owned  bool
	schema string
	table  string // quoted, schema-qualified

	mu       sync.Mutex
	cond     sync.Cond
	cur      *batch
	flushing bool
	closed   bool

	// Owned by the flushing goroutine.
	hasher *chain.Hasher
	seq    uint64
	prev   string
}

type pending struct {
	e    *audit.Event // a clone: only the indexed columns are read
	data []byte
}

type batch struct {
	items []pending
	done  bool
	err   error
}

// New validates cfg, connects, migrates and resumes the chain.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if (cfg.Pool == nil) == (cfg.DSN == "") {
		return nil, errors.New("pgsink: exactly one of Config.Pool and Config.DSN is required")
	}
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if !schemaRE.MatchString(cfg.Schema) {
		return nil, fmt.Errorf("pgsink: Config.Schema %q must match %s", cfg.Schema, schemaRE)
	}
	if !chainRE.MatchString(cfg.Chain) {
		return nil, fmt.Errorf("pgsink: Config.Chain %q must match %s", cfg.Chain, chainRE)
	}
	if cfg.MaxBatch < 0 || cfg.MaxRecordBytes < 0 {
		return nil, errors.New("pgsink: Config.MaxBatch and MaxRecordBytes must not be negative")
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = DefaultMaxBatch
	}
	if cfg.MaxRecordBytes == 0 {
		cfg.MaxRecordBytes = audit.DefaultMaxRecordBytes
	}
	cfg.Key = slices.Clone(cfg.Key)
	s := &Sink{cfg: cfg, pool: cfg.Pool, schema: cfg.Schema, table: pgx.Identifier{cfg.Schema, Table}.Sanitize(),
		cur: &batch{}, hasher: chain.NewHasher(cfg.Key)}
	s.cond.L = &s.mu
	if s.pool == nil {
		pool, err := pgxpool.New(ctx, cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("pgsink: Config.DSN: %w", err)
		}
		s.pool, s.owned = pool, true
	}
	fail := func(err error) (*Sink, error) {
		if s.owned {
			s.pool.Close()
		}
		return nil, err
	}
	if !cfg.SkipMigrate {
		if err := Migrate(ctx, s.pool, cfg.Schema); err != nil {
			return fail(err)
		}
	}
	if err := s.loadHead(ctx); err != nil {
		return fail(err)
	}
	return s, nil
}

// loadHead reads the chain's last row.
func (s *Sink) loadHead(ctx context.Context) error {
	err := s.pool.QueryRow(ctx, `SELECT seq, hash FROM `+s.table+` WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, s.cfg.Chain).Scan(&s.seq, &s.prev)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		s.seq, s.prev = 0, chain.Genesis
	case err != nil:
		return fmt.Errorf("pgsink: read chain head: %w", err)
	}
	return nil
}

// Write implements audit.Sink: it returns once the event's row is
// committed, or with the error that kept it from being committed. ctx
// bounds the wait for the database only for the writer that leads the
// batch; the others wait for the batch.
func (s *Sink) Write(ctx context.Context, e *audit.Event) error {
	data, err := audit.Encode(e)
	if err != nil {
		return err
	}
	if len(data) > s.cfg.MaxRecordBytes {
		return fmt.Errorf("%w: event %s is %d bytes, Config.MaxRecordBytes is %d", audit.ErrTooLarge, e.ID, len(data), s.cfg.MaxRecordBytes)
	}
	p := pending{e: &audit.Event{ID: e.ID, CallID: e.CallID, Time: e.Time, Phase: e.Phase, SessionID: e.SessionID,
		Principal: audit.PrincipalInfo{ID: e.Principal.ID}, Request: audit.RequestInfo{Action: e.Request.Action}}, data: data}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return audit.ErrClosed
	}
	b := s.cur
	b.items = append(b.items, p)
	for !b.done {
		if !s.flushing {
			s.flushLocked(ctx)
			continue
		}
		s.cond.Wait()
	}
	return b.err
}

func (s *Sink) flushLocked(ctx context.Context) {
	b := s.cur
	s.cur = &batch{}
	s.flushing = true
	s.mu.Unlock()
	// A batch is written even if the leader's caller went away: the
	// other writers in it are waiting.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	err := s.insert(ctx, b.items)
	cancel()
	s.mu.Lock()
	s.flushing = false
	b.done, b.err = true, err
	s.cond.Broadcast()
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insert appends items to the chain with one COPY per MaxBatch rows. On an
// error the head is re-read from the table, so the next batch links to
// what was committed.
func (s *Sink) insert(ctx context.Context, items []pending) error {
	for len(items) > 0 {
		n := min(len(items), s.cfg.MaxBatch)
		rows := make([][]any, 0, n)
		seq, prev := s.seq, s.prev
		for _, p := range items[:n] {
			seq++
			h := s.hasher.Hash(seq, prev, "event", p.data)
			e := p.e
			rows = append(rows, []any{s.cfg.Chain, int64(seq), prev, h, e.ID, nullable(e.CallID), e.Time, string(e.Phase),
				nullable(e.SessionID), nullable(e.Principal.ID), nullable(e.Request.Action), string(p.data)})
			prev = h
		}
		cols := []string{"chain", "seq", "prev", "hash", "event_id", "call_id", "time", "phase", "session_id", "principal", "action", "event"}
		if _, err := s.pool.CopyFrom(ctx, pgx.Identifier{s.schema, Table}, cols, pgx.CopyFromRows(rows)); err != nil {
			if herr := s.loadHead(ctx); herr != nil {
				return errors.Join(fmt.Errorf("pgsink: insert: %w", err), herr)
			}
			return fmt.Errorf("pgsink: insert: %w", err)
		}
		s.seq, s.prev = seq, prev
		items = items[n:]
	}
	return nil
}

// Head returns the chain's last committed record.
func (s *Sink) Head() audit.Anchor {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.flushing {
		s.cond.Wait()
	}
	return audit.Anchor{Seq: s.seq, Hash: s.prev}
}

// Close waits for writes in flight and closes the pool if the Sink owns
// it. Later Writes return audit.ErrClosed.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for s.flushing || len(s.cur.items) > 0 && !s.cur.done {
		if !s.flushing {
			s.flushLocked(context.Background())
			continue
		}
		s.cond.Wait()
	}
	s.mu.Unlock()
	if s.owned {
		s.pool.Close()
	}
	return nil
}

// SchemaVersion is the table version this code writes and reads.
const SchemaVersion = 2

var migrations = [][]string{
	1: {
		`CREATE TABLE IF NOT EXISTS {{t}} (
			chain      text        NOT NULL,
			seq        bigint      NOT NULL CHECK (seq > 0),
			prev       text        NOT NULL,
			hash       text        NOT NULL,
			event_id   text        NOT NULL,
			call_id    text,
			time       timestamptz NOT NULL,
			phase      text        NOT NULL,
			session_id text,
			principal  text,
			action     text,
			event      text        NOT NULL,
			written_at timestamptz NOT NULL DEFAULT now(),
			PRIMARY KEY (chain, seq)
		)`,
		`CREATE INDEX IF NOT EXISTS gatehouse_audit_events_time ON {{t}} (time)`,
		`CREATE INDEX IF NOT EXISTS gatehouse_audit_events_session ON {{t}} (session_id, time) WHERE session_id IS NOT NULL`,
		`CREATE INDEX IF NOT EXISTS gatehouse_audit_events_principal ON {{t}} (principal, time)`,
		`CREATE OR REPLACE FUNCTION {{s}}.gatehouse_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			RAISE EXCEPTION 'gatehouse audit events are append-only: % refused', TG_OP;
		END $$`,
		`DROP TRIGGER IF EXISTS gatehouse_audit_events_no_change ON {{t}}`,
		`CREATE TRIGGER gatehouse_audit_events_no_change BEFORE UPDATE OR DELETE ON {{t}}
			FOR EACH ROW EXECUTE FUNCTION {{s}}.gatehouse_audit_append_only()`,
		`DROP TRIGGER IF EXISTS gatehouse_audit_events_no_truncate ON {{t}}`,
		`CREATE TRIGGER gatehouse_audit_events_no_truncate BEFORE TRUNCATE ON {{t}}
			FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.gatehouse_audit_append_only()`,
	},
	2: {
		`CREATE TABLE IF NOT EXISTS {{c}} (
			id         bigserial   PRIMARY KEY,
			origin     text        NOT NULL,
			size       bigint      NOT NULL CHECK (size > 0),
			hash       text        NOT NULL,
			note       text        NOT NULL,
			written_at timestamptz NOT NULL DEFAULT now(),
			UNIQUE (origin, size, hash)
		)`,
		`CREATE INDEX IF NOT EXISTS gatehouse_audit_checkpoints_origin ON {{c}} (origin, id)`,
		`DROP TRIGGER IF EXISTS gatehouse_audit_checkpoints_no_change ON {{c}}`,
		`CREATE TRIGGER gatehouse_audit_checkpoints_no_change BEFORE UPDATE OR DELETE ON {{c}}
			FOR EACH ROW EXECUTE FUNCTION {{s}}.gatehouse_audit_append_only()`,
		`DROP TRIGGER IF EXISTS gatehouse_audit_checkpoints_no_truncate ON {{c}}`,
		`CREATE TRIGGER gatehouse_audit_checkpoints_no_truncate BEFORE TRUNCATE ON {{c}}
			FOR EACH STATEMENT EXECUTE FUNCTION {{s}}.gatehouse_audit_append_only()`,
	},
}

// Migrate brings schema to SchemaVersion. It is idempotent and safe to
// run from several replicas at once. A schema at a newer version than this
// code is an error.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if !schemaRE.MatchString(schema) {
		return fmt.Errorf("pgsink: migrate: schema %q must match %s", schema, schemaRE)
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "gatehouse_audit_migrate:"+schema); err != nil {
		return fmt.Errorf("pgsink: migrate: lock: %w", err)
	}
	qs := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+qs); err != nil {
		return fmt.Errorf("pgsink: migrate: create schema: %w", err)
	}
	versions := pgx.Identifier{schema, "gatehouse_audit_migrations"}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versions+` (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+versions).Scan(&current); err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("pgsink: migrate: schema %s is at version %d, newer than this code's %d", schema, current, SchemaVersion)
	}
	repl := strings.NewReplacer("{{t}}", pgx.Identifier{schema, Table}.Sanitize(), "{{c}}", pgx.Identifier{schema, CheckpointTable}.Sanitize(), "{{s}}", qs)
	for v := current + 1; v <= SchemaVersion; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.Exec(ctx, repl.Replace(stmt)); err != nil {
				return fmt.Errorf("pgsink: migrate to version %d: %w", v, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+versions+` (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("pgsink: migrate: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgsink: migrate: %w", err)
	}
	return nil
}
