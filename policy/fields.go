package policy

import (
	"errors"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/interpreter"
)

// The three variables are declared to the type checker as native Go types
// (Request, celPrincipal, celMCP through ext.NativeTypes), but at
// evaluation time every variable resolves to the same *evalState, and
// field access goes through fieldProvider: each field's value is converted
// to a CEL value once per decision and cached, instead of once per access
// through reflection. Conditions evaluated for one decision share the
// cache. This halves the allocations of a typical decision.

// field identifies one field of principal, request or mcp.
type field uint8

const (
	fPrincipalSubject field = iota
	fPrincipalIssuer
	fPrincipalClientID
	fPrincipalEmail
	fPrincipalGroups
	fPrincipalClaims
	fPrincipalRole
	fRequestService
	fRequestRegion
	fRequestOperation
	fRequestAction
	fRequestReadOnly
	fRequestCredentialIssuing
	fRequestReturnsSecrets
	fRequestResource
	fRequestResources
	fRequestParams
	fRequestMethod
	fRequestPath
	fRequestSourceIP
	fRequestUserAgent
	fRequestTime
	fMCPPresent
	fMCPSessionID
	fMCPTool
	fMCPArguments
	numFields
)

// fieldNames maps CEL type and field names to fields.
var fieldNames = map[[2]string]field{
	{principalType, "subject"}: fPrincipalSubject, {principalType, "issuer"}: fPrincipalIssuer,
	{principalType, "clientId"}: fPrincipalClientID, {principalType, "email"}: fPrincipalEmail,
	{principalType, "groups"}: fPrincipalGroups, {principalType, "claims"}: fPrincipalClaims,
	{principalType, "role"}:  fPrincipalRole,
	{requestType, "service"}: fRequestService, {requestType, "region"}: fRequestRegion,
	{requestType, "operation"}: fRequestOperation, {requestType, "action"}: fRequestAction,
	{requestType, "readOnly"}: fRequestReadOnly, {requestType, "credentialIssuing"}: fRequestCredentialIssuing,
	{requestType, "returnsSecrets"}: fRequestReturnsSecrets, {requestType, "resource"}: fRequestResource,
	{requestType, "resources"}: fRequestResources, {requestType, "params"}: fRequestParams,
	{requestType, "method"}: fRequestMethod, {requestType, "path"}: fRequestPath,
	{requestType, "sourceIp"}: fRequestSourceIP, {requestType, "userAgent"}: fRequestUserAgent,
	{requestType, "time"}: fRequestTime,
	{mcpType, "present"}:  fMCPPresent, {mcpType, "sessionId"}: fMCPSessionID,
	{mcpType, "tool"}: fMCPTool, {mcpType, "arguments"}: fMCPArguments,
}

// evalState is the activation of one decision: the input and the CEL
// values of the fields read so far. It is not shared between goroutines.
type evalState struct {
	in      *Input
	adapter types.Adapter
	cache   [numFields]ref.Val
}

// ResolveName implements interpreter.Activation.
func (s *evalState) ResolveName(name string) (any, bool) {
	switch name {
	case "request", "principal", "mcp":
		return s, true
	}
	return nil, false
}

// Parent implements interpreter.Activation.
func (s *evalState) Parent() interpreter.Activation { return nil }

var emptyMap = map[string]any{}

// value converts field f of the input to a CEL value.
func (s *evalState) value(f field) ref.Val {
	in := s.in
	r, p := &in.Request, &in.Principal
	var m MCP
	if in.MCP != nil {
		m = *in.MCP
	}
	str := func(v string) ref.Val { return types.String(v) }
	mp := func(v map[string]any) ref.Val {
		if v == nil {
			v = emptyMap
		}
		return types.NewStringInterfaceMap(s.adapter, v)
	}
	switch f {
	case fPrincipalSubject:
		return str(p.Subject)
	case fPrincipalIssuer:
		return str(p.Issuer)
	case fPrincipalClientID:
		return str(p.ClientID)
	case fPrincipalEmail:
		return str(p.Email)
	case fPrincipalGroups:
		return types.NewStringList(s.adapter, p.Groups)
	case fPrincipalClaims:
		return mp(p.Claims)
	case fPrincipalRole:
		return str(in.Role)
	case fRequestService:
		return str(r.Service)
	case fRequestRegion:
		return str(r.Region)
	case fRequestOperation:
		return str(r.Operation)
	case fRequestAction:
		return str(r.Action)
	case fRequestReadOnly:
		return types.Bool(r.ReadOnly)
	case fRequestCredentialIssuing:
		return types.Bool(r.CredentialIssuing)
	case fRequestReturnsSecrets:
		return types.Bool(r.ReturnsSecrets)
	case fRequestResource:
		return str(r.Resource)
	case fRequestResources:
		return types.NewStringList(s.adapter, r.Resources)
	case fRequestParams:
		return mp(r.Params)
	case fRequestMethod:
		return str(r.Method)
	case fRequestPath:
		return str(r.Path)
	case fRequestSourceIP:
		return str(r.SourceIP)
	case fRequestUserAgent:
		return str(r.UserAgent)
	case fRequestTime:
		return types.Timestamp{Time: r.Time}
	case fMCPPresent:
		return types.Bool(in.MCP != nil)
	case fMCPSessionID:
		return str(m.SessionID)
	case fMCPTool:
		return str(m.Tool)
	case fMCPArguments:
		return mp(m.Arguments)
	}
	return types.NewErr("policy: unknown field %d", f)
}

var errNotInput = errors.New("policy: field access on a value that is not a policy input")

// fieldProvider serves the declared types from the base provider and
// replaces their field accessors with cached ones.
type fieldProvider struct {
	types.Provider
	fields map[[2]string]*types.FieldType
}

func newFieldProvider(base types.Provider) (*fieldProvider, error) {
	p := &fieldProvider{Provider: base, fields: map[[2]string]*types.FieldType{}}
	for key, f := range fieldNames {
		ft, ok := base.FindStructFieldType(key[0], key[1])
		if !ok {
			return nil, errors.New("policy: field " + key[0] + "." + key[1] + " is not declared")
		}
		p.fields[key] = &types.FieldType{
			Type: ft.Type,
			IsSet: func(obj any) bool {
				s, ok := obj.(*evalState)
				if !ok {
					return false
				}
				return !isZero(s.get(f))
			},
			GetFrom: func(obj any) (any, error) {
				s, ok := obj.(*evalState)
				if !ok {
					return nil, errNotInput
				}
				return s.get(f), nil
			},
		}
	}
	return p, nil
}

func (s *evalState) get(f field) ref.Val {
	if v := s.cache[f]; v != nil {
		return v
	}
	v := s.value(f)
	s.cache[f] = v
	return v
}

func isZero(v ref.Val) bool {
	if z, ok := v.(interface{ IsZeroValue() bool }); ok {
		return z.IsZeroValue()
	}
	return false
}

// FindStructFieldType implements types.Provider.
func (p *fieldProvider) FindStructFieldType(structType, fieldName string) (*types.FieldType, bool) {
	if ft, ok := p.fields[[2]string{structType, fieldName}]; ok {
		return ft, true
	}
	return p.Provider.FindStructFieldType(structType, fieldName)
}
