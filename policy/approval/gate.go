package approval

import (
	"context"
	"errors"
	"time"
)

// Outcome is what Gate tells the proxy to do with a request.
type Outcome int

// The outcomes of Gate.
const (
	// OutcomeGranted: forward the request. The grant was consumed for it.
	OutcomeGranted Outcome = iota + 1
	// OutcomePending: answer at once with an error carrying Result.Record.ID and
	// Result.URL (AWS code "ApprovalPending"); the identical request
	// passes once after approval.
	OutcomePending
	// OutcomeDenied: an approver denied (Record.Note holds the reason). Refuse.
	OutcomeDenied
	// OutcomeExpired: nobody decided in time, or the grant lapsed. Refuse.
	OutcomeExpired
	// OutcomeConsumed: the request was approved but an identical request already
	// used the one grant. Refuse.
	OutcomeConsumed
	// OutcomeUnavailable: no approver is configured or reachable and the rule
	// says reject; the record was withdrawn (Result.Cause says why).
	// Refuse.
	OutcomeUnavailable
)

var outcomeNames = [...]string{"", "granted", "pending", "denied", "expired", "consumed", "unavailable"}

func (o Outcome) String() string {
	if o > 0 && int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// GateOptions carry the deciding rule's mode settings.
type GateOptions struct {
	// Hold is how long the request may wait for a decision (hold mode);
	// zero means queue mode: answer Pending at once.
	Hold time.Duration
	// QueueWhenUnavailable applies the rule's unavailable setting: when no
	// approver is configured or reachable, true answers Pending (the record
	// stays for approvers who look at the page) and false (the default,
	// reject) withdraws the record and answers Unavailable.
	QueueWhenUnavailable bool
}

// Result is Gate's answer.
type Result struct {
	Outcome Outcome
	// Record is the approval record involved, after the outcome (a
	// Granted record is Consumed).
	Record Record
	// URL is Broker.URL(Record.ID).
	URL string
	// Created reports that this call filed a new record.
	Created bool
	// Cause explains Unavailable, and a Pending that was queued because no
	// approver was reachable.
	Cause error
}

// Gate runs the whole approval path for one request that policy said needs
// approval, for the hold and queue modes (reject mode needs no broker):
//
//  1. an unused grant for this principal and fingerprint is consumed:
//     Granted;
//  2. otherwise Request files or attaches (unavailable handled per opts);
//     an approved record is consumed at once, a denied one is Denied;
//  3. queue mode answers Pending; hold mode waits up to opts.Hold: approved
//     then consumed is Granted, denied is Denied, expired is Expired, and a
//     hold that runs out is Pending (the client's retry reaches step 1).
//
// The error is non-nil only for invalid input, a store failure or ctx
// ending (the client left, or the server shut down): the proxy must then
// refuse the call (fail closed). When ctx ended during a hold, Result
// still carries the pending Record the call waited on. Every other
// refusal is an Outcome.
func (b *Broker) Gate(ctx context.Context, req Request, opts GateOptions) (Result, error) {
	if rec, ok, err := b.ConsumeGrant(ctx, req.Principal, req.Fingerprint); err != nil {
		return Result{}, err
	} else if ok {
		return b.result(OutcomeGranted, rec, false, nil), nil
	}
	rec, created, err := b.Request(ctx, req)
	if ue := (*UnavailableError)(nil); errors.As(err, &ue) {
		if opts.QueueWhenUnavailable {
			return b.result(OutcomePending, rec, created, ue.Err), nil
		}
		if got, err := b.Expire(ctx, rec.ID, "no approver available"); err == nil {
			rec = got
		} else if !errors.Is(err, ErrNotPending) {
			return Result{}, err
		}
		return b.result(OutcomeUnavailable, rec, created, ue.Err), nil
	}
	if err != nil {
		return Result{}, err
	}
	if rec.State == Pending && opts.Hold > 0 {
		hctx, cancel := context.WithTimeout(ctx, opts.Hold)
		got, err := b.Wait(hctx, rec.ID)
		cancel()
		switch {
		case ctx.Err() != nil:
			// The record the call waited on stays pending; the caller
			// may still name it in its own records.
			return b.result(OutcomePending, rec, created, nil), ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			return b.result(OutcomePending, rec, created, nil), nil
		case err != nil:
			return Result{}, err
		}
		rec = got
	}
	return b.settle(ctx, req, rec, created)
}

// settle turns a record's state into an outcome, consuming an approved
// record's grant.
func (b *Broker) settle(ctx context.Context, req Request, rec Record, created bool) (Result, error) {
	switch rec.State {
	case Pending:
		return b.result(OutcomePending, rec, created, nil), nil
	case Denied:
		return b.result(OutcomeDenied, rec, created, nil), nil
	case Expired:
		return b.result(OutcomeExpired, rec, created, nil), nil
	case Consumed:
		return b.result(OutcomeConsumed, rec, created, nil), nil
	}
	got, ok, err := b.ConsumeGrant(ctx, req.Principal, req.Fingerprint)
	switch {
	case err != nil:
		return Result{}, err
	case ok:
		return b.result(OutcomeGranted, got, created, nil), nil
	}
	// Someone else used or expired the grant between the two reads.
	if cur, err := b.Get(ctx, rec.ID); err == nil {
		rec = cur
	}
	if rec.State == Expired {
		return b.result(OutcomeExpired, rec, created, nil), nil
	}
	return b.result(OutcomeConsumed, rec, created, nil), nil
}

func (b *Broker) result(o Outcome, rec Record, created bool, cause error) Result {
	return Result{Outcome: o, Record: rec, URL: b.URL(rec.ID), Created: created, Cause: cause}
}
