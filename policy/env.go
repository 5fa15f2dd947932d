package policy

import (
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"
	"cel.dev/cel-go/ext"
)

// CEL type names of the three variables.
const (
	principalType = "policy.celPrincipal"
	requestType   = "policy.Request"
	mcpType       = "policy.celMCP"
)

// Helper function names, as written in conditions.
const (
	fnIAMLike  = "iamLike"
	fnInCIDR   = "inCidr"
	fnInWindow = "inWindow"
)

// literals caches what the helpers parse from literal arguments. Compile
// fills it while it validates the rules; afterwards it is only read, so the
// helper bindings may use it from any goroutine.
type literals struct {
	windows map[string]window
	zones   map[string]*time.Location
}

func (l *literals) window(s string) (window, error) {
	if w, ok := l.windows[s]; ok {
		return w, nil
	}
	return parseWindow(s)
}

func (l *literals) zone(s string) (*time.Location, error) {
	if z, ok := l.zones[s]; ok {
		return z, nil
	}
	return loadZone(s)
}

// newEnv builds the typed CEL environment: principal, request and mcp as
// declared object types, the strings, sets and optional-types extensions,
// and the iamLike, inCidr and inWindow helpers.
func newEnv(lit *literals) (*cel.Env, error) {
	env, err := cel.NewEnv(
		ext.NativeTypes(
			reflect.TypeFor[*celPrincipal](),
			reflect.TypeFor[*Request](),
			reflect.TypeFor[*celMCP](),
			ext.ParseStructTags(true),
		),
		cel.Variable("principal", cel.ObjectType(principalType)),
		cel.Variable("request", cel.ObjectType(requestType)),
		cel.Variable("mcp", cel.ObjectType(mcpType)),
		ext.Strings(),
		ext.Sets(),
		cel.OptionalTypes(),
		cel.Function(fnIAMLike,
			cel.MemberOverload("string_iamLike_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(bindIAMLike)),
			cel.Overload("iamLike_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(bindIAMLike)),
		),
		cel.Function(fnInCIDR,
			cel.MemberOverload("string_inCidr_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(bindInCIDR)),
			cel.MemberOverload("string_inCidr_list_string", []*cel.Type{cel.StringType, cel.ListType(cel.StringType)}, cel.BoolType,
				cel.BinaryBinding(bindInCIDRList)),
		),
		cel.Function(fnInWindow,
			cel.MemberOverload("timestamp_inWindow_string", []*cel.Type{cel.TimestampType, cel.StringType}, cel.BoolType,
				cel.BinaryBinding(func(t, w ref.Val) ref.Val { return lit.inWindow(t, w, types.String("UTC")) })),
			cel.MemberOverload("timestamp_inWindow_string_string", []*cel.Type{cel.TimestampType, cel.StringType, cel.StringType}, cel.BoolType,
				cel.FunctionBinding(func(args ...ref.Val) ref.Val { return lit.inWindow(args[0], args[1], args[2]) })),
		),
	)
	if err != nil {
		return nil, err
	}
	fp, err := newFieldProvider(env.CELTypeProvider())
	if err != nil {
		return nil, err
	}
	return env.Extend(cel.CustomTypeProvider(fp))
}

func bindIAMLike(s, p ref.Val) ref.Val {
	sv, ok1 := s.(types.String)
	pv, ok2 := p.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	return types.Bool(iamLike(string(sv), string(pv)))
}

func bindInCIDR(ip, cidr ref.Val) ref.Val {
	sv, ok1 := ip.(types.String)
	cv, ok2 := cidr.(types.String)
	if !ok1 || !ok2 {
		return types.NoSuchOverloadErr()
	}
	addr, err := netip.ParseAddr(string(sv))
	if err != nil {
		// An absent or malformed source address is in no network.
		return types.False
	}
	pfx, err := netip.ParsePrefix(string(cv))
	if err != nil {
		return types.NewErr("inCidr: %v", err)
	}
	return types.Bool(pfx.Contains(addr.Unmap()))
}

func bindInCIDRList(ip, list ref.Val) ref.Val {
	l, ok := list.(traits.Lister)
	if !ok {
		return types.NoSuchOverloadErr()
	}
	it := l.Iterator()
	for it.HasNext() == types.True {
		r := bindInCIDR(ip, it.Next())
		if r != types.False {
			return r
		}
	}
	return types.False
}

func (l *literals) inWindow(t, w, z ref.Val) ref.Val {
	tv, ok1 := t.(types.Timestamp)
	wv, ok2 := w.(types.String)
	zv, ok3 := z.(types.String)
	if !ok1 || !ok2 || !ok3 {
		return types.NoSuchOverloadErr()
	}
	win, err := l.window(string(wv))
	if err != nil {
		return types.NewErr("inWindow: %v", err)
	}
	loc, err := l.zone(string(zv))
	if err != nil {
		return types.NewErr("inWindow: %v", err)
	}
	return types.Bool(win.contains(tv.Time, loc))
}

// checkLiteral validates a literal argument of a helper call at load time
// and caches what it parsed. fn is the helper, arg the argument's index
// among the call's arguments (target first for member calls).
func (l *literals) checkLiteral(fn string, arg int, v string) error {
	switch {
	case fn == fnIAMLike && arg == 1:
		return checkIAMPattern(v)
	case fn == fnInCIDR && arg == 1:
		pfx, err := netip.ParsePrefix(v)
		if err != nil {
			return fmt.Errorf("inCidr: %v", err)
		}
		if pfx.Masked() != pfx {
			return fmt.Errorf("inCidr: %q has host bits set (did you mean %q?)", v, pfx.Masked())
		}
	case fn == fnInWindow && arg == 1:
		w, err := parseWindow(v)
		if err != nil {
			return fmt.Errorf("inWindow: %v", err)
		}
		l.windows[v] = w
	case fn == fnInWindow && arg == 2:
		z, err := loadZone(v)
		if err != nil {
			return fmt.Errorf("inWindow: %v", err)
		}
		l.zones[v] = z
	}
	return nil
}
