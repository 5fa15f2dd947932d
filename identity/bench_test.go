package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkVerify verifies one token per iteration against keys already
// cached from the JWKS, with the verified-token cache off: every
// iteration checks the signature, as for each new token a gateway sees.
func BenchmarkVerify(b *testing.B) {
	benchmarkVerify(b, -1)
}

// BenchmarkVerifyRepeated presents the same token again with the
// verified-token cache on: the steady state of bearer-token middleware,
// where a client sends its token with every request.
func BenchmarkVerifyRepeated(b *testing.B) {
	benchmarkVerify(b, 0)
}

func benchmarkVerify(b *testing.B, cacheSize int) {
	clock := newTestClock()
	idp := newTestIdP(b)
	idp.addKey("bench-rsa", jose.RS256, true)
	idp.addKey("bench-ec", jose.ES256, true)
	idp.addKey("bench-ed", jose.EdDSA, true)
	v, err := NewVerifier(context.Background(), VerifierConfig{
		Issuers:   []Issuer{{URL: idp.URL(), Audiences: []string{"gatehouse"}, RequiredClaims: map[string]string{"tenant": "acme"}}},
		Now:       clock.Now,
		CacheSize: cacheSize,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, bc := range []struct{ name, kid string }{{"RS256", "bench-rsa"}, {"ES256", "bench-ec"}, {"EdDSA", "bench-ed"}} {
		tok := idp.sign(bc.kid, idp.claims(clock.Now()))
		if _, err := v.Verify(ctx, tok); err != nil { // warms the key cache
			b.Fatal(err)
		}
		hits := idp.jwksHits.Load()
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
		if idp.jwksHits.Load() != hits {
			b.Fatal("the benchmark fetched the JWKS")
		}
	}
}

// BenchmarkVerifyCryptoFloor is the bare signature check of each algorithm,
// the part of BenchmarkVerify no verifier code can remove.
func BenchmarkVerifyCryptoFloor(b *testing.B) {
	digest := sha256.Sum256([]byte("header.payload"))
	rk := testKey(b, "floor-rsa", jose.RS256).(*rsa.PrivateKey)
	rsig, err := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	ek := testKey(b, "floor-ec", jose.ES256).(*ecdsa.PrivateKey)
	esig, err := ecdsa.SignASN1(nil, ek, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	dk := testKey(b, "floor-ed", jose.EdDSA).(ed25519.PrivateKey)
	dpub := dk.Public().(ed25519.PublicKey)
	dsig := ed25519.Sign(dk, []byte("header.payload"))
	b.Run("RS256", func(b *testing.B) {
		for b.Loop() {
			if rsa.VerifyPKCS1v15(&rk.PublicKey, crypto.SHA256, digest[:], rsig) != nil {
				b.Fatal("rsa")
			}
		}
	})
	b.Run("ES256", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(&ek.PublicKey, digest[:], esig) {
				b.Fatal("ecdsa")
			}
		}
	})
	b.Run("EdDSA", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(dpub, []byte("header.payload"), dsig) {
				b.Fatal("ed25519")
			}
		}
	})
}

func BenchmarkSessionOpen(b *testing.B) {
	clock := newTestClock()
	s := newTestSessions(b, clock, time.Hour)
	p := testPrincipal()
	p.Claims = map[string]any{"iss": p.Issuer, "sub": p.Subject, "aud": "gatehouse", "tenant": "acme", "groups": []any{"mcp-agents", "readers"}}
	creds, err := s.Mint(p, "arn:aws:iam::123456789012:role/mcp-agents", time.Time{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Open(creds.AccessKeyID, creds.SessionToken); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSessionMint(b *testing.B) {
	clock := newTestClock()
	s := newTestSessions(b, clock, time.Hour)
	p := testPrincipal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Mint(p, "arn:aws:iam::123456789012:role/mcp-agents", time.Time{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRoleMap(b *testing.B) {
	m, err := NewRoleMapper(testRoles())
	if err != nil {
		b.Fatal(err)
	}
	p := Principal{Issuer: "https://idp.example", Subject: "p1", Claims: map[string]any{"env": "prod"}}
	b.ReportAllocs()
	for b.Loop() {
		if r, err := m.Map(p, ""); err != nil || r.Name != "prod" {
			b.Fatal(r.Name, err)
		}
	}
}
