// Package audittest is the conformance kit for audit.Sink implementations,
// in the manner of testing/slogtest: Run drives a sink through the
// contract written on audit.Sink and checks what it stored. It also has a
// Memory sink, a Failing sink and an event generator for tests.
package audittest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// Open returns a new, empty sink and a function that returns every event
// the sink stored, in the sink's order. Run calls the function only after
// the sink's Close returned.
type Open func(t *testing.T) (audit.Sink, func() []audit.Event)

// Run checks the sink returned by open against the audit.Sink contract,
// each check on a fresh sink in its own subtest:
//
//   - RoundTrip: a fully populated event comes back equal (as JSON).
//   - Order: events one goroutine writes come back in that order.
//   - Concurrent: events written from several goroutines at once all come
//     back exactly once, each goroutine's in its order.
//   - NoRetain: changing an event after Write returned does not change
//     what is stored; Write does not modify the event either.
//   - Large: an event of about 200 KiB comes back intact.
//   - Invalid: a nil event and events without ID, Time or a valid Phase
//     are refused with audit.ErrInvalidEvent and not stored.
//   - CanceledContext: with a cancelled context Write either stores the
//     event (nil error) or returns an error wrapping context.Canceled.
//   - Close: every event accepted before Close is stored once Close
//     returns; Write after Close wraps audit.ErrClosed; a second Close
//     returns nil.
func Run(t *testing.T, open Open) {
	t.Helper()
	ctx := context.Background()
	t.Run("RoundTrip", func(t *testing.T) {
		s, read := open(t)
		want := []*audit.Event{NewEvent(0), NewEvent(1)}
		want[1].Phase = audit.PhaseIntent
		want[1].Response = nil
		for _, e := range want {
			if err := s.Write(ctx, e); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		closeSink(t, s)
		got := read()
		if len(got) != len(want) {
			t.Fatalf("stored %d events, want %d", len(got), len(want))
		}
		for i := range want {
			if d := Diff(want[i], &got[i]); d != "" {
				t.Errorf("event %d differs after the round trip: %s", i, d)
			}
		}
	})
	t.Run("Order", func(t *testing.T) {
		s, read := open(t)
		const n = 200
		for i := range n {
			if err := s.Write(ctx, NewEvent(i)); err != nil {
				t.Fatalf("Write %d: %v", i, err)
			}
		}
		closeSink(t, s)
		got := read()
		if len(got) != n {
			t.Fatalf("stored %d events, want %d", len(got), n)
		}
		for i, e := range got {
			if want := NewEvent(i).ID; e.ID != want {
				t.Fatalf("event %d is %s, want %s", i, e.ID, want)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		s, read := open(t)
		const writers, each = 8, 50
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					e := NewEvent(w*1000 + i)
					e.ID = fmt.Sprintf("w%d-%04d", w, i)
					if err := s.Write(ctx, e); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("Write: %v", err)
		}
		closeSink(t, s)
		got := read()
		if len(got) != writers*each {
			t.Fatalf("stored %d events, want %d", len(got), writers*each)
		}
		seen := map[string]bool{}
		last := map[string]string{}
		for _, e := range got {
			if seen[e.ID] {
				t.Fatalf("event %s stored twice", e.ID)
			}
			seen[e.ID] = true
			w, _, _ := strings.Cut(e.ID, "-")
			if e.ID <= last[w] {
				t.Fatalf("writer %s's event %s stored after %s", w, e.ID, last[w])
			}
			last[w] = e.ID
		}
	})
	t.Run("NoRetain", func(t *testing.T) {
		s, read := open(t)
		e := NewEvent(7)
		want := e.Clone()
		if err := s.Write(ctx, e); err != nil {
			t.Fatalf("Write: %v", err)
		}
		if !reflect.DeepEqual(e, want) {
			t.Fatalf("Write modified the event: %s", Diff(want, e))
		}
		e.Principal.Groups[0] = "changed"
		e.Request.Params["Bucket"] = "changed"
		e.Request.Resources[0] = "changed"
		e.Decision.Rule = "changed"
		e.Decision.Matched[0].Rule = "changed"
		e.Approval.Approvers[0].Principal = "changed"
		e.Masks[0].Path = "changed"
		e.ID = "changed"
		closeSink(t, s)
		got := read()
		if len(got) != 1 {
			t.Fatalf("stored %d events, want 1", len(got))
		}
		if d := Diff(want, &got[0]); d != "" {
			t.Fatalf("the sink retained the event: %s", d)
		}
	})
	t.Run("Large", func(t *testing.T) {
		s, read := open(t)
		e := NewEvent(3)
		for i := range 50 {
			e.Request.Params[fmt.Sprintf("Big%02d", i)] = strings.Repeat(string(rune('a'+i%26)), 4000) + "\u00e9\"<>&\\"
		}
		if err := s.Write(ctx, e); err != nil {
			t.Fatalf("Write of a large event: %v", err)
		}
		closeSink(t, s)
		got := read()
		if len(got) != 1 {
			t.Fatalf("stored %d events, want 1", len(got))
		}
		if d := Diff(e, &got[0]); d != "" {
			t.Fatalf("large event differs: %s", d)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		s, read := open(t)
		bad := map[string]*audit.Event{"nil": nil}
		e := NewEvent(1)
		e.ID = ""
		bad["no id"] = e
		e = NewEvent(2)
		e.Time = time.Time{}
		bad["zero time"] = e
		e = NewEvent(3)
		e.Phase = "later"
		bad["bad phase"] = e
		e = NewEvent(4)
		e.Version = 99
		bad["future version"] = e
		for name, e := range bad {
			if err := s.Write(ctx, e); !errors.Is(err, audit.ErrInvalidEvent) {
				t.Errorf("%s: Write returned %v, want an error wrapping audit.ErrInvalidEvent", name, err)
			}
		}
		closeSink(t, s)
		if got := read(); len(got) != 0 {
			t.Fatalf("stored %d invalid events", len(got))
		}
	})
	t.Run("CanceledContext", func(t *testing.T) {
		s, read := open(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		err := s.Write(cctx, NewEvent(5))
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("Write with a cancelled context returned %v: want nil or an error wrapping context.Canceled", err)
		}
		closeSink(t, s)
		got := read()
		if err == nil && (len(got) != 1 || got[0].ID != NewEvent(5).ID) {
			t.Fatalf("Write returned nil but %d events were stored", len(got))
		}
	})
	t.Run("Close", func(t *testing.T) {
		s, read := open(t)
		for i := range 20 {
			if err := s.Write(ctx, NewEvent(i)); err != nil {
				t.Fatalf("Write: %v", err)
			}
		}
		closeSink(t, s)
		if err := s.Write(ctx, NewEvent(100)); !errors.Is(err, audit.ErrClosed) {
			t.Errorf("Write after Close returned %v, want an error wrapping audit.ErrClosed", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close returned %v, want nil", err)
		}
		if got := read(); len(got) != 20 {
			t.Fatalf("stored %d events before Close returned, want 20", len(got))
		}
	})
}

func closeSink(t *testing.T, s audit.Sink) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// NewEvent returns a completion event with every member set, distinct
// for each i and the same for the same i. Its ID sorts in i order.
func NewEvent(i int) *audit.Event {
	t := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Millisecond)
	return &audit.Event{
		Version:   audit.Version,
		ID:        fmt.Sprintf("ev-%08d", i),
		CallID:    fmt.Sprintf("call-%08d", i),
		Time:      t,
		Phase:     audit.PhaseCompletion,
		SessionID: "sess-" + fmt.Sprint(i%3),
		Gateway:   "gw-1",
		Principal: audit.PrincipalInfo{
			ID: "https://issuer.example#agent-7", Issuer: "https://issuer.example", Subject: "agent-7",
			ClientID: "mcp-s3", Email: "agent@example.com", Groups: []string{"agents", "s3-readers"},
			Role: "reader", RoleSessionName: "gh-agent-7-1a2b", SourceIdentity: "agent-7",
		},
		Request: audit.RequestInfo{
			Service: "s3", Region: "eu-west-1", Operation: "DeleteObject", Action: "s3:DeleteObject",
			Resources: []string{"arn:aws:s3:::reports/2026/q4.csv"}, Method: "DELETE", Path: "/reports/2026/q4.csv",
			Params: map[string]string{"Bucket": "reports", "Key": "2026/q4.csv"}, Flags: []string{"returns_secrets"},
			SourceIP: "127.0.0.1", UserAgent: "aws-sdk-go-v2/1.48.0", MCPSession: "mcp-1", MCPTool: "delete_object",
			Presigned: i%2 == 1, Truncated: i%5 == 4,
		},
		Decision: &audit.DecisionInfo{
			Effect: "approve", Rule: "deletes-need-approval", Reason: "deleting reports needs a human",
			Matched: []audit.MatchInfo{
				{Rule: "deletes-need-approval", Effect: "approve", Source: "policy.yaml:12:3"},
				{Rule: "agents-read", Effect: "allow", Source: "policy.yaml:4:3"},
			},
			Revision: "rev-abc",
		},
		Approval: &audit.ApprovalInfo{
			ID: "APPR" + fmt.Sprint(i), State: "consumed", Groups: []string{"sre"},
			Approvers: []audit.Approver{{Principal: "https://issuer.example#alice", Email: "alice@example.com", Approve: true, Reason: "ok", Time: t.Add(-time.Minute)}},
		},
		Response: &audit.ResponseInfo{
			Status: 204, AWSRequestID: fmt.Sprintf("REQ%08d", i), ExtendedRequestID: "ext/id+2",
			BytesIn: 0, BytesOut: int64(i), Duration: time.Duration(i+1) * time.Microsecond,
		},
		Masks: []audit.MaskInfo{{Format: "json", Rule: "secrets", Path: "SecretString", Strategy: "redact", Count: 1}},
	}
}

// Diff returns "" when a and b have the same JSON form, else a short
// description of the first difference.
func Diff(a, b *audit.Event) string {
	ja, err := json.Marshal(a)
	if err != nil {
		return err.Error()
	}
	jb, err := json.Marshal(b)
	if err != nil {
		return err.Error()
	}
	var va, vb any
	json.Unmarshal(ja, &va)
	json.Unmarshal(jb, &vb)
	if reflect.DeepEqual(va, vb) {
		return ""
	}
	return diffValue("", va, vb)
}

func diffValue(path string, a, b any) string {
	ma, oka := a.(map[string]any)
	mb, okb := b.(map[string]any)
	if oka && okb {
		for k := range ma {
			if !reflect.DeepEqual(ma[k], mb[k]) {
				return diffValue(path+"."+k, ma[k], mb[k])
			}
		}
		for k := range mb {
			if _, ok := ma[k]; !ok {
				return fmt.Sprintf("%s.%s: unexpected %v", path, k, mb[k])
			}
		}
	}
	sa, _ := json.Marshal(a)
	sb, _ := json.Marshal(b)
	const max = 200
	return fmt.Sprintf("%s: want %.*s, got %.*s", path, max, sa, max, sb)
}

// Memory is a synchronous Sink that keeps events in memory: the
// reference implementation of the contract. The zero value is ready.
type Memory struct {
	mu     sync.Mutex
	events []audit.Event
	closed bool
}

// Write implements audit.Sink.
func (m *Memory) Write(_ context.Context, e *audit.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	c := e.Clone()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return audit.ErrClosed
	}
	m.events = append(m.events, *c)
	return nil
}

// Close implements audit.Sink.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}

// Events returns copies of the events written so far.
func (m *Memory) Events() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]audit.Event, len(m.events))
	for i := range m.events {
		out[i] = *m.events[i].Clone()
	}
	return out
}

// Failing is a Sink whose Write validates the event and then returns Err
// (a generic error when Err is nil): the sink of fail-closed tests.
type Failing struct{ Err error }

// Write implements audit.Sink.
func (f Failing) Write(_ context.Context, e *audit.Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if f.Err != nil {
		return f.Err
	}
	return errors.New("audittest: failing sink")
}

// Close implements audit.Sink.
func (Failing) Close() error { return nil }
