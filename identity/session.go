package identity

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors of Sessions.Open, for callers that branch on them.
var (
	// ErrSessionExpired: the credentials were genuine but have expired.
	ErrSessionExpired = errors.New("identity: session expired")
	// ErrSessionInvalid: the token is malformed, forged, sealed under an
	// unknown key, or does not belong to the access key id.
	ErrSessionInvalid = errors.New("identity: invalid session token")
)

// SessionKey is a secret shared by every gateway replica that mints or
// accepts session credentials. ID names it inside tokens so keys can rotate:
// the first key of SessionConfig.Keys seals new tokens, all of them open.
type SessionKey struct {
	ID     string // 1-16 characters of [A-Za-z0-9_-]
	Secret []byte // at least 32 bytes of randomness
}

// SessionConfig configures Sessions.
type SessionConfig struct {
	// Keys, newest first. Required.
	Keys []SessionKey
	// MaxDuration caps the lifetime of minted credentials. Zero means 1 hour.
	MaxDuration time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Sessions mints and opens stateless gateway session credentials. The
// session token is an AEAD-sealed record of the principal, the role and the
// expiry; the secret access key is derived from the access key id under
// the same key, so any replica holding the keys verifies signatures without
// shared storage. It is safe for concurrent use.
type Sessions struct {
	keys   map[string]sessionKeys
	sealID string
	max    time.Duration
	now    func() time.Time
}

type sessionKeys struct {
	aead   cipher.AEAD
	secret []byte // derives secret access keys
}

// SessionClaims is what a session token carries.
type SessionClaims struct {
	Principal Principal `json:"p"`
	Role      string    `json:"r,omitempty"`
	IssuedAt  time.Time `json:"iat"`
	Expires   time.Time `json:"exp"`
	// AccessKeyID the token was minted with; Open checks it.
	AccessKeyID string `json:"akid"`
}

// SessionCredentials are AWS-style credentials for a session.
type SessionCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

const (
	tokenPrefix    = "ghs1."
	akidPrefix     = "GHS"
	maxTokenLen    = 8 << 10
	maxClaimsBytes = 4 << 10
)

// NewSessions validates cfg and returns Sessions.
func NewSessions(cfg SessionConfig) (*Sessions, error) {
	if len(cfg.Keys) == 0 {
		return nil, errors.New("identity: SessionConfig.Keys is empty")
	}
	s := &Sessions{keys: make(map[string]sessionKeys), sealID: cfg.Keys[0].ID, max: cfg.MaxDuration, now: cfg.Now}
	if s.max <= 0 {
		s.max = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i, k := range cfg.Keys {
		if !validKeyID(k.ID) {
			return nil, fmt.Errorf("identity: SessionConfig.Keys[%d].ID %q must be 1-16 characters of [A-Za-z0-9_-]", i, k.ID)
		}
		if len(k.Secret) < 32 {
			return nil, fmt.Errorf("identity: SessionConfig.Keys[%d].Secret must be at least 32 bytes", i)
		}
		if _, dup := s.keys[k.ID]; dup {
			return nil, fmt.Errorf("identity: SessionConfig.Keys[%d]: duplicate key id %q", i, k.ID)
		}
		block, err := aes.NewCipher(derive(k.Secret, "gatehouse session seal v1"))
		if err != nil {
			return nil, err
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, err
		}
		s.keys[k.ID] = sessionKeys{aead: aead, secret: derive(k.Secret, "gatehouse session secret v1")}
	}
	return s, nil
}

func derive(master []byte, label string) []byte {
	m := hmac.New(sha256.New, master)
	m.Write([]byte(label))
	return m.Sum(nil)
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 16 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

var akidEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Mint issues credentials for p acting as role, valid until notAfter or
// for MaxDuration, whichever ends first.
func (s *Sessions) Mint(p Principal, role string, notAfter time.Time) (SessionCredentials, error) {
	now := s.now()
	exp := now.Add(s.max)
	if !notAfter.IsZero() && notAfter.Before(exp) {
		exp = notAfter
	}
	// Tokens carry whole seconds: check the expiry that will be sealed, so a
	// session never starts already expired.
	exp = exp.UTC().Truncate(time.Second)
	if !exp.After(now) {
		return SessionCredentials{}, fmt.Errorf("%w: the identity token expires before the session could start", ErrSessionExpired)
	}
	var raw [11]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return SessionCredentials{}, err
	}
	akid := akidPrefix + akidEncoding.EncodeToString(raw[:])[:17]
	claims := SessionClaims{Principal: p, Role: role, IssuedAt: now.UTC().Truncate(time.Second), Expires: exp.UTC().Truncate(time.Second), AccessKeyID: akid}
	plain, err := json.Marshal(claims)
	if err != nil {
		return SessionCredentials{}, err
	}
	if len(plain) > maxClaimsBytes {
		// Keep the token small: drop the raw claims, keep the identity.
		claims.Principal.Claims = nil
		if plain, err = json.Marshal(claims); err != nil {
			return SessionCredentials{}, err
		}
		if len(plain) > maxClaimsBytes {
			return SessionCredentials{}, errors.New("identity: principal too large for a session token")
		}
	}
	k := s.keys[s.sealID]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plain)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return SessionCredentials{}, err
	}
	sealed := k.aead.Seal(nonce, nonce, plain, additionalData(s.sealID, akid))
	return SessionCredentials{
		AccessKeyID:     akid,
		SecretAccessKey: secretFor(k.secret, akid),
		SessionToken:    tokenPrefix + s.sealID + "." + base64.RawURLEncoding.EncodeToString(sealed),
		Expires:         claims.Expires,
	}, nil
}

func additionalData(keyID, akid string) []byte {
	return []byte(tokenPrefix + keyID + "\x00" + akid)
}

func secretFor(key []byte, akid string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(akid))
	return base64.RawStdEncoding.EncodeToString(m.Sum(nil))[:40]
}

// Open checks a session token against the access key id it was presented
// with and returns its claims and the secret the request must be signed
// with. Expired sessions return the claims together with an error wrapping
// ErrSessionExpired; anything else wrong wraps ErrSessionInvalid.
func (s *Sessions) Open(accessKeyID, token string) (*SessionClaims, string, error) {
	if len(token) > maxTokenLen || !strings.HasPrefix(token, tokenPrefix) {
		return nil, "", fmt.Errorf("%w: not a gatehouse session token", ErrSessionInvalid)
	}
	keyID, body, ok := strings.Cut(token[len(tokenPrefix):], ".")
	if !ok {
		return nil, "", fmt.Errorf("%w: malformed token", ErrSessionInvalid)
	}
	k, ok := s.keys[keyID]
	if !ok {
		return nil, "", fmt.Errorf("%w: token sealed under unknown key %q", ErrSessionInvalid, keyID)
	}
	// A token has exactly one spelling: strict decoding refuses non-zero
	// padding bits, and the length check refuses the CR and LF it skips.
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(body) != base64.RawURLEncoding.EncodedLen(len(sealed)) || len(sealed) < k.aead.NonceSize()+k.aead.Overhead() {
		return nil, "", fmt.Errorf("%w: malformed token", ErrSessionInvalid)
	}
	ns := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], additionalData(keyID, accessKeyID))
	if err != nil {
		return nil, "", fmt.Errorf("%w: token does not open for this access key", ErrSessionInvalid)
	}
	var c SessionClaims
	if err := json.Unmarshal(plain, &c); err != nil || c.AccessKeyID != accessKeyID {
		return nil, "", fmt.Errorf("%w: token contents are inconsistent", ErrSessionInvalid)
	}
	secret := secretFor(k.secret, accessKeyID)
	if !s.now().Before(c.Expires) {
		return &c, secret, fmt.Errorf("%w at %s", ErrSessionExpired, c.Expires.Format(time.RFC3339))
	}
	return &c, secret, nil
}
