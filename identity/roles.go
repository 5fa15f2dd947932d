package identity

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/ext"
)

// ErrRoleDenied: the principal may not act as the requested role (or as
// any role).
var ErrRoleDenied = errors.New("identity: role not permitted for this principal")

// Role is an IAM role the gateway may act as on behalf of principals.
type Role struct {
	// Name identifies the role in configuration and session records.
	Name string
	// ARN of the IAM role the gateway assumes for this role's callers.
	ARN string
	// When is a CEL condition over principal (fields subject, issuer,
	// clientId, email, groups, claims) deciding who may use the role, e.g.
	// `"mcp-agents" in principal.groups`. Required; write "true" to allow
	// every verified principal.
	When string
	// SessionPolicy is an optional inline IAM policy (JSON) narrowing the
	// role for these callers.
	SessionPolicy string
	// MaxDuration caps sessions for this role; zero means the gateway's
	// session maximum.
	MaxDuration time.Duration
}

// RoleMapper decides which configured role a principal acts as. Conditions
// are compiled and type-checked once; Map is safe for concurrent use.
type RoleMapper struct {
	roles []mappedRole
}

type mappedRole struct {
	Role
	prg cel.Program
}

// CELPrincipal is the principal as CEL conditions see it.
type CELPrincipal struct {
	Subject  string         `cel:"subject"`
	Issuer   string         `cel:"issuer"`
	ClientID string         `cel:"clientId"`
	Email    string         `cel:"email"`
	Groups   []string       `cel:"groups"`
	Claims   map[string]any `cel:"claims"`
}

func celPrincipal(p Principal) *CELPrincipal {
	return &CELPrincipal{Subject: p.Subject, Issuer: p.Issuer, ClientID: p.ClientID, Email: p.Email, Groups: p.Groups, Claims: p.Claims}
}

func principalEnv() (*cel.Env, error) {
	return cel.NewEnv(
		ext.NativeTypes(reflect.TypeFor[*CELPrincipal](), ext.ParseStructTags(true)),
		cel.Variable("principal", cel.ObjectType("identity.CELPrincipal")),
		ext.Strings(),
		ext.Sets(),
	)
}

// maxConditionCost bounds the work of one role condition.
const maxConditionCost = 10_000

// NewRoleMapper compiles the roles' conditions. A condition that does not
// parse, does not type-check or is not boolean is an error naming the role
// and the position.
func NewRoleMapper(roles []Role) (*RoleMapper, error) {
	if len(roles) == 0 {
		return nil, errors.New("identity: no roles configured")
	}
	env, err := principalEnv()
	if err != nil {
		return nil, fmt.Errorf("identity: CEL environment: %w", err)
	}
	m := &RoleMapper{}
	seen := map[string]bool{}
	for i, r := range roles {
		field := fmt.Sprintf("identity: roles[%d] (%s)", i, r.Name)
		if r.Name == "" || !strings.HasPrefix(r.ARN, "arn:") || !strings.Contains(r.ARN, ":role/") {
			return nil, fmt.Errorf("%s: a role needs a Name and an IAM role ARN (arn:...:role/...)", field)
		}
		if seen[r.Name] || seen[r.ARN] {
			return nil, fmt.Errorf("%s: duplicate role name or ARN", field)
		}
		seen[r.Name], seen[r.ARN] = true, true
		if strings.TrimSpace(r.When) == "" {
			return nil, fmt.Errorf("%s: When is empty (write \"true\" to allow every principal)", field)
		}
		ast, iss := env.Compile(r.When)
		if iss.Err() != nil {
			return nil, fmt.Errorf("%s: when: %s", field, iss.Err())
		}
		if ast.OutputType() != cel.BoolType {
			return nil, fmt.Errorf("%s: when must be a boolean condition, not %s", field, ast.OutputType())
		}
		prg, err := env.Program(ast, cel.CostLimit(maxConditionCost))
		if err != nil {
			return nil, fmt.Errorf("%s: when: %w", field, err)
		}
		m.roles = append(m.roles, mappedRole{Role: r, prg: prg})
	}
	return m, nil
}

// Map returns the role p acts as. requested may be a role ARN or name;
// empty means the first role whose condition p satisfies. A condition that
// fails to evaluate counts as not satisfied.
func (m *RoleMapper) Map(p Principal, requested string) (Role, error) {
	act := map[string]any{"principal": celPrincipal(p)}
	for _, r := range m.roles {
		if requested != "" && requested != r.ARN && requested != r.Name {
			continue
		}
		out, _, err := r.prg.Eval(act)
		if err == nil && out.Value() == true {
			return r.Role, nil
		}
		if requested != "" {
			return Role{}, fmt.Errorf("%w: %s may not assume %s", ErrRoleDenied, p, requested)
		}
	}
	if requested != "" {
		return Role{}, fmt.Errorf("%w: %s is not a role of this gateway", ErrRoleDenied, requested)
	}
	return Role{}, fmt.Errorf("%w: no role admits %s", ErrRoleDenied, p)
}
