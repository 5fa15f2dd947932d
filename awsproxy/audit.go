package awsproxy

import (
	"context"
	"net"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// AuditEvent describes a call for the audit trail at the given phase: the
// principal, the classified request, the decision, the approval and, for
// the completion, the response (status, the AWS request ids for CloudTrail
// correlation, error code, bytes, duration) and what masking changed. It
// never includes credentials, query strings or body contents.
func AuditEvent(c *Call, phase audit.Phase) *audit.Event {
	e := &audit.Event{Version: audit.Version, ID: c.ID + "/" + string(phase), CallID: c.ID, Time: c.Start, Phase: phase}
	mcpSession, tool := MCPContext(c)
	if s := c.Session; s != nil {
		e.Principal = audit.PrincipalOf(s.Principal)
		e.Principal.Role = s.Role
		e.Principal.RoleSessionName = RoleSessionName(s.Principal.String())
		if s.Principal.Subject != "" {
			e.Principal.SourceIdentity = stsName(s.Principal.Subject)
		}
		e.SessionID = s.ID
	}
	if mcpSession != "" {
		e.SessionID = mcpSession
	}
	cl := &c.Classification
	e.Request = audit.RequestInfo{
		Service: c.Service, Region: c.Region, Operation: cl.Operation, Action: cl.Action,
		Resources: cl.Resources, Method: c.Request.Method, Path: c.Request.URL.Path, Params: cl.Params,
		UserAgent: c.Request.UserAgent(), MCPSession: mcpSession, MCPTool: tool,
		Presigned: c.Presigned, Truncated: cl.Truncated,
	}
	for flag, on := range map[string]bool{"read_only": cl.ReadOnly, "credential_issuing": cl.CredentialIssuing, "returns_secrets": cl.ReturnsSecrets} {
		if on {
			e.Request.Flags = append(e.Request.Flags, flag)
		}
	}
	if host, _, err := net.SplitHostPort(c.Request.RemoteAddr); err == nil {
		e.Request.SourceIP = host
	}
	if d := c.Decision; d != nil {
		e.Decision = &audit.DecisionInfo{Effect: string(d.Effect), Rule: d.Rule, Reason: d.Reason, Default: d.Default, Revision: d.Revision}
		for _, m := range d.Matched {
			mi := audit.MatchInfo{Rule: m.Rule, Effect: string(m.Effect), Source: m.Source}
			if m.Err != nil {
				mi.Error = m.Err.Error()
			}
			e.Decision.Matched = append(e.Decision.Matched, mi)
		}
	}
	if a := c.Approval; a != nil {
		e.Approval = approvalInfo(a)
	}
	if phase != audit.PhaseCompletion {
		return e
	}
	e.Response = &audit.ResponseInfo{
		Status: c.Status, BytesIn: c.BytesIn, BytesOut: c.BytesOut, Duration: c.Duration,
		AWSRequestID: c.AWSRequestID, ExtendedRequestID: c.AWSExtendedRequestID,
	}
	if c.Err != nil {
		e.Response.Refused = !c.Forwarded
		e.Response.ErrorCode = c.Err.code(c.Protocol)
		e.Response.ErrorMessage = c.Err.Message
	}
	if r := c.Masked; r != nil {
		for _, en := range r.Entries {
			e.Masks = append(e.Masks, audit.MaskInfo{Format: string(r.Format), Rule: en.Rule, Path: en.Path, Detector: en.Detector, Strategy: string(en.Strategy), Count: en.Count})
		}
		// Rules an obligation let the response pass without (onUnmaskable:
		// pass): strategy "pass", and why they could not be applied.
		for _, en := range r.Skipped {
			e.Masks = append(e.Masks, audit.MaskInfo{Format: string(r.Format), Rule: en.Rule + " (not applied: " + r.SkipReason + ")", Path: en.Path, Detector: en.Detector, Strategy: "pass"})
		}
	}
	return e
}

func approvalInfo(a *approval.Record) *audit.ApprovalInfo {
	info := &audit.ApprovalInfo{ID: a.ID, State: string(a.State), Note: a.Note, Fingerprint: a.Fingerprint, PolicyRevision: a.Policy}
	if a.Detail != nil && a.Detail.Body != nil {
		info.BodySHA256 = a.Detail.Body.SHA256
	}
	for _, q := range a.Requirements {
		info.Groups = append(info.Groups, q.Groups...)
	}
	for _, v := range a.Votes {
		info.Approvers = append(info.Approvers, audit.Approver{Principal: v.Approver, Email: v.Email, Approve: v.Approve, Reason: v.Reason, Time: v.At})
	}
	return info
}

// auditIntent writes the intent event of a call about to be forwarded. A
// fail-closed trail that cannot write it refuses the call.
func (h *Handler) auditIntent(ctx context.Context, c *Call) *Error {
	if h.cfg.Audit == nil {
		return nil
	}
	if err := h.cfg.Audit.Intent(ctx, AuditEvent(c, audit.PhaseIntent)); err != nil {
		return &Error{Kind: KindInternal, Code: "ServiceUnavailable", Status: 503, Message: "the audit trail is unavailable; the call was not made", Err: err}
	}
	return nil
}

// ApprovalEvents adapts an audit trail to the approval broker's event
// sink, so every approval transition lands in the same trail.
func ApprovalEvents(trail *audit.Trail) approval.EventSink {
	return approval.EventFunc(func(ctx context.Context, ev approval.Event) {
		rec := ev.Record
		e := &audit.Event{Version: audit.Version, ID: audit.NewID(), Time: ev.Time, Phase: audit.PhaseApproval}
		r := rec.Requester
		e.Principal = audit.PrincipalInfo{Issuer: r.Issuer, Subject: r.Subject, ClientID: r.ClientID, ID: rec.Principal}
		e.Request = audit.RequestInfo{Action: rec.Action, Resources: rec.Resources}
		e.Approval = approvalInfo(&rec)
		e.Approval.Event = string(ev.Type)
		e.Approval.Actor = ev.Actor
		trail.Record(ctx, e)
	})
}

// record stores the call's exchange with the session recorder: the request
// as sent and the response as the client received it, credentials
// filtered from headers and URLs, and bodies masked by the artefact rules
// whatever the policy said (or withheld when they cannot be masked).
func (h *Handler) record(c *Call, cw *countingWriter) {
	r := c.Request
	x := &audit.Exchange{CallID: c.ID, Time: c.Start, Event: AuditEvent(c, audit.PhaseCompletion)}
	x.SessionID = x.Event.SessionID
	if x.SessionID == "" {
		x.SessionID = "anonymous"
	}
	x.Request = audit.Message{Method: r.Method, URL: audit.RedactURL(r.URL), Header: audit.FilterHeader(r.Header)}
	reqBody := c.plain
	if reqBody == nil && c.payloadMode != modeStreamSigned && c.payloadMode != modeStreamUnsigned {
		reqBody = c.Body
	}
	x.Request.Body = h.artefactBody(c, true, r.Header.Get("Content-Type"), "", reqBody, c.BytesIn)
	if reqBody != nil {
		x.Request.Body.Size = int64(len(reqBody)) // the payload, decoded
	}
	rh := cw.Header()
	x.Response = audit.Message{Status: c.Status, Header: audit.FilterHeader(rh),
		Body: h.artefactBody(c, false, rh.Get("Content-Type"), rh.Get("Content-Encoding"), cw.capture, cw.n)}
	// The client may be gone; recording must still happen, bounded.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 5*time.Second)
	defer cancel()
	if err := h.cfg.Recorder.Record(ctx, x); err != nil && h.cfg.Logger != nil {
		h.cfg.Logger.Warn("awsproxy: session recording failed", "id", c.ID, "err", err)
	}
}
