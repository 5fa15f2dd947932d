package identity

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// testClock is the injected clock of every test: it only moves when told.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

// testEpoch is a whole second, so truncation to seconds changes nothing.
var testEpoch = time.Date(2031, time.March, 14, 15, 9, 26, 0, time.UTC)

func newTestClock() *testClock { return &testClock{t: testEpoch} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// Keys are expensive to generate (RSA especially) and the tests only need a
// handful, so each named key is generated once per test binary.
var (
	keyMu    sync.Mutex
	keyCache = map[string]crypto.Signer{}
)

func testKey(tb testing.TB, name string, alg jose.SignatureAlgorithm) crypto.Signer {
	tb.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	cacheKey := name + "/" + string(alg)
	if k, ok := keyCache[cacheKey]; ok {
		return k
	}
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.ES384:
		k, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	default:
		tb.Fatalf("testKey: no generator for %s", alg)
	}
	if err != nil {
		tb.Fatalf("generating %s key %s: %v", alg, name, err)
	}
	keyCache[cacheKey] = k
	return k
}

// idpKey is one signing key of a test identity provider.
type idpKey struct {
	kid       string
	alg       jose.SignatureAlgorithm
	priv      crypto.Signer
	signer    jose.Signer
	published bool
}

// testIdP is an OIDC identity provider on 127.0.0.1: a discovery document
// whose issuer is the server's own URL, and a JWKS it can rotate or break.
type testIdP struct {
	tb  testing.TB
	srv *httptest.Server

	mu    sync.Mutex
	keys  []*idpKey
	byKid map[string]*idpKey

	jwksHits      atomic.Int64
	discoveryHits atomic.Int64
	jwksStatus    atomic.Int32 // non-zero: answer the JWKS with this status
	discStatus    atomic.Int32 // non-zero: answer discovery with this status
	discIssuer    atomic.Pointer[string]
	omitJWKSURI   atomic.Bool
	jwksBody      atomic.Pointer[string] // non-nil: answer the JWKS with this body
}

func newTestIdP(tb testing.TB) *testIdP {
	tb.Helper()
	p := &testIdP{tb: tb, byKid: map[string]*idpKey{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.serveDiscovery)
	mux.HandleFunc("GET /jwks", p.serveJWKS)
	p.srv = httptest.NewServer(mux) // 127.0.0.1, an ephemeral port
	tb.Cleanup(p.srv.Close)
	return p
}

func (p *testIdP) URL() string { return p.srv.URL }

func (p *testIdP) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	p.discoveryHits.Add(1)
	if s := p.discStatus.Load(); s != 0 {
		http.Error(w, "discovery unavailable", int(s))
		return
	}
	issuer := p.URL()
	if s := p.discIssuer.Load(); s != nil {
		issuer = *s
	}
	doc := map[string]any{
		"issuer":                                issuer,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
	}
	if !p.omitJWKSURI.Load() {
		doc["jwks_uri"] = p.URL() + "/jwks"
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

func (p *testIdP) serveJWKS(w http.ResponseWriter, r *http.Request) {
	p.jwksHits.Add(1)
	if s := p.jwksStatus.Load(); s != 0 {
		http.Error(w, "jwks unavailable", int(s))
		return
	}
	if body := p.jwksBody.Load(); body != nil {
		w.Write([]byte(*body))
		return
	}
	var set jose.JSONWebKeySet
	p.mu.Lock()
	for _, k := range p.keys {
		if k.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
		}
	}
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(set)
}

// addKey adds the signing key named kid (one key per kid and algorithm in
// the whole test binary); published keys appear in the JWKS.
func (p *testIdP) addKey(kid string, alg jose.SignatureAlgorithm, published bool) *idpKey {
	p.tb.Helper()
	return p.addKeyWith(kid, alg, testKey(p.tb, kid, alg), published)
}

func (p *testIdP) addKeyWith(kid string, alg jose.SignatureAlgorithm, priv crypto.Signer, published bool) *idpKey {
	p.tb.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		p.tb.Fatalf("signer for %s: %v", kid, err)
	}
	k := &idpKey{kid: kid, alg: alg, priv: priv, signer: signer, published: published}
	p.mu.Lock()
	p.keys = append(p.keys, k)
	p.byKid[kid] = k
	p.mu.Unlock()
	return k
}

func (p *testIdP) key(kid string) *idpKey {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := p.byKid[kid]
	if k == nil {
		p.tb.Fatalf("test IdP has no key %q", kid)
	}
	return k
}

// sign signs claims (marshalled with encoding/json) with the key kid.
func (p *testIdP) sign(kid string, claims map[string]any) string {
	p.tb.Helper()
	return signClaims(p.tb, p.key(kid).signer, claims)
}

func signClaims(tb testing.TB, signer jose.Signer, claims any) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatalf("marshal claims: %v", err)
	}
	return signPayload(tb, signer, payload)
}

func signPayload(tb testing.TB, signer jose.Signer, payload []byte) string {
	tb.Helper()
	jws, err := signer.Sign(payload)
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatalf("serialize: %v", err)
	}
	return raw
}

// claims returns a valid claim set of this IdP at now, changed by mods.
func (p *testIdP) claims(now time.Time, mods ...func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss":    p.URL(),
		"sub":    "agent-1",
		"aud":    "gatehouse",
		"exp":    now.Add(10 * time.Minute).Unix(),
		"iat":    now.Unix(),
		"nbf":    now.Unix(),
		"azp":    "agent-client",
		"email":  "agent-1@workloads.example",
		"groups": []string{"mcp-agents", "readers"},
		"tenant": "acme",
	}
	for _, m := range mods {
		m(c)
	}
	return c
}

func set(k string, v any) func(map[string]any) {
	return func(c map[string]any) { c[k] = v }
}

func del(k string) func(map[string]any) {
	return func(c map[string]any) { delete(c, k) }
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// unsignedToken builds a JWS by hand: header and claims as given, and the
// signature segment verbatim.
func unsignedToken(tb testing.TB, header string, claims map[string]any, sig string) string {
	tb.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	return b64(header) + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + sig
}
