// Package approvaltest is the conformance kit for approval.Store
// implementations, and a few helpers for tests of code that uses the
// broker.
//
// A store passes when Run passes against it:
//
//	func TestConformance(t *testing.T) {
//		approvaltest.Run(t, func(t *testing.T) approval.Store { return newEmptyStore(t) })
//	}
//
// Run checks the Store contract directly (create-or-attach atomicity,
// filters and ordering, Update's all-or-nothing behaviour and
// serialisation, the state machine, watch signals, pruning) and through an
// approval.Broker (separation of duties, distinct-approver counting,
// expiry, exactly-once grants under 100 racing goroutines, Wait wake-ups
// and cancellation without leaked goroutines).
package approvaltest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// Clock is a settable clock for approval.Config.Now, safe for concurrent
// use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Events records broker events; safe for concurrent use.
type Events struct {
	mu  sync.Mutex
	all []approval.Event
}

// ApprovalEvent implements approval.EventSink.
func (e *Events) ApprovalEvent(_ context.Context, ev approval.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

// Count returns how many events of type typ were recorded for record id
// ("" for any record).
func (e *Events) Count(typ approval.EventType, id string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.all {
		if ev.Type == typ && (id == "" || ev.Record.ID == id) {
			n++
		}
	}
	return n
}

// All returns a copy of the recorded events.
func (e *Events) All() []approval.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]approval.Event(nil), e.all...)
}

// Principal returns a test principal of issuer https://idp.test.
func Principal(subject string, groups ...string) identity.Principal {
	return identity.Principal{Issuer: "https://idp.test", Subject: subject, Email: subject + "@example.test", Groups: groups}
}

// Request returns a request by principal for s3:DeleteBucket on bucket,
// approvable by one member of group.
func Request(principal identity.Principal, bucket, group string) approval.Request {
	return approval.Request{
		Principal:   principal,
		Action:      "s3:DeleteBucket",
		Resources:   []string{"arn:aws:s3:::" + bucket},
		Fingerprint: "fp-" + principal.Subject + "-" + bucket,
		Requirements: []approval.Requirement{{
			Rule: "prod-delete", Reason: "deleting a production bucket", Groups: []string{group}, MinApprovals: 1,
		}},
		Summary: map[string]string{"bucket": bucket, "region": "us-east-1"},
	}
}

// LeakCheck records the number of goroutines; the returned function fails
// t if, within five seconds, that number is not back to the baseline.
// Call it before starting the work under test and defer the result.
func LeakCheck(t testing.TB) func() {
	t.Helper()
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			n := runtime.NumGoroutine()
			if n <= base {
				return
			}
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines: %d after, %d before:\n%s", n, base, buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Start is the fixed time Run's clocks begin at.
var Start = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// Run runs the conformance suite. newStore must return an empty store
// private to the calling (sub)test and arrange its cleanup.
func Run(t *testing.T, newStore func(t *testing.T) approval.Store) {
	t.Run("Store", func(t *testing.T) { runStore(t, newStore) })
	t.Run("Broker", func(t *testing.T) { runBroker(t, newStore) })
}

var idSeq atomic.Int64

func newRecord(principal, fp string, now time.Time) approval.Record {
	return approval.Record{
		ID:           fmt.Sprintf("rec%06d", idSeq.Add(1)),
		State:        approval.Pending,
		Principal:    principal,
		Requester:    approval.Requester{Subject: principal},
		Action:       "s3:DeleteBucket",
		Resources:    []string{"arn:aws:s3:::b"},
		Fingerprint:  fp,
		Requirements: []approval.Requirement{{Rule: "r", Groups: []string{"ops"}, MinApprovals: 1}},
		CreatedAt:    now,
		UpdatedAt:    now,
		ExpiresAt:    now.Add(time.Hour),
		GrantTTL:     time.Minute,
	}
}

func runStore(t *testing.T, newStore func(t *testing.T) approval.Store) {
	ctx := context.Background()

	t.Run("CreateGet", func(t *testing.T) {
		s := newStore(t)
		r := newRecord("p1", "fp1", Start)
		r.Summary = map[string]string{"k": "v"}
		got, created, err := s.Create(ctx, r)
		if err != nil || !created {
			t.Fatalf("Create = %v, %v", created, err)
		}
		if !equalRecord(got, r) {
			t.Errorf("Create returned %+v, want %+v", got, r)
		}
		got, err = s.Get(ctx, r.ID)
		if err != nil || !equalRecord(got, r) {
			t.Errorf("Get = %+v, %v; want %+v", got, err, r)
		}
		if _, err := s.Get(ctx, "nosuchid"); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("Get(missing) err = %v, want ErrNotFound", err)
		}
		bad := newRecord("p1", "fp-bad", Start)
		bad.State = approval.Approved
		if _, _, err := s.Create(ctx, bad); !errors.Is(err, approval.ErrBadUpdate) {
			t.Errorf("Create(approved) err = %v, want ErrBadUpdate", err)
		}
	})

	t.Run("CreateAttach", func(t *testing.T) {
		s := newStore(t)
		first := newRecord("p1", "fp1", Start)
		mustCreate(t, s, first, true)
		tests := []struct {
			name        string
			principal   string
			fp          string
			wantCreated bool
		}{
			{"same request attaches", "p1", "fp1", false},
			{"other fingerprint", "p1", "fp2", true},
			{"other principal", "p2", "fp1", true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := newRecord(tt.principal, tt.fp, Start)
				got := mustCreate(t, s, r, tt.wantCreated)
				if !tt.wantCreated && got.ID != first.ID {
					t.Errorf("attached to %s, want %s", got.ID, first.ID)
				}
			})
		}
		// An approved record is still active; a final one is not.
		approve(t, s, first.ID)
		if got := mustCreate(t, s, newRecord("p1", "fp1", Start), false); got.ID != first.ID || got.State != approval.Approved {
			t.Errorf("attach to approved: got %s %s", got.ID, got.State)
		}
		if _, err := s.Update(ctx, first.ID, func(r *approval.Record) error { r.State = approval.Consumed; return nil }); err != nil {
			t.Fatal(err)
		}
		if got := mustCreate(t, s, newRecord("p1", "fp1", Start), true); got.ID == first.ID {
			t.Error("a consumed record was attached to")
		}
	})

	t.Run("CreateConcurrent", func(t *testing.T) {
		s := newStore(t)
		const n = 20
		var wg sync.WaitGroup
		ids := make([]string, n)
		var created atomic.Int32
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				got, c, err := s.Create(ctx, newRecord("p", "fp", Start))
				ids[i], errs[i] = got.ID, err
				if c {
					created.Add(1)
				}
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("Create %d: %v", i, err)
			}
			if ids[i] != ids[0] {
				t.Errorf("Create %d returned %s, Create 0 returned %s", i, ids[i], ids[0])
			}
		}
		if created.Load() != 1 {
			t.Errorf("%d creates succeeded, want 1", created.Load())
		}
	})

	t.Run("List", func(t *testing.T) {
		s := newStore(t)
		a := newRecord("alice", "fa", Start)
		b := newRecord("bob", "fb", Start.Add(time.Second))
		b.Action = "s3:PutBucketPolicy"
		c := newRecord("alice", "fc", Start.Add(2*time.Second))
		c.ExpiresAt = Start.Add(time.Minute)
		for _, r := range []approval.Record{a, b, c} {
			mustCreate(t, s, r, true)
		}
		approve(t, s, b.ID) // decided at Start+2s, grant expires at Start+62s
		tests := []struct {
			name string
			f    approval.Filter
			want []string
		}{
			{"all newest first", approval.Filter{}, []string{c.ID, b.ID, a.ID}},
			{"limit", approval.Filter{Limit: 2}, []string{c.ID, b.ID}},
			{"state", approval.Filter{State: approval.Pending}, []string{c.ID, a.ID}},
			{"principal", approval.Filter{Principal: "alice"}, []string{c.ID, a.ID}},
			{"action", approval.Filter{Action: "s3:PutBucketPolicy"}, []string{b.ID}},
			{"fingerprint", approval.Filter{Fingerprint: "fa"}, []string{a.ID}},
			{"combined", approval.Filter{Principal: "alice", State: approval.Approved}, nil},
			{"due none", approval.Filter{DueBefore: Start.Add(59 * time.Second)}, nil},
			{"due pending", approval.Filter{DueBefore: Start.Add(time.Minute)}, []string{c.ID}},
			{"due grant", approval.Filter{DueBefore: Start.Add(62 * time.Second)}, []string{c.ID, b.ID}},
			{"due all", approval.Filter{DueBefore: Start.Add(2 * time.Hour)}, []string{c.ID, b.ID, a.ID}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f, err := tt.f.Check()
				if err != nil {
					t.Fatal(err)
				}
				got, err := s.List(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, r := range got {
					ids = append(ids, r.ID)
				}
				if strings.Join(ids, ",") != strings.Join(tt.want, ",") {
					t.Errorf("List = %v, want %v", ids, tt.want)
				}
			})
		}
	})

	t.Run("UpdateAllOrNothing", func(t *testing.T) {
		s := newStore(t)
		r := newRecord("p", "fp", Start)
		mustCreate(t, s, r, true)
		boom := errors.New("boom")
		got, err := s.Update(ctx, r.ID, func(x *approval.Record) error {
			x.State = approval.Denied
			x.Note = "should not stick"
			return boom
		})
		if err != boom {
			t.Errorf("Update err = %v, want the function's error unchanged", err)
		}
		if got.State != approval.Pending {
			t.Errorf("Update returned state %s, want the current record (pending)", got.State)
		}
		if cur, _ := s.Get(ctx, r.ID); cur.State != approval.Pending || cur.Note != "" {
			t.Errorf("record changed after a failed update: %+v", cur)
		}
		if _, err := s.Update(ctx, "nosuchid", func(*approval.Record) error { t.Error("fn called for a missing id"); return nil }); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("Update(missing) err = %v", err)
		}
	})

	t.Run("UpdateStateMachine", func(t *testing.T) {
		s := newStore(t)
		r := newRecord("p", "fp", Start)
		mustCreate(t, s, r, true)
		tests := []struct {
			name string
			fn   func(*approval.Record)
		}{
			{"fingerprint", func(x *approval.Record) { x.Fingerprint = "other" }},
			{"principal", func(x *approval.Record) { x.Principal = "other" }},
			{"id", func(x *approval.Record) { x.ID = "other" }},
			{"pending to consumed", func(x *approval.Record) { x.State = approval.Consumed }},
			{"unknown state", func(x *approval.Record) { x.State = "maybe" }},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.Update(ctx, r.ID, func(x *approval.Record) error { tt.fn(x); return nil })
				if !errors.Is(err, approval.ErrBadUpdate) {
					t.Errorf("err = %v, want ErrBadUpdate", err)
				}
			})
		}
		approve(t, s, r.ID)
		if _, err := s.Update(ctx, r.ID, func(x *approval.Record) error { x.State = approval.Consumed; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Update(ctx, r.ID, func(x *approval.Record) error { x.State = approval.Approved; return nil }); !errors.Is(err, approval.ErrBadUpdate) {
			t.Errorf("consumed -> approved: err = %v, want ErrBadUpdate", err)
		}
	})

	t.Run("UpdateSerializes", func(t *testing.T) {
		s := newStore(t)
		r := newRecord("p", "fp", Start)
		mustCreate(t, s, r, true)
		const n = 50
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, err := s.Update(ctx, r.ID, func(x *approval.Record) error {
					x.Votes = append(x.Votes, approval.Vote{Approver: fmt.Sprint("v", i), Approve: true, At: Start})
					return nil
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got, _ := s.Get(ctx, r.ID); len(got.Votes) != n {
			t.Errorf("%d votes after %d concurrent updates: lost updates", len(got.Votes), n)
		}
	})

	t.Run("Watch", func(t *testing.T) {
		s := newStore(t)
		r := newRecord("p", "fp", Start)
		mustCreate(t, s, r, true)
		ch, stop := s.Watch(r.ID)
		defer stop()
		drain(ch)
		if _, err := s.Update(ctx, r.ID, func(x *approval.Record) error { x.Note = "changed"; return nil }); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("no change signal within 5s of an update")
		}
		stop()
		stop() // idempotent
	})

	t.Run("Prune", func(t *testing.T) {
		s := newStore(t)
		old := newRecord("p", "f1", Start)
		live := newRecord("p", "f2", Start)
		recent := newRecord("p", "f3", Start)
		for _, r := range []approval.Record{old, live, recent} {
			mustCreate(t, s, r, true)
		}
		for id, at := range map[string]time.Time{old.ID: Start.Add(time.Minute), recent.ID: Start.Add(time.Hour)} {
			if _, err := s.Update(ctx, id, func(x *approval.Record) error {
				x.State, x.UpdatedAt = approval.Denied, at
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.Prune(ctx, Start.Add(30*time.Minute))
		if err != nil || n != 1 {
			t.Errorf("Prune = %d, %v; want 1", n, err)
		}
		if _, err := s.Get(ctx, old.ID); !errors.Is(err, approval.ErrNotFound) {
			t.Errorf("old final record still there: %v", err)
		}
		for _, id := range []string{live.ID, recent.ID} {
			if _, err := s.Get(ctx, id); err != nil {
				t.Errorf("Get(%s) after prune: %v", id, err)
			}
		}
	})
}

func mustCreate(t *testing.T, s approval.Store, r approval.Record, wantCreated bool) approval.Record {
	t.Helper()
	got, created, err := s.Create(context.Background(), r)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if created != wantCreated {
		t.Fatalf("Create created = %v, want %v", created, wantCreated)
	}
	return got
}

func approve(t *testing.T, s approval.Store, id string) {
	t.Helper()
	_, err := s.Update(context.Background(), id, func(x *approval.Record) error {
		x.State = approval.Approved
		x.DecidedAt = x.CreatedAt.Add(time.Second)
		x.GrantExpiresAt = x.DecidedAt.Add(x.GrantTTL)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func drain(ch <-chan struct{}) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

// equalRecord compares the fields a store must round-trip.
func equalRecord(a, b approval.Record) bool {
	return a.ID == b.ID && a.State == b.State && a.Principal == b.Principal && a.Fingerprint == b.Fingerprint &&
		a.Action == b.Action && strings.Join(a.Resources, ",") == strings.Join(b.Resources, ",") &&
		a.CreatedAt.Equal(b.CreatedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.GrantTTL == b.GrantTTL &&
		len(a.Requirements) == len(b.Requirements) && fmt.Sprint(a.Summary) == fmt.Sprint(b.Summary) &&
		a.Requester.Subject == b.Requester.Subject
}
