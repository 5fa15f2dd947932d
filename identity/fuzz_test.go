package identity

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// The fuzz targets run in several processes (the coordinator and its
// workers), which exchange inputs. Every key, token and payload they treat
// as genuine is therefore deterministic: keys come from fixed seeds or
// testdata, session tokens are sealed with fixed nonces, and the verifier
// oracle compares payloads, not (randomized ECDSA) signatures.

// sealForFuzz seals claims exactly as Mint does, but with a fixed nonce so
// the result is the same in every process.
func sealForFuzz(tb testing.TB, s *Sessions, keyID string, akid string, c SessionClaims, nonceByte byte) string {
	tb.Helper()
	k, ok := s.keys[keyID]
	if !ok {
		tb.Fatalf("no session key %q", keyID)
	}
	plain, err := json.Marshal(c)
	if err != nil {
		tb.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{nonceByte}, k.aead.NonceSize())
	sealed := k.aead.Seal(nonce[:len(nonce):len(nonce)], nonce, plain, additionalData(keyID, akid))
	return tokenPrefix + keyID + "." + base64.RawURLEncoding.EncodeToString(sealed)
}

func FuzzSessionOpen(f *testing.F) {
	clock := newTestClock()
	s := newTestSessions(f, clock, time.Hour, SessionKey{ID: "k1", Secret: secret(1)}, SessionKey{ID: "k0", Secret: secret(9)})
	now := clock.Now()

	genuine := map[string]genuineToken{}
	add := func(keyID, akid string, c SessionClaims, nonce byte, isGenuine bool) {
		tok := sealForFuzz(f, s, keyID, akid, c, nonce)
		_, _, err := s.Open(akid, tok)
		expired := !now.Before(c.Expires)
		if isGenuine {
			if err != nil && !(expired && errors.Is(err, ErrSessionExpired)) {
				f.Fatalf("seed sealed like Mint does not open (has the token format changed?): %v", err)
			}
			genuine[tok] = genuineToken{akid: akid, expired: expired}
		}
		f.Add(akid, tok)
	}
	p := testPrincipal()
	akid1, akid2 := "GHSAAAAAAAAAAAAAAAAA", "GHSBBBBBBBBBBBBBBBBB"
	add("k1", akid1, SessionClaims{Principal: p, Role: "r", IssuedAt: now, Expires: now.Add(time.Hour), AccessKeyID: akid1}, 1, true)
	add("k0", akid2, SessionClaims{Principal: Principal{Subject: "x"}, IssuedAt: now, Expires: now.Add(time.Minute), AccessKeyID: akid2}, 2, true)
	add("k1", akid2, SessionClaims{Principal: p, IssuedAt: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour), AccessKeyID: akid2}, 3, true)
	// Sealed for one access key id, claiming another inside: never genuine.
	add("k1", akid1, SessionClaims{Principal: p, IssuedAt: now, Expires: now.Add(time.Hour), AccessKeyID: akid2}, 4, false)
	f.Add("", "")
	f.Add(akid1, "ghs1.")
	f.Add(akid1, "ghs1.k1.")
	f.Add(akid1, "ghs1.k1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add(akid1, "ghs1.k9.AAAA")
	f.Add(akid1, "ghs1..")

	// The seeds' lengths cover every length modulo 3 of the sealed body, so
	// the last base64 character carries padding bits in some of them.
	for i, sub := range []string{"a", "ab", "abc"} {
		akid := "GHSCCCCCCCCCCCCCCCC" + string(rune('A'+i))
		add("k1", akid, SessionClaims{Principal: Principal{Subject: sub}, Expires: now.Add(time.Hour), AccessKeyID: akid}, byte(10+i), true)
	}
	akids := []string{akid1, akid2}
	for _, g := range genuine {
		akids = append(akids, g.akid)
	}

	f.Fuzz(func(t *testing.T, akid, token string) {
		// The fuzzed access key id, and every genuine one: a changed token
		// must not open even for the id it was minted for.
		openSession(t, s, genuine, akid, token)
		for _, a := range akids {
			openSession(t, s, genuine, a, token)
		}
	})
}

type genuineToken struct {
	akid    string
	expired bool
}

func openSession(t *testing.T, s *Sessions, genuine map[string]genuineToken, akid, token string) {
	t.Helper()
	c, sec, err := s.Open(akid, token)
	g, isGenuine := genuine[token]
	isGenuine = isGenuine && g.akid == akid
	switch {
	case err == nil || errors.Is(err, ErrSessionExpired):
		if !isGenuine {
			t.Fatalf("Open accepted a token that was never minted: akid %q token %q (err %v)", akid, token, err)
		}
		if (err != nil) != g.expired {
			t.Fatalf("expired = %v, want %v", err != nil, g.expired)
		}
		keyID, _, _ := strings.Cut(strings.TrimPrefix(token, tokenPrefix), ".")
		if c == nil || c.AccessKeyID != akid || sec != secretFor(s.keys[keyID].secret, akid) {
			t.Fatalf("Open returned claims %+v and secret %q", c, sec)
		}
	default:
		if isGenuine {
			t.Fatalf("genuine token refused: %v", err)
		}
		if !errors.Is(err, ErrSessionInvalid) {
			t.Fatalf("Open error %v wraps neither ErrSessionInvalid nor ErrSessionExpired", err)
		}
		if c != nil || sec != "" {
			t.Fatalf("Open returned claims %+v and secret %q with error %v", c, sec, err)
		}
	}
}

// fuzzKeys are the verifier's keys in FuzzVerify, the same in every process.
type fuzzKeys struct {
	rsa crypto.Signer
	ec  *ecdsa.PrivateKey
	ed  ed25519.PrivateKey
}

func loadFuzzKeys(tb testing.TB) fuzzKeys {
	tb.Helper()
	b, err := os.ReadFile("testdata/fuzz-rsa2048.pem")
	if err != nil {
		tb.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		tb.Fatal("testdata/fuzz-rsa2048.pem holds no PEM block")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		tb.Fatal(err)
	}
	rsaKey, ok := k.(crypto.Signer)
	if !ok {
		tb.Fatalf("testdata key is a %T", k)
	}
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return fuzzKeys{
		rsa: rsaKey,
		ec:  ec,
		ed:  ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x17}, ed25519.SeedSize)),
	}
}

func FuzzVerify(f *testing.F) {
	const issuer = "https://issuer.fuzz.example"
	clock := newTestClock()
	now := clock.Now()
	keys := loadFuzzKeys(f)
	pubs := []crypto.PublicKey{keys.rsa.Public(), keys.ec.Public(), keys.ed.Public()}
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuers: []Issuer{{URL: issuer, Audiences: []string{"gatehouse"}, GroupsClaim: "realm_access.roles", RequiredClaims: map[string]string{"tenant": "acme"}, KeySet: &oidc.StaticKeySet{PublicKeys: pubs}}},
		Now:     clock.Now,
	})
	if err != nil {
		f.Fatal(err)
	}

	signers := map[string]jose.Signer{
		"rsa": mustSigner(f, jose.RS256, keys.rsa, "rsa"),
		"ps":  mustSigner(f, jose.PS256, keys.rsa, "rsa"),
		"ec":  mustSigner(f, jose.ES256, keys.ec, "ec"),
		"ed":  mustSigner(f, jose.EdDSA, keys.ed, "ed"),
	}
	forger := mustSigner(f, jose.EdDSA, ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x99}, ed25519.SeedSize)), "ed")

	// signed holds every payload the genuine keys ever signed; nothing else
	// may be accepted.
	signed := map[string]bool{}
	claimsFor := func(mods ...func(map[string]any)) []byte {
		c := map[string]any{
			"iss": issuer, "sub": "agent-1", "aud": []string{"other", "gatehouse"},
			"exp": now.Add(10 * time.Minute).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
			"azp": "agent-client", "tenant": "acme",
			"realm_access": map[string]any{"roles": []string{"mcp-agents"}},
		}
		for _, m := range mods {
			m(c)
		}
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	payloads := [][]byte{
		claimsFor(),
		claimsFor(set("aud", "gatehouse"), set("realm_access", map[string]any{"roles": "solo"})),
		claimsFor(set("exp", now.Add(-time.Hour).Unix())),
		claimsFor(set("aud", "elsewhere")),
		claimsFor(del("tenant")),
		claimsFor(set("iss", "https://other.example")),
		// Hand-ordered: a case variant after the real claim.
		[]byte(`{"iss":"` + issuer + `","sub":"agent-1","aud":"gatehouse","exp":` + strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + `,"tenant":"acme","Sub":"admin"}`),
	}
	for _, name := range []string{"rsa", "ps", "ec", "ed"} {
		for _, pl := range payloads {
			signed[string(pl)] = true
			f.Add(signPayload(f, signers[name], pl))
		}
	}
	f.Add(signPayload(f, forger, payloads[0]))
	f.Add(unsignedToken(f, `{"alg":"none"}`, map[string]any{"iss": issuer, "sub": "x", "aud": "gatehouse", "exp": now.Add(time.Hour).Unix()}, ""))
	f.Add(b64(`{"alg":"HS256","kid":"rsa"}`) + "." + base64.RawURLEncoding.EncodeToString(payloads[0]) + ".c2lnbmF0dXJl")
	f.Add("")
	f.Add("..")
	f.Add("a.b.c")

	algs := []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Verify(context.Background(), raw)
		if err != nil {
			if tok != nil {
				t.Fatalf("Verify returned a token with error %v", err)
			}
			if errors.Is(err, ErrTokenInvalid) == errors.Is(err, ErrTokenExpired) {
				t.Fatalf("error %v must wrap exactly one of ErrTokenInvalid and ErrTokenExpired", err)
			}
			return
		}
		// Accepted: an independent check that a genuine key signed exactly
		// this payload, and that the payload is one the keys did sign.
		jws, err := jose.ParseSigned(raw, algs)
		if err != nil {
			t.Fatalf("accepted a token jose does not parse: %v", err)
		}
		var payload []byte
		for _, pub := range pubs {
			if p, err := jws.Verify(pub); err == nil {
				payload = p
				break
			}
		}
		if payload == nil {
			t.Fatalf("accepted a token no genuine key signed: %q", raw)
		}
		if !signed[string(payload)] {
			t.Fatalf("accepted a payload the keys never signed: %q", payload)
		}
		p := tok.Principal
		// What the principal says is what the signed claims say.
		if p.Issuer != p.Claims["iss"] || p.Subject != p.Claims["sub"] {
			t.Fatalf("principal %q %q, claims iss %v sub %v", p.Issuer, p.Subject, p.Claims["iss"], p.Claims["sub"])
		}
		if p.Issuer != issuer || p.Subject == "" || tok.Audience != "gatehouse" || !now.Before(tok.Expiry.Add(time.Minute)) || p.Claims["tenant"] != "acme" {
			t.Fatalf("accepted token %+v", tok)
		}
	})
}
