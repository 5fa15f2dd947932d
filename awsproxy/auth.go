package awsproxy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// Errors an Authenticator returns so that the handler answers with the
// matching AWS error code. Wrap them with %w to add detail.
var (
	// ErrUnknownAccessKey: the access key id is not one the authenticator issued.
	ErrUnknownAccessKey = errors.New("awsproxy: unknown access key id")
	// ErrExpiredToken: the credentials were valid once but have expired.
	ErrExpiredToken = errors.New("awsproxy: security token expired")
	// ErrInvalidToken: the session token is missing, malformed or forged.
	ErrInvalidToken = errors.New("awsproxy: invalid security token")
)

// Credential is what a SigV4-signed request presents about its signer. The
// handler passes it to an Authenticator before any signature is checked, so
// nothing in it is trusted yet.
type Credential struct {
	AccessKeyID  string
	SessionToken string // X-Amz-Security-Token, "" if none
	Service      string // signing name from the credential scope
	Region       string // region from the credential scope
}

// Session is an authenticated caller: who it is and the secret its requests
// must be signed with. The handler verifies the request signature against
// SecretAccessKey; only then is the Session trusted.
type Session struct {
	Principal       identity.Principal
	SecretAccessKey string
	// Role names the gateway role whose AWS credentials serve this caller
	// ("" lets the CredentialSource choose).
	Role string
	// Expires is when the session ends; zero means it does not.
	Expires time.Time
	// ID identifies the session for audit and session recording; "" means
	// the access key id is used.
	ID string
}

// Authenticator resolves the credential of a signed request to a Session.
//
// Authenticate must not check the signature (the handler does that with the
// returned secret); it must return an error wrapping ErrUnknownAccessKey,
// ErrExpiredToken or ErrInvalidToken when it refuses, so that the client
// gets the right AWS error. It is called concurrently and on every request,
// so it should be fast (no network calls on the hot path).
type Authenticator interface {
	Authenticate(ctx context.Context, c Credential) (*Session, error)
}

// StaticKey is one entry of a StaticAuthenticator.
type StaticKey struct {
	SecretAccessKey string
	Principal       identity.Principal
	Role            string
}

// StaticAuthenticator maps fixed access key ids to principals. It is meant
// for tests, examples and break-glass setups; production gateways use the
// identity package's session credentials. Requests carrying a session token
// are refused: static keys have none.
type StaticAuthenticator map[string]StaticKey

// Authenticate implements Authenticator.
func (s StaticAuthenticator) Authenticate(_ context.Context, c Credential) (*Session, error) {
	k, ok := s[c.AccessKeyID]
	if !ok || k.SecretAccessKey == "" {
		return nil, fmt.Errorf("%w: %q", ErrUnknownAccessKey, c.AccessKeyID)
	}
	if c.SessionToken != "" {
		return nil, fmt.Errorf("%w: static keys take no session token", ErrInvalidToken)
	}
	return &Session{Principal: k.Principal, SecretAccessKey: k.SecretAccessKey, Role: k.Role, ID: c.AccessKeyID}, nil
}

// authError maps an Authenticator error to the AWS-shaped refusal.
func authError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrExpiredToken):
		return newError(KindExpiredToken, "The security token included in the request is expired", err)
	case errors.Is(err, ErrUnknownAccessKey), errors.Is(err, ErrInvalidToken):
		return newError(KindUnknownAccessKey, "The security token included in the request is invalid", err)
	}
	return newError(KindInternal, "authentication failed", err)
}
