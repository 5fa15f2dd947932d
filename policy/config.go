package policy

import (
	"fmt"
	"time"
)

// Effect is what a rule does when its condition holds, and what a
// Decision says.
type Effect string

// The three effects. Precedence: Deny > Approve > Allow > default deny.
const (
	Allow   Effect = "allow"
	Deny    Effect = "deny"
	Approve Effect = "approve"
)

func (e Effect) valid() bool { return e == Allow || e == Deny || e == Approve }

// ApprovalMode says how a request that needs approval is handled while it
// waits, and (in Approval.Unavailable) what happens when no approver can be
// reached.
type ApprovalMode string

// Approval modes.
const (
	// Hold keeps the HTTP request open until it is approved, denied or
	// HoldTimeout passes.
	Hold ApprovalMode = "hold"
	// Queue answers at once with an AWS-shaped error carrying the approval
	// id; once approved, the identical request by the same principal passes
	// once within GrantTTL.
	Queue ApprovalMode = "queue"
	// Reject refuses the request.
	Reject ApprovalMode = "reject"
)

// Approval defaults and bounds, checked by Compile.
const (
	DefaultHoldTimeout = 25 * time.Second // comfortably below SDK read timeouts
	MaxHoldTimeout     = 50 * time.Second
	DefaultGrantTTL    = 10 * time.Minute
	MaxGrantTTL        = 24 * time.Hour
	MaxMinApprovals    = 10
)

// Config is a policy as written: rules in order plus the default. It is
// what Parse and Load return and what Compile takes; build it in Go just
// as well. A Config is plain data; Compile does not keep references to its
// slices.
type Config struct {
	// Default is the effect when no rule matches. Only Deny is accepted;
	// the zero value means Deny.
	Default Effect
	// Rules in policy order. Order does not change which effect wins; it
	// picks the deciding rule among several matching rules of the winning
	// effect (the first one) and orders Decision.Matched.
	Rules []Rule
}

// Rule is one policy rule.
type Rule struct {
	// Name identifies the rule in decisions, audit records and errors. It
	// must be unique across all merged files: letters, digits, '.', '_'
	// and '-', starting with a letter or digit, at most 128 bytes.
	Name string
	// Description is free text for people.
	Description string
	// Effect is allow, deny or approve.
	Effect Effect
	// When is a CEL condition of type bool over principal, request and mcp.
	// Required; write "true" for a rule that always applies.
	When string
	// Reason is the human-readable reason reported when this rule decides;
	// empty means a reason naming the rule.
	Reason string
	// Approval configures approve rules (nil means the defaults). It is an
	// error on allow and deny rules.
	Approval *Approval
	// Mask lists what to mask in the response when this rule's allow or
	// approve outcome stands. It is an error on deny rules.
	Mask []Mask
	// Audit asks for more audit detail when this rule matched and was not
	// overridden.
	Audit *Audit

	// Source is where the rule was defined; Parse sets it, rules built in
	// Go may leave it zero.
	Source Position

	src *ruleSource // positions of the rule's fields, set by Parse
}

// Approval is the approval a request needs when an approve rule decides.
// Zero fields take the defaults listed.
type Approval struct {
	// Approvers are the groups whose members may approve. Empty means no
	// approver is configured, so Unavailable decides.
	Approvers []string
	// MinApprovals is how many distinct approvers must approve (default 1,
	// at most MaxMinApprovals). The requester never counts.
	MinApprovals int
	// Mode is hold, queue or reject (default hold).
	Mode ApprovalMode
	// HoldTimeout bounds how long a held request waits (default
	// DefaultHoldTimeout, at most MaxHoldTimeout).
	HoldTimeout time.Duration
	// GrantTTL is how long an approval for a queued request stays usable
	// (default DefaultGrantTTL, at most MaxGrantTTL).
	GrantTTL time.Duration
	// Unavailable is what happens when no approver is configured or
	// reachable: reject or queue (default reject).
	Unavailable ApprovalMode
}

// withDefaults returns a copy with zero fields set to their defaults.
func (a Approval) withDefaults() Approval {
	if a.MinApprovals == 0 {
		a.MinApprovals = 1
	}
	if a.Mode == "" {
		a.Mode = Hold
	}
	if a.HoldTimeout == 0 {
		a.HoldTimeout = DefaultHoldTimeout
	}
	if a.GrantTTL == 0 {
		a.GrantTTL = DefaultGrantTTL
	}
	if a.Unavailable == "" {
		a.Unavailable = Reject
	}
	a.Approvers = append([]string(nil), a.Approvers...)
	return a
}

// String renders the approval on one line, as explanations show it.
func (a Approval) String() string {
	return fmt.Sprintf("approvers=%v min=%d mode=%s hold=%s grant=%s unavailable=%s",
		a.Approvers, a.MinApprovals, a.Mode, a.HoldTimeout, a.GrantTTL, a.Unavailable)
}

// MaskStrategy says how a masked field is rewritten.
type MaskStrategy string

// Mask strategies.
const (
	Redact  MaskStrategy = "redact"  // replace the value with a fixed marker
	Partial MaskStrategy = "partial" // keep the last Keep characters, mask the rest
	Hash    MaskStrategy = "hash"    // replace the value with a keyed hash
	Remove  MaskStrategy = "remove"  // drop the field
)

// Unmaskable says what happens to a response a mask obligation cannot be
// applied to: a binary body or one of an unknown media type, an encoding
// the masker cannot decode, a body over the mask bound, a partial (ranged)
// body, or a text body for a path.
type Unmaskable string

// The choices for Mask.OnUnmaskable. The zero value means Withhold.
const (
	// Withhold answers the caller with an AWS-shaped error instead of the
	// response, and audits why. The default.
	Withhold Unmaskable = "withhold"
	// Pass lets the response through without this mask, and the audit
	// record says so. An explicit opt-out: what the mask would have hidden
	// may reach the caller.
	Pass Unmaskable = "pass"
)

// Mask is one masking obligation: either a named profile (Profile set,
// no Path, Strategy or Keep) or a field rule (Path and Strategy set); both
// kinds may set OnUnmaskable. The policy package validates masks (every
// path parses, with the position of a mistake) and carries them; the mask
// package applies them.
type Mask struct {
	// Profile names a built-in set of mask rules, such as "aws-secrets".
	// Compile checks it against Options.MaskProfiles.
	Profile string `json:"profile,omitempty"`
	// Path selects the values, in the one syntax of package maskpath,
	// applied alike to JSON and XML bodies: "aws.secret_access_key" (at
	// any depth), "$.Credentials.SecretKey" (from the top),
	// "Environment.Variables.*", "**.password".
	Path string `json:"path,omitempty"`
	// Strategy is redact, partial, hash or remove.
	Strategy MaskStrategy `json:"strategy,omitempty"`
	// Keep is how many trailing characters partial keeps (0 to 16); it is
	// an error with other strategies.
	Keep int `json:"keep,omitempty"`
	// OnUnmaskable is what happens when this mask cannot be applied to a
	// response: withhold (the default, also for the zero value) or pass.
	OnUnmaskable Unmaskable `json:"onUnmaskable,omitempty"`
}

// String renders the mask as explanations show it.
func (m Mask) String() string {
	var s string
	switch {
	case m.Profile != "":
		s = "profile " + m.Profile
	case m.Strategy == Partial:
		s = fmt.Sprintf("%s %s keep=%d", m.Path, m.Strategy, m.Keep)
	default:
		s = fmt.Sprintf("%s %s", m.Path, m.Strategy)
	}
	if m.OnUnmaskable == Pass {
		s += " onUnmaskable=pass"
	}
	return s
}

// Audit is a rule's audit obligation.
type Audit struct {
	// Bodies asks the audit trail to record request and response bodies
	// (after masking).
	Bodies bool
}

// Position is a place in a policy or cases file. Line and Column count
// from 1; a zero Position means unknown.
type Position struct {
	File   string
	Line   int
	Column int
}

// String renders "file:line:column", leaving out what is unknown.
func (p Position) String() string {
	switch {
	case p.Line == 0 && p.File == "":
		return ""
	case p.Line == 0:
		return p.File
	case p.Column == 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// IsZero reports whether the position is unknown.
func (p Position) IsZero() bool { return p == Position{} }
