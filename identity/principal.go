package identity

import (
	"slices"
	"strings"
)

// Principal is an authenticated non-human identity: the workload behind an
// OIDC token. It is plain data, safe to copy, and carries everything policy
// and audit need to name the caller.
type Principal struct {
	// Issuer is the OIDC issuer URL that vouched for the identity.
	Issuer string
	// Subject is the token's "sub" claim, unique within Issuer.
	Subject string
	// ClientID is the OAuth client that obtained the token ("azp" or "client_id").
	ClientID string
	// Email is the "email" claim, if any.
	Email string
	// Groups are the group names taken from the configured groups claim.
	Groups []string
	// Claims holds every claim of the token, decoded from JSON.
	Claims map[string]any
}

// String returns the stable form used in audit records and session names:
// the issuer and subject joined by "#". Two principals with the same String
// are the same identity.
func (p Principal) String() string {
	if p.Issuer == "" {
		return p.Subject
	}
	return strings.TrimSuffix(p.Issuer, "/") + "#" + p.Subject
}

// InGroup reports whether the principal belongs to group g.
func (p Principal) InGroup(g string) bool {
	return slices.Contains(p.Groups, g)
}
