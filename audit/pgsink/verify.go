package pgsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// VerifyConfig selects the chain Verify checks.
type VerifyConfig struct {
	// Schema holds the table; default "public".
	Schema string
	// Chain is the chain to verify. Required.
	Chain string
	// Key is the chain's HMAC key, if it has one.
	Key []byte
	// Head, if set, is an anchor the chain must reach (see
	// audit.VerifyConfig.Head).
	Head *audit.Anchor
	// MaxProblems bounds the problems kept; default
	// audit.DefaultMaxProblems.
	MaxProblems int
}

// Verify checks one chain of the table row by row in sequence order: each
// row's hash over its content, each prev against the row before, and that
// sequence numbers start at 1 without gaps. Problems carry the sequence
// number; File names the table and chain. It reads rows as a stream, so
// memory does not grow with the chain. The error is for database failures
// only.
func Verify(ctx context.Context, pool *pgxpool.Pool, cfg VerifyConfig) (audit.Report, error) {
	if cfg.Schema == "" {
		cfg.Schema = "public"
	}
	if !schemaRE.MatchString(cfg.Schema) {
		return audit.Report{}, fmt.Errorf("pgsink: verify: schema %q must match %s", cfg.Schema, schemaRE)
	}
	if cfg.Chain == "" {
		return audit.Report{}, errors.New("pgsink: verify: VerifyConfig.Chain is required")
	}
	if cfg.MaxProblems <= 0 {
		cfg.MaxProblems = audit.DefaultMaxProblems
	}
	where := cfg.Schema + "." + Table + "/" + cfg.Chain
	rep := audit.Report{Files: []audit.FileSummary{{Path: where}}}
	sum := &rep.Files[0]
	problem := func(kind audit.ProblemKind, seq uint64, format string, args ...any) {
		if len(rep.Problems) >= cfg.MaxProblems {
			rep.MoreProblems++
			return
		}
		rep.Problems = append(rep.Problems, audit.Problem{Kind: kind, File: where, Seq: seq, Detail: fmt.Sprintf(format, args...)})
	}
	rows, err := pool.Query(ctx, `SELECT seq, prev, hash, event FROM `+pgx.Identifier{cfg.Schema, Table}.Sanitize()+
		` WHERE chain = $1 ORDER BY seq`, cfg.Chain)
	if err != nil {
		return audit.Report{}, fmt.Errorf("pgsink: verify: %w", err)
	}
	defer rows.Close()
	h := chain.NewHasher(cfg.Key)
	next, prev := uint64(1), chain.Genesis
	var seq int64
	var rprev, rhash, event string
	for rows.Next() {
		if err := rows.Scan(&seq, &rprev, &rhash, &event); err != nil {
			return audit.Report{}, fmt.Errorf("pgsink: verify: %w", err)
		}
		s := uint64(seq)
		rep.Records++
		rep.Events++
		sum.Records++
		sum.Events++
		if sum.FirstSeq == 0 {
			sum.FirstSeq = s
		}
		sum.LastSeq = s
		gap := s != next
		switch {
		case s > next && s-next == 1:
			problem(audit.Missing, next, "row %d is missing before row %d", next, s)
		case s > next:
			problem(audit.Missing, next, "rows %d to %d are missing before row %d", next, s-1, s)
		}
		if !json.Valid([]byte(event)) {
			problem(audit.Malformed, s, "row %d's event is not JSON", s)
		}
		if got := h.Hash(s, rprev, "event", []byte(event)); got != rhash {
			problem(audit.Altered, s, "row %d's content does not match its hash", s)
		}
		if rprev != prev && !gap {
			if s == 1 {
				problem(audit.Altered, s, "the first row's prev is not the genesis value")
			} else {
				problem(audit.Altered, s, "row %d's prev does not match the hash of row %d: that row was rewritten or replaced", s, s-1)
			}
		}
		if cfg.Head != nil && cfg.Head.Seq == s && cfg.Head.Hash != rhash {
			problem(audit.Altered, s, "row %d's hash differs from the anchor's", s)
		}
		next, prev = s+1, rhash
		rep.Head = audit.Anchor{Seq: s, Hash: rhash}
	}
	if err := rows.Err(); err != nil {
		return audit.Report{}, fmt.Errorf("pgsink: verify: %w", err)
	}
	if cfg.Head != nil && cfg.Head.Seq > rep.Head.Seq {
		problem(audit.Truncated, rep.Head.Seq+1, "the chain ends at row %d but the anchor is at row %d: rows were removed from the end", rep.Head.Seq, cfg.Head.Seq)
	}
	return rep, nil
}

// Chains lists the chains in schema's table.
func Chains(ctx context.Context, pool *pgxpool.Pool, schema string) ([]string, error) {
	if schema == "" {
		schema = "public"
	}
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("pgsink: chains: schema %q must match %s", schema, schemaRE)
	}
	rows, err := pool.Query(ctx, `SELECT DISTINCT chain FROM `+pgx.Identifier{schema, Table}.Sanitize()+` ORDER BY chain`)
	if err != nil {
		return nil, fmt.Errorf("pgsink: chains: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgsink: chains: %w", err)
	}
	return out, nil
}

// ReadEvents returns up to limit events of a chain after sequence number
// after, in chain order (limit <= 0 means 1000).
func ReadEvents(ctx context.Context, pool *pgxpool.Pool, schema, chainID string, after uint64, limit int) ([]audit.Event, error) {
	if schema == "" {
		schema = "public"
	}
	if !schemaRE.MatchString(schema) {
		return nil, fmt.Errorf("pgsink: read: schema %q must match %s", schema, schemaRE)
	}
	if limit <= 0 {
		limit = 1000
	}
	rows, err := pool.Query(ctx, `SELECT event FROM `+pgx.Identifier{schema, Table}.Sanitize()+
		` WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3`, chainID, int64(after), limit)
	if err != nil {
		return nil, fmt.Errorf("pgsink: read: %w", err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("pgsink: read: %w", err)
	}
	out := make([]audit.Event, len(texts))
	for i, t := range texts {
		if err := json.Unmarshal([]byte(t), &out[i]); err != nil {
			return nil, fmt.Errorf("pgsink: read: event %d: %w", i, err)
		}
	}
	return out, nil
}
