package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// TokenVerifier verifies a raw bearer token. *Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, raw string) (*Token, error)
}

// ResourceMetadata is OAuth 2.0 Protected Resource Metadata (RFC 9728),
// which MCP clients fetch to learn where to get a token for a server.
type ResourceMetadata struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported,omitempty"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// ServeHTTP serves the metadata document as JSON.
func (m ResourceMetadata) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if m.BearerMethodsSupported == nil {
		m.BearerMethodsSupported = []string{"header"}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=3600")
	json.NewEncoder(w).Encode(m)
}

// Bearer is HTTP middleware that admits requests carrying a valid bearer
// token (RFC 6750, Authorization header only) and puts the verified
// Principal in the request context. Refusals are RFC 6750 challenges that
// point at the protected-resource metadata, as the MCP authorization
// specification requires.
type Bearer struct {
	// Verifier checks tokens. Required.
	Verifier TokenVerifier
	// MetadataURL is the absolute URL of this resource's
	// /.well-known/oauth-protected-resource document, announced in
	// WWW-Authenticate as resource_metadata.
	MetadataURL string
}

type principalKey struct{}

// PrincipalFrom returns the principal Bearer put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns a context carrying p, as Bearer does; for tests and
// for servers that authenticate by other means.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// Wrap returns next guarded by bearer-token verification.
func (b *Bearer) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		authz := r.Header.Values("Authorization")
		switch {
		case r.URL.Query().Has("access_token"):
			b.challenge(w, http.StatusBadRequest, "invalid_request", "tokens in the query string are not accepted")
			return
		case len(authz) == 0:
			b.challenge(w, http.StatusUnauthorized, "", "")
			return
		case len(authz) > 1:
			b.challenge(w, http.StatusBadRequest, "invalid_request", "several Authorization headers")
			return
		}
		scheme, raw, ok := strings.Cut(authz[0], " ")
		raw = strings.TrimSpace(raw)
		if !ok || !strings.EqualFold(scheme, "Bearer") || raw == "" {
			b.challenge(w, http.StatusUnauthorized, "", "")
			return
		}
		tok, err := b.Verifier.Verify(r.Context(), raw)
		if err != nil {
			desc := "the access token is invalid"
			if errors.Is(err, ErrTokenExpired) {
				desc = "the access token expired"
			}
			b.challenge(w, http.StatusUnauthorized, "invalid_token", desc)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), tok.Principal)))
	})
}

// challenge writes an RFC 6750 error response. Descriptions are fixed
// strings chosen here, never text from the token or the verifier, so they
// need no escaping beyond what quoteParam does.
func (b *Bearer) challenge(w http.ResponseWriter, status int, code, desc string) {
	v := "Bearer"
	var params []string
	if b.MetadataURL != "" {
		params = append(params, `resource_metadata="`+quoteParam(b.MetadataURL)+`"`)
	}
	if code != "" {
		params = append(params, `error="`+code+`"`, `error_description="`+quoteParam(desc)+`"`)
	}
	if len(params) > 0 {
		v += " " + strings.Join(params, ", ")
	}
	w.Header().Set("WWW-Authenticate", v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if code == "" {
		code = "unauthorized"
	}
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}

func quoteParam(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
