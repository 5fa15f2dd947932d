package awsproxy

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// PolicyStage returns a Stage that decides every call with engine, from the
// verified principal and the catalog's classification.
//
//   - deny: AccessDenied naming the principal, the action, the resource and
//     the deciding rule. Nothing is forwarded.
//   - approve: the deciding rule's approval mode applies. reject refuses;
//     hold and queue go through broker.Gate with a fingerprint of the exact
//     request (see Fingerprint): a granted approval is consumed and the
//     call goes on, a pending one is answered with an AWS-shaped
//     ApprovalPending error carrying the approval id and URL (retry the
//     identical request once approved), a denied or expired one with
//     AccessDenied. A nil broker means no approver is reachable: refused.
//     A broker or store failure refuses the call (503, fail closed).
//   - allow: the call goes on carrying its decision; the handler applies
//     the decision's mask obligations to the response.
func PolicyStage(engine *policy.Engine, broker *approval.Broker) Stage {
	return StageFunc(func(ctx context.Context, c *Call) error {
		d := engine.Decide(PolicyInput(c))
		c.Decision = &d
		switch d.Effect {
		case policy.Allow:
			return nil
		case policy.Approve:
			return approve(ctx, broker, c, &d)
		}
		return &Error{Kind: KindAccessDenied, Message: deniedMessage(c, &d, "")}
	})
}

// approve runs the approval flow of a call the policy holds for approval.
func approve(ctx context.Context, broker *approval.Broker, c *Call, d *policy.Decision) error {
	if len(d.Approvals) == 0 {
		return &Error{Kind: KindAccessDenied, Message: deniedMessage(c, d, "requires an approval the policy does not describe")}
	}
	a := d.Approvals[0].Approval // the deciding rule's
	switch {
	case a.Mode == policy.Reject:
		return &Error{Kind: KindAccessDenied, Message: deniedMessage(c, d, "requires an approval, and this rule rejects such calls")}
	case broker == nil:
		return &Error{Kind: KindAccessDenied, Message: deniedMessage(c, d, "requires an approval, and no approver is reachable")}
	}
	reqs := make([]approval.Requirement, len(d.Approvals))
	for i, q := range d.Approvals {
		reqs[i] = approval.Requirement{Rule: q.Rule, Reason: ruleReason(d, q.Rule), Groups: q.Approval.Approvers, MinApprovals: q.Approval.MinApprovals}
	}
	var hold time.Duration
	if a.Mode == policy.Hold {
		hold = a.HoldTimeout
	}
	b, err := bind(c)
	if err != nil {
		return err
	}
	var detail *approval.Detail
	if c.h != nil {
		var e *Error
		if detail, e = c.h.approvalDetail(c, b); e != nil {
			return e
		}
	}
	res, err := broker.Gate(ctx, approval.Request{
		Principal: c.Session.Principal, Action: c.Classification.Action, Resources: c.Classification.Resources,
		Fingerprint: b.fingerprint(c), Requirements: reqs, GrantTTL: a.GrantTTL,
		Summary: map[string]string{
			"service": c.Service, "operation": c.Classification.Operation, "region": c.Region,
			"method": c.Request.Method, "path": c.Request.URL.Path,
		},
		Detail: detail, PolicyRevision: d.Revision,
	}, approval.GateOptions{Hold: hold, QueueWhenUnavailable: a.Unavailable == policy.Queue})
	if err != nil {
		if ctx.Err() != nil {
			if res.Record.ID != "" {
				rec := res.Record
				c.Approval = &rec
			}
			return &Error{Kind: KindInternal, Code: "ServiceUnavailable", Status: 503, Err: err,
				Message: "the call was waiting for approval when its connection ended (the client left or the gateway shut down); it was not made"}
		}
		return &Error{Kind: KindInternal, Code: "ServiceUnavailable", Status: 503, Message: "the approval service is unavailable; the call was not made", Err: err}
	}
	rec := res.Record
	c.Approval = &rec
	switch res.Outcome {
	case approval.OutcomeGranted:
		c.approved = true
		return nil
	case approval.OutcomePending:
		where := ""
		if res.URL != "" {
			where = " at " + res.URL
		}
		mode := "queue"
		if hold > 0 {
			mode = "hold"
		}
		return &Error{
			Kind: KindAccessDenied, Code: CodeApprovalPending,
			Message: fmt.Sprintf("%s: approval %s is pending%s; repeat the identical request once it is approved",
				deniedMessage(c, d, "requires an approval"), rec.ID, where),
			Approval: &PendingApproval{ID: rec.ID, URL: res.URL, Expires: rec.ExpiresAt, Mode: mode},
		}
	}
	why := "the approval was " + string(rec.State)
	if rec.Note != "" {
		why += ": " + rec.Note
	}
	return &Error{Kind: KindAccessDenied, Message: deniedMessage(c, d, why)}
}

func ruleReason(d *policy.Decision, rule string) string {
	for _, m := range d.Matched {
		if m.Rule == rule {
			return m.Reason
		}
	}
	return ""
}

// PolicyInput describes a verified call to the policy engine.
func PolicyInput(c *Call) *policy.Input {
	cl := &c.Classification
	in := &policy.Input{Request: policy.Request{
		Service: c.Service, Region: c.Region,
		Operation: cl.Operation, Action: cl.Action,
		ReadOnly: cl.ReadOnly, CredentialIssuing: cl.CredentialIssuing, ReturnsSecrets: cl.ReturnsSecrets,
		Resources: cl.Resources,
		Method:    c.Request.Method, Path: c.Request.URL.Path,
		UserAgent: c.Request.UserAgent(), Time: c.Start,
	}}
	if c.Session != nil {
		in.Principal, in.Role = c.Session.Principal, c.Session.Role
	}
	if len(cl.Resources) > 0 {
		in.Request.Resource = cl.Resources[0]
	}
	if len(cl.Params) > 0 {
		in.Request.Params = make(map[string]any, len(cl.Params))
		for k, v := range cl.Params {
			in.Request.Params[k] = v
		}
	}
	if host, _, err := net.SplitHostPort(c.Request.RemoteAddr); err == nil {
		in.Request.SourceIP = host
	}
	if session, tool := MCPContext(c); session != "" || tool != "" {
		in.MCP = &policy.MCP{SessionID: session, Tool: tool}
	}
	return in
}

// Headers an MCP server sets on its AWS calls to tie them to the tool call
// behind them. They count only when the client signed them.
const (
	HeaderMCPSession = "X-Gatehouse-Mcp-Session"
	HeaderMCPTool    = "X-Gatehouse-Mcp-Tool"
)

// MCPContext returns the MCP session id and tool name the client signed
// into the request, or empty strings.
func MCPContext(c *Call) (session, tool string) {
	signed := func(h string) string {
		if slices.Contains(c.signed, strings.ToLower(h)) {
			return c.Request.Header.Get(h)
		}
		return ""
	}
	return signed(HeaderMCPSession), signed(HeaderMCPTool)
}

// deniedMessage reads like AWS's own AccessDenied messages, plus the rule.
func deniedMessage(c *Call, d *policy.Decision, why string) string {
	who := "caller"
	if c.Session != nil {
		who = c.Session.Principal.String()
	}
	action := c.Classification.Action
	if action == "" {
		action = c.Service + ":" + "Unknown"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "User: %s is not authorized to perform: %s", who, action)
	if len(c.Classification.Resources) > 0 {
		fmt.Fprintf(&b, " on resource: %s", c.Classification.Resources[0])
	}
	switch {
	case d.Rule != "":
		fmt.Fprintf(&b, " (gatehouse rule %q", d.Rule)
		if d.Reason != "" {
			fmt.Fprintf(&b, ": %s", d.Reason)
		}
		b.WriteString(")")
	default:
		b.WriteString(" (no gatehouse rule allows it)")
	}
	if why != "" {
		b.WriteString(": " + why)
	}
	return b.String()
}
