// Package testidp is a small OIDC identity provider for tests and examples,
// served on 127.0.0.1: a discovery document, a JWKS, and an OAuth 2.0 token
// endpoint that implements the client-credentials grant, issuing RS256 JWT
// access tokens signed with a key generated at start.
//
// It is for tests and the quickstart only: clients and their secrets are
// fixed at construction and tokens cannot be revoked.
package testidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Client is an OAuth client allowed to use the client-credentials grant.
type Client struct {
	Secret  string
	Subject string   // "sub" of its tokens; defaults to the client id
	Groups  []string // "groups" claim
}

// IdP is a running identity provider.
type IdP struct {
	// Issuer is the issuer URL (http://127.0.0.1:port).
	Issuer   string
	Audience string
	TTL      time.Duration

	srv     *http.Server
	ln      net.Listener
	key     *rsa.PrivateKey
	signer  jose.Signer
	mu      sync.Mutex
	clients map[string]Client
	now     func() time.Time
}

// Start serves a new IdP on a free port of 127.0.0.1. Tokens carry
// audience aud and live for an hour unless TTL is changed.
func Start(aud string, clients map[string]Client) (*IdP, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "testidp-1"))
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	idp := &IdP{Issuer: "http://" + ln.Addr().String(), Audience: aud, TTL: time.Hour, ln: ln, key: key, signer: signer, clients: clients, now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", idp.discovery)
	mux.HandleFunc("GET /jwks", idp.jwks)
	mux.HandleFunc("POST /token", idp.tokenEndpoint)
	idp.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go idp.srv.Serve(ln)
	return idp, nil
}

// Close stops the server.
func (idp *IdP) Close() { idp.srv.Close() }

// TokenURL is the client-credentials token endpoint.
func (idp *IdP) TokenURL() string { return idp.Issuer + "/token" }

func (idp *IdP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": idp.Issuer, "jwks_uri": idp.Issuer + "/jwks", "token_endpoint": idp.TokenURL(),
		"grant_types_supported":                 []string{"client_credentials"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
	})
}

func (idp *IdP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &idp.key.PublicKey, KeyID: "testidp-1", Algorithm: "RS256", Use: "sig"}}})
}

func (idp *IdP) tokenEndpoint(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	idp.mu.Lock()
	c, known := idp.clients[id]
	idp.mu.Unlock()
	if !known || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	tok, err := idp.Token(id)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(idp.TTL.Seconds())})
}

// Token issues a signed access token for a configured client directly,
// without the HTTP round trip.
func (idp *IdP) Token(clientID string) (string, error) {
	return idp.TokenFor(clientID, idp.TTL)
}

// TokenFor issues a token that expires ttl from now (negative for an
// already expired one).
func (idp *IdP) TokenFor(clientID string, ttl time.Duration) (string, error) {
	idp.mu.Lock()
	c, ok := idp.clients[clientID]
	idp.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("testidp: unknown client %q", clientID)
	}
	sub := c.Subject
	if sub == "" {
		sub = clientID
	}
	now := idp.now()
	claims, err := json.Marshal(map[string]any{
		"iss": idp.Issuer, "sub": sub, "aud": idp.Audience, "azp": clientID, "client_id": clientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(), "groups": c.Groups,
	})
	if err != nil {
		return "", err
	}
	sig, err := idp.signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return sig.CompactSerialize()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
