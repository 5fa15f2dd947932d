package pgstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// migrations are applied in order; each entry is one schema version. The
// statements are idempotent, so a version interrupted half-way (it cannot
// be: each runs in the migration's transaction) or replayed is harmless.
// Append only: never edit an applied version. {{t}} is the quoted table,
// {{s}} the quoted schema.
var migrations = [][]string{
	1: {
		`CREATE TABLE IF NOT EXISTS {{t}} (
			id               text PRIMARY KEY,
			state            text NOT NULL CHECK (state IN ('pending','approved','denied','expired','consumed')),
			principal        text NOT NULL,
			fingerprint      text NOT NULL,
			action           text NOT NULL,
			created_at       timestamptz NOT NULL,
			updated_at       timestamptz NOT NULL,
			expires_at       timestamptz NOT NULL,
			grant_expires_at timestamptz,
			record           jsonb NOT NULL
		)`,
		`CREATE UNIQUE INDEX IF NOT EXISTS gatehouse_approvals_active ON {{t}} (principal, fingerprint)
			WHERE state IN ('pending','approved')`,
		`CREATE INDEX IF NOT EXISTS gatehouse_approvals_state_created ON {{t}} (state, created_at DESC)`,
		`CREATE INDEX IF NOT EXISTS gatehouse_approvals_request ON {{t}} (principal, fingerprint, created_at DESC)`,
		`CREATE INDEX IF NOT EXISTS gatehouse_approvals_pending_due ON {{t}} (expires_at) WHERE state = 'pending'`,
		`CREATE INDEX IF NOT EXISTS gatehouse_approvals_grant_due ON {{t}} (grant_expires_at) WHERE state = 'approved'`,
		`CREATE INDEX IF NOT EXISTS gatehouse_approvals_final_updated ON {{t}} (updated_at) WHERE state IN ('denied','expired','consumed')`,
	},
}

// SchemaVersion is the schema version this code writes and reads.
const SchemaVersion = 1

// Migrate brings the schema to SchemaVersion. It is idempotent and safe
// to run from several replicas at once (a transaction-scoped advisory lock
// keyed on the schema serialises them). A database at a newer version than
// this code is an error: the code refuses to write rows it may not
// understand.
func (s *Store) Migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext($1))`, "gatehouse_approvals_migrate:"+s.schema); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	quotedSchema := pgx.Identifier{s.schema}.Sanitize()
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+quotedSchema); err != nil {
			return fmt.Errorf("pgstore: migrate: create schema: %w", err)
		}
	}
	versions := pgx.Identifier{s.schema, "gatehouse_approval_migrations"}.Sanitize()
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+versions+` (
		version    integer PRIMARY KEY,
		applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM `+versions).Scan(&current); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if current > SchemaVersion {
		return fmt.Errorf("pgstore: migrate: schema %s is at version %d, newer than this code's %d", s.schema, current, SchemaVersion)
	}
	repl := strings.NewReplacer("{{t}}", s.table, "{{s}}", quotedSchema)
	for v := current + 1; v <= SchemaVersion; v++ {
		for _, stmt := range migrations[v] {
			if _, err := tx.Exec(ctx, repl.Replace(stmt)); err != nil {
				return fmt.Errorf("pgstore: migrate to version %d: %w", v, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+versions+` (version) VALUES ($1)`, v); err != nil {
			return fmt.Errorf("pgstore: migrate to version %d: %w", v, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: commit: %w", err)
	}
	return nil
}
