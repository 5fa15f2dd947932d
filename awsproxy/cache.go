package awsproxy

import "sync"

// boundedCache keeps values built once per key, for maskers compiled per
// operation and obligations. Keys come from requests (operations,
// obligations), so the number of entries is bounded: when full, it starts
// over. Safe for concurrent use; a value may be built twice by racing
// callers, which is harmless for immutable values.
type boundedCache[K comparable, V any] struct {
	max int
	mu  sync.Mutex
	m   map[K]V
}

// get returns the value for k, building it with build on a miss. Errors
// are not cached.
func (c *boundedCache[K, V]) get(k K, build func() (V, error)) (V, error) {
	c.mu.Lock()
	v, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := build()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= c.max {
		c.m = make(map[K]V)
	}
	c.m[k] = v
	c.mu.Unlock()
	return v, nil
}
