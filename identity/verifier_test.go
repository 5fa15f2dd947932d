package identity

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	testSkew            = time.Minute
	testRefreshInterval = 30 * time.Second
)

// verifierFixture: two identity providers A and B with separate keys, both
// trusted, and a verifier on an injected clock. A requires tenant=acme and
// reads groups from "groups"; B reads them from "realm_access.roles".
type verifierFixture struct {
	clock *testClock
	a, b  *testIdP
	v     *Verifier
}

func newVerifierFixture(t testing.TB) *verifierFixture {
	t.Helper()
	f := &verifierFixture{clock: newTestClock(), a: newTestIdP(t), b: newTestIdP(t)}
	f.a.addKey("a-rsa", jose.RS256, true)
	f.a.addKey("a-ec", jose.ES256, true)
	f.a.addKey("a-ed", jose.EdDSA, true)
	f.b.addKey("b-rsa", jose.RS256, true)
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuers: []Issuer{
			{URL: f.a.URL(), Audiences: []string{"gatehouse", "gatehouse-alt"}, RequiredClaims: map[string]string{"tenant": "acme"}},
			{URL: f.b.URL(), Audiences: []string{"gatehouse"}, GroupsClaim: "realm_access.roles"},
		},
		Now:                f.clock.Now,
		ClockSkew:          testSkew,
		MinRefreshInterval: testRefreshInterval,
	})
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	f.v = v
	return f
}

// bClaims are valid claims of B: groups nested, no tenant.
func (f *verifierFixture) bClaims(mods ...func(map[string]any)) map[string]any {
	base := []func(map[string]any){
		del("tenant"), del("groups"),
		set("realm_access", map[string]any{"roles": []string{"mcp-agents", "deployers"}}),
	}
	return f.b.claims(f.clock.Now(), append(base, mods...)...)
}

// checkVerifyError: every refusal wraps exactly one of ErrTokenInvalid and
// ErrTokenExpired, and want.
func checkVerifyError(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("Verify error = %v, want none", err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("Verify error = %v, want one wrapping %v", err, want)
	}
	if errors.Is(err, ErrTokenInvalid) == errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify error %v must wrap exactly one of ErrTokenInvalid and ErrTokenExpired", err)
	}
}

// rawClaims signs a hand-written payload with A's EdDSA key; format gets the
// issuer and an expiry ten minutes after the fixture's now.
func rawClaims(t *testing.T, a *testIdP, format string) string {
	t.Helper()
	payload := fmt.Sprintf(format, a.URL(), testEpoch.Add(10*time.Minute).Unix())
	if !json.Valid([]byte(payload)) {
		t.Fatalf("invalid JSON: %s", payload)
	}
	return signPayload(t, a.key("a-ed").signer, []byte(payload))
}

func hmacToken(t *testing.T, secret []byte, kid string, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: secret},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	return signClaims(t, signer, claims)
}

func TestVerify(t *testing.T) {
	f := newVerifierFixture(t)
	a, b, now := f.a, f.b, f.clock.Now()
	c := newTestIdP(t) // a real provider the verifier does not trust
	c.addKey("c-rsa", jose.RS256, true)

	// A key of the right type, announced with A's kid but not A's.
	forger := testKey(t, "forger", jose.RS256)
	forgedSameKid, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: forger, KeyID: "a-rsa"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	forgedNewKid, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: forger, KeyID: "a-rsa-2"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noKid, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: a.key("a-ed").priv}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub := a.key("a-rsa").priv.Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	pemPub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkPub, err := json.Marshal(jose.JSONWebKey{Key: rsaPub, KeyID: "a-rsa", Algorithm: "RS256", Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}

	valid := a.sign("a-rsa", a.claims(now))
	vh, vp, _ := strings.Cut(valid, ".")
	vp, vs, _ := strings.Cut(vp, ".")
	other := a.sign("a-rsa", a.claims(now, set("sub", "agent-2")))
	op := strings.Split(other, ".")[1]

	wantPrincipal := func(iss, sub, client string, groups ...string) func(*testing.T, *Token) {
		return func(t *testing.T, tok *Token) {
			t.Helper()
			p := tok.Principal
			if p.Issuer != iss || p.Subject != sub || p.ClientID != client || !slices.Equal(p.Groups, groups) {
				t.Errorf("principal = %q %q client %q groups %q; want %q %q client %q groups %q",
					p.Issuer, p.Subject, p.ClientID, p.Groups, iss, sub, client, groups)
			}
		}
	}
	defaultA := wantPrincipal(a.URL(), "agent-1", "agent-client", "mcp-agents", "readers")

	tests := []struct {
		name    string
		token   string
		wantErr error
		check   func(*testing.T, *Token)
	}{
		{name: "valid RS256", token: valid, check: func(t *testing.T, tok *Token) {
			defaultA(t, tok)
			if tok.Audience != "gatehouse" {
				t.Errorf("Audience = %q", tok.Audience)
			}
			if !tok.Expiry.Equal(now.Add(10*time.Minute)) || !tok.IssuedAt.Equal(now) {
				t.Errorf("Expiry, IssuedAt = %v, %v", tok.Expiry, tok.IssuedAt)
			}
			if tok.Principal.Email != "agent-1@workloads.example" || tok.Principal.Claims["tenant"] != "acme" {
				t.Errorf("email %q, claims %v", tok.Principal.Email, tok.Principal.Claims)
			}
			if tok.Principal.String() != a.URL()+"#agent-1" {
				t.Errorf("String() = %q", tok.Principal.String())
			}
		}},
		{name: "valid ES256", token: a.sign("a-ec", a.claims(now)), check: defaultA},
		{name: "valid EdDSA", token: a.sign("a-ed", a.claims(now)), check: defaultA},
		{name: "valid without kid", token: signClaims(t, noKid, a.claims(now)), check: defaultA},

		// Time.
		{name: "expired beyond the skew", token: a.sign("a-rsa", a.claims(now, set("exp", now.Add(-testSkew-time.Second).Unix()))), wantErr: ErrTokenExpired},
		{name: "expired exactly the skew ago", token: a.sign("a-rsa", a.claims(now, set("exp", now.Add(-testSkew).Unix()))), wantErr: ErrTokenExpired},
		{name: "expired long ago", token: a.sign("a-rsa", a.claims(now, set("exp", now.Add(-48*time.Hour).Unix()), set("iat", now.Add(-49*time.Hour).Unix()))), wantErr: ErrTokenExpired},
		{name: "expired within the skew", token: a.sign("a-rsa", a.claims(now, set("exp", now.Add(-testSkew+time.Second).Unix()))), check: defaultA},
		{name: "exp zero", token: a.sign("a-rsa", a.claims(now, set("exp", 0))), wantErr: ErrTokenExpired},
		{name: "exp as a fraction", token: a.sign("a-rsa", a.claims(now, set("exp", float64(now.Unix())+600.5))), check: defaultA},
		{name: "missing exp", token: a.sign("a-rsa", a.claims(now, del("exp"))), wantErr: ErrTokenInvalid},
		{name: "exp null", token: a.sign("a-rsa", a.claims(now, set("exp", nil))), wantErr: ErrTokenInvalid},
		{name: "exp not a number", token: a.sign("a-rsa", a.claims(now, set("exp", "tomorrow"))), wantErr: ErrTokenInvalid},
		{name: "exp negative", token: a.sign("a-rsa", a.claims(now, set("exp", -1))), wantErr: ErrTokenInvalid},
		{name: "exp absurdly far", token: a.sign("a-rsa", a.claims(now, set("exp", 1e300))), wantErr: ErrTokenInvalid},
		{name: "nbf in the future", token: a.sign("a-rsa", a.claims(now, set("nbf", now.Add(testSkew+time.Second).Unix()))), wantErr: ErrTokenInvalid},
		{name: "nbf within the skew", token: a.sign("a-rsa", a.claims(now, set("nbf", now.Add(testSkew-time.Second).Unix()))), check: defaultA},
		{name: "nbf not a date", token: a.sign("a-rsa", a.claims(now, set("nbf", -5))), wantErr: ErrTokenInvalid},
		{name: "nbf absent", token: a.sign("a-rsa", a.claims(now, del("nbf"))), check: defaultA},
		{name: "iat in the future", token: a.sign("a-rsa", a.claims(now, set("iat", now.Add(testSkew+time.Second).Unix()))), wantErr: ErrTokenInvalid},
		{name: "iat within the skew", token: a.sign("a-rsa", a.claims(now, set("iat", now.Add(testSkew-time.Second).Unix()))), check: defaultA},
		{name: "iat absent", token: a.sign("a-rsa", a.claims(now, del("iat"))), check: func(t *testing.T, tok *Token) {
			if !tok.IssuedAt.IsZero() {
				t.Errorf("IssuedAt = %v, want zero", tok.IssuedAt)
			}
		}},

		// Subject.
		{name: "missing sub", token: a.sign("a-rsa", a.claims(now, del("sub"))), wantErr: ErrTokenInvalid},
		{name: "empty sub", token: a.sign("a-rsa", a.claims(now, set("sub", ""))), wantErr: ErrTokenInvalid},

		// Issuer.
		{name: "wrong issuer", token: a.sign("a-rsa", a.claims(now, set("iss", "https://evil.example"))), wantErr: ErrUnknownIssuer},
		{name: "issuer with a trailing slash", token: a.sign("a-rsa", a.claims(now, set("iss", a.URL()+"/"))), wantErr: ErrUnknownIssuer},
		{name: "issuer not configured", token: c.sign("c-rsa", c.claims(now)), wantErr: ErrUnknownIssuer},
		{name: "missing iss", token: a.sign("a-rsa", a.claims(now, del("iss"))), wantErr: ErrTokenInvalid},
		{name: "iss of A signed by B", token: b.sign("b-rsa", a.claims(now)), wantErr: ErrBadSignature},
		{name: "iss of B signed by A", token: a.sign("a-rsa", f.bClaims()), wantErr: ErrBadSignature},

		// Audience.
		{name: "wrong audience", token: a.sign("a-rsa", a.claims(now, set("aud", "someone-else"))), wantErr: ErrWrongAudience},
		{name: "audience missing", token: a.sign("a-rsa", a.claims(now, del("aud"))), wantErr: ErrWrongAudience},
		{name: "audience empty array", token: a.sign("a-rsa", a.claims(now, set("aud", []string{}))), wantErr: ErrWrongAudience},
		{name: "audience as a string, second accepted", token: a.sign("a-rsa", a.claims(now, set("aud", "gatehouse-alt"))), check: func(t *testing.T, tok *Token) {
			if tok.Audience != "gatehouse-alt" {
				t.Errorf("Audience = %q", tok.Audience)
			}
		}},
		{name: "audience as an array", token: a.sign("a-rsa", a.claims(now, set("aud", []string{"someone-else", "gatehouse-alt"}))), check: func(t *testing.T, tok *Token) {
			if tok.Audience != "gatehouse-alt" {
				t.Errorf("Audience = %q", tok.Audience)
			}
		}},
		{name: "audience as an array without ours", token: a.sign("a-rsa", a.claims(now, set("aud", []string{"someone-else", "gatehouse-other"}))), wantErr: ErrWrongAudience},
		{name: "audience of B's configuration only at A", token: b.sign("b-rsa", f.bClaims(set("aud", "gatehouse-alt"))), wantErr: ErrWrongAudience},
		{name: "audience a number", token: a.sign("a-rsa", a.claims(now, set("aud", 7))), wantErr: ErrTokenInvalid},

		// Algorithms and signatures.
		{name: "alg none", token: unsignedToken(t, `{"alg":"none","typ":"JWT"}`, a.claims(now), ""), wantErr: ErrTokenInvalid},
		{name: "alg none with kid", token: unsignedToken(t, `{"alg":"none","kid":"a-rsa"}`, a.claims(now), ""), wantErr: ErrTokenInvalid},
		{name: "alg None with a signature", token: unsignedToken(t, `{"alg":"None","kid":"a-rsa"}`, a.claims(now), vs), wantErr: ErrTokenInvalid},
		{name: "alg missing", token: unsignedToken(t, `{"kid":"a-rsa"}`, a.claims(now), vs), wantErr: ErrTokenInvalid},
		{name: "HS256 keyed with the RSA public key PEM", token: hmacToken(t, pemPub, "a-rsa", a.claims(now)), wantErr: ErrTokenInvalid},
		{name: "HS256 keyed with the RSA public key DER", token: hmacToken(t, der, "a-rsa", a.claims(now)), wantErr: ErrTokenInvalid},
		{name: "HS256 keyed with the RSA public JWK", token: hmacToken(t, jwkPub, "a-rsa", a.claims(now)), wantErr: ErrTokenInvalid},
		{name: "forged with A's kid", token: signClaims(t, forgedSameKid, a.claims(now)), wantErr: ErrBadSignature},
		{name: "forged with an unknown kid", token: signClaims(t, forgedNewKid, a.claims(now)), wantErr: ErrBadSignature},
		{name: "payload swapped", token: vh + "." + op + "." + vs, wantErr: ErrBadSignature},
		{name: "signature stripped", token: vh + "." + vp + ".", wantErr: ErrTokenInvalid},
		{name: "header alg changed", token: b64(`{"alg":"RS512","kid":"a-rsa","typ":"JWT"}`) + "." + vp + "." + vs, wantErr: ErrBadSignature},
		{name: "header kid of another key", token: b64(`{"alg":"RS256","kid":"a-ec","typ":"JWT"}`) + "." + vp + "." + vs, wantErr: ErrBadSignature},

		// Groups.
		{name: "groups as a single string", token: a.sign("a-rsa", a.claims(now, set("groups", "solo"))), check: wantPrincipal(a.URL(), "agent-1", "agent-client", "solo")},
		{name: "groups with non-strings", token: a.sign("a-rsa", a.claims(now, set("groups", []any{"x", 1, nil, "y", []string{"z"}}))), check: wantPrincipal(a.URL(), "agent-1", "agent-client", "x", "y")},
		{name: "groups absent", token: a.sign("a-rsa", a.claims(now, del("groups"))), check: wantPrincipal(a.URL(), "agent-1", "agent-client")},
		{name: "nested groups as an array", token: b.sign("b-rsa", f.bClaims()), check: wantPrincipal(b.URL(), "agent-1", "agent-client", "mcp-agents", "deployers")},
		{name: "nested groups as a single string", token: b.sign("b-rsa", f.bClaims(set("realm_access", map[string]any{"roles": "deployers"}))), check: wantPrincipal(b.URL(), "agent-1", "agent-client", "deployers")},
		{name: "nested groups absent", token: b.sign("b-rsa", f.bClaims(del("realm_access"))), check: wantPrincipal(b.URL(), "agent-1", "agent-client")},
		{name: "nested groups parent not an object", token: b.sign("b-rsa", f.bClaims(set("realm_access", "roles"))), check: wantPrincipal(b.URL(), "agent-1", "agent-client")},
		{name: "nested path not read as a flat key", token: b.sign("b-rsa", f.bClaims(del("realm_access"), set("realm_access.roles", []string{"flat"}))), check: wantPrincipal(b.URL(), "agent-1", "agent-client")},

		// Required claims (A requires tenant=acme).
		{name: "required claim present", token: valid, check: defaultA},
		{name: "required claim absent", token: a.sign("a-rsa", a.claims(now, del("tenant"))), wantErr: ErrTokenInvalid},
		{name: "required claim differs", token: a.sign("a-rsa", a.claims(now, set("tenant", "globex"))), wantErr: ErrTokenInvalid},
		{name: "required claim in an array", token: a.sign("a-rsa", a.claims(now, set("tenant", []string{"globex", "acme"}))), check: defaultA},
		{name: "required claim array without it", token: a.sign("a-rsa", a.claims(now, set("tenant", []string{"globex"}))), wantErr: ErrTokenInvalid},
		{name: "required claim an object", token: a.sign("a-rsa", a.claims(now, set("tenant", map[string]any{"acme": true}))), wantErr: ErrTokenInvalid},
		{name: "not required at B", token: b.sign("b-rsa", f.bClaims()), check: wantPrincipal(b.URL(), "agent-1", "agent-client", "mcp-agents", "deployers")},

		// Client id.
		{name: "client id from azp", token: valid, check: defaultA},
		{name: "client id from client_id", token: a.sign("a-rsa", a.claims(now, del("azp"), set("client_id", "cc-client"))), check: wantPrincipal(a.URL(), "agent-1", "cc-client", "mcp-agents", "readers")},
		{name: "azp preferred over client_id", token: a.sign("a-rsa", a.claims(now, set("client_id", "cc-client"))), check: defaultA},
		{name: "no client id", token: a.sign("a-rsa", a.claims(now, del("azp"))), check: wantPrincipal(a.URL(), "agent-1", "", "mcp-agents", "readers")},

		// Claim names are case-sensitive: a case variant after the real
		// claim must not override it (encoding/json would let it).
		{name: "Sub after sub", token: rawClaims(t, a, `{"iss":%q,"sub":"agent-1","aud":"gatehouse","exp":%d,"tenant":"acme","Sub":"admin"}`), check: wantPrincipal(a.URL(), "agent-1", "")},
		{name: "AUD after aud", token: rawClaims(t, a, `{"iss":%q,"sub":"agent-1","aud":"elsewhere","exp":%d,"tenant":"acme","AUD":"gatehouse"}`), wantErr: ErrTokenInvalid},
		{name: "long s variant of sub", token: rawClaims(t, a, `{"iss":%q,"sub":"agent-1","aud":"gatehouse","exp":%d,"tenant":"acme","\u017fub":"admin"}`), check: wantPrincipal(a.URL(), "agent-1", "")},
		{name: "Exp alone", token: rawClaims(t, a, `{"iss":%q,"sub":"agent-1","aud":"gatehouse","Exp":%d,"tenant":"acme"}`), wantErr: ErrTokenInvalid},
		{name: "Client_ID variant", token: rawClaims(t, a, `{"iss":%q,"sub":"agent-1","aud":"gatehouse","exp":%d,"tenant":"acme","azp":"agent-client","Client_ID":"x"}`), check: wantPrincipal(a.URL(), "agent-1", "agent-client")},
		{name: "exact names in a hand-built payload", token: rawClaims(t, a, `{"iss":%q,"sub":"agent-1","aud":"gatehouse","exp":%d,"tenant":"acme","Subject":"not a variant"}`), check: wantPrincipal(a.URL(), "agent-1", "")},

		// Shape.
		{name: "oversized", token: a.sign("a-rsa", a.claims(now, set("pad", strings.Repeat("p", 16<<10)))), wantErr: ErrTokenInvalid},
		{name: "empty", token: "", wantErr: ErrTokenInvalid},
		{name: "one segment", token: "abc", wantErr: ErrTokenInvalid},
		{name: "two segments", token: vh + "." + vp, wantErr: ErrTokenInvalid},
		{name: "four segments", token: valid + ".x", wantErr: ErrTokenInvalid},
		{name: "payload not base64url", token: vh + ".!!!." + vs, wantErr: ErrTokenInvalid},
		{name: "payload not JSON", token: vh + "." + b64("not json") + "." + vs, wantErr: ErrTokenInvalid},
		{name: "payload a JSON array", token: vh + "." + b64(`["iss"]`) + "." + vs, wantErr: ErrTokenInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := f.v.Verify(context.Background(), tt.token)
			checkVerifyError(t, err, tt.wantErr)
			if err != nil {
				t.Logf("refused: %v", err)
				if tok != nil {
					t.Errorf("Verify returned a token with error %v", err)
				}
				return
			}
			if tt.check != nil {
				tt.check(t, tok)
			}
		})
	}
	if n := c.jwksHits.Load(); n != 0 {
		t.Errorf("the untrusted issuer's JWKS was fetched %d times", n)
	}
}

// TestVerifyIssuerChosenBySignedClaims: the issuer whose keys verify the
// signature is picked from unverified bytes, so it must be confirmed from
// the signed claims. Two issuers sharing one key set (as multi-tenant
// providers do) must not be confused, even when the JWS JSON serialization
// smuggles a fake compact payload segment in an unprotected header.
func TestVerifyIssuerChosenBySignedClaims(t *testing.T) {
	clock := newTestClock()
	idp := newTestIdP(t)
	k := idp.addKey("shared-ed", jose.EdDSA, true)
	keys := &oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{k.priv.Public()}}
	const tenantX, tenantY = "https://login.example/tenant-x", "https://login.example/tenant-y"
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuers: []Issuer{
			{URL: tenantX, Audiences: []string{"gatehouse"}, KeySet: keys},
			{URL: tenantY, Audiences: []string{"gatehouse"}, KeySet: keys},
		},
		Now: clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := idp.discoveryHits.Load() + idp.jwksHits.Load(); n != 0 {
		t.Errorf("issuers with a KeySet made %d HTTP requests", n)
	}
	x := idp.sign("shared-ed", idp.claims(clock.Now(), set("iss", tenantX)))
	tok, err := v.Verify(context.Background(), x)
	if err != nil || tok.Principal.Issuer != tenantX {
		t.Fatalf("Verify = %v, %v; want tenant X", tok, err)
	}

	parts := strings.Split(x, ".")
	fake := b64(fmt.Sprintf(`{"iss":%q}`, tenantY))
	smuggled := fmt.Sprintf(`{"header":{"x":".%s."},"protected":%q,"payload":%q,"signature":%q}`, fake, parts[0], parts[1], parts[2])
	if n := strings.Count(smuggled, "."); n != 2 {
		t.Fatalf("smuggled token has %d dots", n)
	}
	if _, err := jose.ParseSigned(smuggled, []jose.SignatureAlgorithm{jose.EdDSA}); err != nil {
		t.Fatalf("the smuggled token is not a JWS JSON serialization: %v", err)
	}
	_, err = v.Verify(context.Background(), smuggled)
	checkVerifyError(t, err, ErrTokenInvalid)
	t.Logf("smuggled token refused: %v", err)
	if err == nil {
		t.Fatal("a token of tenant X was accepted as tenant Y")
	}
}

func TestVerifierKeyRotation(t *testing.T) {
	f := newVerifierFixture(t)
	ctx := context.Background()
	a := f.a
	if _, err := f.v.Verify(ctx, a.sign("a-rsa", a.claims(f.clock.Now()))); err != nil {
		t.Fatal(err)
	}
	if n := a.jwksHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times for the first token, want 1", n)
	}

	f.clock.Advance(testRefreshInterval)
	a.addKey("a-rsa-next", jose.RS256, true)
	rotated := a.sign("a-rsa-next", a.claims(f.clock.Now()))
	tok, err := f.v.Verify(ctx, rotated)
	if err != nil {
		t.Fatalf("token signed with the new key: %v", err)
	}
	if tok.Principal.Subject != "agent-1" {
		t.Errorf("subject %q", tok.Principal.Subject)
	}
	if n := a.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times in all, want exactly one refresh", n)
	}
	for range 5 {
		if _, err := f.v.Verify(ctx, rotated); err != nil {
			t.Fatal(err)
		}
		if _, err := f.v.Verify(ctx, a.sign("a-ec", a.claims(f.clock.Now()))); err != nil {
			t.Fatalf("an older key still in the JWKS: %v", err)
		}
	}
	if n := a.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times after the rotation settled, want 2", n)
	}
}

// Right after a fetch the verifier does not fetch again: a key published in
// that window is accepted once the interval has passed, and not before.
func TestVerifierKeyRotationWithinInterval(t *testing.T) {
	f := newVerifierFixture(t)
	ctx := context.Background()
	a := f.a
	if _, err := f.v.Verify(ctx, a.sign("a-rsa", a.claims(f.clock.Now()))); err != nil {
		t.Fatal(err)
	}
	a.addKey("a-ec-next", jose.ES256, true)
	f.clock.Advance(testRefreshInterval - time.Second)
	_, err := f.v.Verify(ctx, a.sign("a-ec-next", a.claims(f.clock.Now())))
	checkVerifyError(t, err, ErrBadSignature)
	if n := a.jwksHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (rate-limited)", n)
	}
	f.clock.Advance(time.Second)
	if _, err := f.v.Verify(ctx, a.sign("a-ec-next", a.claims(f.clock.Now()))); err != nil {
		t.Fatalf("after the interval: %v", err)
	}
	if n := a.jwksHits.Load(); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2", n)
	}
}

func TestVerifierJWKSOutage(t *testing.T) {
	f := newVerifierFixture(t)
	ctx := context.Background()
	a := f.a
	for _, kid := range []string{"a-rsa", "a-ec", "a-ed"} {
		if _, err := f.v.Verify(ctx, a.sign(kid, a.claims(f.clock.Now()))); err != nil {
			t.Fatal(err)
		}
	}
	a.jwksStatus.Store(http.StatusInternalServerError)
	a.addKey("a-ed-next", jose.EdDSA, true) // published, but the endpoint is down
	f.clock.Advance(testRefreshInterval)

	t.Run("cached keys keep working", func(t *testing.T) {
		before := a.jwksHits.Load()
		for _, kid := range []string{"a-rsa", "a-ec", "a-ed"} {
			if _, err := f.v.Verify(ctx, a.sign(kid, a.claims(f.clock.Now()))); err != nil {
				t.Errorf("%s during the outage: %v", kid, err)
			}
		}
		if n := a.jwksHits.Load() - before; n != 0 {
			t.Errorf("cached keys caused %d JWKS fetches", n)
		}
	})
	t.Run("unknown kid fails closed", func(t *testing.T) {
		before := a.jwksHits.Load()
		_, err := f.v.Verify(ctx, a.sign("a-ed-next", a.claims(f.clock.Now())))
		checkVerifyError(t, err, ErrBadSignature)
		if !strings.Contains(err.Error(), "500") {
			t.Errorf("error %q does not name the failed fetch", err)
		}
		if n := a.jwksHits.Load() - before; n != 1 {
			t.Errorf("%d JWKS fetches, want 1", n)
		}
		// A failed fetch counts for the rate limit too.
		_, err = f.v.Verify(ctx, a.sign("a-ed-next", a.claims(f.clock.Now())))
		checkVerifyError(t, err, ErrBadSignature)
		if n := a.jwksHits.Load() - before; n != 1 {
			t.Errorf("%d JWKS fetches after a second unknown kid, want 1", n)
		}
	})
	t.Run("cached keys survive the failed refresh", func(t *testing.T) {
		if _, err := f.v.Verify(ctx, a.sign("a-rsa", a.claims(f.clock.Now()))); err != nil {
			t.Errorf("after a failed refresh: %v", err)
		}
	})
	t.Run("malformed JWKS keeps the cache", func(t *testing.T) {
		a.jwksStatus.Store(0)
		broken := `{"keys": [`
		a.jwksBody.Store(&broken)
		f.clock.Advance(testRefreshInterval)
		before := a.jwksHits.Load()
		_, err := f.v.Verify(ctx, a.sign("a-ed-next", a.claims(f.clock.Now())))
		checkVerifyError(t, err, ErrBadSignature)
		if n := a.jwksHits.Load() - before; n != 1 {
			t.Errorf("%d JWKS fetches, want 1", n)
		}
		if _, err := f.v.Verify(ctx, a.sign("a-ec", a.claims(f.clock.Now()))); err != nil {
			t.Errorf("cached key after a malformed JWKS: %v", err)
		}
	})
	t.Run("recovery", func(t *testing.T) {
		a.jwksBody.Store(nil)
		f.clock.Advance(testRefreshInterval)
		if _, err := f.v.Verify(ctx, a.sign("a-ed-next", a.claims(f.clock.Now()))); err != nil {
			t.Fatalf("after recovery, the new key: %v", err)
		}
		if _, err := f.v.Verify(ctx, a.sign("a-rsa", a.claims(f.clock.Now()))); err != nil {
			t.Fatalf("after recovery, an old key: %v", err)
		}
	})
}

func TestVerifierRefreshRateLimit(t *testing.T) {
	for _, outage := range []bool{false, true} {
		t.Run(fmt.Sprintf("outage=%v", outage), func(t *testing.T) {
			f := newVerifierFixture(t)
			ctx := context.Background()
			a := f.a
			if _, err := f.v.Verify(ctx, a.sign("a-rsa", a.claims(f.clock.Now()))); err != nil {
				t.Fatal(err)
			}
			if outage {
				a.jwksStatus.Store(http.StatusInternalServerError)
			}
			// Unknown kids, signed by keys the IdP never published.
			var burst []string
			for i := range 50 {
				kid := fmt.Sprintf("unknown-%d", i)
				priv := ed25519.NewKeyFromSeed([]byte(fmt.Sprintf("%032d", i)))
				a.addKeyWith(kid, jose.EdDSA, priv, false)
				burst = append(burst, a.sign(kid, a.claims(f.clock.Now())))
			}
			fire := func() {
				var wg sync.WaitGroup
				errs := make(chan error, len(burst))
				for _, tok := range burst {
					wg.Go(func() {
						_, err := f.v.Verify(ctx, tok)
						errs <- err
					})
				}
				wg.Wait()
				close(errs)
				for err := range errs {
					checkVerifyError(t, err, ErrBadSignature)
				}
			}
			for round := 1; round <= 3; round++ {
				f.clock.Advance(testRefreshInterval)
				before := a.jwksHits.Load()
				fire()
				fire() // a second burst within the same interval
				if n := a.jwksHits.Load() - before; n > 1 {
					t.Errorf("round %d: %d JWKS fetches for 100 unknown-kid tokens in one interval, want at most 1", round, n)
				}
			}
			// Known keys are unaffected by the refusals.
			if _, err := f.v.Verify(ctx, a.sign("a-ec", a.claims(f.clock.Now()))); err != nil {
				t.Errorf("a cached key after the bursts: %v", err)
			}
		})
	}
}

func TestVerifierDiscovery(t *testing.T) {
	clock := newTestClock()
	idp := newTestIdP(t)
	idp.addKey("d-ec", jose.ES256, true)
	v, err := NewVerifier(context.Background(), VerifierConfig{Issuers: []Issuer{{URL: idp.URL(), Audiences: []string{"gatehouse"}}}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if d, j := idp.discoveryHits.Load(), idp.jwksHits.Load(); d != 1 || j != 0 {
		t.Errorf("after NewVerifier: %d discovery and %d JWKS requests, want 1 and 0 (lazy)", d, j)
	}
	if _, err := v.Verify(context.Background(), idp.sign("d-ec", idp.claims(clock.Now(), del("tenant")))); err != nil {
		t.Fatal(err)
	}
	if d, j := idp.discoveryHits.Load(), idp.jwksHits.Load(); d != 1 || j != 1 {
		t.Errorf("after a token: %d discovery and %d JWKS requests, want 1 and 1", d, j)
	}

	// JWKSURL skips discovery.
	other := newTestIdP(t)
	other.addKey("d-ed", jose.EdDSA, true)
	v, err = NewVerifier(context.Background(), VerifierConfig{Issuers: []Issuer{{URL: "https://issuer.example", JWKSURL: other.URL() + "/jwks", Audiences: []string{"gatehouse"}}}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := v.Verify(context.Background(), other.sign("d-ed", other.claims(clock.Now(), set("iss", "https://issuer.example"))))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Principal.Issuer != "https://issuer.example" || other.discoveryHits.Load() != 0 {
		t.Errorf("issuer %q, %d discovery requests", tok.Principal.Issuer, other.discoveryHits.Load())
	}
}

// Issuer.Algorithms narrows what an issuer may use.
func TestVerifierAlgorithms(t *testing.T) {
	clock := newTestClock()
	idp := newTestIdP(t)
	idp.addKey("alg-rsa", jose.RS256, true)
	idp.addKey("alg-ec", jose.ES256, true)
	v, err := NewVerifier(context.Background(), VerifierConfig{Issuers: []Issuer{{URL: idp.URL(), Audiences: []string{"gatehouse"}, Algorithms: []string{"ES256"}}}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), idp.sign("alg-ec", idp.claims(clock.Now()))); err != nil {
		t.Errorf("ES256: %v", err)
	}
	_, err = v.Verify(context.Background(), idp.sign("alg-rsa", idp.claims(clock.Now())))
	checkVerifyError(t, err, ErrTokenInvalid)
}

func TestVerifierConfigErrors(t *testing.T) {
	good := newTestIdP(t)
	good.addKey("cfg-ec", jose.ES256, true)
	down := newTestIdP(t)
	down.discStatus.Store(http.StatusNotFound)
	liar := newTestIdP(t)
	lie := "https://somewhere.else.example"
	liar.discIssuer.Store(&lie)
	keyless := newTestIdP(t)
	keyless.omitJWKSURI.Store(true)
	closed := newTestIdP(t)
	closedURL := closed.URL()
	closed.srv.Close()

	aud := []string{"gatehouse"}
	tests := []struct {
		name    string
		issuers []Issuer
		wantErr string
	}{
		{name: "no issuers", wantErr: "Issuers is empty"},
		{name: "empty URL", issuers: []Issuer{{Audiences: aud}}, wantErr: "Issuers[0].URL is empty"},
		{name: "no audiences", issuers: []Issuer{{URL: good.URL(), JWKSURL: good.URL() + "/jwks"}}, wantErr: "Issuers[0].Audiences is empty"},
		{name: "empty audience list", issuers: []Issuer{{URL: good.URL(), JWKSURL: good.URL() + "/jwks", Audiences: []string{}}}, wantErr: "Issuers[0].Audiences is empty"},
		{name: "HS256 listed", issuers: []Issuer{{URL: good.URL(), Audiences: aud, Algorithms: []string{"RS256", "HS256"}}}, wantErr: `Issuers[0].Algorithms: "HS256"`},
		{name: "HS512 listed", issuers: []Issuer{{URL: good.URL(), Audiences: aud, Algorithms: []string{"HS512"}}}, wantErr: `"HS512" is not an allowed`},
		{name: "none listed", issuers: []Issuer{{URL: good.URL(), Audiences: aud, Algorithms: []string{"none"}}}, wantErr: `"none" is not an allowed`},
		{name: "lower-case algorithm", issuers: []Issuer{{URL: good.URL(), Audiences: aud, Algorithms: []string{"rs256"}}}, wantErr: `"rs256" is not an allowed`},
		{name: "duplicate issuer", issuers: []Issuer{{URL: good.URL(), Audiences: aud}, {URL: good.URL(), Audiences: aud}}, wantErr: "Issuers[1]: duplicate issuer"},
		{name: "discovery answers 404", issuers: []Issuer{{URL: good.URL(), Audiences: aud}, {URL: down.URL(), Audiences: aud}}, wantErr: "Issuers[1]: discovery of"},
		{name: "discovery names another issuer", issuers: []Issuer{{URL: liar.URL(), Audiences: aud}}, wantErr: "Issuers[0]: discovery of"},
		{name: "discovery without jwks_uri", issuers: []Issuer{{URL: keyless.URL(), Audiences: aud}}, wantErr: "no jwks_uri"},
		{name: "discovery unreachable", issuers: []Issuer{{URL: closedURL, Audiences: aud}}, wantErr: "Issuers[0]: discovery of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewVerifier(context.Background(), VerifierConfig{Issuers: tt.issuers})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewVerifier error = %v, want one containing %q", err, tt.wantErr)
			}
			if v != nil {
				t.Error("NewVerifier returned a Verifier with an error")
			}
		})
	}
}

// The raw claims keep JSON numbers exact (json.Number), not float64.
func TestVerifyClaimNumbers(t *testing.T) {
	f := newVerifierFixture(t)
	tok, err := f.v.Verify(context.Background(), f.a.sign("a-ed", f.a.claims(f.clock.Now(), set("big", json.RawMessage("9007199254740993")))))
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Principal.Claims["big"]; got != json.Number("9007199254740993") {
		t.Errorf("big = %#v", got)
	}
}
