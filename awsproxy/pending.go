package awsproxy

import (
	"errors"
	"net/http"
	"time"

	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// CodeApprovalPending is the AWS error code of a call held for approval.
const CodeApprovalPending = "ApprovalPending"

// Response headers of an ApprovalPending refusal. They carry what a client
// needs to follow the approval without reading the message: the same
// values are also members of the AWS-shaped error body (ApprovalId,
// ApprovalUrl, ApprovalExpires, ApprovalMode).
const (
	HeaderApprovalID      = "X-Gatehouse-Approval-Id"
	HeaderApprovalURL     = "X-Gatehouse-Approval-Url"     // absent when the broker has no URL base
	HeaderApprovalExpires = "X-Gatehouse-Approval-Expires" // RFC 3339, UTC
	HeaderApprovalMode    = "X-Gatehouse-Approval-Mode"    // "hold" or "queue"
)

// PendingApproval is the machine-readable part of an ApprovalPending
// refusal: the approval the call waits for, where approvers decide it, when
// the pending record expires undecided, and the rule's mode ("hold": the
// call waited and the hold ran out; "queue": answered at once). Repeat the
// identical request once the approval is granted.
type PendingApproval struct {
	ID      string
	URL     string
	Expires time.Time
	Mode    string
}

func (p *PendingApproval) setHeaders(h http.Header) {
	h.Set(HeaderApprovalID, p.ID)
	if p.URL != "" {
		h.Set(HeaderApprovalURL, p.URL)
	}
	if !p.Expires.IsZero() {
		h.Set(HeaderApprovalExpires, p.expires())
	}
	h.Set(HeaderApprovalMode, p.Mode)
}

func (p *PendingApproval) expires() string {
	if p.Expires.IsZero() {
		return ""
	}
	return p.Expires.UTC().Format(time.RFC3339)
}

// PendingApprovalFrom reads the pending approval of a gateway response:
// ok is false unless the response is an ApprovalPending refusal with an
// approval id.
func PendingApprovalFrom(h http.Header) (p PendingApproval, ok bool) {
	if h.Get("X-Gatehouse-Error") != CodeApprovalPending || h.Get(HeaderApprovalID) == "" {
		return PendingApproval{}, false
	}
	p = PendingApproval{ID: h.Get(HeaderApprovalID), URL: h.Get(HeaderApprovalURL), Mode: h.Get(HeaderApprovalMode)}
	if t, err := time.Parse(time.RFC3339, h.Get(HeaderApprovalExpires)); err == nil {
		p.Expires = t
	}
	return p, true
}

// PendingApprovalOf returns the pending approval behind an error that an
// AWS SDK for Go v2 client returned for a call through the gateway, or ok
// false when err is no ApprovalPending refusal.
func PendingApprovalOf(err error) (p PendingApproval, ok bool) {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return PendingApproval{}, false
	}
	return PendingApprovalFrom(re.Response.Header)
}
