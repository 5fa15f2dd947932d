package identity

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ExchangeRequest asks for session credentials for an identity token.
type ExchangeRequest struct {
	Token    string        // the workload's OIDC token (JWT)
	Role     string        // requested role ARN or name; "" for the first permitted
	Duration time.Duration // requested lifetime; zero for the maximum allowed
}

// ExchangeResult is the outcome of a successful exchange.
type ExchangeResult struct {
	Credentials SessionCredentials
	Token       *Token
	Role        Role
}

// Exchanger turns a verified identity token into gateway session
// credentials: Verifier, then RoleMapper, then Sessions. The session never
// outlives the identity token, the role's MaxDuration or the Sessions
// maximum.
type Exchanger struct {
	Verifier *Verifier
	Roles    *RoleMapper
	Sessions *Sessions
}

// Exchange verifies req.Token, maps its principal to a role and mints
// session credentials. Errors wrap ErrTokenInvalid, ErrTokenExpired or
// ErrRoleDenied.
func (e *Exchanger) Exchange(ctx context.Context, req ExchangeRequest) (*ExchangeResult, error) {
	if e.Verifier == nil || e.Roles == nil || e.Sessions == nil {
		return nil, errors.New("identity: Exchanger needs a Verifier, Roles and Sessions")
	}
	tok, err := e.Verifier.Verify(ctx, req.Token)
	if err != nil {
		return nil, err
	}
	role, err := e.Roles.Map(tok.Principal, req.Role)
	if err != nil {
		return nil, err
	}
	notAfter := tok.Expiry
	now := e.Sessions.now()
	for _, d := range []time.Duration{role.MaxDuration, req.Duration} {
		if d > 0 && now.Add(d).Before(notAfter) {
			notAfter = now.Add(d)
		}
	}
	creds, err := e.Sessions.Mint(tok.Principal, role.ARN, notAfter)
	if errors.Is(err, ErrSessionExpired) {
		// The token was accepted within the clock skew but has no time
		// left for a session: report it as the expired token it is.
		return nil, fmt.Errorf("%w: %w", ErrTokenExpired, err)
	}
	if err != nil {
		return nil, err
	}
	return &ExchangeResult{Credentials: creds, Token: tok, Role: role}, nil
}
