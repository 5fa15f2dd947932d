package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TestVerifierCache: a remembered token skips the signature check but is
// still refused once it expires, and the cache can be turned off.
func TestVerifierCache(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cacheSize int
	}{
		{name: "cache on", cacheSize: 0},
		{name: "cache off", cacheSize: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := newTestClock()
			idp := newTestIdP(t)
			idp.addKey("c-rsa", jose.RS256, true)
			v, err := NewVerifier(context.Background(), VerifierConfig{
				Issuers:   []Issuer{{URL: idp.URL(), Audiences: []string{"gatehouse"}}},
				Now:       clock.Now,
				CacheSize: tc.cacheSize,
			})
			if err != nil {
				t.Fatal(err)
			}
			tok := idp.sign("c-rsa", idp.claims(clock.Now()))
			first, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			first.Principal.Subject = "mutated by the caller"
			again, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if again.Principal.Subject == "mutated by the caller" {
				t.Fatal("a caller's change to a returned token leaked into the cache")
			}
			clock.Advance(2 * time.Hour)
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("expired token: %v, want ErrTokenExpired", err)
			}
		})
	}
}
