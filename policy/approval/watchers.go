package approval

import "sync"

// Watchers is the registry of Watch channels a Store keeps: Add gives what
// Store.Watch returns, Wake and WakeAll signal them. Signals are coalesced
// and never block. It is safe for concurrent use; the zero value is ready.
type Watchers struct {
	mu sync.Mutex
	m  map[string]map[*storeWatcher]struct{}
}

type storeWatcher struct{ ch chan struct{} }

// Add registers a watcher of id and returns its channel and the idempotent
// function that releases it.
func (ws *Watchers) Add(id string) (<-chan struct{}, func()) {
	w := &storeWatcher{ch: make(chan struct{}, 1)}
	ws.mu.Lock()
	if ws.m == nil {
		ws.m = make(map[string]map[*storeWatcher]struct{})
	}
	set := ws.m[id]
	if set == nil {
		set = make(map[*storeWatcher]struct{})
		ws.m[id] = set
	}
	set[w] = struct{}{}
	ws.mu.Unlock()
	var once sync.Once
	return w.ch, func() {
		once.Do(func() {
			ws.mu.Lock()
			delete(ws.m[id], w)
			if len(ws.m[id]) == 0 {
				delete(ws.m, id)
			}
			ws.mu.Unlock()
		})
	}
}

// Wake signals the watchers of id.
func (ws *Watchers) Wake(id string) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	wake(ws.m[id])
}

// WakeAll signals every watcher, of every id (after a store may have
// missed notifications, say).
func (ws *Watchers) WakeAll() {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, set := range ws.m {
		wake(set)
	}
}

func wake(set map[*storeWatcher]struct{}) {
	for w := range set {
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}
