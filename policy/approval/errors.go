package approval

import (
	"errors"
	"fmt"
)

// Errors callers branch on. Every error the package returns that has one of
// these meanings wraps the sentinel, so match with errors.Is.
var (
	// ErrNotFound: no record has the id.
	ErrNotFound = errors.New("approval: no such approval")
	// ErrSelfApproval: the approver is the requester of the record.
	ErrSelfApproval = errors.New("approval: a requester cannot approve or deny its own request")
	// ErrNotApprover: the approver is in none of the record's approver groups.
	ErrNotApprover = errors.New("approval: not in an approver group of this request")
	// ErrNotPending: the record is no longer pending (approved, denied,
	// expired or consumed), so it takes no more votes.
	ErrNotPending = errors.New("approval: the request is no longer pending")
	// ErrInvalid: a Request, reason or filter breaks a documented rule or bound.
	ErrInvalid = errors.New("approval: invalid input")
	// ErrUnavailable: no approver is configured or reachable for a record.
	// It comes wrapped in an *UnavailableError that carries the record.
	ErrUnavailable = errors.New("approval: no approver available")
	// ErrNoApprovers: a requirement names no approver group, so nobody can
	// ever approve the record. Found inside an *UnavailableError.
	ErrNoApprovers = errors.New("approval: no approver group configured")
	// ErrStoreFull: a bounded store refused a new record.
	ErrStoreFull = errors.New("approval: store is full")
	// ErrBadUpdate: a Store.Update function changed an immutable field or
	// made a transition the state machine forbids. It signals a bug; stores
	// refuse such writes.
	ErrBadUpdate = errors.New("approval: illegal record update")
)

// InvalidError reports which input field broke which rule. It wraps
// ErrInvalid.
type InvalidError struct {
	Field string // e.g. "Request.Requirements[0].MinApprovals"
	Msg   string
}

func (e *InvalidError) Error() string { return "approval: " + e.Field + ": " + e.Msg }

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// UnavailableError is returned by Broker.Request, together with the record,
// when the record exists but no approver can act on it: a requirement names
// no approver group (Err wraps ErrNoApprovers), or every configured notifier
// failed to deliver (Err joins the notifier errors). The caller applies the
// rule's "unavailable" setting: queue (answer with the record id and leave it
// pending) or reject (Broker.Expire it and refuse the call). It is never an
// approval.
type UnavailableError struct {
	Record Record
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("approval: no approver available for %s: %v", e.Record.ID, e.Err)
}

// Unwrap returns ErrUnavailable and the cause.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }
