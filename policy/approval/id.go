package approval

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// idEncoding is lower-case base32 without padding: 128 bits give 26
// characters that are safe in URLs, paths and AWS error messages.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns a fresh approval id: 128 bits from crypto/rand, lower-case
// base32 (26 characters). It is the default Config.NewID.
func NewID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return idEncoding.EncodeToString(b[:]), nil
}

// MaxIDLen bounds the ids the HTTP API accepts.
const MaxIDLen = 64

// validID reports whether s looks like an id a Config.NewID could produce:
// 1 to MaxIDLen bytes of [a-z0-9_-]. The HTTP API refuses anything else
// before it reaches the store.
func validID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}
