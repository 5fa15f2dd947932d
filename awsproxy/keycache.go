package awsproxy

import "sync"

// keyCache remembers derived SigV4 signing keys. A key depends on the
// secret and the scope (date, region, service), and deriving it costs four
// HMACs, so one entry serves a client for a whole day. Entries are keyed by
// access key id and scope and remember the secret they were derived from,
// so a rotated secret never matches a stale key. The cache is bounded: when
// full it is emptied.
type keyCache struct {
	mu sync.Mutex
	m  map[credentialScope]cachedKey
}

type cachedKey struct {
	secret string
	key    *sigKey
}

const maxCachedKeys = 8192

func (kc *keyCache) get(secret string, s credentialScope) *sigKey {
	kc.mu.Lock()
	e, ok := kc.m[s]
	kc.mu.Unlock()
	if ok && constantTimeEqual(e.secret, secret) {
		return e.key
	}
	key := signingKey(secret, s)
	kc.mu.Lock()
	if kc.m == nil || len(kc.m) >= maxCachedKeys {
		kc.m = make(map[credentialScope]cachedKey)
	}
	kc.m[s] = cachedKey{secret: secret, key: key}
	kc.mu.Unlock()
	return key
}
