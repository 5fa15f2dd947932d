package approval

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// State is where a record is in its life. Transitions:
//
//	pending  -> approved | denied | expired
//	approved -> consumed | expired   (the grant is used once, or its TTL passes)
//
// denied, expired and consumed are final.
type State string

// The record states.
const (
	Pending  State = "pending"  // waiting for votes
	Approved State = "approved" // enough approvals: one grant is available until GrantExpiresAt
	Denied   State = "denied"   // an eligible approver denied
	Expired  State = "expired"  // no decision before ExpiresAt, grant unused before GrantExpiresAt, or withdrawn
	Consumed State = "consumed" // the grant was used by the identical request
)

// Valid reports whether s is one of the five states.
func (s State) Valid() bool {
	switch s {
	case Pending, Approved, Denied, Expired, Consumed:
		return true
	}
	return false
}

// Active reports whether a record in state s is what an identical retry
// attaches to: pending or approved (grant not yet used).
func (s State) Active() bool { return s == Pending || s == Approved }

// Final reports whether no transition leaves s.
func (s State) Final() bool { return s == Denied || s == Expired || s == Consumed }

// canMove reports whether the state machine allows from -> to (staying put
// is allowed).
func canMove(from, to State) bool {
	if from == to {
		return true
	}
	switch from {
	case Pending:
		return to == Approved || to == Denied || to == Expired
	case Approved:
		return to == Consumed || to == Expired
	}
	return false
}

// Requirement is what one approve rule asks for: MinApprovals distinct
// approvers, each a member of at least one of Groups.
type Requirement struct {
	// Rule is the name of the policy rule that asked for approval.
	Rule string `json:"rule"`
	// Reason is the rule's reason, shown to approvers.
	Reason string `json:"reason,omitempty"`
	// Groups are the approver groups. Empty means nobody can approve: the
	// broker reports such a request as unavailable (ErrNoApprovers).
	Groups []string `json:"groups"`
	// MinApprovals is how many distinct approvers must approve; 0 means 1.
	MinApprovals int `json:"min_approvals"`
}

// Vote is one approver's decision on a record.
type Vote struct {
	// Approver is the approver's identity.Principal String().
	Approver string `json:"approver"`
	// Email is the approver's email claim, for display.
	Email string `json:"email,omitempty"`
	// Groups are the approver's groups that appear in the record's
	// requirements at the time of the vote; they decide which requirements
	// the vote counts toward.
	Groups []string `json:"groups"`
	// Approve is true for an approval, false for a denial.
	Approve bool      `json:"approve"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Requester describes the principal that made the request, without its
// raw claims (which may be large or sensitive and are not stored).
type Requester struct {
	Issuer   string   `json:"issuer,omitempty"`
	Subject  string   `json:"subject"`
	ClientID string   `json:"client_id,omitempty"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups,omitempty"`
}

func requesterOf(p identity.Principal) Requester {
	return Requester{Issuer: p.Issuer, Subject: p.Subject, ClientID: p.ClientID, Email: p.Email, Groups: slices.Clone(p.Groups)}
}

// Record is one approval: the request it is bound to, the votes cast and
// where it stands. It is plain data; stores keep copies.
type Record struct {
	// ID is unguessable (128 random bits, base32): it appears in the error a
	// queued client receives and in the approval URL.
	ID    string `json:"id"`
	State State  `json:"state"`
	// Principal is the requester's identity.Principal String(); together
	// with Fingerprint it identifies the exact request.
	Principal string    `json:"principal"`
	Requester Requester `json:"requester"`
	// Action is the IAM action, e.g. "s3:DeleteBucket".
	Action string `json:"action"`
	// Resources are the resource ARNs of the request.
	Resources []string `json:"resources,omitempty"`
	// Fingerprint identifies the exact request (computed by the caller).
	Fingerprint string `json:"fingerprint"`
	// Requirements must all be satisfied for approval. The first one is the
	// deciding rule's.
	Requirements []Requirement `json:"requirements"`
	// Summary is a small map describing the request for approvers.
	Summary map[string]string `json:"summary,omitempty"`
	// Detail is the effective request the Fingerprint covers, for
	// approvers: bound headers, body digest and masked preview.
	Detail *Detail `json:"detail,omitempty"`
	// Policy is the revision of the policy the decision was made under.
	Policy string `json:"policy_revision,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt is when a pending record expires undecided.
	ExpiresAt time.Time `json:"expires_at"`
	// GrantTTL is how long the grant lasts once approved.
	GrantTTL time.Duration `json:"grant_ttl_ns"`
	// DecidedAt is when the record left pending.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// GrantExpiresAt is when an approved record's unused grant expires.
	GrantExpiresAt time.Time `json:"grant_expires_at,omitzero"`
	// ConsumedAt is when the grant was used.
	ConsumedAt time.Time `json:"consumed_at,omitzero"`

	// Votes are the distinct approvers' decisions, in order.
	Votes []Vote `json:"votes,omitempty"`
	// Note explains the last transition: the denial reason, "expired:
	// ...", the reason given to Broker.Expire.
	Note string `json:"note,omitempty"`
}

// Clone returns a deep copy of r.
func (r Record) Clone() Record {
	r.Requester.Groups = slices.Clone(r.Requester.Groups)
	r.Resources = slices.Clone(r.Resources)
	r.Summary = maps.Clone(r.Summary)
	r.Detail = r.Detail.clone()
	if r.Requirements != nil {
		reqs := make([]Requirement, len(r.Requirements))
		for i, q := range r.Requirements {
			q.Groups = slices.Clone(q.Groups)
			reqs[i] = q
		}
		r.Requirements = reqs
	}
	if r.Votes != nil {
		votes := make([]Vote, len(r.Votes))
		for i, v := range r.Votes {
			v.Groups = slices.Clone(v.Groups)
			votes[i] = v
		}
		r.Votes = votes
	}
	return r
}

// approverGroups returns the groups of p that some requirement names,
// sorted and without duplicates.
func (r *Record) approverGroups(p identity.Principal) []string {
	var out []string
	for _, q := range r.Requirements {
		for _, g := range q.Groups {
			if p.InGroup(g) && !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Eligible reports whether p may vote on r: p is not the requester and is
// in at least one approver group of r's requirements. Eligibility does not
// depend on the state.
func (r *Record) Eligible(p identity.Principal) bool {
	return p.Subject != "" && p.String() != r.Principal && len(r.approverGroups(p)) > 0
}

// Approvable reports whether someone could ever approve r: every
// requirement names at least one group.
func (r *Record) Approvable() bool {
	for _, q := range r.Requirements {
		if len(q.Groups) == 0 {
			return false
		}
	}
	return len(r.Requirements) > 0
}

// satisfied reports whether every requirement has MinApprovals approving
// votes from approvers in one of its groups.
func (r *Record) satisfied() bool {
	if !r.Approvable() {
		return false
	}
	for _, q := range r.Requirements {
		n := 0
		for _, v := range r.Votes {
			if v.Approve && slices.ContainsFunc(v.Groups, func(g string) bool { return slices.Contains(q.Groups, g) }) {
				n++
			}
		}
		if n < max(q.MinApprovals, 1) {
			return false
		}
	}
	return true
}

func (r *Record) voteOf(approver string) int {
	return slices.IndexFunc(r.Votes, func(v Vote) bool { return v.Approver == approver })
}

// CheckUpdate reports whether next is a legal successor of prev: the same
// ID, Principal, Fingerprint, Action and CreatedAt, and a state change the
// state machine allows. Store implementations call it in Update before
// writing; the error wraps ErrBadUpdate.
func CheckUpdate(prev, next Record) error {
	switch {
	case next.ID != prev.ID:
		return fmt.Errorf("%w: ID changed", ErrBadUpdate)
	case next.Principal != prev.Principal:
		return fmt.Errorf("%w: Principal changed", ErrBadUpdate)
	case next.Fingerprint != prev.Fingerprint:
		return fmt.Errorf("%w: Fingerprint changed", ErrBadUpdate)
	case next.Action != prev.Action:
		return fmt.Errorf("%w: Action changed", ErrBadUpdate)
	case !next.CreatedAt.Equal(prev.CreatedAt):
		return fmt.Errorf("%w: CreatedAt changed", ErrBadUpdate)
	case !next.State.Valid():
		return fmt.Errorf("%w: unknown state %q", ErrBadUpdate, next.State)
	case !canMove(prev.State, next.State):
		return fmt.Errorf("%w: %s -> %s", ErrBadUpdate, prev.State, next.State)
	}
	return nil
}

// CheckNew reports whether rec may be stored by Store.Create: it has an ID,
// a Principal and a Fingerprint and is pending. The error wraps ErrBadUpdate.
func CheckNew(rec Record) error {
	switch {
	case rec.ID == "":
		return fmt.Errorf("%w: empty ID", ErrBadUpdate)
	case rec.Principal == "" || rec.Fingerprint == "":
		return fmt.Errorf("%w: empty Principal or Fingerprint", ErrBadUpdate)
	case rec.State != Pending:
		return fmt.Errorf("%w: a new record must be pending, not %q", ErrBadUpdate, rec.State)
	}
	return nil
}

// Filter selects records in Store.List and Broker.List. Zero fields match
// everything.
type Filter struct {
	State       State
	Principal   string // identity.Principal String() of the requester
	Action      string
	Fingerprint string
	// DueBefore, if set, selects records whose current deadline has passed
	// at that time: pending with ExpiresAt <= DueBefore, or approved with
	// GrantExpiresAt <= DueBefore.
	DueBefore time.Time
	// Limit caps the result: 0 means DefaultListLimit; more than
	// MaxListLimit is an error.
	Limit int
}

// Match reports whether rec passes f (ignoring Limit). Stores may use it.
func (f Filter) Match(rec *Record) bool {
	switch {
	case f.State != "" && rec.State != f.State,
		f.Principal != "" && rec.Principal != f.Principal,
		f.Action != "" && rec.Action != f.Action,
		f.Fingerprint != "" && rec.Fingerprint != f.Fingerprint:
		return false
	}
	if !f.DueBefore.IsZero() {
		switch rec.State {
		case Pending:
			return !rec.ExpiresAt.After(f.DueBefore)
		case Approved:
			return !rec.GrantExpiresAt.After(f.DueBefore)
		default:
			return false
		}
	}
	return true
}

// Check validates f and returns it with Limit defaulted.
func (f Filter) Check() (Filter, error) {
	if f.State != "" && !f.State.Valid() {
		return f, invalid("Filter.State", "unknown state %q", f.State)
	}
	switch {
	case f.Limit < 0 || f.Limit > MaxListLimit:
		return f, invalid("Filter.Limit", "must be between 0 and %d, not %d", MaxListLimit, f.Limit)
	case f.Limit == 0:
		f.Limit = DefaultListLimit
	}
	return f, nil
}
