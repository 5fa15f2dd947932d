package identity

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func newTestSessions(t testing.TB, clock *testClock, max time.Duration, keys ...SessionKey) *Sessions {
	t.Helper()
	if len(keys) == 0 {
		keys = []SessionKey{{ID: "k1", Secret: secret(1)}}
	}
	s, err := NewSessions(SessionConfig{Keys: keys, MaxDuration: max, Now: clock.Now})
	if err != nil {
		t.Fatalf("NewSessions: %v", err)
	}
	return s
}

func testPrincipal() Principal {
	return Principal{
		Issuer:   "https://idp.example/realms/agents",
		Subject:  "agent-1",
		ClientID: "agent-client",
		Email:    "agent-1@workloads.example",
		Groups:   []string{"mcp-agents", "readers"},
		Claims:   map[string]any{"env": "prod", "nested": map[string]any{"a": "b"}},
	}
}

func TestSessionRoundTrip(t *testing.T) {
	clock := newTestClock()
	s := newTestSessions(t, clock, time.Hour)
	p := testPrincipal()
	creds, err := s.Mint(p, "arn:aws:iam::123456789012:role/agents", time.Time{})
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "GHS") || len(creds.AccessKeyID) != 20 {
		t.Errorf("AccessKeyID = %q, want GHS and 17 more characters", creds.AccessKeyID)
	}
	if len(creds.SecretAccessKey) != 40 {
		t.Errorf("SecretAccessKey has %d characters, want 40", len(creds.SecretAccessKey))
	}
	if !strings.HasPrefix(creds.SessionToken, "ghs1.k1.") {
		t.Errorf("SessionToken = %q, want it sealed under k1", creds.SessionToken)
	}
	if want := clock.Now().Add(time.Hour); !creds.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", creds.Expires, want)
	}

	clock.Advance(59 * time.Minute)
	claims, sec, err := s.Open(creds.AccessKeyID, creds.SessionToken)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if sec != creds.SecretAccessKey {
		t.Errorf("Open secret = %q, want the minted %q", sec, creds.SecretAccessKey)
	}
	if !reflect.DeepEqual(claims.Principal, p) {
		t.Errorf("Principal = %#v, want %#v", claims.Principal, p)
	}
	if claims.Role != "arn:aws:iam::123456789012:role/agents" {
		t.Errorf("Role = %q", claims.Role)
	}
	if !claims.Expires.Equal(creds.Expires) || !claims.IssuedAt.Equal(testEpoch) {
		t.Errorf("IssuedAt, Expires = %v, %v; want %v, %v", claims.IssuedAt, claims.Expires, testEpoch, creds.Expires)
	}
	if claims.AccessKeyID != creds.AccessKeyID {
		t.Errorf("AccessKeyID = %q, want %q", claims.AccessKeyID, creds.AccessKeyID)
	}

	// Two mints never share an access key id or a token.
	again, err := s.Mint(p, "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if again.AccessKeyID == creds.AccessKeyID || again.SessionToken == creds.SessionToken || again.SecretAccessKey == creds.SecretAccessKey {
		t.Error("two mints produced the same credentials")
	}
}

func TestSessionExpiryCaps(t *testing.T) {
	now := testEpoch
	tests := []struct {
		name     string
		max      time.Duration
		notAfter time.Time
		want     time.Time
		wantErr  error
	}{
		{name: "default maximum is one hour", want: now.Add(time.Hour)},
		{name: "MaxDuration", max: 15 * time.Minute, want: now.Add(15 * time.Minute)},
		{name: "notAfter later than MaxDuration", max: 15 * time.Minute, notAfter: now.Add(time.Hour), want: now.Add(15 * time.Minute)},
		{name: "notAfter earlier than MaxDuration", max: 15 * time.Minute, notAfter: now.Add(5 * time.Minute), want: now.Add(5 * time.Minute)},
		{name: "notAfter truncated to the second", max: time.Hour, notAfter: now.Add(5*time.Minute + 900*time.Millisecond), want: now.Add(5 * time.Minute)},
		{name: "notAfter now", notAfter: now, wantErr: ErrSessionExpired},
		{name: "notAfter in the past", notAfter: now.Add(-time.Second), wantErr: ErrSessionExpired},
		{name: "notAfter within the current second", notAfter: now.Add(500 * time.Millisecond), wantErr: ErrSessionExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			s := newTestSessions(t, clock, tt.max)
			creds, err := s.Mint(testPrincipal(), "r", tt.notAfter)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Mint error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !creds.Expires.Equal(tt.want) {
				t.Errorf("Expires = %v, want %v", creds.Expires, tt.want)
			}
			c, _, err := s.Open(creds.AccessKeyID, creds.SessionToken)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !c.Expires.Equal(tt.want) {
				t.Errorf("sealed Expires = %v, want %v", c.Expires, tt.want)
			}
		})
	}
}

func TestSessionOpenRejects(t *testing.T) {
	clock := newTestClock()
	s := newTestSessions(t, clock, time.Hour)
	other := newTestSessions(t, clock, time.Hour, SessionKey{ID: "k1", Secret: secret(2)})
	creds, err := s.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := other.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	keyID, body, _ := strings.Cut(strings.TrimPrefix(creds.SessionToken, "ghs1."), ".")
	tests := []struct {
		name  string
		akid  string
		token string
	}{
		{name: "different access key id", akid: second.AccessKeyID, token: creds.SessionToken},
		{name: "access key id of another case", akid: strings.ToLower(creds.AccessKeyID), token: creds.SessionToken},
		{name: "empty access key id", akid: "", token: creds.SessionToken},
		{name: "sealed by another key set under the same key id", akid: foreign.AccessKeyID, token: foreign.SessionToken},
		{name: "empty token", akid: creds.AccessKeyID, token: ""},
		{name: "no prefix", akid: creds.AccessKeyID, token: strings.TrimPrefix(creds.SessionToken, "ghs1.")},
		{name: "other version", akid: creds.AccessKeyID, token: "ghs2." + keyID + "." + body},
		{name: "no key id separator", akid: creds.AccessKeyID, token: "ghs1." + keyID + body},
		{name: "unknown key id", akid: creds.AccessKeyID, token: "ghs1.k2." + body},
		{name: "body not base64url", akid: creds.AccessKeyID, token: "ghs1.k1." + body[:20] + "+/" + body[22:]},
		{name: "body padded", akid: creds.AccessKeyID, token: creds.SessionToken + "=="},
		{name: "body truncated", akid: creds.AccessKeyID, token: creds.SessionToken[:len(creds.SessionToken)-4]},
		{name: "body too short for nonce and tag", akid: creds.AccessKeyID, token: "ghs1.k1." + body[:30]},
		{name: "body of another token", akid: creds.AccessKeyID, token: "ghs1.k1." + strings.SplitN(second.SessionToken, ".", 3)[2]},
		{name: "oversized", akid: creds.AccessKeyID, token: creds.SessionToken + strings.Repeat("A", 8<<10)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sec, err := s.Open(tt.akid, tt.token)
			if !errors.Is(err, ErrSessionInvalid) {
				t.Fatalf("Open error = %v, want ErrSessionInvalid", err)
			}
			if errors.Is(err, ErrSessionExpired) {
				t.Errorf("error %v also wraps ErrSessionExpired", err)
			}
			if c != nil || sec != "" {
				t.Errorf("Open returned claims %v and secret %q with an error", c, sec)
			}
		})
	}
}

// Every token character, replaced by any other character a token could
// hold, must make the token fail. Principals of three lengths make the
// sealed body cover every length modulo 3, so the last base64 character
// carries 2, 4 or 6 bits in one of them.
func TestSessionSingleCharacterChanges(t *testing.T) {
	clock := newTestClock()
	s := newTestSessions(t, clock, time.Hour)
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00\n\r"
	for _, sub := range []string{"a", "ab", "abc"} {
		p := Principal{Issuer: "https://idp.example", Subject: sub}
		creds, err := s.Mint(p, "r", time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		tok := []byte(creds.SessionToken)
		for i := range tok {
			orig := tok[i]
			for j := 0; j < len(alphabet); j++ {
				if alphabet[j] == orig {
					continue
				}
				tok[i] = alphabet[j]
				if c, _, err := s.Open(creds.AccessKeyID, string(tok)); !errors.Is(err, ErrSessionInvalid) || c != nil {
					t.Fatalf("subject %q: token with position %d changed from %q to %q: err = %v, want ErrSessionInvalid", sub, i, orig, alphabet[j], err)
				}
			}
			tok[i] = orig
		}
		// Inserted characters the base64 decoder would skip.
		for i := range len(creds.SessionToken) + 1 {
			for _, ins := range []string{"\n", "\r", "\r\n"} {
				changed := creds.SessionToken[:i] + ins + creds.SessionToken[i:]
				if _, _, err := s.Open(creds.AccessKeyID, changed); !errors.Is(err, ErrSessionInvalid) {
					t.Fatalf("subject %q: token with %q inserted at %d: err = %v, want ErrSessionInvalid", sub, ins, i, err)
				}
			}
		}
		akid := []byte(creds.AccessKeyID)
		for i := range akid {
			orig := akid[i]
			akid[i] ^= 0x20
			if _, _, err := s.Open(string(akid), creds.SessionToken); !errors.Is(err, ErrSessionInvalid) {
				t.Fatalf("access key id with position %d changed: err = %v, want ErrSessionInvalid", i, err)
			}
			akid[i] = orig
		}
		if _, _, err := s.Open(creds.AccessKeyID, creds.SessionToken); err != nil {
			t.Fatalf("the unchanged token no longer opens: %v", err)
		}
	}
}

func TestSessionKeyRotation(t *testing.T) {
	clock := newTestClock()
	oldKey := SessionKey{ID: "old", Secret: secret(1)}
	newKey := SessionKey{ID: "new", Secret: secret(2)}
	before := newTestSessions(t, clock, time.Hour, oldKey)
	rotated := newTestSessions(t, clock, time.Hour, newKey, oldKey)
	lagging := newTestSessions(t, clock, time.Hour, oldKey)
	retired := newTestSessions(t, clock, time.Hour, newKey)

	oldCreds, err := before.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	newCreds, err := rotated.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(oldCreds.SessionToken, "ghs1.old.") || !strings.HasPrefix(newCreds.SessionToken, "ghs1.new.") {
		t.Fatalf("tokens sealed under %q and %q, want old and new", oldCreds.SessionToken[:9], newCreds.SessionToken[:9])
	}

	tests := []struct {
		name    string
		s       *Sessions
		creds   SessionCredentials
		wantErr error
	}{
		{name: "rotated replica opens old tokens", s: rotated, creds: oldCreds},
		{name: "rotated replica opens new tokens", s: rotated, creds: newCreds},
		{name: "replica with only the old key rejects new tokens", s: lagging, creds: newCreds, wantErr: ErrSessionInvalid},
		{name: "replica with only the old key opens old tokens", s: lagging, creds: oldCreds},
		{name: "replica that retired the old key rejects old tokens", s: retired, creds: oldCreds, wantErr: ErrSessionInvalid},
		{name: "replica that retired the old key opens new tokens", s: retired, creds: newCreds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, sec, err := tt.s.Open(tt.creds.AccessKeyID, tt.creds.SessionToken)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if sec != tt.creds.SecretAccessKey {
				t.Errorf("secret = %q, want the minted %q", sec, tt.creds.SecretAccessKey)
			}
			if c.Principal.String() != testPrincipal().String() {
				t.Errorf("principal = %s", c.Principal)
			}
		})
	}
}

func TestSessionExpired(t *testing.T) {
	clock := newTestClock()
	s := newTestSessions(t, clock, 10*time.Minute)
	creds, err := s.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		advance time.Duration
		wantErr error
	}{
		{name: "one second before expiry", advance: 10*time.Minute - time.Second},
		{name: "at expiry", advance: time.Second, wantErr: ErrSessionExpired},
		{name: "a day later", advance: 24 * time.Hour, wantErr: ErrSessionExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock.Advance(tt.advance)
			c, sec, err := s.Open(creds.AccessKeyID, creds.SessionToken)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Open error = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrSessionInvalid) {
				t.Errorf("expiry error %v also wraps ErrSessionInvalid", err)
			}
			// Genuine tokens return their claims and secret even when expired,
			// so the caller can name who presented them.
			if c == nil || c.Principal.Subject != "agent-1" || sec != creds.SecretAccessKey {
				t.Errorf("Open returned claims %v, secret %q", c, sec)
			}
		})
	}
}

func TestSessionSecrets(t *testing.T) {
	clock := newTestClock()
	a1 := newTestSessions(t, clock, time.Hour, SessionKey{ID: "a", Secret: secret(1)})
	a2 := newTestSessions(t, clock, time.Hour, SessionKey{ID: "a", Secret: secret(1)})
	b := newTestSessions(t, clock, time.Hour, SessionKey{ID: "a", Secret: secret(2)})

	creds, err := a1.Mint(testPrincipal(), "r", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Another replica holding the same key derives the same secret without
	// shared state.
	_, sec, err := a2.Open(creds.AccessKeyID, creds.SessionToken)
	if err != nil || sec != creds.SecretAccessKey {
		t.Fatalf("replica Open = %q, %v; want %q", sec, err, creds.SecretAccessKey)
	}
	if got := secretFor(a2.keys["a"].secret, creds.AccessKeyID); got != creds.SecretAccessKey {
		t.Errorf("secret is not a function of key and access key id: %q != %q", got, creds.SecretAccessKey)
	}
	if got := secretFor(b.keys["a"].secret, creds.AccessKeyID); got == creds.SecretAccessKey {
		t.Error("two different keys derive the same secret for one access key id")
	}
	if got := secretFor(a1.keys["a"].secret, creds.AccessKeyID+"X"); got == creds.SecretAccessKey {
		t.Error("two access key ids share a secret")
	}
	// The sealing key and the secret-deriving key are separate.
	if bytes.Equal(a1.keys["a"].secret, derive(secret(1), "gatehouse session seal v1")) {
		t.Error("the secret-deriving key equals the sealing key")
	}
}

func TestSessionConfigErrors(t *testing.T) {
	long := strings.Repeat("k", 17)
	tests := []struct {
		name    string
		keys    []SessionKey
		wantErr string
	}{
		{name: "no keys", wantErr: "SessionConfig.Keys is empty"},
		{name: "short secret", keys: []SessionKey{{ID: "k1", Secret: make([]byte, 31)}}, wantErr: "Keys[0].Secret"},
		{name: "short secret of the second key", keys: []SessionKey{{ID: "k1", Secret: secret(1)}, {ID: "k2", Secret: []byte("short")}}, wantErr: "Keys[1].Secret"},
		{name: "empty key id", keys: []SessionKey{{ID: "", Secret: secret(1)}}, wantErr: "Keys[0].ID"},
		{name: "key id too long", keys: []SessionKey{{ID: long, Secret: secret(1)}}, wantErr: "Keys[0].ID"},
		{name: "key id with a dot", keys: []SessionKey{{ID: "k.1", Secret: secret(1)}}, wantErr: "Keys[0].ID"},
		{name: "key id with a space", keys: []SessionKey{{ID: "k 1", Secret: secret(1)}}, wantErr: "Keys[0].ID"},
		{name: "key id not ASCII", keys: []SessionKey{{ID: "ké", Secret: secret(1)}}, wantErr: "Keys[0].ID"},
		{name: "duplicate key id", keys: []SessionKey{{ID: "k1", Secret: secret(1)}, {ID: "k1", Secret: secret(2)}}, wantErr: "Keys[1]: duplicate key id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSessions(SessionConfig{Keys: tt.keys})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewSessions error = %v, want one mentioning %q", err, tt.wantErr)
			}
			if s != nil {
				t.Error("NewSessions returned Sessions with an error")
			}
		})
	}
	// The longest and most varied valid id works.
	if _, err := NewSessions(SessionConfig{Keys: []SessionKey{{ID: "Ab_-09zZ" + "xxxxxxxx", Secret: secret(1)}}}); err != nil {
		t.Errorf("valid 16-character key id refused: %v", err)
	}
}

func TestSessionOversizedPrincipal(t *testing.T) {
	clock := newTestClock()
	s := newTestSessions(t, clock, time.Hour)

	t.Run("raw claims dropped", func(t *testing.T) {
		p := testPrincipal()
		p.Claims = map[string]any{"blob": strings.Repeat("x", 5<<10)}
		creds, err := s.Mint(p, "r", time.Time{})
		if err != nil {
			t.Fatalf("Mint: %v", err)
		}
		c, _, err := s.Open(creds.AccessKeyID, creds.SessionToken)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if c.Principal.Claims != nil {
			t.Errorf("raw claims kept: %d keys", len(c.Principal.Claims))
		}
		want := p
		want.Claims = nil
		if !reflect.DeepEqual(c.Principal, want) {
			t.Errorf("Principal = %#v, want %#v", c.Principal, want)
		}
	})
	t.Run("identity itself too large", func(t *testing.T) {
		p := testPrincipal()
		p.Groups = nil
		for i := 0; i < 500; i++ {
			p.Groups = append(p.Groups, "group-with-a-long-name")
		}
		_, err := s.Mint(p, "r", time.Time{})
		if err == nil || !strings.Contains(err.Error(), "too large") {
			t.Fatalf("Mint error = %v, want principal too large", err)
		}
	})
	t.Run("claims that do not marshal", func(t *testing.T) {
		p := testPrincipal()
		p.Claims = map[string]any{"f": func() {}}
		if _, err := s.Mint(p, "r", time.Time{}); err == nil {
			t.Fatal("Mint accepted claims that cannot be encoded")
		}
	})
}
