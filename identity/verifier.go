package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Token verification errors. Every refusal wraps ErrTokenInvalid except an
// expired token, which wraps ErrTokenExpired; the others narrow the cause.
var (
	ErrTokenInvalid  = errors.New("identity: invalid identity token")
	ErrTokenExpired  = errors.New("identity: identity token expired")
	ErrUnknownIssuer = errors.New("identity: token from an unknown issuer")
	ErrWrongAudience = errors.New("identity: token not meant for this audience")
	ErrBadSignature  = errors.New("identity: token signature does not verify")
)

// DefaultAlgorithms are the JWS algorithms accepted when an Issuer lists
// none: asymmetric only, so a public key can never be used as an HMAC
// secret, and never "none".
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Issuer is one trusted OIDC identity provider.
type Issuer struct {
	// URL is the issuer identifier, exactly as it appears in "iss".
	URL string
	// Audiences the gateway accepts; a token's "aud" must contain one.
	// Required: a token for another audience is never accepted.
	Audiences []string
	// GroupsClaim is the claim holding group names, as a dotted path for
	// nested claims ("realm_access.roles"); a string or an array of strings.
	// Empty means "groups".
	GroupsClaim string
	// RequiredClaims maps a claim path to a value the claim must equal (or
	// contain, if the claim is an array).
	RequiredClaims map[string]string
	// Algorithms allowed for this issuer; nil means DefaultAlgorithms.
	// HMAC algorithms and "none" are refused at construction.
	Algorithms []string
	// KeySet verifies signatures. Nil means the issuer's JWKS, found by
	// OIDC discovery (or at JWKSURL), cached, and refreshed at most once
	// per MinRefreshInterval when a token names an unknown key.
	KeySet oidc.KeySet
	// JWKSURL skips discovery when set.
	JWKSURL string
}

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	Issuers []Issuer
	// HTTPClient fetches discovery documents and JWKS; nil means a client
	// with a 10 second timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ClockSkew tolerated on exp, nbf and iat. Zero means 1 minute.
	ClockSkew time.Duration
	// MinRefreshInterval between two JWKS fetches of one issuer. Zero
	// means 30 seconds.
	MinRefreshInterval time.Duration
	// CacheSize bounds the number of verified tokens remembered so that a
	// caller presenting the same token again (a bearer token on every MCP
	// request) skips the signature check; expiry is still checked on every
	// call, and a remembered token stays valid until its exp even if its
	// key leaves the JWKS. Zero means 4096; negative disables the cache.
	CacheSize int
}

// Verifier checks workload OIDC tokens (client-credentials access tokens
// or ID tokens in JWT form) from one or more issuers and turns them into
// Principals. It is safe for concurrent use.
type Verifier struct {
	issuers map[string]*issuerState
	now     func() time.Time
	skew    time.Duration

	cacheSize int
	mu        sync.Mutex
	verified  map[string]*Token
}

// parsedKeySet is implemented by the built-in JWKS key set: it verifies a
// token the Verifier has already parsed.
type parsedKeySet interface {
	verifyParsed(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error)
}

type issuerState struct {
	cfg    Issuer
	algs   []jose.SignatureAlgorithm
	keys   oidc.KeySet
	groups []string
}

// Token is a verified identity token.
type Token struct {
	Principal Principal
	Audience  string // the configured audience the token matched
	Expiry    time.Time
	IssuedAt  time.Time
}

// NewVerifier validates cfg and prepares each issuer. Issuers without a
// KeySet or JWKSURL are discovered now (one HTTP request each).
func NewVerifier(ctx context.Context, cfg VerifierConfig) (*Verifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("identity: VerifierConfig.Issuers is empty")
	}
	v := &Verifier{issuers: make(map[string]*issuerState), now: cfg.Now, skew: cfg.ClockSkew, cacheSize: cfg.CacheSize}
	if v.cacheSize == 0 {
		v.cacheSize = 4096
	}
	if v.cacheSize > 0 {
		v.verified = make(map[string]*Token)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.skew == 0 {
		v.skew = time.Minute
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	for i, is := range cfg.Issuers {
		field := fmt.Sprintf("identity: VerifierConfig.Issuers[%d]", i)
		if is.URL == "" {
			return nil, fmt.Errorf("%s.URL is empty", field)
		}
		if _, dup := v.issuers[is.URL]; dup {
			return nil, fmt.Errorf("%s: duplicate issuer %q", field, is.URL)
		}
		if len(is.Audiences) == 0 {
			return nil, fmt.Errorf("%s.Audiences is empty: an audience is required", field)
		}
		st := &issuerState{cfg: is, keys: is.KeySet}
		algs := is.Algorithms
		if algs == nil {
			algs = DefaultAlgorithms
		}
		for _, a := range algs {
			if !slices.Contains(DefaultAlgorithms, a) {
				return nil, fmt.Errorf("%s.Algorithms: %q is not an allowed asymmetric JWS algorithm", field, a)
			}
			st.algs = append(st.algs, jose.SignatureAlgorithm(a))
		}
		gc := is.GroupsClaim
		if gc == "" {
			gc = "groups"
		}
		st.groups = strings.Split(gc, ".")
		if st.keys == nil {
			jwks := is.JWKSURL
			if jwks == "" {
				p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), is.URL)
				if err != nil {
					return nil, fmt.Errorf("%s: discovery of %q failed: %w", field, is.URL, err)
				}
				var meta struct {
					JWKSURL string `json:"jwks_uri"`
				}
				if err := p.Claims(&meta); err != nil || meta.JWKSURL == "" {
					return nil, fmt.Errorf("%s: discovery document of %q has no jwks_uri", field, is.URL)
				}
				jwks = meta.JWKSURL
			}
			st.keys = newRemoteKeys(jwks, client, cfg.MinRefreshInterval, v.now)
		}
		v.issuers[is.URL] = st
	}
	return v, nil
}

func invalid(cause error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if cause != nil {
		return fmt.Errorf("%w: %w: %s", ErrTokenInvalid, cause, msg)
	}
	return fmt.Errorf("%w: %s", ErrTokenInvalid, msg)
}

const maxTokenBytes = 16 << 10

// Verify checks a raw JWT: size, issuer, algorithm, signature, audience,
// expiry, not-before, issued-at, subject and required claims, and returns
// the verified token. The token's Groups and Claims are shared with the
// verifier's cache: treat them as read-only.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Token, error) {
	if len(raw) > maxTokenBytes {
		return nil, invalid(nil, "token longer than %d bytes", maxTokenBytes)
	}
	if v.verified != nil {
		v.mu.Lock()
		t := v.verified[raw]
		v.mu.Unlock()
		if t != nil {
			if !v.now().Before(t.Expiry.Add(v.skew)) {
				return nil, fmt.Errorf("%w at %s", ErrTokenExpired, t.Expiry.UTC().Format(time.RFC3339))
			}
			cp := *t
			return &cp, nil
		}
	}
	t, err := v.verify(ctx, raw)
	if err == nil && v.verified != nil {
		v.mu.Lock()
		if len(v.verified) >= v.cacheSize {
			clear(v.verified)
		}
		v.verified[raw] = t
		v.mu.Unlock()
		cp := *t
		t = &cp
	}
	return t, err
}

func (v *Verifier) verify(ctx context.Context, raw string) (*Token, error) {
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, err
	}
	st, ok := v.issuers[iss]
	if !ok {
		return nil, invalid(ErrUnknownIssuer, "issuer %q is not trusted", iss)
	}
	jws, err := jose.ParseSigned(raw, st.algs)
	if err != nil {
		return nil, invalid(nil, "not a compact JWS with an allowed algorithm: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, invalid(nil, "token must carry exactly one signature")
	}
	var payload []byte
	if pk, ok := st.keys.(parsedKeySet); ok {
		payload, err = pk.verifyParsed(ctx, jws) // no second parse
	} else {
		payload, err = st.keys.VerifySignature(ctx, raw)
	}
	if err != nil {
		return nil, invalid(ErrBadSignature, "%v", err)
	}
	// Decode once, into a map, and read the registered claims by their
	// exact, case-sensitive names (RFC 7519): a look-alike such as "Sub"
	// is just another claim and can never stand in for "sub".
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, invalid(nil, "claims are not a JSON object")
	}
	var c struct {
		Issuer, Subject, AZP, ClientID, Email string
		Audience                              []string
		Expiry, NotBef, IssuedAt              *json.Number
	}
	if c.Issuer, ok = stringClaim(claims, "iss"); !ok {
		return nil, invalid(nil, "iss must be a string")
	}
	if c.Subject, ok = stringClaim(claims, "sub"); !ok {
		return nil, invalid(nil, "sub must be a string")
	}
	for _, k := range []struct {
		name string
		dst  *string
	}{{"azp", &c.AZP}, {"client_id", &c.ClientID}, {"email", &c.Email}} {
		if *k.dst, ok = stringClaim(claims, k.name); !ok {
			return nil, invalid(nil, "%s must be a string", k.name)
		}
	}
	switch a := claims["aud"].(type) {
	case string:
		c.Audience = []string{a}
	case []any:
		for _, e := range a {
			s, isString := e.(string)
			if !isString {
				return nil, invalid(nil, "aud must be a string or an array of strings")
			}
			c.Audience = append(c.Audience, s)
		}
	}
	for _, k := range []struct {
		name string
		dst  **json.Number
	}{{"exp", &c.Expiry}, {"nbf", &c.NotBef}, {"iat", &c.IssuedAt}} {
		switch n := claims[k.name].(type) {
		case nil:
		case json.Number:
			*k.dst = &n
		default:
			return nil, invalid(nil, "%s must be a number", k.name)
		}
	}
	if c.Issuer != iss {
		return nil, invalid(ErrUnknownIssuer, "signed issuer differs")
	}
	aud := ""
	for _, a := range st.cfg.Audiences {
		if slices.Contains(c.Audience, a) {
			aud = a
			break
		}
	}
	if aud == "" {
		return nil, invalid(ErrWrongAudience, "audience %q is not accepted", []string(c.Audience))
	}
	now := v.now()
	exp, ok := numericDate(c.Expiry)
	if !ok {
		return nil, invalid(nil, "token has no valid exp claim")
	}
	if !now.Before(exp.Add(v.skew)) {
		return nil, fmt.Errorf("%w at %s", ErrTokenExpired, exp.UTC().Format(time.RFC3339))
	}
	if nbf, ok := numericDate(c.NotBef); c.NotBef != nil && (!ok || now.Add(v.skew).Before(nbf)) {
		return nil, invalid(nil, "token is not valid yet (nbf)")
	}
	iat, iatOK := numericDate(c.IssuedAt)
	if c.IssuedAt != nil && (!iatOK || now.Add(v.skew).Before(iat)) {
		return nil, invalid(nil, "token issued in the future (iat)")
	}
	if c.Subject == "" {
		return nil, invalid(nil, "token has no subject")
	}
	for path, want := range st.cfg.RequiredClaims {
		if !claimHas(lookupClaim(claims, strings.Split(path, ".")), want) {
			return nil, invalid(nil, "required claim %q is missing or differs", path)
		}
	}
	p := Principal{Issuer: iss, Subject: c.Subject, ClientID: c.AZP, Email: c.Email, Claims: claims}
	if p.ClientID == "" {
		p.ClientID = c.ClientID
	}
	p.Groups = claimStrings(lookupClaim(claims, st.groups))
	return &Token{Principal: p, Audience: aud, Expiry: exp, IssuedAt: iat}, nil
}

// unverifiedIssuer reads "iss" from a JWT's payload to choose the issuer
// whose keys will verify it. Nothing read here is trusted until then.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", invalid(nil, "not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", invalid(nil, "payload is not base64url")
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Issuer == "" {
		return "", invalid(nil, "payload has no issuer")
	}
	return c.Issuer, nil
}

// stringClaim reads an optional string claim; ok is false when the claim
// is present with another type.
func stringClaim(claims map[string]any, name string) (string, bool) {
	v, present := claims[name]
	if !present || v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

func numericDate(n *json.Number) (time.Time, bool) {
	if n == nil {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// lookupClaim follows a dotted path through nested JSON objects.
func lookupClaim(claims map[string]any, path []string) any {
	var cur any = claims
	for _, k := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[k]
	}
	return cur
}

// claimStrings reads a claim that is a string or an array of strings.
func claimStrings(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func claimHas(v any, want string) bool {
	switch x := v.(type) {
	case string:
		return x == want
	case json.Number:
		return x.String() == want
	case bool:
		return fmt.Sprint(x) == want
	}
	return slices.Contains(claimStrings(v), want)
}
