package policy

import (
	"cel.dev/cel-go/common/cost"
	"cel.dev/cel-go/common/types"
)

// Inputs within these bounds are "bounded": every string field of
// principal, request and mcp, and every element of request.resources and
// principal.groups, is at most boundString bytes, and those two lists hold
// at most boundList elements. For a rule whose condition does not read
// params, claims or MCP arguments, Compile estimates the worst-case cost
// over all bounded inputs; when that is within the cost limit the limit
// cannot be reached, so Decide evaluates the rule without runtime cost
// tracking (which costs time and allocations). Unbounded inputs, and
// every other rule, are evaluated with the limit enforced at run time.
const (
	boundString = 4 << 10
	boundList   = 256
)

// boundedSizes gives the CEL cost estimator the sizes of bounded inputs.
type boundedSizes struct{}

func (boundedSizes) EstimateCallCost(string, string, *cost.AstNode, []cost.AstNode) *cost.CallEstimate {
	return nil
}

func (boundedSizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	if len(p) < 2 {
		return nil
	}
	switch p[0] {
	case "request", "principal", "mcp":
	default:
		return nil
	}
	switch p[1] {
	case "params", "claims", "arguments":
		return nil
	}
	switch {
	case len(p) == 2 && n.Type().Kind() == types.StringKind:
		return &cost.SizeEstimate{Min: 0, Max: boundString}
	case len(p) == 2 && n.Type().Kind() == types.ListKind:
		return &cost.SizeEstimate{Min: 0, Max: boundList}
	case len(p) == 3 && p[2] == "@items":
		return &cost.SizeEstimate{Min: 0, Max: boundString}
	}
	return nil
}

// bounded reports whether in is within the bounds above.
func bounded(in *Input) bool {
	r, p := &in.Request, &in.Principal
	for _, s := range [...]string{r.Service, r.Region, r.Operation, r.Action, r.Resource, r.Method, r.Path, r.SourceIP, r.UserAgent,
		p.Subject, p.Issuer, p.ClientID, p.Email, in.Role} {
		if len(s) > boundString {
			return false
		}
	}
	if in.MCP != nil && (len(in.MCP.SessionID) > boundString || len(in.MCP.Tool) > boundString) {
		return false
	}
	for _, l := range [...][]string{r.Resources, p.Groups} {
		if len(l) > boundList {
			return false
		}
		for _, s := range l {
			if len(s) > boundString {
				return false
			}
		}
	}
	return true
}
