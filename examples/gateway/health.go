package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// checkTimeout bounds each dependency check.
const checkTimeout = 2 * time.Second

// dependency is one thing the gateway needs, checked on demand by
// /@gatehouse/readyz (when it gates readiness), /@gatehouse/status and the
// gatehouse_dependency_up gauge.
type dependency struct {
	name string
	// affects says which calls fail while the dependency fails.
	affects string
	// gates is true when every call fails while the dependency fails:
	// readiness follows it. A dependency that only some calls need (the
	// approval store) does not gate: draining every replica for it would
	// also stop the calls that work.
	gates bool
	run   func(context.Context) error
	// failing is the last outcome, for logging changes only.
	failing atomic.Bool
}

// check runs the dependency's check and logs when its outcome changes.
func (g *gateway) check(ctx context.Context, d *dependency) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	err := d.run(ctx)
	if was := d.failing.Swap(err != nil); was != (err != nil) {
		if err != nil {
			g.log.Warn("dependency failing", "dependency", d.name, "affects", d.affects, "err", err)
		} else {
			g.log.Info("dependency recovered", "dependency", d.name)
		}
	}
	return err
}

// dependencies lists what the gateway checks: the audit trail (gating in
// fail-closed mode, where a trail that cannot record refuses every call)
// and the approval store (never gating: only calls that need an approval
// fail without it).
func (g *gateway) dependencies() []*dependency {
	var deps []*dependency
	if t := g.trail; t != nil {
		d := &dependency{name: "audit", run: t.Check}
		if t.Mode() == audit.FailClosed {
			d.affects, d.gates = "every call: the fail-closed trail refuses calls it cannot record", true
		} else {
			d.affects = "no call: the fail-open trail loses events (gatehouse_audit_dropped_total)"
		}
		deps = append(deps, d)
	}
	deps = append(deps, &dependency{
		name:    "approvals",
		affects: "calls that need an approval (they are refused); other calls go ahead",
		run: func(ctx context.Context) error {
			_, err := g.store.List(ctx, approval.Filter{State: approval.Pending, Limit: 1})
			return err
		},
	})
	return deps
}

// readyz answers 200 when calls can succeed: the gateway is configured and
// listening, not draining, and every gating dependency passes its check.
func (g *gateway) readyz(w http.ResponseWriter, r *http.Request) {
	if !g.ready.Load() {
		http.Error(w, "not ready\n", http.StatusServiceUnavailable)
		return
	}
	for _, d := range g.deps {
		if d.gates {
			if err := g.check(r.Context(), d); err != nil {
				http.Error(w, "not ready: "+d.name+" failing\n", http.StatusServiceUnavailable)
				return
			}
		}
	}
	io.WriteString(w, "ready\n")
}

// statusDoc is the body of /@gatehouse/status.
type statusDoc struct {
	Ready        bool              `json:"ready"`
	Dependencies []dependencyState `json:"dependencies"`
}

type dependencyState struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Gates   bool   `json:"gatesReadiness"`
	Affects string `json:"affects"`
	Error   string `json:"error,omitempty"`
}

// status reports every dependency's check, whether or not it gates
// readiness: 200 with the same readiness /@gatehouse/readyz gives, 503
// when not ready.
func (g *gateway) status(w http.ResponseWriter, r *http.Request) {
	doc := statusDoc{Ready: g.ready.Load(), Dependencies: []dependencyState{}}
	for _, d := range g.deps {
		st := dependencyState{Name: d.name, OK: true, Gates: d.gates, Affects: d.affects}
		if err := g.check(r.Context(), d); err != nil {
			st.OK, st.Error = false, err.Error()
			if d.gates {
				doc.Ready = false
			}
		}
		doc.Dependencies = append(doc.Dependencies, st)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !doc.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	json.NewEncoder(w).Encode(doc)
}

// up is the gatehouse_dependency_up value of d: 1 if its check passes.
func (g *gateway) up(d *dependency) float64 {
	if g.check(context.Background(), d) != nil {
		return 0
	}
	return 1
}
