package approval

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// FuzzCSRFToken: no form token parses into a panic, and none but the
// token minted for the viewer validates.
func FuzzCSRFToken(f *testing.F) {
	store, _ := NewMemoryStore(MemoryConfig{})
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	b, _ := New(Config{Store: store, Now: func() time.Time { return now }})
	h, err := NewHandler(HandlerConfig{Broker: b, CSRFKey: []byte("0123456789abcdef0123456789abcdef")})
	if err != nil {
		f.Fatal(err)
	}
	viewer := identity.Principal{Issuer: "https://idp.test", Subject: "alice"}
	good := h.csrfToken(viewer, now.Add(time.Hour))
	f.Add(good)
	f.Add("")
	f.Add(".")
	f.Add(strconv.FormatInt(now.Add(time.Hour).Unix(), 10) + ".AAAA")
	f.Add("99999999999999999999.x")
	f.Fuzz(func(t *testing.T, tok string) {
		if h.csrfValid(viewer, tok) && tok != good {
			t.Errorf("forged token %q accepted", tok)
		}
	})
}

// FuzzValidID: ids the HTTP API accepts are short and URL-safe.
func FuzzValidID(f *testing.F) {
	f.Add("abcdefghijklmnopqrstuvwxyz")
	f.Add("../x")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if !validID(s) {
			return
		}
		if len(s) > MaxIDLen {
			t.Errorf("accepted %d bytes", len(s))
		}
		for _, r := range s {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				t.Errorf("accepted %q", s)
			}
		}
	})
}

// FuzzVerifySignature: arbitrary headers never panic and never verify a
// body they were not made for.
func FuzzVerifySignature(f *testing.F) {
	secret := []byte("0123456789abcdef")
	body := []byte(`{"id":"abc"}`)
	f.Add(Sign(secret, body))
	f.Add("sha256=")
	f.Add("sha256=zz")
	f.Fuzz(func(t *testing.T, header string) {
		// Hex decoding ignores case, so only case variants of the real
		// signature may verify.
		if VerifySignature(secret, body, header) && !strings.EqualFold(header, Sign(secret, body)) {
			t.Errorf("header %q verified", header)
		}
	})
}
