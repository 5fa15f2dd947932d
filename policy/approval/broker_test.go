package approval_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

var errDown = errors.New("store down")

// failingStore fails every call while fail is set.
type failingStore struct {
	approval.Store
	fail atomic.Bool
}

func (s *failingStore) Create(ctx context.Context, r approval.Record) (approval.Record, bool, error) {
	if s.fail.Load() {
		return approval.Record{}, false, errDown
	}
	return s.Store.Create(ctx, r)
}

func (s *failingStore) Get(ctx context.Context, id string) (approval.Record, error) {
	if s.fail.Load() {
		return approval.Record{}, errDown
	}
	return s.Store.Get(ctx, id)
}

func (s *failingStore) List(ctx context.Context, f approval.Filter) ([]approval.Record, error) {
	if s.fail.Load() {
		return nil, errDown
	}
	return s.Store.List(ctx, f)
}

func (s *failingStore) Update(ctx context.Context, id string, fn func(*approval.Record) error) (approval.Record, error) {
	if s.fail.Load() {
		return approval.Record{}, errDown
	}
	return s.Store.Update(ctx, id, fn)
}

// deafStore never signals watchers: only polling can wake Wait.
type deafStore struct{ approval.Store }

func (deafStore) Watch(string) (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

func TestConfigValidation(t *testing.T) {
	store := newMemory(t)
	tests := []struct {
		name string
		cfg  approval.Config
		want string
	}{
		{"no store", approval.Config{}, "Config.Store"},
		{"nil notifier", approval.Config{Store: store, Notifiers: []approval.Notifier{nil}}, "Config.Notifiers[0]"},
		{"negative ttl", approval.Config{Store: store, PendingTTL: -time.Second}, "Config.PendingTTL"},
		{"ttl above max", approval.Config{Store: store, GrantTTL: 2 * time.Hour, MaxGrantTTL: time.Hour}, "Config.GrantTTL"},
		{"tiny poll", approval.Config{Store: store, PollInterval: time.Millisecond}, "Config.PollInterval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := approval.New(tt.cfg)
			if !errors.Is(err, approval.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
	if _, err := approval.New(approval.Config{Store: store}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestRequestValidation(t *testing.T) {
	e := approvaltest.NewEnv(t, newMemory(t), nil)
	base := func() approval.Request { return approvaltest.Request(agent, "prod", "ops") }
	tests := []struct {
		name string
		mod  func(*approval.Request)
		want string
	}{
		{"anonymous", func(r *approval.Request) { r.Principal = identity.Principal{} }, "Request.Principal"},
		{"no action", func(r *approval.Request) { r.Action = "" }, "Request.Action"},
		{"no fingerprint", func(r *approval.Request) { r.Fingerprint = "" }, "Request.Fingerprint"},
		{"no requirement", func(r *approval.Request) { r.Requirements = nil }, "Request.Requirements"},
		{"min approvals too high", func(r *approval.Request) { r.Requirements[0].MinApprovals = 11 }, "Request.Requirements[0].MinApprovals"},
		{"empty group name", func(r *approval.Request) { r.Requirements[0].Groups = []string{""} }, "Request.Requirements[0].Groups"},
		{"too many resources", func(r *approval.Request) { r.Resources = make([]string, approval.MaxResources+1) }, "Request.Resources"},
		{"huge summary value", func(r *approval.Request) { r.Summary = map[string]string{"k": strings.Repeat("v", 2000)} }, "Request.Summary"},
		{"pending ttl above max", func(r *approval.Request) { r.PendingTTL = 48 * time.Hour }, "Request.PendingTTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := base()
			tt.mod(&r)
			_, _, err := e.Broker.Request(context.Background(), r)
			var ie *approval.InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.want {
				t.Errorf("err = %v, want *InvalidError for %s", err, tt.want)
			}
		})
	}
}

func TestRecordDefaults(t *testing.T) {
	e := approvaltest.NewEnv(t, newMemory(t), nil)
	req := approvaltest.Request(agent, "prod", "ops")
	req.Requirements[0].MinApprovals = 0
	agent := agent
	agent.Claims = map[string]any{"secret": "claim"}
	req.Principal = agent
	rec, _, err := e.Broker.Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[a-z2-7]{26}$`).MatchString(rec.ID) {
		t.Errorf("id %q is not 128-bit base32", rec.ID)
	}
	if rec.Requirements[0].MinApprovals != 1 || rec.GrantTTL != approval.DefaultGrantTTL ||
		!rec.ExpiresAt.Equal(approvaltest.Start.Add(approval.DefaultPendingTTL)) || rec.Principal != "https://idp.test#agent-1" {
		t.Errorf("defaults not applied: %+v", rec)
	}
	// Changing the caller's request afterwards does not reach the store.
	req.Requirements[0].Groups[0] = "everyone"
	if got, _ := e.Broker.Get(context.Background(), rec.ID); got.Requirements[0].Groups[0] != "ops" {
		t.Error("the record aliases the request's slices")
	}
}

func TestStoreOutageFailsClosed(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{Store: newMemory(t)}
	e := approvaltest.NewEnv(t, store, nil)
	req := approvaltest.Request(agent, "prod", "ops")
	rec, _, err := e.Broker.Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Broker.Approve(ctx, rec.ID, alice, ""); err != nil {
		t.Fatal(err)
	}
	store.fail.Store(true)
	if _, ok, err := e.Broker.ConsumeGrant(ctx, agent, req.Fingerprint); ok || !errors.Is(err, errDown) {
		t.Errorf("ConsumeGrant = %v, %v", ok, err)
	}
	if res, err := e.Broker.Gate(ctx, req, approval.GateOptions{Hold: time.Second}); !errors.Is(err, errDown) || res.Outcome == approval.OutcomeGranted {
		t.Errorf("Gate = %v, %v", res.Outcome, err)
	}
	if _, err := e.Broker.Wait(ctx, rec.ID); !errors.Is(err, errDown) {
		t.Errorf("Wait err = %v", err)
	}
	if _, err := e.Broker.Approve(ctx, rec.ID, bob, ""); !errors.Is(err, errDown) {
		t.Errorf("Approve err = %v", err)
	}
	store.fail.Store(false)
	if _, ok, _ := e.Broker.ConsumeGrant(ctx, agent, req.Fingerprint); !ok {
		t.Error("grant lost after the outage") // nothing was consumed while down
	}
}

func TestWaitPollsWhenSignalsAreLost(t *testing.T) {
	ctx := context.Background()
	e := approvaltest.NewEnv(t, deafStore{newMemory(t)}, func(c *approval.Config) { c.PollInterval = 20 * time.Millisecond })
	rec, _, _ := e.Broker.Request(ctx, approvaltest.Request(agent, "prod", "ops"))
	done := make(chan approval.Record, 1)
	go func() { r, _ := e.Broker.Wait(ctx, rec.ID); done <- r }()
	time.Sleep(30 * time.Millisecond)
	e.Broker.Approve(ctx, rec.ID, alice, "")
	select {
	case r := <-done:
		if r.State != approval.Approved {
			t.Errorf("state %s", r.State)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait hung although it should poll every 20ms")
	}
}

func TestExpireWithdraws(t *testing.T) {
	ctx := context.Background()
	e := approvaltest.NewEnv(t, newMemory(t), nil)
	req := approvaltest.Request(agent, "prod", "ops")
	rec, _, _ := e.Broker.Request(ctx, req)
	e.Broker.Approve(ctx, rec.ID, alice, "")
	got, err := e.Broker.Expire(ctx, rec.ID, "revoked")
	if err != nil || got.State != approval.Expired || got.Note != "expired: revoked" {
		t.Fatalf("Expire = %s %q, %v", got.State, got.Note, err)
	}
	if _, ok, _ := e.Broker.ConsumeGrant(ctx, agent, req.Fingerprint); ok {
		t.Error("revoked grant consumed")
	}
	if _, err := e.Broker.Expire(ctx, rec.ID, "again"); !errors.Is(err, approval.ErrNotPending) {
		t.Errorf("second Expire err = %v", err)
	}
	if _, err := e.Broker.Expire(ctx, "nosuchid", ""); !errors.Is(err, approval.ErrNotFound) {
		t.Errorf("Expire(missing) err = %v", err)
	}
}

func TestJanitor(t *testing.T) {
	check := approvaltest.LeakCheck(t)
	store := newMemory(t).(*approval.MemoryStore)
	e := approvaltest.NewEnv(t, store, func(c *approval.Config) {
		c.JanitorInterval = 10 * time.Millisecond
		c.Retention = time.Hour
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Broker.Run(ctx) }()
	req := approvaltest.Request(agent, "prod", "ops")
	req.PendingTTL = time.Minute
	rec, _, _ := e.Broker.Request(context.Background(), req)
	e.Clock.Advance(2 * time.Minute)
	waitFor(t, func() bool { r, _ := e.Broker.Get(context.Background(), rec.ID); return r.State == approval.Expired })
	e.Clock.Advance(2 * time.Hour)
	waitFor(t, func() bool { return store.Len() == 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	check()
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
	}
}

func TestEventsCarryActors(t *testing.T) {
	ctx := context.Background()
	e := approvaltest.NewEnv(t, newMemory(t), nil)
	req := approvaltest.Request(agent, "prod", "ops")
	rec, _, _ := e.Broker.Request(ctx, req)
	e.Broker.Request(ctx, req)
	e.Broker.Approve(ctx, rec.ID, alice, "ok")
	e.Broker.ConsumeGrant(ctx, agent, req.Fingerprint)
	var got []string
	for _, ev := range e.Events.All() {
		got = append(got, string(ev.Type)+":"+ev.Actor+":"+string(ev.Record.State))
	}
	want := []string{
		"requested:https://idp.test#agent-1:pending",
		"attached:https://idp.test#agent-1:pending",
		"approved:https://idp.test#alice:approved",
		"consumed:https://idp.test#agent-1:consumed",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestURL(t *testing.T) {
	b, _ := approval.New(approval.Config{Store: newMemory(t)})
	if b.URL("abc") != "" {
		t.Error("URL without URLBase should be empty")
	}
	b, _ = approval.New(approval.Config{Store: newMemory(t), URLBase: "https://gw.example/approvals/ui/"})
	if got := b.URL("abc"); got != "https://gw.example/approvals/ui/abc" {
		t.Errorf("URL = %s", got)
	}
}
