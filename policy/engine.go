package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EngineConfig configures an Engine.
type EngineConfig struct {
	// Files are the policy files, merged in order. Reload reads them again.
	// Names of the form "starter:NAME" load an embedded starter policy
	// (see Starter).
	Files []string
	// FS is where Files are read from; nil means the operating system's
	// file system.
	FS fs.FS
	// Options are passed to Compile.
	Options Options
	// Logger receives one line per reload (info when the policy changed,
	// error when a reload failed and the old policy stays); nil means no
	// logging.
	Logger *slog.Logger
}

// Engine serves decisions from the current policy and swaps in a new one
// atomically on Reload or Replace. A policy that fails to load or compile
// never replaces a good one: the error is returned (and logged) and the
// previous policy keeps serving. Decide never blocks on a reload. An Engine
// is safe for concurrent use.
type Engine struct {
	cfg EngineConfig
	cur atomic.Pointer[Policy]
	mu  sync.Mutex // serializes Reload and Replace
	sum [sha256.Size]byte
}

// NewEngine loads and compiles cfg.Files. It fails if they do not make a
// valid policy: an engine always has a policy.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	e := &Engine{cfg: cfg}
	p, sum, err := e.load()
	if err != nil {
		return nil, err
	}
	e.cur.Store(p)
	e.sum = sum
	return e, nil
}

// NewStaticEngine returns an Engine serving p, for policies built in Go.
// Reload on it reports an error; Replace works.
func NewStaticEngine(p *Policy) *Engine {
	e := &Engine{}
	e.cur.Store(p)
	return e
}

// Policy returns the policy currently serving.
func (e *Engine) Policy() *Policy { return e.cur.Load() }

// Decide evaluates in against the current policy.
func (e *Engine) Decide(in *Input) Decision { return e.cur.Load().Decide(in) }

// Explain is Decide with a trace (see Policy.Explain).
func (e *Engine) Explain(in *Input) Decision { return e.cur.Load().Explain(in) }

// errNoFiles is returned by Reload on an engine without files.
var errNoFiles = errors.New("policy: engine has no policy files to reload")

// Reload reads and compiles the files again and swaps the result in. On
// any error the current policy stays and the error is returned.
func (e *Engine) Reload() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cfg.Files) == 0 {
		return errNoFiles
	}
	p, sum, err := e.load()
	if err != nil {
		if e.cfg.Logger != nil {
			e.cfg.Logger.Error("policy: reload failed; keeping the current policy", "revision", e.cur.Load().Revision(), "err", err)
		}
		return err
	}
	old := e.cur.Swap(p)
	e.sum = sum
	if e.cfg.Logger != nil && old.Revision() != p.Revision() {
		e.cfg.Logger.Info("policy: reloaded", "revision", p.Revision(), "previous", old.Revision(), "rules", p.Len())
	}
	return nil
}

// Replace compiles cfg with the engine's options and swaps it in; on error
// the current policy stays.
func (e *Engine) Replace(cfg Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := Compile(cfg, e.cfg.Options)
	if err != nil {
		return err
	}
	e.cur.Store(p)
	return nil
}

// Watch calls Reload whenever the files' contents change, checking every
// interval (minimum 100ms), until ctx is done. Failed reloads are logged
// and retried only after the files change again. It returns ctx's error.
func (e *Engine) Watch(ctx context.Context, interval time.Duration) error {
	interval = max(interval, 100*time.Millisecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	var failed [sha256.Size]byte
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		sum, err := e.digest()
		if err != nil {
			continue
		}
		e.mu.Lock()
		same := sum == e.sum
		e.mu.Unlock()
		if same || sum == failed {
			continue
		}
		if e.Reload() != nil {
			failed = sum
		}
	}
}

func (e *Engine) load() (*Policy, [sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	cfg, data, err := loadFiles(e.cfg.FS, e.cfg.Files)
	if err != nil {
		return nil, sum, err
	}
	p, err := Compile(cfg, e.cfg.Options)
	if err != nil {
		return nil, sum, err
	}
	return p, sha256.Sum256(data), nil
}

// digest hashes the files' current contents.
func (e *Engine) digest() ([sha256.Size]byte, error) {
	h := sha256.New()
	for _, f := range e.cfg.Files {
		b, err := readFile(e.cfg.FS, f)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum, nil
}

func readFile(fsys fs.FS, name string) ([]byte, error) {
	if strings.HasPrefix(name, StarterPrefix) {
		if data, ok := starterFile(name); ok {
			return data, nil
		}
		return nil, unknownStarter(name)
	}
	if fsys == nil {
		return os.ReadFile(name)
	}
	return fs.ReadFile(fsys, name)
}
