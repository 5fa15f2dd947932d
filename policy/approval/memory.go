package approval

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// DefaultMaxRecords bounds a MemoryStore whose config leaves MaxRecords zero.
const DefaultMaxRecords = 10000

// PruneBatch is the most records one Prune call deletes.
const PruneBatch = 1000

// MemoryConfig configures a MemoryStore.
type MemoryConfig struct {
	// MaxRecords bounds how many records (of every state) the store holds;
	// 0 means DefaultMaxRecords. Past it Create fails with ErrStoreFull
	// until Prune makes room (the broker's janitor prunes final records
	// older than Config.Retention).
	MaxRecords int
}

// MemoryStore is a Store for one process. Its zero value is not usable;
// call NewMemoryStore.
type MemoryStore struct {
	max int

	mu       sync.Mutex
	recs     map[string]*Record
	active   map[activeKey]string   // principal+fingerprint -> id of the active record
	byReq    map[activeKey][]string // principal+fingerprint -> ids of every record
	watchers Watchers
}

type activeKey struct{ principal, fingerprint string }

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore(cfg MemoryConfig) (*MemoryStore, error) {
	if cfg.MaxRecords < 0 {
		return nil, invalid("MemoryConfig.MaxRecords", "negative")
	}
	if cfg.MaxRecords == 0 {
		cfg.MaxRecords = DefaultMaxRecords
	}
	return &MemoryStore{
		max:    cfg.MaxRecords,
		recs:   make(map[string]*Record),
		active: make(map[activeKey]string),
		byReq:  make(map[activeKey][]string),
	}, nil
}

// Create implements Store.
func (s *MemoryStore) Create(ctx context.Context, rec Record) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	if err := CheckNew(rec); err != nil {
		return Record{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	k := activeKey{rec.Principal, rec.Fingerprint}
	if id, ok := s.active[k]; ok {
		return s.recs[id].Clone(), false, nil
	}
	if _, ok := s.recs[rec.ID]; ok {
		return Record{}, false, fmt.Errorf("approval: memory store: duplicate id %s", rec.ID)
	}
	if len(s.recs) >= s.max {
		return Record{}, false, fmt.Errorf("%w: %d records", ErrStoreFull, s.max)
	}
	c := rec.Clone()
	s.recs[rec.ID] = &c
	s.active[k] = rec.ID
	s.byReq[k] = append(s.byReq[k], rec.ID)
	return rec.Clone(), true, nil
}

// Get implements Store.
func (s *MemoryStore) Get(ctx context.Context, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.recs[id]
	if !ok {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r.Clone(), nil
}

// List implements Store.
func (s *MemoryStore) List(ctx context.Context, f Filter) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := f.Check()
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	var out []Record
	if f.Principal != "" && f.Fingerprint != "" {
		// The proxy's lookups (grants, denials) use the index.
		for _, id := range s.byReq[activeKey{f.Principal, f.Fingerprint}] {
			if r := s.recs[id]; f.Match(r) {
				out = append(out, r.Clone())
			}
		}
	} else {
		for _, r := range s.recs {
			if f.Match(r) {
				out = append(out, r.Clone())
			}
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Record) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Update implements Store.
func (s *MemoryStore) Update(ctx context.Context, id string, fn func(*Record) error) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.recs[id]
	if !ok {
		return Record{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	next := cur.Clone()
	if err := fn(&next); err != nil {
		return cur.Clone(), err
	}
	if err := CheckUpdate(*cur, next); err != nil {
		return cur.Clone(), err
	}
	k := activeKey{next.Principal, next.Fingerprint}
	if cur.State.Active() && !next.State.Active() && s.active[k] == id {
		delete(s.active, k)
	}
	stored := next.Clone()
	s.recs[id] = &stored
	s.watchers.Wake(id)
	return next, nil
}

// Watch implements Store.
func (s *MemoryStore) Watch(id string) (<-chan struct{}, func()) {
	return s.watchers.Add(id)
}

// Prune implements Store.
func (s *MemoryStore) Prune(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.recs {
		if n == PruneBatch {
			break
		}
		if r.State.Final() && r.UpdatedAt.Before(before) {
			delete(s.recs, id)
			k := activeKey{r.Principal, r.Fingerprint}
			s.byReq[k] = slices.DeleteFunc(s.byReq[k], func(x string) bool { return x == id })
			if len(s.byReq[k]) == 0 {
				delete(s.byReq, k)
			}
			n++
		}
	}
	return n, nil
}

// Len returns how many records the store holds.
func (s *MemoryStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.recs)
}
