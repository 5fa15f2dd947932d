package identity

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	arnDeployers = "arn:aws:iam::123456789012:role/deployers"
	arnProdOnly  = "arn:aws:iam::123456789012:role/prod-only"
)

type exchangeFixture struct {
	*verifierFixture
	roles    *RoleMapper
	sessions *Sessions
	x        *Exchanger
}

// The gateway's session maximum is 45 minutes; the agents role allows 30.
const testSessionMax = 45 * time.Minute

func newExchangeFixture(t *testing.T) *exchangeFixture {
	t.Helper()
	f := &exchangeFixture{verifierFixture: newVerifierFixture(t)}
	var err error
	f.roles, err = NewRoleMapper([]Role{
		{Name: "agents", ARN: arnAgents, When: `"mcp-agents" in principal.groups && principal.issuer == "` + f.a.URL() + `"`, MaxDuration: 30 * time.Minute},
		{Name: "deployers", ARN: arnDeployers, When: `"deployers" in principal.groups`},
		{Name: "prod", ARN: arnProdOnly, When: `principal.claims.env == "prod"`, MaxDuration: 2 * time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	f.sessions = newTestSessions(t, f.clock, testSessionMax)
	f.x = &Exchanger{Verifier: f.v, Roles: f.roles, Sessions: f.sessions}
	return f
}

func TestExchange(t *testing.T) {
	f := newExchangeFixture(t)
	now := f.clock.Now()
	aToken := func(exp time.Duration, mods ...func(map[string]any)) string {
		return f.a.sign("a-ec", f.a.claims(now, append([]func(map[string]any){set("exp", now.Add(exp).Unix())}, mods...)...))
	}
	bToken := func(exp time.Duration) string {
		return f.b.sign("b-rsa", f.bClaims(set("exp", now.Add(exp).Unix())))
	}
	tests := []struct {
		name     string
		token    string
		role     string
		duration time.Duration
		wantRole string
		want     time.Duration // session lifetime from now
		wantErr  error
	}{
		{name: "token expiry is the least", token: aToken(10 * time.Minute), wantRole: arnAgents, want: 10 * time.Minute},
		{name: "role maximum is the least", token: aToken(2 * time.Hour), wantRole: arnAgents, want: 30 * time.Minute},
		{name: "requested duration is the least", token: aToken(2 * time.Hour), duration: 5 * time.Minute, wantRole: arnAgents, want: 5 * time.Minute},
		{name: "requested beyond the role maximum", token: aToken(2 * time.Hour), duration: time.Hour, wantRole: arnAgents, want: 30 * time.Minute},
		{name: "requested beyond the token", token: aToken(20 * time.Minute), duration: 25 * time.Minute, wantRole: arnAgents, want: 20 * time.Minute},
		{name: "sessions maximum is the least", token: bToken(2 * time.Hour), wantRole: arnDeployers, want: testSessionMax},
		{name: "sessions maximum under a larger request", token: bToken(2 * time.Hour), duration: 90 * time.Minute, wantRole: arnDeployers, want: testSessionMax},
		{name: "sessions maximum under a larger role maximum", token: aToken(3*time.Hour, set("env", "prod")), role: "prod", wantRole: arnProdOnly, want: testSessionMax},
		{name: "role by ARN", token: bToken(time.Hour), role: arnDeployers, duration: 15 * time.Minute, wantRole: arnDeployers, want: 15 * time.Minute},
		{name: "first permitted role", token: aToken(time.Hour, set("env", "prod")), wantRole: arnAgents, want: 30 * time.Minute},
		{name: "role denied", token: aToken(time.Hour), role: "deployers", wantErr: ErrRoleDenied},
		{name: "role denied by condition on issuer", token: f.b.sign("b-rsa", f.bClaims(set("realm_access", map[string]any{"roles": []string{"mcp-agents"}}))), wantErr: ErrRoleDenied},
		{name: "unknown role", token: aToken(time.Hour), role: "arn:aws:iam::123456789012:role/nope", wantErr: ErrRoleDenied},
		{name: "token expired", token: aToken(-time.Hour), wantErr: ErrTokenExpired},
		{name: "token expired within the skew", token: aToken(-30 * time.Second), wantErr: ErrTokenExpired},
		{name: "token invalid", token: aToken(time.Hour, set("aud", "elsewhere")), wantErr: ErrTokenInvalid},
		{name: "token forged", token: signClaims(t, mustSigner(t, jose.ES256, testKey(t, "exchange-forger", jose.ES256), "a-ec"), f.a.claims(now)), wantErr: ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := f.x.Exchange(context.Background(), ExchangeRequest{Token: tt.token, Role: tt.role, Duration: tt.duration})
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Exchange error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if res != nil {
					t.Error("Exchange returned a result with an error")
				}
				return
			}
			if res.Role.ARN != tt.wantRole {
				t.Errorf("role = %q, want %q", res.Role.ARN, tt.wantRole)
			}
			if want := now.Add(tt.want); !res.Credentials.Expires.Equal(want) {
				t.Errorf("session expires %v after now, want %v", res.Credentials.Expires.Sub(now), tt.want)
			}
			claims, secret, err := f.sessions.Open(res.Credentials.AccessKeyID, res.Credentials.SessionToken)
			if err != nil {
				t.Fatalf("the minted session does not open: %v", err)
			}
			if secret != res.Credentials.SecretAccessKey || claims.Role != tt.wantRole || !claims.Expires.Equal(res.Credentials.Expires) {
				t.Errorf("opened session: role %q expires %v", claims.Role, claims.Expires)
			}
			if claims.Principal.String() != res.Token.Principal.String() || !slices.Equal(claims.Principal.Groups, res.Token.Principal.Groups) {
				t.Errorf("session principal %s %v, token principal %s %v", claims.Principal, claims.Principal.Groups, res.Token.Principal, res.Token.Principal.Groups)
			}
			// The session never outlives the token.
			if res.Credentials.Expires.After(res.Token.Expiry) {
				t.Errorf("session expires %v, after the token's %v", res.Credentials.Expires, res.Token.Expiry)
			}
		})
	}
}

func TestExchangeSessionExpiresWithTime(t *testing.T) {
	f := newExchangeFixture(t)
	tok := f.a.sign("a-rsa", f.a.claims(f.clock.Now()))
	res, err := f.x.Exchange(context.Background(), ExchangeRequest{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(10 * time.Minute)
	if _, _, err := f.sessions.Open(res.Credentials.AccessKeyID, res.Credentials.SessionToken); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("Open at the token's expiry: %v, want ErrSessionExpired", err)
	}
}

func TestExchangeIncomplete(t *testing.T) {
	f := newExchangeFixture(t)
	for _, x := range []*Exchanger{{}, {Verifier: f.v, Roles: f.roles}, {Verifier: f.v, Sessions: f.sessions}, {Roles: f.roles, Sessions: f.sessions}} {
		if _, err := x.Exchange(context.Background(), ExchangeRequest{Token: "x"}); err == nil {
			t.Errorf("Exchanger %+v exchanged without all its parts", x)
		}
	}
}

func mustSigner(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string) jose.Signer {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
