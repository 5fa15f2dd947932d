package audit

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// Version is the version of the event schema this package writes. It is
// the "version" member of every event (see event.schema.json). A change
// that removes or retypes a member, or changes what one means, bumps it;
// new optional members do not.
const Version = 1

// Phase says what an Event records.
type Phase string

// The phases.
const (
	// PhaseIntent is written before a call is forwarded, in fail-closed
	// mode: "this principal is about to do this, under this decision". It
	// has no Response. The completion event of the same call follows with
	// the same CallID.
	PhaseIntent Phase = "intent"
	// PhaseCompletion is written once a call is finished, forwarded or
	// refused, with its Response.
	PhaseCompletion Phase = "completion"
	// PhaseApproval records a transition of an approval record (requested,
	// approved, denied, expired, consumed ...), outside any one call.
	// Approval.Event names the transition; Principal is the requester.
	PhaseApproval Phase = "approval"
)

// Valid reports whether p is one of the three phases.
func (p Phase) Valid() bool {
	return p == PhaseIntent || p == PhaseCompletion || p == PhaseApproval
}

// Event is one audit record: which non-human identity did what, when,
// under which rule, approved by whom, and with what result. It is plain
// data; its JSON form is the documented, versioned schema
// (event.schema.json, see Schema). Secrets never belong in an Event:
// request parameters are the catalog's selected, non-sensitive ones, and
// masks are described by path and strategy, never by value.
type Event struct {
	// Version is the schema version; zero is written as Version.
	Version int `json:"version"`
	// ID identifies this event uniquely (NewID makes one). Required.
	ID string `json:"id"`
	// CallID is the gateway's request id (the X-Gatehouse-Request-Id
	// response header): the intent and completion events of one call and
	// its recorded exchange share it.
	CallID string `json:"call_id,omitempty"`
	// Time is when the call arrived (intent, completion) or when the
	// approval transition happened. Required; written in UTC.
	Time time.Time `json:"time"`
	// Phase is intent, completion or approval. Required.
	Phase Phase `json:"phase"`
	// SessionID identifies the caller's session: the gateway session
	// credentials' id, or the MCP session when one is known. Replay groups
	// calls by it.
	SessionID string `json:"session_id,omitempty"`
	// Gateway names the replica that handled the call, when configured.
	Gateway string `json:"gateway,omitempty"`

	Principal PrincipalInfo `json:"principal"`
	Request   RequestInfo   `json:"request"`
	// Decision is the policy decision; nil when no policy ran (the call
	// was refused before, or no policy is configured).
	Decision *DecisionInfo `json:"decision,omitempty"`
	// Approval is set when the call needed an approval, and for every
	// approval-phase event.
	Approval *ApprovalInfo `json:"approval,omitempty"`
	// Response is set on completion events.
	Response *ResponseInfo `json:"response,omitempty"`
	// Masks lists what masking changed in the response: paths and
	// strategies, never values.
	Masks []MaskInfo `json:"masks,omitempty"`
}

// PrincipalInfo names the non-human identity behind a call.
type PrincipalInfo struct {
	// ID is identity.Principal.String(): issuer and subject joined by
	// "#", the stable key to group by.
	ID       string   `json:"id,omitempty"`
	Issuer   string   `json:"issuer,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	ClientID string   `json:"client_id,omitempty"`
	Email    string   `json:"email,omitempty"`
	Groups   []string `json:"groups,omitempty"`
	// Role is the gateway role whose AWS credentials served the call.
	Role string `json:"role,omitempty"`
	// RoleSessionName and SourceIdentity are what the gateway set on
	// sts:AssumeRole; CloudTrail shows them in userIdentity, which is how
	// a CloudTrail event is tied back to this principal.
	RoleSessionName string `json:"role_session_name,omitempty"`
	SourceIdentity  string `json:"source_identity,omitempty"`
}

// PrincipalOf copies the audit-relevant parts of p (never its raw
// claims).
func PrincipalOf(p identity.Principal) PrincipalInfo {
	return PrincipalInfo{
		ID:       p.String(),
		Issuer:   p.Issuer,
		Subject:  p.Subject,
		ClientID: p.ClientID,
		Email:    p.Email,
		Groups:   slices.Clone(p.Groups),
	}
}

// RequestInfo is what was asked.
type RequestInfo struct {
	Service   string   `json:"service,omitempty"`   // signing name, "s3"
	Region    string   `json:"region,omitempty"`    // "eu-west-1"
	Operation string   `json:"operation,omitempty"` // API operation, "DeleteBucket"
	Action    string   `json:"action,omitempty"`    // IAM action, "s3:DeleteBucket"
	Resources []string `json:"resources,omitempty"` // resource ARNs
	Method    string   `json:"method,omitempty"`
	// Path is the request path as received (no query string: presigned
	// URLs carry credentials there).
	Path string `json:"path,omitempty"`
	// Params are selected, non-sensitive request parameters by model
	// member name.
	Params map[string]string `json:"params,omitempty"`
	// Flags are the operation's risk flags: "read_only",
	// "credential_issuing", "returns_secrets".
	Flags     []string `json:"flags,omitempty"`
	SourceIP  string   `json:"source_ip,omitempty"`
	UserAgent string   `json:"user_agent,omitempty"`
	// MCPSession and MCPTool identify the MCP session and tool call that
	// caused the request, when the caller passed them.
	MCPSession string `json:"mcp_session,omitempty"`
	MCPTool    string `json:"mcp_tool,omitempty"`
	Presigned  bool   `json:"presigned,omitempty"`
	// Truncated reports that a classification bound cut Params or
	// Resources.
	Truncated bool `json:"truncated,omitempty"`
}

// DecisionInfo is the policy decision.
type DecisionInfo struct {
	Effect string `json:"effect"`         // "allow", "deny" or "approve"
	Rule   string `json:"rule,omitempty"` // deciding rule; "" when the default applied
	Reason string `json:"reason,omitempty"`
	// Default reports that no rule matched and the default (deny) applied.
	Default bool `json:"default,omitempty"`
	// Matched lists every rule that matched, in policy order, including
	// overridden ones.
	Matched []MatchInfo `json:"matched,omitempty"`
	// Revision identifies the policy that decided.
	Revision string `json:"revision,omitempty"`
}

// MatchInfo is one matching rule.
type MatchInfo struct {
	Rule   string `json:"rule"`
	Effect string `json:"effect"`
	Source string `json:"source,omitempty"` // "file:line:column"
	// Error is the evaluation error of a rule that matched because its
	// condition failed (deny and approve rules fail closed).
	Error string `json:"error,omitempty"`
}

// ApprovalInfo is the approval a call needed, or the approval record an
// approval-phase event is about.
type ApprovalInfo struct {
	ID    string `json:"id"`
	State string `json:"state"` // pending, approved, denied, expired, consumed
	// Groups are the approver groups that were asked.
	Groups []string `json:"groups,omitempty"`
	// Approvers are the votes cast, in order: who approved (Approve true)
	// or denied.
	Approvers []Approver `json:"approvers,omitempty"`
	// Event is the transition of an approval-phase event ("requested",
	// "voted", "approved", "denied", "expired", "consumed", ...).
	Event string `json:"event,omitempty"`
	// Actor is identity.Principal.String() of whoever caused the
	// transition; empty for the broker itself.
	Actor string `json:"actor,omitempty"`
	// Note explains the last transition (a denial's or expiry's reason).
	Note string `json:"note,omitempty"`
	// Fingerprint is the digest of the effective request the approval is
	// bound to (method, path, query, bound headers, body, decision).
	Fingerprint string `json:"fingerprint,omitempty"`
	// BodySHA256 is the SHA-256 of the request body the approval covers.
	BodySHA256 string `json:"body_sha256,omitempty"`
	// PolicyRevision is the revision of the policy the approval was asked
	// under.
	PolicyRevision string `json:"policy_revision,omitempty"`
}

// Approver is one vote on an approval.
type Approver struct {
	Principal string    `json:"principal"` // identity.Principal.String()
	Email     string    `json:"email,omitempty"`
	Approve   bool      `json:"approve"`
	Reason    string    `json:"reason,omitempty"`
	Time      time.Time `json:"time"`
}

// ResponseInfo is what came of the call.
type ResponseInfo struct {
	Status int `json:"status"`
	// AWSRequestID is the upstream's x-amz-request-id or x-amzn-RequestId:
	// CloudTrail's requestID for the same call. ExtendedRequestID is S3's
	// x-amz-id-2.
	AWSRequestID      string `json:"aws_request_id,omitempty"`
	ExtendedRequestID string `json:"aws_extended_request_id,omitempty"`
	// Refused reports that the gateway answered itself (denied, approval
	// pending, bad signature ...) and nothing was forwarded.
	Refused bool `json:"refused,omitempty"`
	// ErrorCode and ErrorMessage are the AWS error the client saw, when
	// the gateway refused or failed the call.
	ErrorCode    string `json:"error_code,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
	BytesIn      int64  `json:"bytes_in"`
	BytesOut     int64  `json:"bytes_out"`
	// Duration is from arrival to the last response byte, in nanoseconds.
	Duration time.Duration `json:"duration_ns"`
}

// MaskInfo is one masking rule that changed the response.
type MaskInfo struct {
	Format   string `json:"format,omitempty"` // "json" or "xml"
	Rule     string `json:"rule"`
	Path     string `json:"path,omitempty"`
	Detector string `json:"detector,omitempty"`
	Strategy string `json:"strategy"`
	Count    int    `json:"count"`
}

// NewID returns a random event id: 128 bits, hex.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// AWSRequestIDs returns the AWS request id of an upstream response
// (x-amz-request-id, else x-amzn-RequestId) and S3's extended request id
// (x-amz-id-2).
func AWSRequestIDs(h http.Header) (id, extended string) {
	id = h.Get("X-Amz-Request-Id")
	if id == "" {
		id = h.Get("X-Amzn-Requestid")
	}
	return id, h.Get("X-Amz-Id-2")
}

// Validate checks the members every sink relies on: ID, Time and Phase,
// and a known Version. The error wraps ErrInvalidEvent and names the
// field.
func (e *Event) Validate() error {
	switch {
	case e == nil:
		return fmt.Errorf("%w: nil event", ErrInvalidEvent)
	case e.ID == "":
		return fmt.Errorf("%w: Event.ID is empty", ErrInvalidEvent)
	case e.Time.IsZero():
		return fmt.Errorf("%w: Event.Time is zero", ErrInvalidEvent)
	case !e.Phase.Valid():
		return fmt.Errorf("%w: Event.Phase %q is not intent, completion or approval", ErrInvalidEvent, e.Phase)
	case e.Version != 0 && e.Version != Version:
		return fmt.Errorf("%w: Event.Version %d is not %d", ErrInvalidEvent, e.Version, Version)
	}
	return nil
}

// Clone returns a deep copy of e, sharing nothing with it.
func (e *Event) Clone() *Event {
	if e == nil {
		return nil
	}
	c := *e
	c.Principal.Groups = slices.Clone(e.Principal.Groups)
	c.Request.Resources = slices.Clone(e.Request.Resources)
	c.Request.Flags = slices.Clone(e.Request.Flags)
	c.Request.Params = maps.Clone(e.Request.Params)
	if e.Decision != nil {
		d := *e.Decision
		d.Matched = slices.Clone(d.Matched)
		c.Decision = &d
	}
	if e.Approval != nil {
		a := *e.Approval
		a.Groups = slices.Clone(a.Groups)
		a.Approvers = slices.Clone(a.Approvers)
		c.Approval = &a
	}
	if e.Response != nil {
		r := *e.Response
		c.Response = &r
	}
	c.Masks = slices.Clone(e.Masks)
	return &c
}

// eventJSON has Event's fields without its MarshalJSON method.
type eventJSON Event

// MarshalJSON writes the schema form: Version zero becomes Version and
// Time is written in UTC.
func (e Event) MarshalJSON() ([]byte, error) {
	if e.Version == 0 {
		e.Version = Version
	}
	e.Time = e.Time.UTC()
	return json.Marshal(eventJSON(e))
}

// Encode validates e and returns its JSON form, the bytes every sink
// stores. It is the one place events are serialised.
func Encode(e *Event) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	// Marshal the method-less copy: going through MarshalJSON would make
	// encoding/json re-validate the whole output (half the cost).
	c := eventJSON(*e)
	if c.Version == 0 {
		c.Version = Version
	}
	c.Time = c.Time.UTC()
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("audit: encode event %s: %w", e.ID, err)
	}
	return b, nil
}
