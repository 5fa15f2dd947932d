package pgsink

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// AcknowledgesStored implements audit.Acknowledger: Write returns once the
// event's row is committed.
func (s *Sink) AcknowledgesStored() bool { return true }

// Check implements audit.Checker: it fails after Close and when the
// database does not answer a read of the table within ctx (unreachable,
// table gone, permission revoked).
func (s *Sink) Check(ctx context.Context) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return fmt.Errorf("pgsink: check: %w", audit.ErrClosed)
	}
	if _, err := s.pool.Exec(ctx, "SELECT 1 FROM "+pgx.Identifier{s.schema, Table}.Sanitize()+" LIMIT 0"); err != nil {
		return fmt.Errorf("pgsink: check: %w", err)
	}
	return nil
}
