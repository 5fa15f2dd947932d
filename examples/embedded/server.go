package main

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	gaudit "github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/mask"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

//go:embed policy.yaml
var defaultPolicy []byte

// MetadataPath is where the protected-resource metadata is served.
const MetadataPath = "/.well-known/oauth-protected-resource"

// Config is what the guarded MCP server needs.
type Config struct {
	// BaseURL is the server's public origin ("https://tools.example"); the
	// MCP endpoint is BaseURL + "/mcp".
	BaseURL string
	// Issuers are the authorization servers announced in the metadata.
	Issuers []string
	// Verifier checks bearer tokens.
	Verifier identity.TokenVerifier
	// Policy decides tool calls; nil means the embedded policy.yaml.
	Policy *policy.Policy
	// Masker masks tool results; nil means DefaultMaskRules.
	Masker *mask.Masker
	// Logger receives one structured line per tool call.
	Logger *slog.Logger
	// Audit, if set, receives one audit event per tool call: the
	// principal, the tool (as service "mcp", action "mcp:<tool>"), the MCP
	// session, the decision, the approval and how many values were masked.
	Audit *gaudit.Trail
	// Broker takes the approvals that approve rules ask for; its approver
	// API is served at /approvals/ behind the same bearer authentication.
	// Nil refuses calls that need an approval.
	Broker *approval.Broker
}

// DefaultMaskRules hide passwords and API keys in any tool result.
var DefaultMaskRules = []mask.Rule{
	{Name: "db-password", JSON: "database.password"},
	{Name: "api-key", JSON: "api_key", Strategy: mask.Partial, Keep: 4},
	{Name: "detectors", Detect: mask.DetectAll},
}

// Guard holds the compiled guardrails.
type Guard struct {
	policy *policy.Policy
	masker *mask.Masker
	log    *slog.Logger
	trail  *gaudit.Trail
	broker *approval.Broker
}

// NewGuard compiles the policy and masks of cfg.
func NewGuard(cfg Config) (*Guard, error) {
	g := &Guard{policy: cfg.Policy, masker: cfg.Masker, log: cfg.Logger, trail: cfg.Audit, broker: cfg.Broker}
	if g.policy == nil {
		pc, err := policy.Parse("policy.yaml", defaultPolicy)
		if err != nil {
			return nil, err
		}
		if g.policy, err = policy.Compile(pc, policy.Options{}); err != nil {
			return nil, err
		}
	}
	if g.masker == nil {
		m, err := mask.New(mask.Config{Rules: DefaultMaskRules})
		if err != nil {
			return nil, err
		}
		g.masker = m
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	return g, nil
}

// NewHandler returns the whole server: the MCP endpoint at /mcp behind
// bearer authentication, and the protected-resource metadata.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Verifier == nil {
		return nil, errors.New("embedded: a Verifier is required")
	}
	g, err := NewGuard(cfg)
	if err != nil {
		return nil, err
	}
	srv := NewServer()
	srv.AddReceivingMiddleware(g.Middleware)
	mcpHandler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
	base := strings.TrimSuffix(cfg.BaseURL, "/")
	bearer := &identity.Bearer{Verifier: cfg.Verifier, MetadataURL: base + MetadataPath}
	mux := http.NewServeMux()
	mux.Handle(MetadataPath, identity.ResourceMetadata{
		Resource: base + "/mcp", AuthorizationServers: cfg.Issuers, ResourceName: "gatehouse embedded example",
	})
	mux.Handle("/mcp", bearer.Wrap(principalToTokenInfo(mcpHandler)))
	if cfg.Broker != nil {
		approvals, err := approval.NewHandler(approval.HandlerConfig{Broker: cfg.Broker})
		if err != nil {
			return nil, err
		}
		mux.Handle("/approvals/", http.StripPrefix("/approvals", bearer.Wrap(approvals)))
	}
	return mux, nil
}

// principalToTokenInfo hands the principal identity.Bearer verified to the
// MCP SDK as its auth.TokenInfo, which the SDK passes to every request
// (RequestExtra.TokenInfo) and uses to bind the session to its user.
func principalToTokenInfo(next http.Handler) http.Handler {
	return auth.RequireBearerToken(func(_ context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		p, ok := identity.PrincipalFrom(r.Context())
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: p.String(), Extra: map[string]any{principalExtra: p}}, nil
	}, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(next)
}

const principalExtra = "gatehouse.principal"

func principalOf(ctx context.Context, req mcp.Request) (identity.Principal, bool) {
	if ex := req.GetExtra(); ex != nil && ex.TokenInfo != nil {
		if p, ok := ex.TokenInfo.Extra[principalExtra].(identity.Principal); ok {
			return p, true
		}
	}
	return identity.PrincipalFrom(ctx)
}

// Middleware enforces the policy on tools/call, filters tools/list and
// masks tool results. Install it with Server.AddReceivingMiddleware.
func (g *Guard) Middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch method {
		case "tools/list":
			return g.list(ctx, next, method, req)
		case "tools/call":
			return g.call(ctx, next, method, req)
		}
		return next(ctx, method, req)
	}
}

func sessionID(req mcp.Request) string {
	if s := req.GetSession(); s != nil {
		return s.ID()
	}
	return ""
}

func (g *Guard) decide(p identity.Principal, session, tool string, args map[string]any) policy.Decision {
	if args == nil {
		args = map[string]any{}
	}
	return g.policy.Decide(&policy.Input{Principal: p, MCP: &policy.MCP{SessionID: session, Tool: tool, Arguments: args}})
}

// list hides the tools this principal could not call even with empty
// arguments.
func (g *Guard) list(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	res, err := next(ctx, method, req)
	if err != nil {
		return res, err
	}
	lr, ok := res.(*mcp.ListToolsResult)
	if !ok {
		return res, nil
	}
	p, ok := principalOf(ctx, req)
	if !ok {
		lr.Tools = nil
		return lr, nil
	}
	kept := lr.Tools[:0:0]
	for _, t := range lr.Tools {
		if g.decide(p, sessionID(req), t.Name, nil).Effect == policy.Allow {
			kept = append(kept, t)
		}
	}
	lr.Tools = kept
	return lr, nil
}

func (g *Guard) call(ctx context.Context, next mcp.MethodHandler, method string, req mcp.Request) (mcp.Result, error) {
	start := time.Now()
	cr, ok := req.(*mcp.CallToolRequest)
	if !ok {
		return nil, fmt.Errorf("embedded: unexpected request type %T", req)
	}
	tool, session := cr.Params.Name, sessionID(req)
	var args map[string]any
	if len(cr.Params.Arguments) > 0 {
		if err := json.Unmarshal(cr.Params.Arguments, &args); err != nil {
			return toolError("the arguments must be a JSON object"), nil
		}
	}
	p, ok := principalOf(ctx, req)
	approvalID := ""
	audit := func(d *policy.Decision, res *mcp.CallToolResult, masked int, note string) {
		attrs := []any{"session", session, "principal", p.String(), "tool", tool,
			"effect", string(d.Effect), "rule", d.Rule, "masked", masked,
			"is_error", res != nil && res.IsError, "duration", time.Since(start)}
		if approvalID != "" {
			attrs = append(attrs, "approval", approvalID)
		}
		if note != "" {
			attrs = append(attrs, "note", note)
		}
		g.log.InfoContext(ctx, "mcp tool call", attrs...)
		if g.trail != nil {
			e := &gaudit.Event{Version: gaudit.Version, ID: gaudit.NewID(), Time: start, Phase: gaudit.PhaseCompletion, SessionID: session,
				Principal: gaudit.PrincipalOf(p),
				Request:   gaudit.RequestInfo{Service: "mcp", Operation: tool, Action: "mcp:" + tool, MCPSession: session, MCPTool: tool},
				Decision:  &gaudit.DecisionInfo{Effect: string(d.Effect), Rule: d.Rule, Reason: d.Reason, Default: d.Default},
				Response:  &gaudit.ResponseInfo{Refused: res != nil && res.IsError, ErrorMessage: note, Duration: time.Since(start)},
			}
			if approvalID != "" {
				e.Approval = &gaudit.ApprovalInfo{ID: approvalID, State: "pending"}
			}
			if masked > 0 {
				e.Masks = []gaudit.MaskInfo{{Rule: "tool-result", Strategy: "mixed", Count: masked}}
			}
			g.trail.Record(ctx, e)
		}
	}
	if !ok {
		d := policy.Decision{Effect: policy.Deny, Reason: "no authenticated principal"}
		res := toolError("denied: no authenticated principal")
		audit(&d, res, 0, "")
		return res, nil
	}
	d := g.decide(p, session, tool, args)
	if d.Effect == policy.Approve {
		res, id, granted, err := g.approve(ctx, p, tool, args, &d)
		approvalID = id
		if err != nil {
			res = toolError("the approval service is unavailable; the tool was not called")
			audit(&d, res, 0, err.Error())
			return res, nil
		}
		if !granted {
			audit(&d, res, 0, "")
			return res, nil
		}
	} else if d.Effect != policy.Allow {
		msg := fmt.Sprintf("AccessDenied: %s may not call tool %q", p.Subject, tool)
		if d.Rule != "" {
			msg += fmt.Sprintf(" (rule %q: %s)", d.Rule, d.Reason)
		} else {
			msg += " (no rule allows it)"
		}
		res := toolError(msg)
		audit(&d, res, 0, "")
		return res, nil
	}
	out, err := next(ctx, method, req)
	if err != nil {
		audit(&d, nil, 0, err.Error())
		return out, err
	}
	res, ok := out.(*mcp.CallToolResult)
	if !ok {
		audit(&d, nil, 0, "")
		return out, nil
	}
	masked, err := g.maskResult(res)
	if err != nil {
		// Fail closed: nothing of an unmaskable result goes out.
		res = toolError("the tool result could not be masked and was withheld")
		audit(&d, res, 0, err.Error())
		return res, nil
	}
	audit(&d, res, masked, "")
	return res, nil
}

// approve runs the approval path for a call an approve rule matched. The
// approval is bound to the exact call: principal, tool and arguments. It
// returns granted, or the result to answer with.
func (g *Guard) approve(ctx context.Context, p identity.Principal, tool string, args map[string]any, d *policy.Decision) (*mcp.CallToolResult, string, bool, error) {
	denied := func(why string) *mcp.CallToolResult {
		return toolError(fmt.Sprintf("AccessDenied: tool %q needs an approval (rule %q: %s): %s", tool, d.Rule, d.Reason, why))
	}
	a := d.Approvals[0].Approval
	if g.broker == nil || a.Mode == policy.Reject {
		return denied("no approver is reachable"), "", false, nil
	}
	canon, err := json.Marshal(args) // map keys are sorted: a canonical form
	if err != nil {
		return nil, "", false, err
	}
	// The grant is bound to the principal, the tool, the arguments and the
	// decision (a reload that changes it voids the grant).
	argsSum := sha256.Sum256(canon)
	sum := sha256.Sum256(append([]byte(p.String()+"\x00"+tool+"\x00"+d.Digest()+"\x00"), canon...))
	detail := &approval.Detail{Service: "mcp", Operation: tool, Decision: d.Digest(),
		Body: &approval.Body{Size: int64(len(canon)), SHA256: hex.EncodeToString(argsSum[:]), ContentType: "application/json"}}
	// Approvers see the arguments, masked like tool results.
	if out, rep, err := g.masker.Mask("application/json", canon); err != nil || len(out) > approval.MaxBodyPreview {
		detail.Body.PreviewNote = "arguments not shown: they could not be masked or are too long; the approval is bound to their SHA-256"
	} else {
		detail.Body.Preview, detail.Body.Masked = string(out), rep.Masked()
	}
	reqs := make([]approval.Requirement, len(d.Approvals))
	for i, q := range d.Approvals {
		reqs[i] = approval.Requirement{Rule: q.Rule, Reason: ruleReason(d, q.Rule), Groups: q.Approvers, MinApprovals: q.MinApprovals}
	}
	var hold time.Duration
	if a.Mode == policy.Hold {
		hold = a.HoldTimeout
	}
	res, err := g.broker.Gate(ctx, approval.Request{
		Principal: p, Action: "mcp:" + tool, Fingerprint: hex.EncodeToString(sum[:]),
		Requirements: reqs, GrantTTL: a.GrantTTL, Summary: map[string]string{"tool": tool},
		Detail: detail, PolicyRevision: d.Revision,
	}, approval.GateOptions{Hold: hold, QueueWhenUnavailable: a.Unavailable == policy.Queue})
	if err != nil {
		return nil, "", false, err
	}
	id := res.Record.ID
	switch res.Outcome {
	case approval.OutcomeGranted:
		return nil, id, true, nil
	case approval.OutcomePending:
		b, _ := json.Marshal(map[string]string{
			"status": "approval_pending", "tool": tool, "approval_id": id, "approval_url": res.URL,
			"next": fmt.Sprintf("The tool was NOT called: it needs a human approval. Ask an approver to approve %s, "+
				"then call %s again with exactly the same arguments.", id, tool),
		})
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}}, id, false, nil
	}
	return denied("the approval is " + res.Outcome.String()), id, false, nil
}

func ruleReason(d *policy.Decision, rule string) string {
	for _, m := range d.Matched {
		if m.Rule == rule {
			return m.Reason
		}
	}
	return ""
}

// maskResult masks every text content (as JSON when it is JSON, otherwise
// as one JSON string, so detectors read it) and the structured content.
func (g *Guard) maskResult(res *mcp.CallToolResult) (int, error) {
	total := 0
	for _, c := range res.Content {
		tc, ok := c.(*mcp.TextContent)
		if !ok {
			continue
		}
		text, n, err := g.maskText(tc.Text)
		if err != nil {
			return 0, err
		}
		tc.Text, total = text, total+n
	}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return 0, err
		}
		out, rep, err := g.masker.Mask("application/json", b)
		if err != nil {
			return 0, err
		}
		res.StructuredContent, total = json.RawMessage(out), total+rep.Total()
	}
	return total, nil
}

func (g *Guard) maskText(text string) (string, int, error) {
	if json.Valid([]byte(text)) {
		out, rep, err := g.masker.Mask("application/json", []byte(text))
		if err != nil {
			return "", 0, err
		}
		return string(out), rep.Total(), nil
	}
	b, err := json.Marshal(text)
	if err != nil {
		return "", 0, err
	}
	out, rep, err := g.masker.Mask("application/json", b)
	if err != nil {
		return "", 0, err
	}
	var s string
	if err := json.Unmarshal(out, &s); err != nil {
		return "", 0, err
	}
	return s, rep.Total(), nil
}

func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}
