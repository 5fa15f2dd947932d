package pgsink

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// CheckpointTable is the table of checkpoints inside the schema.
const CheckpointTable = "gatehouse_audit_checkpoints"

// CheckpointStoreConfig configures a CheckpointStore. Exactly one of Pool
// and DSN is required.
type CheckpointStoreConfig struct {
	// Pool is a caller-owned pool; Close leaves it open.
	Pool *pgxpool.Pool
	// DSN, when Pool is nil, opens a pool the store owns and closes.
	DSN string
	// Schema holds the table; default "public"; see Config.Schema.
	Schema string
	// SkipMigrate skips the migration in NewCheckpointStore.
	SkipMigrate bool
}

// CheckpointStore keeps the signed checkpoints of audit file chains in
// PostgreSQL, append-only, where the writer of the chain's directory
// cannot change them: set it as audit.FileConfig.CheckpointWriter, and
// give the newest ones to audit.VerifyConfig.Checkpoints (ReadCheckpoints).
// It is safe for concurrent use.
type CheckpointStore struct {
	pool   *pgxpool.Pool
	owned  bool
	schema string
}

// NewCheckpointStore validates cfg, connects and migrates the schema.
func NewCheckpointStore(ctx context.Context, cfg CheckpointStoreConfig) (*CheckpointStore, error) {
	if (cfg.Pool == nil) == (cfg.DSN == "") {
		return nil, errors.New("pgsink: exactly one of CheckpointStoreConfig.Pool and CheckpointStoreConfig.DSN is required")
	}
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if !schemaRE.MatchString(cfg.Schema) {
		return nil, fmt.Errorf("pgsink: CheckpointStoreConfig.Schema %q must match %s", cfg.Schema, schemaRE)
	}
	c := &CheckpointStore{pool: cfg.Pool, schema: cfg.Schema}
	if c.pool == nil {
		pool, err := pgxpool.New(ctx, cfg.DSN)
		if err != nil {
			return nil, fmt.Errorf("pgsink: CheckpointStoreConfig.DSN: %w", err)
		}
		c.pool, c.owned = pool, true
	}
	if !cfg.SkipMigrate {
		if err := Migrate(ctx, c.pool, cfg.Schema); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// WriteCheckpoint implements audit.CheckpointWriter: it appends the
// checkpoint, once (writing the same checkpoint again is a no-op). Two
// checkpoints of one origin and size with different heads are both kept:
// that is a fork, and Verify reports it.
func (c *CheckpointStore) WriteCheckpoint(ctx context.Context, sc audit.SignedCheckpoint) error {
	body := sc.Body()
	if _, err := audit.ParseCheckpoint(body); err != nil {
		return fmt.Errorf("pgsink: write checkpoint: %w", err)
	}
	if !bytes.HasPrefix(sc.Note, append(body, '\n')) || len(sc.Note) > audit.MaxCheckpointBytes {
		return fmt.Errorf("pgsink: write checkpoint: %w: the note does not carry this checkpoint", audit.ErrBadCheckpoint)
	}
	_, err := c.pool.Exec(ctx, `INSERT INTO `+pgx.Identifier{c.schema, CheckpointTable}.Sanitize()+
		` (origin, size, hash, note) VALUES ($1, $2, $3, $4) ON CONFLICT (origin, size, hash) DO NOTHING`,
		sc.Origin, int64(sc.Size), sc.Hash, string(sc.Note))
	if err != nil {
		return fmt.Errorf("pgsink: write checkpoint: %w", err)
	}
	return nil
}

// Close closes the pool if the store owns it.
func (c *CheckpointStore) Close() error {
	if c.owned {
		c.pool.Close()
	}
	return nil
}

// ReadCheckpoints returns the newest limit checkpoints of origin (limit
// <= 0 means 1: the newest), oldest first, as Verify takes them. Their
// Source names the row. It does not verify them: Verify does.
func ReadCheckpoints(ctx context.Context, pool *pgxpool.Pool, schema, origin string, limit int) ([]audit.CheckpointNote, error) {
	if schema == "" {
		schema = "public"
	}
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("pgsink: read checkpoints: schema %q must match %s", schema, schemaRE)
	}
	if origin == "" {
		return nil, errors.New("pgsink: read checkpoints: origin is required")
	}
	if limit <= 0 {
		limit = 1
	}
	rows, err := pool.Query(ctx, `SELECT id, note FROM (SELECT id, note FROM `+pgx.Identifier{schema, CheckpointTable}.Sanitize()+
		` WHERE origin = $1 ORDER BY id DESC LIMIT $2) newest ORDER BY id`, origin, limit)
	if err != nil {
		return nil, fmt.Errorf("pgsink: read checkpoints: %w", err)
	}
	var out []audit.CheckpointNote
	var id int64
	var text string
	_, err = pgx.ForEachRow(rows, []any{&id, &text}, func() error {
		out = append(out, audit.CheckpointNote{
			Source: "postgres " + schema + "." + CheckpointTable + " id " + strconv.FormatInt(id, 10),
			Note:   []byte(text),
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgsink: read checkpoints: %w", err)
	}
	return out, nil
}
