package approval

import (
	"context"
	"time"
)

// EventType names a transition or incident.
type EventType string

// The events a Broker emits. Requested, Approved, Denied, Expired and
// Consumed are the record's transitions; the others are for the trail.
const (
	EventRequested    EventType = "requested"     // a new record was created
	EventAttached     EventType = "attached"      // an identical retry joined an existing record
	EventVoted        EventType = "voted"         // an approval that did not yet reach the minimum
	EventApproved     EventType = "approved"      // the record became approved: one grant is available
	EventDenied       EventType = "denied"        // an eligible approver denied
	EventExpired      EventType = "expired"       // pending or grant deadline passed, or Broker.Expire
	EventConsumed     EventType = "consumed"      // the grant was used by the identical request
	EventNotifyFailed EventType = "notify_failed" // a notifier could not deliver (Err says why)
)

// Event describes one transition, after it was stored.
type Event struct {
	Type EventType
	Time time.Time
	// Record is the record after the transition (a copy).
	Record Record
	// Actor is the identity.Principal String() of whoever caused the event:
	// the approver for votes, the requester for requests, attaches and
	// consumption; empty for the broker itself (expiry).
	Actor string
	// Reason is the vote's or expiry's reason, if any.
	Reason string
	// Err is set for EventNotifyFailed.
	Err error
	// Notifier is the index in Config.Notifiers for EventNotifyFailed.
	Notifier int
}

// EventSink receives every event. The audit package's sink plugs in here.
//
// Contract: ApprovalEvent is called synchronously, after the transition
// was stored, from the goroutine that caused it (several at once: it must
// be safe for concurrent use). It should return quickly; it cannot veto or
// undo the transition and reports its own failures itself. ctx is the
// operation's context, possibly already cancelled.
type EventSink interface {
	ApprovalEvent(ctx context.Context, e Event)
}

// EventFunc adapts a function to EventSink.
type EventFunc func(ctx context.Context, e Event)

// ApprovalEvent calls f.
func (f EventFunc) ApprovalEvent(ctx context.Context, e Event) { f(ctx, e) }
