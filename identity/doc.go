// Package identity names the non-human callers of a gatehouse gateway and
// gives them AWS-style credentials without any AWS key.
//
//   - [Principal] is the plain-data identity passed around the module.
//   - [Verifier] checks workload OIDC tokens (JWT access or ID tokens) from
//     one or more issuers: OIDC discovery through go-oidc, an asymmetric
//     algorithm allowlist (never "none", never HMAC), a required audience,
//     exp/nbf/iat with a small skew, optional required claims, and typed
//     errors (ErrTokenExpired, ErrWrongAudience, ErrUnknownIssuer,
//     ErrBadSignature, all but the first wrapping ErrTokenInvalid). JWKS keys
//     are cached; a token naming an unknown key triggers at most one fetch
//     per MinRefreshInterval, and while the endpoint is down cached keys keep
//     working and unknown keys fail closed.
//   - [RoleMapper] maps a principal to a configured IAM role with CEL
//     conditions over a typed principal (subject, issuer, clientId, email,
//     groups, claims), compiled and type-checked once.
//   - [Sessions] mints and opens stateless session credentials: the session
//     token is an AES-256-GCM sealed record of principal, role and expiry,
//     bound to its access key id; the secret access key is derived from the
//     access key id. Any replica holding the same keys verifies requests
//     without shared storage; key ids let keys rotate.
//   - [Exchanger] composes the three: identity token in, session
//     credentials out. awsproxy serves it as sts:AssumeRoleWithWebIdentity,
//     so stock SDKs use it through AWS_ROLE_ARN and
//     AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ENDPOINT_URL_STS pointing at the
//     gateway.
//   - [Bearer] is HTTP middleware for plain services such as an MCP server's
//     streamable-HTTP endpoint: RFC 6750 bearer tokens, the Principal in the
//     request context, and [ResourceMetadata] (RFC 9728) as the MCP
//     authorization specification asks.
package identity
