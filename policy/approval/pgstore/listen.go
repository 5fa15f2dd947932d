package pgstore

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listener bounds: reconnect backoff, and how often an idle listener
// checks its connection.
const (
	minReconnect   = 100 * time.Millisecond
	maxReconnect   = 5 * time.Second
	healthInterval = 30 * time.Second
	healthTimeout  = 5 * time.Second
)

// Watch implements approval.Store. The first call starts the listener.
func (s *Store) Watch(id string) (<-chan struct{}, func()) {
	ch, stop := s.watchers.Add(id)
	s.mu.Lock()
	if !s.started && !s.closed {
		s.started = true
		ctx, cancel := context.WithCancel(context.Background())
		s.stop, s.done = cancel, make(chan struct{})
		go s.listen(ctx)
	}
	s.mu.Unlock()
	return ch, stop
}

// signal wakes the watchers of id, or of every id when all is set.
func (s *Store) signal(id string, all bool) {
	if all {
		s.watchers.WakeAll()
		return
	}
	s.watchers.Wake(id)
}

// Listening reports whether the listener connection is up and LISTENing.
func (s *Store) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listening
}

func (s *Store) setListening(on bool, pid uint32) {
	s.mu.Lock()
	s.listening, s.pid = on, pid
	s.mu.Unlock()
}

// listen keeps one dedicated connection LISTENing on the store's channel
// until ctx ends, reconnecting with backoff.
func (s *Store) listen(ctx context.Context) {
	defer close(s.done)
	backoff := minReconnect
	for ctx.Err() == nil {
		connected, err := s.listenOnce(ctx)
		if ctx.Err() != nil {
			return
		}
		if connected {
			backoff = minReconnect
		}
		if s.log != nil {
			s.log.Warn("pgstore: listener connection lost; reconnecting", "err", err, "backoff", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxReconnect)
	}
}

// listenOnce connects, LISTENs, wakes every watcher (notifications sent
// while no connection listened are lost, so every watcher re-reads) and
// dispatches notifications until the connection fails or ctx ends.
func (s *Store) listenOnce(ctx context.Context) (connected bool, err error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		return false, err
	}
	s.setListening(true, conn.PgConn().PID())
	defer s.setListening(false, 0)
	s.signal("", true)
	for {
		wctx, cancel := context.WithTimeout(ctx, s.health)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if n.Channel == s.channel {
				s.signal(n.Payload, false)
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case wctx.Err() != nil:
			// Quiet for a health interval: make sure the connection is alive
			// (a silently dropped one would otherwise be noticed only by
			// TCP keepalive, minutes later). The timed-out read left the
			// connection usable.
			pctx, cancel := context.WithTimeout(ctx, healthTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return true, err
			}
		default:
			return true, err
		}
	}
}
