package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// remoteKeys is an oidc.KeySet over an issuer's JWKS endpoint. Verified
// tokens use the cached keys; a token whose key is not cached triggers one
// fetch, at most once per minInterval, shared by concurrent callers. While
// the endpoint is down the cached keys keep working and unknown keys fail
// closed.
type remoteKeys struct {
	url         string
	client      *http.Client
	minInterval time.Duration
	now         func() time.Time

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	lastFetch time.Time
	fetches   int

	fetchMu sync.Mutex // one fetch at a time
}

// errRefreshLimited: the key is unknown and the JWKS was fetched too
// recently to fetch it again.
var errRefreshLimited = errors.New("JWKS refresh rate-limited")

const maxJWKSBytes = 1 << 20

func newRemoteKeys(url string, client *http.Client, minInterval time.Duration, now func() time.Time) *remoteKeys {
	if minInterval <= 0 {
		minInterval = 30 * time.Second
	}
	return &remoteKeys{url: url, client: client, minInterval: minInterval, now: now}
}

var allAlgorithms = func() []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(DefaultAlgorithms))
	for i, a := range DefaultAlgorithms {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}()

// VerifySignature implements oidc.KeySet.
func (r *remoteKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, allAlgorithms)
	if err != nil {
		return nil, err
	}
	return r.verifyParsed(ctx, jws)
}

func (r *remoteKeys) verifyParsed(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must carry exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	r.mu.Lock()
	keys, fetchedAt := r.keys, r.lastFetch
	r.mu.Unlock()
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	keys, err := r.refresh(ctx, fetchedAt)
	if err != nil {
		return nil, fmt.Errorf("key %q is not among the cached keys of %s and could not be fetched: %w", kid, r.url, err)
	}
	if payload, ok := verifyWith(jws, keys, kid); ok {
		return payload, nil
	}
	return nil, fmt.Errorf("no key of %s verifies the token (kid %q)", r.url, kid)
}

func verifyWith(jws *jose.JSONWebSignature, keys []jose.JSONWebKey, kid string) ([]byte, bool) {
	for _, k := range keys {
		if (kid != "" && k.KeyID != kid) || k.Use == "enc" || !k.IsPublic() {
			continue
		}
		if payload, err := jws.Verify(k); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh fetches the JWKS unless another caller already did since seen,
// or the last fetch was less than minInterval ago.
func (r *remoteKeys) refresh(ctx context.Context, seen time.Time) ([]jose.JSONWebKey, error) {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	r.mu.Lock()
	keys, last := r.keys, r.lastFetch
	r.mu.Unlock()
	if last.After(seen) {
		return keys, nil // fetched by someone else while we waited
	}
	if !last.IsZero() && r.now().Sub(last) < r.minInterval {
		return keys, errRefreshLimited
	}
	fresh, err := r.fetch(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lastFetch = r.now()
	r.fetches++
	if err != nil {
		return r.keys, err // keep the cached keys
	}
	r.keys = fresh
	return fresh, nil
}

func (r *remoteKeys) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS endpoint answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("JWKS document too large")
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("JWKS document does not parse: %w", err)
	}
	return set.Keys, nil
}
