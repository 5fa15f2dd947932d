// Package identity names the non-human callers of a gatehouse gateway.
//
// Today it defines [Principal], the plain-data identity that the rest of the
// module passes around (awsproxy authenticates requests to a Principal; policy
// and audit read it). OIDC token verification, role mapping and keyless
// session credentials are planned here as well (see the project's issue
// tracker); until they land, awsproxy.StaticAuthenticator maps fixed keys to
// principals for tests and examples.
package identity
