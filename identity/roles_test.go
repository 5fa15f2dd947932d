package identity

import (
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
)

const (
	arnAgents = "arn:aws:iam::123456789012:role/mcp-agents"
	arnCI     = "arn:aws:iam::123456789012:role/ci-agents"
	arnProd   = "arn:aws:iam::123456789012:role/prod-readers"
	arnAdmin  = "arn:aws:iam::123456789012:role/admins"
)

func testRoles() []Role {
	return []Role{
		{Name: "agents", ARN: arnAgents, When: `"mcp-agents" in principal.groups`},
		{Name: "ci", ARN: arnCI, When: `principal.issuer == "https://ci.example" && principal.clientId.startsWith("agent-")`},
		{Name: "prod", ARN: arnProd, When: `principal.claims.env == "prod"`},
		{Name: "admins", ARN: arnAdmin, When: `principal.claims.realm_access.roles.exists(r, r == "admin") && principal.email.endsWith("@example.com")`},
	}
}

func newTestRoleMapper(t testing.TB) *RoleMapper {
	t.Helper()
	m, err := NewRoleMapper(testRoles())
	if err != nil {
		t.Fatalf("NewRoleMapper: %v", err)
	}
	return m
}

func TestRoleMapperMap(t *testing.T) {
	m := newTestRoleMapper(t)
	agent := Principal{Issuer: "https://idp.example", Subject: "a1", Groups: []string{"readers", "mcp-agents"}}
	ci := Principal{Issuer: "https://ci.example", Subject: "build", ClientID: "agent-build"}
	ciOtherClient := Principal{Issuer: "https://ci.example", Subject: "build", ClientID: "human-build"}
	ciOtherIssuer := Principal{Issuer: "https://ci.example.evil", Subject: "build", ClientID: "agent-build"}
	prod := Principal{Issuer: "https://idp.example", Subject: "p1", Claims: map[string]any{"env": "prod"}}
	staging := Principal{Issuer: "https://idp.example", Subject: "s1", Claims: map[string]any{"env": "staging"}}
	noEnv := Principal{Issuer: "https://idp.example", Subject: "n1", Claims: map[string]any{"other": "x"}}
	noClaims := Principal{Issuer: "https://idp.example", Subject: "n2"}
	envNotString := Principal{Issuer: "https://idp.example", Subject: "n3", Claims: map[string]any{"env": json.Number("1")}}
	admin := Principal{Issuer: "https://idp.example", Subject: "root", Email: "root@example.com",
		Claims: map[string]any{"realm_access": map[string]any{"roles": []any{"user", "admin"}}}}
	adminWrongEmail := admin
	adminWrongEmail.Email = "root@example.org"
	everything := Principal{Issuer: "https://ci.example", Subject: "all", ClientID: "agent-x", Groups: []string{"mcp-agents"}, Claims: map[string]any{"env": "prod"}}

	tests := []struct {
		name      string
		p         Principal
		requested string
		want      string // role name
		wantErr   error
	}{
		{name: "group membership, none requested", p: agent, want: "agents"},
		{name: "group membership, requested by name", p: agent, requested: "agents", want: "agents"},
		{name: "group membership, requested by ARN", p: agent, requested: arnAgents, want: "agents"},
		{name: "issuer and client prefix", p: ci, want: "ci"},
		{name: "issuer and client prefix by ARN", p: ci, requested: arnCI, want: "ci"},
		{name: "client prefix fails", p: ciOtherClient, wantErr: ErrRoleDenied},
		{name: "issuer fails", p: ciOtherIssuer, requested: "ci", wantErr: ErrRoleDenied},
		{name: "claims map", p: prod, want: "prod"},
		{name: "claims map by name", p: prod, requested: "prod", want: "prod"},
		{name: "claims map other value", p: staging, requested: "prod", wantErr: ErrRoleDenied},
		{name: "missing claim key is not permitted", p: noEnv, requested: "prod", wantErr: ErrRoleDenied},
		{name: "missing claim key, none requested", p: noEnv, wantErr: ErrRoleDenied},
		{name: "nil claims are not permitted", p: noClaims, requested: arnProd, wantErr: ErrRoleDenied},
		{name: "claim of another type is not permitted", p: envNotString, requested: "prod", wantErr: ErrRoleDenied},
		{name: "nested claims", p: admin, want: "admins"},
		{name: "nested claims and email", p: adminWrongEmail, requested: "admins", wantErr: ErrRoleDenied},
		{name: "nested claims missing", p: prod, requested: "admins", wantErr: ErrRoleDenied},
		{name: "first permitted role", p: everything, want: "agents"},
		{name: "a later permitted role by name", p: everything, requested: "prod", want: "prod"},
		{name: "a later permitted role by ARN", p: everything, requested: arnCI, want: "ci"},
		{name: "denied role requested", p: agent, requested: "prod", wantErr: ErrRoleDenied},
		{name: "denied role requested by ARN", p: agent, requested: arnAdmin, wantErr: ErrRoleDenied},
		{name: "unknown role", p: agent, requested: "arn:aws:iam::123456789012:role/nope", wantErr: ErrRoleDenied},
		{name: "role name in another case", p: agent, requested: "Agents", wantErr: ErrRoleDenied},
		{name: "no role admits an empty principal", p: Principal{}, wantErr: ErrRoleDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := m.Map(tt.p, tt.requested)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Map error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if r != (Role{}) {
					t.Errorf("Map returned role %q with an error", r.Name)
				}
				return
			}
			if r.Name != tt.want {
				t.Errorf("Map = %q, want %q", r.Name, tt.want)
			}
		})
	}
}

// Claims come from the verifier as decoded JSON: json.Number for numbers,
// []any and map[string]any for arrays and objects.
func TestRoleMapperVerifiedClaimTypes(t *testing.T) {
	m, err := NewRoleMapper([]Role{
		{Name: "level", ARN: "arn:aws:iam::1:role/level", When: `principal.claims.level >= 3`},
		{Name: "flag", ARN: "arn:aws:iam::1:role/flag", When: `principal.claims.admin == true`},
		{Name: "list", ARN: "arn:aws:iam::1:role/list", When: `"ops" in principal.claims.teams`},
		{Name: "has", ARN: "arn:aws:iam::1:role/has", When: `has(principal.claims.ticket) && principal.claims.ticket.startsWith("OPS-")`},
	})
	if err != nil {
		t.Fatal(err)
	}
	claimsOf := func(js string) map[string]any {
		dec := json.NewDecoder(strings.NewReader(js))
		dec.UseNumber()
		var c map[string]any
		if err := dec.Decode(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	tests := []struct {
		name      string
		claims    string
		requested string
		wantErr   error
	}{
		{name: "number claim", claims: `{"level": 4}`, requested: "level"},
		{name: "number claim too low", claims: `{"level": 2}`, requested: "level", wantErr: ErrRoleDenied},
		{name: "bool claim", claims: `{"admin": true}`, requested: "flag"},
		{name: "bool claim false", claims: `{"admin": false}`, requested: "flag", wantErr: ErrRoleDenied},
		{name: "array claim", claims: `{"teams": ["dev", "ops"]}`, requested: "list"},
		{name: "array claim without", claims: `{"teams": ["dev"]}`, requested: "list", wantErr: ErrRoleDenied},
		{name: "has() present", claims: `{"ticket": "OPS-7"}`, requested: "has"},
		{name: "has() absent", claims: `{}`, requested: "has", wantErr: ErrRoleDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Principal{Issuer: "https://idp.example", Subject: "s", Claims: claimsOf(tt.claims)}
			_, err := m.Map(p, tt.requested)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Map error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestRoleMapperConfigErrors(t *testing.T) {
	ok := Role{Name: "ok", ARN: "arn:aws:iam::1:role/ok", When: "true"}
	tests := []struct {
		name    string
		roles   []Role
		wantErr []string // all must appear in the error
	}{
		{name: "no roles", wantErr: []string{"no roles"}},
		{name: "typo in a field", roles: []Role{ok, {Name: "typo", ARN: "arn:aws:iam::1:role/typo", When: `"x" in principal.grups`}}, wantErr: []string{"roles[1] (typo)", "grups"}},
		{name: "unknown variable", roles: []Role{{Name: "var", ARN: "arn:aws:iam::1:role/var", When: `user.groups.size() > 0`}}, wantErr: []string{"roles[0] (var)", "user"}},
		{name: "syntax error", roles: []Role{{Name: "syntax", ARN: "arn:aws:iam::1:role/syntax", When: `principal.groups.exists(g, g == "a"`}}, wantErr: []string{"roles[0] (syntax)", "when:"}},
		{name: "string, not boolean", roles: []Role{{Name: "str", ARN: "arn:aws:iam::1:role/str", When: `principal.subject`}}, wantErr: []string{"roles[0] (str)", "boolean"}},
		{name: "list, not boolean", roles: []Role{{Name: "list", ARN: "arn:aws:iam::1:role/list", When: `principal.groups`}}, wantErr: []string{"roles[0] (list)", "boolean"}},
		{name: "dyn, not boolean", roles: []Role{{Name: "dyn", ARN: "arn:aws:iam::1:role/dyn", When: `principal.claims.admin`}}, wantErr: []string{"roles[0] (dyn)", "boolean"}},
		{name: "type error", roles: []Role{{Name: "types", ARN: "arn:aws:iam::1:role/types", When: `principal.subject == 3`}}, wantErr: []string{"roles[0] (types)"}},
		{name: "empty condition", roles: []Role{{Name: "empty", ARN: "arn:aws:iam::1:role/empty", When: "  "}}, wantErr: []string{"roles[0] (empty)", "When is empty"}},
		{name: "no name", roles: []Role{{ARN: "arn:aws:iam::1:role/x", When: "true"}}, wantErr: []string{"roles[0]", "Name"}},
		{name: "not an ARN", roles: []Role{{Name: "bad", ARN: "role/bad", When: "true"}}, wantErr: []string{"roles[0] (bad)", "ARN"}},
		{name: "not a role ARN", roles: []Role{{Name: "user", ARN: "arn:aws:iam::1:user/bad", When: "true"}}, wantErr: []string{"roles[0] (user)", "ARN"}},
		{name: "duplicate name", roles: []Role{ok, {Name: "ok", ARN: "arn:aws:iam::1:role/other", When: "true"}}, wantErr: []string{"roles[1] (ok)", "duplicate"}},
		{name: "duplicate ARN", roles: []Role{ok, {Name: "other", ARN: ok.ARN, When: "true"}}, wantErr: []string{"roles[1] (other)", "duplicate"}},
		{name: "name equal to another role's ARN", roles: []Role{ok, {Name: ok.ARN, ARN: "arn:aws:iam::1:role/third", When: "true"}}, wantErr: []string{"roles[1]", "duplicate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := NewRoleMapper(tt.roles)
			if err == nil {
				t.Fatal("NewRoleMapper accepted the roles")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if m != nil {
				t.Error("NewRoleMapper returned a mapper with an error")
			}
		})
	}
}

// Conditions that would run away are cut off by the cost limit and count as
// not permitted.
func TestRoleMapperCostLimit(t *testing.T) {
	m, err := NewRoleMapper([]Role{{Name: "slow", ARN: "arn:aws:iam::1:role/slow",
		When: `principal.groups.all(a, principal.groups.all(b, principal.groups.all(c, a + b + c != "")))`}})
	if err != nil {
		t.Fatal(err)
	}
	p := Principal{Subject: "s"}
	for i := 0; i < 100; i++ {
		p.Groups = append(p.Groups, strings.Repeat("g", i+1))
	}
	if _, err := m.Map(p, ""); !errors.Is(err, ErrRoleDenied) {
		t.Fatalf("Map error = %v, want ErrRoleDenied", err)
	}
	if _, _, err := m.roles[0].prg.Eval(map[string]any{"principal": celPrincipal(p)}); err == nil || !strings.Contains(err.Error(), "cost") {
		t.Errorf("evaluation error = %v, want the cost limit", err)
	}
	p.Groups = p.Groups[:3]
	if _, err := m.Map(p, ""); err != nil {
		t.Fatalf("small input: %v", err)
	}
}

func TestRoleMapperConcurrent(t *testing.T) {
	m := newTestRoleMapper(t)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 200 {
				p := Principal{Subject: "s", Groups: []string{"mcp-agents"}}
				want := "agents"
				if i%2 == 1 {
					p = Principal{Subject: "s", Claims: map[string]any{"env": "prod"}}
					want = "prod"
				}
				r, err := m.Map(p, "")
				if err != nil || r.Name != want {
					t.Errorf("Map = %q, %v; want %q", r.Name, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
}
