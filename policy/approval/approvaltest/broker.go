package approvaltest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// Env is a broker over one store with a settable clock, recorded events and
// a counting notifier.
type Env struct {
	Broker   *approval.Broker
	Store    approval.Store
	Clock    *Clock
	Events   *Events
	Notified atomic.Int32
}

// NewEnv builds an Env on store. The clock starts at Start; PollInterval is
// an hour, so a Wait that returns was woken by the store's signal (or by
// its own deadline), never by polling. mod may adjust the config.
func NewEnv(t testing.TB, store approval.Store, mod func(*approval.Config)) *Env {
	t.Helper()
	e := &Env{Store: store, Clock: NewClock(Start), Events: &Events{}}
	cfg := approval.Config{
		Store:        store,
		Events:       e.Events,
		Now:          e.Clock.Now,
		URLBase:      "https://gw.test/approvals/ui/",
		PollInterval: time.Hour,
		Notifiers: []approval.Notifier{approval.NotifierFunc(func(context.Context, approval.Notification) error {
			e.Notified.Add(1)
			return nil
		})},
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := approval.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.Broker = b
	return e
}

var (
	requester = Principal("agent-1", "ops") // in the approver group itself: must still not self-approve
	outsider  = Principal("mallory", "dev")
	alice     = Principal("alice", "ops")
	bob       = Principal("bob", "ops")
	carol     = Principal("carol", "ops", "security")
	sec       = Principal("sam", "security")
)

func runBroker(t *testing.T, newStore func(t *testing.T) approval.Store) {
	ctx := context.Background()
	env := func(t *testing.T) *Env { return NewEnv(t, newStore(t), nil) }

	t.Run("SeparationOfDuties", func(t *testing.T) {
		tests := []struct {
			name     string
			approver identity.Principal
			deny     bool
			wantErr  error
		}{
			{"requester approves own request", requester, false, approval.ErrSelfApproval},
			{"requester denies own request", requester, true, approval.ErrSelfApproval},
			{"same subject other issuer is another identity", identity.Principal{Issuer: "https://other.test", Subject: "agent-1", Groups: []string{"ops"}}, false, nil},
			{"not in an approver group", outsider, false, approval.ErrNotApprover},
			{"anonymous", identity.Principal{Groups: []string{"ops"}}, false, approval.ErrNotApprover},
			{"member approves", alice, false, nil},
			{"member denies", alice, true, nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := env(t)
				rec, _, err := e.Broker.Request(ctx, Request(requester, "prod", "ops"))
				if err != nil {
					t.Fatal(err)
				}
				vote := e.Broker.Approve
				if tt.deny {
					vote = e.Broker.Deny
				}
				got, err := vote(ctx, rec.ID, tt.approver, "because")
				if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				want := approval.Pending
				if tt.wantErr == nil {
					want = map[bool]approval.State{false: approval.Approved, true: approval.Denied}[tt.deny]
				}
				if got.State != want {
					t.Errorf("state = %s, want %s", got.State, want)
				}
				if _, ok, _ := e.Broker.ConsumeGrant(ctx, requester, rec.Fingerprint); ok != (want == approval.Approved) {
					t.Errorf("ConsumeGrant ok = %v with state %s", ok, want)
				}
			})
		}
	})

	t.Run("NoApproverGroups", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		req.Requirements[0].Groups = nil
		rec, created, err := e.Broker.Request(ctx, req)
		var ue *approval.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, approval.ErrNoApprovers) || !errors.Is(err, approval.ErrUnavailable) {
			t.Fatalf("err = %v, want *UnavailableError wrapping ErrNoApprovers", err)
		}
		if !created || rec.ID == "" || ue.Record.ID != rec.ID {
			t.Fatalf("record not returned: created=%v rec=%+v", created, rec)
		}
		if e.Notified.Load() != 0 {
			t.Error("notifiers ran for a record nobody can approve")
		}
		if _, err := e.Broker.Approve(ctx, rec.ID, alice, ""); !errors.Is(err, approval.ErrNotApprover) {
			t.Errorf("Approve err = %v, want ErrNotApprover", err)
		}
		if _, _, err := e.Broker.Request(ctx, req); !errors.Is(err, approval.ErrNoApprovers) {
			t.Errorf("attach err = %v, want ErrNoApprovers", err)
		}
	})

	t.Run("MinApprovalsDistinct", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		req.Requirements[0].MinApprovals = 3
		rec, _, err := e.Broker.Request(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		steps := []struct {
			who       identity.Principal
			wantErr   error
			wantState approval.State
			wantVotes int
		}{
			{alice, nil, approval.Pending, 1},
			{alice, nil, approval.Pending, 1}, // a repeated vote is idempotent, not a second approval
			{bob, nil, approval.Pending, 2},
			{requester, approval.ErrSelfApproval, approval.Pending, 2},
			{carol, nil, approval.Approved, 3},
			{sec, approval.ErrNotApprover, approval.Approved, 3},
			{Principal("dave", "ops"), approval.ErrNotPending, approval.Approved, 3},
			{carol, nil, approval.Approved, 3},
		}
		for i, s := range steps {
			got, err := e.Broker.Approve(ctx, rec.ID, s.who, "")
			if !errors.Is(err, s.wantErr) || (s.wantErr == nil && err != nil) {
				t.Fatalf("step %d (%s): err = %v, want %v", i, s.who.Subject, err, s.wantErr)
			}
			if err == nil && (got.State != s.wantState || len(got.Votes) != s.wantVotes) {
				t.Fatalf("step %d (%s): state %s with %d votes, want %s with %d", i, s.who.Subject, got.State, len(got.Votes), s.wantState, s.wantVotes)
			}
		}
		if n := e.Events.Count(approval.EventApproved, rec.ID); n != 1 {
			t.Errorf("%d approved events, want 1", n)
		}
		if n := e.Events.Count(approval.EventVoted, rec.ID); n != 2 {
			t.Errorf("%d voted events, want 2", n)
		}
	})

	t.Run("EveryRequirement", func(t *testing.T) {
		tests := []struct {
			name      string
			approvers []identity.Principal
			want      approval.State
		}{
			{"one group only", []identity.Principal{alice, bob}, approval.Pending},
			{"both groups", []identity.Principal{alice, sec}, approval.Approved},
			{"one approver in both groups", []identity.Principal{carol}, approval.Approved},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := env(t)
				req := Request(requester, "prod", "ops")
				req.Requirements = append(req.Requirements, approval.Requirement{Rule: "sec-review", Groups: []string{"security"}})
				rec, _, err := e.Broker.Request(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				for _, a := range tt.approvers {
					if rec, err = e.Broker.Approve(ctx, rec.ID, a, ""); err != nil {
						t.Fatal(err)
					}
				}
				if rec.State != tt.want {
					t.Errorf("state = %s, want %s", rec.State, tt.want)
				}
			})
		}
	})

	t.Run("DenyWins", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		req.Requirements[0].MinApprovals = 2
		rec, _, _ := e.Broker.Request(ctx, req)
		if _, err := e.Broker.Approve(ctx, rec.ID, alice, "fine"); err != nil {
			t.Fatal(err)
		}
		got, err := e.Broker.Deny(ctx, rec.ID, bob, "not during the freeze")
		if err != nil || got.State != approval.Denied || got.Note != "not during the freeze" {
			t.Fatalf("Deny = %s %q, %v", got.State, got.Note, err)
		}
		if _, err := e.Broker.Approve(ctx, rec.ID, carol, ""); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("approve after deny: err = %v, want ErrNotPending", err)
		}
		if _, ok, err := e.Broker.ConsumeGrant(ctx, requester, rec.Fingerprint); ok || err != nil {
			t.Errorf("ConsumeGrant on a denied record = %v, %v", ok, err)
		}
		// The retry of a denied request learns of the denial.
		again, created, err := e.Broker.Request(ctx, req)
		if err != nil || created || again.ID != rec.ID || again.State != approval.Denied {
			t.Errorf("retry after deny = %s %s created=%v, %v; want the denied record", again.ID, again.State, created, err)
		}
	})

	t.Run("RetriesAttach", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		first, created, err := e.Broker.Request(ctx, req)
		if err != nil || !created {
			t.Fatal(created, err)
		}
		for range 3 {
			got, created, err := e.Broker.Request(ctx, req)
			if err != nil || created || got.ID != first.ID {
				t.Fatalf("retry: %s created=%v %v, want %s", got.ID, created, err, first.ID)
			}
		}
		other := req
		other.Fingerprint += "-other-body"
		if got, created, _ := e.Broker.Request(ctx, other); !created || got.ID == first.ID {
			t.Error("a different request attached to the first record")
		}
		if n := e.Notified.Load(); n != 2 {
			t.Errorf("notifier ran %d times, want 2 (once per new record)", n)
		}
		if n := e.Events.Count(approval.EventAttached, first.ID); n != 3 {
			t.Errorf("%d attached events, want 3", n)
		}
	})

	t.Run("PendingExpiry", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		req.PendingTTL = 10 * time.Minute
		rec, _, _ := e.Broker.Request(ctx, req)
		e.Clock.Advance(9 * time.Minute)
		if n, err := e.Broker.ExpireDue(ctx); n != 0 || err != nil {
			t.Fatalf("ExpireDue early = %d, %v", n, err)
		}
		e.Clock.Advance(time.Minute)
		if n, err := e.Broker.ExpireDue(ctx); n != 1 || err != nil {
			t.Fatalf("ExpireDue = %d, %v; want 1", n, err)
		}
		if n, _ := e.Broker.ExpireDue(ctx); n != 0 {
			t.Errorf("second ExpireDue expired %d", n)
		}
		if _, err := e.Broker.Approve(ctx, rec.ID, alice, ""); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("approve expired: err = %v", err)
		}
		got, err := e.Broker.Wait(ctx, rec.ID)
		if err != nil || got.State != approval.Expired {
			t.Errorf("Wait = %s, %v; want expired", got.State, err)
		}
		if n := e.Events.Count(approval.EventExpired, rec.ID); n != 1 {
			t.Errorf("%d expired events, want 1", n)
		}
		next, created, err := e.Broker.Request(ctx, req)
		if err != nil || !created || next.ID == rec.ID {
			t.Errorf("request after expiry: created=%v id=%s err=%v", created, next.ID, err)
		}
	})

	t.Run("StaleRecordNotAttached", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		req.PendingTTL = time.Minute
		rec, _, _ := e.Broker.Request(ctx, req)
		e.Clock.Advance(2 * time.Minute) // no janitor ran
		if _, err := e.Broker.Approve(ctx, rec.ID, alice, ""); !errors.Is(err, approval.ErrNotPending) {
			t.Errorf("late approval err = %v, want ErrNotPending", err)
		}
		next, created, err := e.Broker.Request(ctx, req)
		if err != nil || !created || next.ID == rec.ID {
			t.Errorf("retry after deadline attached to the stale record: created=%v, %v", created, err)
		}
	})

	t.Run("GrantExpiry", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		req.GrantTTL = 5 * time.Minute
		rec, _, _ := e.Broker.Request(ctx, req)
		if _, err := e.Broker.Approve(ctx, rec.ID, alice, ""); err != nil {
			t.Fatal(err)
		}
		e.Clock.Advance(5 * time.Minute)
		got, ok, err := e.Broker.ConsumeGrant(ctx, requester, rec.Fingerprint)
		if ok || err != nil || got.State != approval.Expired {
			t.Errorf("ConsumeGrant after TTL = %s %v %v; want expired, false", got.State, ok, err)
		}
	})

	t.Run("ConsumeExactlyOnce", func(t *testing.T) {
		e := env(t)
		req := Request(requester, "prod", "ops")
		rec, _, _ := e.Broker.Request(ctx, req)
		if _, ok, _ := e.Broker.ConsumeGrant(ctx, requester, rec.Fingerprint); ok {
			t.Fatal("pending record consumed")
		}
		if _, err := e.Broker.Approve(ctx, rec.ID, alice, ""); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name      string
			principal identity.Principal
			fp        string
			want      bool
		}{
			{"another principal", Principal("agent-2", "ops"), rec.Fingerprint, false},
			{"same subject, another issuer", identity.Principal{Issuer: "https://evil.test", Subject: "agent-1"}, rec.Fingerprint, false},
			{"another request body", requester, rec.Fingerprint + "x", false},
			{"empty fingerprint", requester, "", false},
			{"the identical request", requester, rec.Fingerprint, true},
			{"replay", requester, rec.Fingerprint, false},
		}
		for _, tt := range tests {
			got, ok, err := e.Broker.ConsumeGrant(ctx, tt.principal, tt.fp)
			if err != nil || ok != tt.want {
				t.Errorf("%s: ok = %v, %v; want %v", tt.name, ok, err, tt.want)
			}
			if ok && (got.State != approval.Consumed || got.ConsumedAt.IsZero()) {
				t.Errorf("%s: consumed record = %+v", tt.name, got)
			}
		}
		if n := e.Events.Count(approval.EventConsumed, rec.ID); n != 1 {
			t.Errorf("%d consumed events, want 1", n)
		}
	})

	for _, minApprovals := range []int{1, 3} {
		t.Run(fmt.Sprintf("RacingApprovers/min%d", minApprovals), func(t *testing.T) {
			e := env(t)
			req := Request(requester, "prod", "ops")
			req.Requirements[0].MinApprovals = minApprovals
			rec, _, _ := e.Broker.Request(ctx, req)
			const n = 100
			var ok, notPending atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					_, err := e.Broker.Approve(ctx, rec.ID, Principal(fmt.Sprint("approver-", i), "ops"), "")
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, approval.ErrNotPending):
						notPending.Add(1)
					default:
						t.Error(err)
					}
				})
			}
			close(start)
			wg.Wait()
			got, _ := e.Broker.Get(ctx, rec.ID)
			if int(ok.Load()) != minApprovals || int(notPending.Load()) != n-minApprovals {
				t.Errorf("%d votes accepted and %d refused, want %d and %d", ok.Load(), notPending.Load(), minApprovals, n-minApprovals)
			}
			if got.State != approval.Approved || len(got.Votes) != minApprovals {
				t.Errorf("state %s with %d votes, want approved with %d", got.State, len(got.Votes), minApprovals)
			}
			if c := e.Events.Count(approval.EventApproved, rec.ID); c != 1 {
				t.Errorf("%d approved events, want 1", c)
			}
			var consumed atomic.Int32
			for range n {
				wg.Go(func() {
					if _, ok, err := e.Broker.ConsumeGrant(ctx, requester, rec.Fingerprint); err != nil {
						t.Error(err)
					} else if ok {
						consumed.Add(1)
					}
				})
			}
			wg.Wait()
			if consumed.Load() != 1 {
				t.Errorf("grant consumed %d times by %d racing requests, want 1", consumed.Load(), n)
			}
		})
	}

	t.Run("WaitWakes", func(t *testing.T) {
		tests := []struct {
			name string
			act  func(e *Env, id string) error
			want approval.State
		}{
			{"approve", func(e *Env, id string) error { _, err := e.Broker.Approve(ctx, id, alice, ""); return err }, approval.Approved},
			{"deny", func(e *Env, id string) error { _, err := e.Broker.Deny(ctx, id, alice, "no"); return err }, approval.Denied},
			{"expire", func(e *Env, id string) error {
				e.Clock.Advance(2 * time.Hour)
				_, err := e.Broker.ExpireDue(ctx)
				return err
			}, approval.Expired},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				e := env(t)
				rec, _, _ := e.Broker.Request(ctx, Request(requester, "prod", "ops"))
				done := make(chan approval.Record, 1)
				go func() {
					got, err := e.Broker.Wait(ctx, rec.ID)
					if err != nil {
						t.Error(err)
					}
					done <- got
				}()
				time.Sleep(20 * time.Millisecond) // let Wait block (it is correct either way)
				if err := tt.act(e, rec.ID); err != nil {
					t.Fatal(err)
				}
				select {
				case got := <-done:
					if got.State != tt.want {
						t.Errorf("Wait returned %s, want %s", got.State, tt.want)
					}
				case <-time.After(10 * time.Second):
					t.Fatal("Wait did not wake within 10s (poll interval is 1h: the change signal was lost)")
				}
			})
		}
	})

	t.Run("WaitCancelNoLeak", func(t *testing.T) {
		e := env(t)
		rec, _, _ := e.Broker.Request(ctx, Request(requester, "prod", "ops"))
		if _, err := e.Broker.Get(ctx, rec.ID); err != nil { // warm up lazily started store machinery
			t.Fatal(err)
		}
		warm, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		e.Broker.Wait(warm, rec.ID)
		cancel()
		check := LeakCheck(t)
		wctx, cancel := context.WithCancel(ctx)
		const n = 20
		errs := make(chan error, n)
		for range n {
			go func() { _, err := e.Broker.Wait(wctx, rec.ID); errs <- err }()
		}
		time.Sleep(50 * time.Millisecond)
		cancel()
		deadline := time.After(2 * time.Second)
		for range n {
			select {
			case err := <-errs:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Wait err = %v, want context.Canceled", err)
				}
			case <-deadline:
				t.Fatal("Wait did not return within 2s of cancellation")
			}
		}
		dctx, dcancel := context.WithTimeout(ctx, 30*time.Millisecond)
		if _, err := e.Broker.Wait(dctx, rec.ID); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Wait with deadline err = %v", err)
		}
		dcancel()
		check()
	})

	runGate(t, newStore)
}

func runGate(t *testing.T, newStore func(t *testing.T) approval.Store) {
	ctx := context.Background()
	// approveWhenPending approves (or denies) the first pending record as
	// soon as it appears, from another goroutine, as a human would.
	actWhenPending := func(t *testing.T, e *Env, deny bool) <-chan error {
		out := make(chan error, 1)
		go func() {
			for range 500 {
				recs, err := e.Broker.List(ctx, approval.Filter{State: approval.Pending})
				if err != nil {
					out <- err
					return
				}
				if len(recs) > 0 {
					if deny {
						_, err = e.Broker.Deny(ctx, recs[0].ID, alice, "no")
					} else {
						_, err = e.Broker.Approve(ctx, recs[0].ID, alice, "ok")
					}
					out <- err
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
			out <- errors.New("no pending record appeared")
		}()
		return out
	}

	t.Run("Gate", func(t *testing.T) {
		t.Run("hold then approve", func(t *testing.T) {
			e := NewEnv(t, newStore(t), nil)
			acted := actWhenPending(t, e, false)
			res, err := e.Broker.Gate(ctx, Request(requester, "prod", "ops"), approval.GateOptions{Hold: 10 * time.Second})
			if err != nil || res.Outcome != approval.OutcomeGranted || res.Record.State != approval.Consumed {
				t.Fatalf("Gate = %v %s, %v; want granted", res.Outcome, res.Record.State, err)
			}
			if err := <-acted; err != nil {
				t.Fatal(err)
			}
			// The grant was used by the held request: a replay is a new request.
			res, err = e.Broker.Gate(ctx, Request(requester, "prod", "ops"), approval.GateOptions{})
			if err != nil || res.Outcome != approval.OutcomePending || !res.Created {
				t.Errorf("replay = %v created=%v, %v; want a new pending record", res.Outcome, res.Created, err)
			}
		})
		t.Run("hold then deny", func(t *testing.T) {
			e := NewEnv(t, newStore(t), nil)
			acted := actWhenPending(t, e, true)
			res, err := e.Broker.Gate(ctx, Request(requester, "prod", "ops"), approval.GateOptions{Hold: 10 * time.Second})
			if err != nil || res.Outcome != approval.OutcomeDenied {
				t.Fatalf("Gate = %v, %v; want denied", res.Outcome, err)
			}
			<-acted
		})
		t.Run("hold timeout then grant on retry", func(t *testing.T) {
			e := NewEnv(t, newStore(t), nil)
			req := Request(requester, "prod", "ops")
			res, err := e.Broker.Gate(ctx, req, approval.GateOptions{Hold: 50 * time.Millisecond})
			if err != nil || res.Outcome != approval.OutcomePending || res.URL != "https://gw.test/approvals/ui/"+res.Record.ID {
				t.Fatalf("Gate = %v %q, %v; want pending with URL", res.Outcome, res.URL, err)
			}
			if _, err := e.Broker.Approve(ctx, res.Record.ID, alice, ""); err != nil {
				t.Fatal(err)
			}
			other := req
			other.Fingerprint += "-other-key"
			if res, _ := e.Broker.Gate(ctx, other, approval.GateOptions{}); res.Outcome == approval.OutcomeGranted {
				t.Error("a different request rode on the grant")
			}
			res, err = e.Broker.Gate(ctx, req, approval.GateOptions{Hold: 50 * time.Millisecond})
			if err != nil || res.Outcome != approval.OutcomeGranted {
				t.Fatalf("retry = %v, %v; want granted", res.Outcome, err)
			}
			res, err = e.Broker.Gate(ctx, req, approval.GateOptions{})
			if err != nil || res.Outcome != approval.OutcomePending || !res.Created {
				t.Errorf("replay = %v, %v; want a new pending record", res.Outcome, err)
			}
		})
		t.Run("queue", func(t *testing.T) {
			e := NewEnv(t, newStore(t), nil)
			req := Request(requester, "prod", "ops")
			res, err := e.Broker.Gate(ctx, req, approval.GateOptions{})
			if err != nil || res.Outcome != approval.OutcomePending || !res.Created {
				t.Fatalf("Gate = %v, %v", res.Outcome, err)
			}
			again, _ := e.Broker.Gate(ctx, req, approval.GateOptions{})
			if again.Outcome != approval.OutcomePending || again.Created || again.Record.ID != res.Record.ID {
				t.Errorf("queued retry = %v %s created=%v, want the same pending record", again.Outcome, again.Record.ID, again.Created)
			}
			e.Broker.Deny(ctx, res.Record.ID, alice, "no")
			if denied, _ := e.Broker.Gate(ctx, req, approval.GateOptions{}); denied.Outcome != approval.OutcomeDenied {
				t.Errorf("retry after denial = %v, want denied", denied.Outcome)
			}
		})
		t.Run("unavailable", func(t *testing.T) {
			tests := []struct {
				name   string
				queue  bool
				groups []string
				fail   bool
				want   approval.Outcome
				state  approval.State
			}{
				{"no groups reject", false, nil, false, approval.OutcomeUnavailable, approval.Expired},
				{"no groups queue", true, nil, false, approval.OutcomePending, approval.Pending},
				{"notifier down reject", false, []string{"ops"}, true, approval.OutcomeUnavailable, approval.Expired},
				{"notifier down queue", true, []string{"ops"}, true, approval.OutcomePending, approval.Pending},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					e := NewEnv(t, newStore(t), func(c *approval.Config) {
						if tt.fail {
							c.Notifiers = []approval.Notifier{approval.NotifierFunc(func(context.Context, approval.Notification) error {
								return errors.New("webhook down")
							})}
						}
					})
					req := Request(requester, "prod", "ops")
					req.Requirements[0].Groups = tt.groups
					res, err := e.Broker.Gate(ctx, req, approval.GateOptions{Hold: time.Second, QueueWhenUnavailable: tt.queue})
					if err != nil {
						t.Fatalf("Gate err = %v: unavailability must be an outcome, never an error", err)
					}
					if res.Outcome != tt.want || res.Record.State != tt.state || res.Cause == nil {
						t.Errorf("Gate = %v %s cause=%v; want %v %s", res.Outcome, res.Record.State, res.Cause, tt.want, tt.state)
					}
					if tt.fail && e.Events.Count(approval.EventNotifyFailed, "") != 1 {
						t.Error("notifier failure not emitted")
					}
				})
			}
		})
	})
}
