package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/pgtest"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

func TestConformance(t *testing.T) {
	pgtest.Require(t)
	approvaltest.Run(t, newStore)
}

var (
	agent = approvaltest.Principal("agent-1")
	alice = approvaltest.Principal("alice", "ops")
)

// pair is two gateway replicas: brokers on separate stores (separate
// pools and listeners) sharing one schema.
type pair struct {
	a, b       *approval.Broker
	sa, sb     *Store
	eva, evb   *approvaltest.Events
	schemaName string
}

func newPair(t testing.TB, poll time.Duration) *pair {
	t.Helper()
	schema := pgtest.Schema(t, "approval_test_")
	p := &pair{sa: open(t, schema), sb: open(t, schema), eva: &approvaltest.Events{}, evb: &approvaltest.Events{}, schemaName: schema}
	mk := func(s *Store, ev *approvaltest.Events) *approval.Broker {
		b, err := approval.New(approval.Config{Store: s, Events: ev, PollInterval: poll, URLBase: "https://gw.test/approvals/ui/"})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p.a, p.b = mk(p.sa, p.eva), mk(p.sb, p.evb)
	waitListening(t, p.sa)
	waitListening(t, p.sb)
	return p
}

// TestTwoInstances: a hold on replica A is released by an approval given
// through replica B, by the broker and through B's HTTP API; the poll
// interval is an hour, so only LISTEN/NOTIFY can wake A.
func TestTwoInstances(t *testing.T) {
	p := newPair(t, time.Hour)
	ctx := context.Background()

	t.Run("broker", func(t *testing.T) {
		var latencies []time.Duration
		for i := range 15 {
			req := approvaltest.Request(agent, fmt.Sprint("prod-", i), "ops")
			rec, created, err := p.a.Request(ctx, req)
			if err != nil || !created {
				t.Fatal(created, err)
			}
			released := make(chan time.Time, 1)
			go func() {
				got, err := p.a.Wait(ctx, rec.ID)
				if err != nil || got.State != approval.Approved {
					t.Errorf("Wait on A = %s, %v", got.State, err)
				}
				released <- time.Now()
			}()
			time.Sleep(20 * time.Millisecond)
			start := time.Now()
			if _, err := p.b.Approve(ctx, rec.ID, alice, ""); err != nil {
				t.Fatal(err)
			}
			select {
			case at := <-released:
				latencies = append(latencies, at.Sub(start))
			case <-time.After(10 * time.Second):
				t.Fatal("hold on A not released within 10s of approval on B")
			}
			if _, ok, err := p.a.ConsumeGrant(ctx, agent, req.Fingerprint); !ok || err != nil {
				t.Fatalf("ConsumeGrant on A = %v, %v", ok, err)
			}
			if _, ok, _ := p.b.ConsumeGrant(ctx, agent, req.Fingerprint); ok {
				t.Fatal("grant consumed twice across replicas")
			}
		}
		m := median(latencies)
		t.Logf("approval-to-release latency across instances: median %v (min %v, max %v, n=%d)",
			m, slices.Min(latencies), slices.Max(latencies), len(latencies))
		if m > 100*time.Millisecond {
			t.Errorf("median approval-to-release latency %v, target under 100ms", m)
		}
	})

	t.Run("gate hold released through B's HTTP API", func(t *testing.T) {
		h, err := approval.NewHandler(approval.HandlerConfig{Broker: p.b})
		if err != nil {
			t.Fatal(err)
		}
		bearer := &identity.Bearer{Verifier: tokens{"alice-token": alice}}
		srv := httptest.NewServer(http.StripPrefix("/approvals-api", bearer.Wrap(h)))
		defer srv.Close()
		go func() {
			for range 500 {
				recs, _ := p.b.List(ctx, approval.Filter{State: approval.Pending, Action: "s3:DeleteBucket", Principal: agent.String()})
				for _, r := range recs {
					if r.Fingerprint == "fp-agent-1-http" {
						req, _ := http.NewRequest("POST", srv.URL+"/approvals-api/approvals/"+r.ID+"/approve", strings.NewReader(`{"reason":"ok"}`))
						req.Header.Set("Authorization", "Bearer alice-token")
						req.Header.Set("Content-Type", "application/json")
						resp, err := srv.Client().Do(req)
						if err != nil {
							t.Error(err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusOK {
							t.Errorf("approve via HTTP on B: %s", resp.Status)
						}
						return
					}
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		res, err := p.a.Gate(ctx, approvaltest.Request(agent, "http", "ops"), approval.GateOptions{Hold: 10 * time.Second})
		if err != nil || res.Outcome != approval.OutcomeGranted {
			t.Fatalf("Gate on A = %v, %v; want granted", res.Outcome, err)
		}
	})
}

// tokens is a fake identity.TokenVerifier.
type tokens map[string]identity.Principal

func (v tokens) Verify(_ context.Context, raw string) (*identity.Token, error) {
	p, ok := v[raw]
	if !ok {
		return nil, identity.ErrTokenInvalid
	}
	return &identity.Token{Principal: p}, nil
}

// TestRacingAcrossInstances: 100 approvers split over two replicas grant
// once; 100 identical requests split over both consume once.
func TestRacingAcrossInstances(t *testing.T) {
	p := newPair(t, time.Second)
	ctx := context.Background()
	req := approvaltest.Request(agent, "prod", "ops")
	rec, _, err := p.a.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var accepted, consumed atomic.Int32
	start := make(chan struct{})
	for i := range 100 {
		b := p.a
		if i%2 == 1 {
			b = p.b
		}
		wg.Go(func() {
			<-start
			_, err := b.Approve(ctx, rec.ID, approvaltest.Principal(fmt.Sprint("approver-", i), "ops"), "")
			if err == nil {
				accepted.Add(1)
			} else if !errors.Is(err, approval.ErrNotPending) {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if accepted.Load() != 1 || p.eva.Count(approval.EventApproved, "")+p.evb.Count(approval.EventApproved, "") != 1 {
		t.Fatalf("%d approvals accepted, %d+%d approved events; want exactly one", accepted.Load(),
			p.eva.Count(approval.EventApproved, ""), p.evb.Count(approval.EventApproved, ""))
	}
	for i := range 100 {
		b := p.a
		if i%2 == 1 {
			b = p.b
		}
		wg.Go(func() {
			if _, ok, err := b.ConsumeGrant(ctx, agent, req.Fingerprint); err != nil {
				t.Error(err)
			} else if ok {
				consumed.Add(1)
			}
		})
	}
	wg.Wait()
	if consumed.Load() != 1 {
		t.Errorf("grant consumed %d times across replicas, want 1", consumed.Load())
	}
}

// TestListenerReconnect: after the listener's connection is killed, it
// reconnects and holds are released by notification again.
func TestListenerReconnect(t *testing.T) {
	p := newPair(t, time.Hour)
	ctx := context.Background()
	p.sa.mu.Lock()
	pid := p.sa.pid
	p.sa.mu.Unlock()
	pgtest.Exec(t, "SELECT pg_terminate_backend($1)", int32(pid))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		p.sa.mu.Lock()
		newPID := p.sa.pid
		p.sa.mu.Unlock()
		if newPID != 0 && newPID != pid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("listener did not reconnect within 10s")
		}
	}
	rec, _, err := p.a.Request(ctx, approvaltest.Request(agent, "prod", "ops"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan approval.Record, 1)
	go func() { r, _ := p.a.Wait(ctx, rec.ID); done <- r }()
	time.Sleep(20 * time.Millisecond)
	if _, err := p.b.Approve(ctx, rec.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.State != approval.Approved {
			t.Errorf("state %s", r.State)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not woken after the listener reconnected")
	}
}

// TestListenerIdlePing: an idle listener pings its connection (here every
// 30ms) and keeps receiving notifications afterwards.
func TestListenerIdlePing(t *testing.T) {
	schema := pgtest.Schema(t, "approval_test_")
	sa, sb := open(t, schema), open(t, schema)
	sa.health = 30 * time.Millisecond
	waitListening(t, sa)
	_, stop := sa.Watch("x")
	defer stop()
	time.Sleep(200 * time.Millisecond) // several timed-out waits and pings
	sa.mu.Lock()
	pid := sa.pid
	sa.mu.Unlock()
	a, _ := approval.New(approval.Config{Store: sa, PollInterval: time.Hour})
	b, _ := approval.New(approval.Config{Store: sb, PollInterval: time.Hour})
	ctx := context.Background()
	rec, _, err := a.Request(ctx, approvaltest.Request(agent, "prod", "ops"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan approval.Record, 1)
	go func() { r, _ := a.Wait(ctx, rec.ID); done <- r }()
	time.Sleep(50 * time.Millisecond)
	if _, err := b.Approve(ctx, rec.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r.State != approval.Approved {
			t.Errorf("state %s", r.State)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not woken: the listener broke after idle pings")
	}
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.pid != pid {
		t.Errorf("listener reconnected (pid %d -> %d): idle pings should keep the connection", pid, sa.pid)
	}
}

// TestOutage: a store that cannot reach PostgreSQL fails closed: every
// operation errors, nothing is ever granted.
func TestOutage(t *testing.T) {
	pgtest.Require(t)
	ctx := context.Background()

	t.Run("bad DSN", func(t *testing.T) {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := New(cctx, Config{DSN: "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"}); err == nil {
			t.Fatal("New with an unreachable server succeeded")
		}
	})

	t.Run("pool closed after approval", func(t *testing.T) {
		schema := pgtest.Schema(t, "approval_test_")
		pool, err := pgxpool.New(ctx, pgtest.DSN())
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(ctx, Config{Pool: pool, Schema: schema})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		b, err := approval.New(approval.Config{Store: s, PollInterval: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		req := approvaltest.Request(agent, "prod", "ops")
		rec, _, err := b.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Approve(ctx, rec.ID, alice, ""); err != nil {
			t.Fatal(err)
		}
		pool.Close() // the database "goes away" with a grant outstanding

		if _, ok, err := b.ConsumeGrant(ctx, agent, req.Fingerprint); ok || err == nil {
			t.Errorf("ConsumeGrant during outage = %v, %v; want false and an error", ok, err)
		}
		res, err := b.Gate(ctx, req, approval.GateOptions{Hold: time.Second})
		if err == nil || res.Outcome == approval.OutcomeGranted {
			t.Errorf("Gate during outage = %v, %v; want an error", res.Outcome, err)
		}
		if _, _, err := b.Request(ctx, approvaltest.Request(agent, "other", "ops")); err == nil {
			t.Error("Request during outage succeeded")
		}
		if _, err := b.Approve(ctx, rec.ID, approvaltest.Principal("bob", "ops"), ""); err == nil {
			t.Error("Approve during outage succeeded")
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if _, err := b.Wait(wctx, rec.ID); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait during outage err = %v, want the store error at once", err)
		}
	})
}

func TestMigrate(t *testing.T) {
	schema := pgtest.Schema(t, "approval_test_")
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 { // replicas starting together
		wg.Go(func() {
			s, err := New(ctx, Config{DSN: pgtest.DSN(), Schema: schema})
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		})
	}
	wg.Wait()
	s := open(t, schema)
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	var n, v int
	if err := s.pool.QueryRow(ctx, `SELECT count(*), max(version) FROM `+pgx.Identifier{schema, "gatehouse_approval_migrations"}.Sanitize()).Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != 1 || v != SchemaVersion {
		t.Errorf("%d version rows, max %d; want 1 row at %d", n, v, SchemaVersion)
	}
	pgtest.Exec(t, `INSERT INTO `+pgx.Identifier{schema, "gatehouse_approval_migrations"}.Sanitize()+` (version) VALUES (99)`)
	if err := s.Migrate(ctx); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Migrate on a newer schema: %v", err)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"nothing", Config{}, "Config.Pool or Config.DSN is required"},
		{"bad schema", Config{DSN: pgtest.DefaultDSN, Schema: "Robert'); DROP"}, "Config.Schema"},
		{"long schema", Config{DSN: pgtest.DefaultDSN, Schema: strings.Repeat("a", 41)}, "Config.Schema"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestRecordRoundTrip: every field survives the jsonb column.
func TestRecordRoundTrip(t *testing.T) {
	s := newStore(t).(*Store)
	ctx := context.Background()
	now := time.Date(2026, 11, 25, 12, 0, 0, 123456000, time.UTC)
	rec := approval.Record{
		ID: "roundtrip", State: approval.Pending, Principal: agent.String(),
		Requester: approval.Requester{Issuer: agent.Issuer, Subject: agent.Subject, Email: agent.Email, Groups: []string{"g"}},
		Action:    "s3:DeleteBucket", Resources: []string{"arn:aws:s3:::a", "arn:aws:s3:::b"}, Fingerprint: "fp",
		Requirements: []approval.Requirement{{Rule: "r", Reason: "why <b>", Groups: []string{"ops", "sec"}, MinApprovals: 2}},
		Summary:      map[string]string{"bucket": "a", "note": "ünïcode"},
		CreatedAt:    now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour), GrantTTL: 90 * time.Second,
		Votes: []approval.Vote{{Approver: "x", Groups: []string{"ops"}, Approve: true, Reason: "r", At: now}},
	}
	if _, _, err := s.Create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(rec)
	b, _ := json.Marshal(got)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip changed the record:\n got %s\nwant %s", b, a)
	}
}

func TestCloseStopsListener(t *testing.T) {
	schema := pgtest.Schema(t, "approval_test_")
	check := approvaltest.LeakCheck(t)
	s, err := New(context.Background(), Config{DSN: pgtest.DSN(), Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	waitListening(t, s)
	_, stop := s.Watch("x")
	s.Close()
	stop()
	s.Close() // idempotent
	check()
}

// BenchmarkApprovalLatencyPostgres measures approval-to-release latency
// across two replicas: from the start of Approve on B to the return of
// Wait on A (LISTEN/NOTIFY only: the poll interval is an hour). It reports
// the median and the 90th percentile in milliseconds.
func BenchmarkApprovalLatencyPostgres(b *testing.B) {
	p := newPair(b, time.Hour)
	ctx := context.Background()
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		req := approvaltest.Request(agent, fmt.Sprint("bench-", i), "ops")
		rec, _, err := p.a.Request(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		released := make(chan time.Time, 1)
		ready := make(chan struct{})
		go func() {
			close(ready)
			p.a.Wait(ctx, rec.ID)
			released <- time.Now()
		}()
		<-ready
		time.Sleep(2 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		if _, err := p.b.Approve(ctx, rec.ID, alice, ""); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, (<-released).Sub(start))
	}
	if len(lat) > 0 {
		sorted := slices.Sorted(slices.Values(lat))
		b.ReportMetric(float64(sorted[len(sorted)/2].Microseconds())/1000, "median-ms")
		b.ReportMetric(float64(sorted[len(sorted)*9/10].Microseconds())/1000, "p90-ms")
	}
}
