package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
)

// metrics are the gateway's Prometheus series, on a registry of its own
// (no package-level state):
//
//	gatehouse_requests_total{action,decision}   calls by IAM action and decision effect
//	gatehouse_request_duration_seconds{decision} call latency, arrival to last byte
//	gatehouse_approvals_pending                  pending approval records (read on scrape)
//	gatehouse_audit_dropped_total                audit events the file trail could not write
//	gatehouse_policy_reloads_total{result}       SIGHUP policy reloads, ok or error
//	gatehouse_dependency_up{dependency}          1 while a dependency's check passes (read on scrape)
//
// The action label is bounded by the operation catalog; calls the catalog
// cannot classify count as "unknown".
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	drops    prometheus.CounterFunc
	reloads  *prometheus.CounterVec
}

func newMetrics(pending func() (float64, error), auditLost func() float64, deps []*dependency, up func(*dependency) float64) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_requests_total",
			Help: "AWS calls through the gateway by IAM action and decision (allow, deny, approve, refused, none).",
		}, []string{"action", "decision"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "gatehouse_request_duration_seconds",
			Help:    "Time from a call's arrival to its last response byte, by decision.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"decision"}),
		drops: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "gatehouse_audit_dropped_total",
			Help: "Audit completion events the file trail could not write (fail-open losses; fail-closed intents refuse the call instead).",
		}, auditLost),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_policy_reloads_total",
			Help: "Policy reloads by result (ok, error); on error the previous policy keeps serving.",
		}, []string{"result"}),
	}
	pendingGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "gatehouse_approvals_pending",
		Help: "Approval records waiting for a decision, read from the store on scrape (-1 if the store failed).",
	}, func() float64 {
		n, err := pending()
		if err != nil {
			return -1
		}
		return n
	})
	for _, d := range deps {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "gatehouse_dependency_up",
			Help:        "1 while the dependency's check passes, 0 while it fails (checked on scrape); /@gatehouse/status says what each one affects.",
			ConstLabels: prometheus.Labels{"dependency": d.name},
		}, func() float64 { return up(d) }))
	}
	m.reg.MustRegister(m.requests, m.latency, m.drops, m.reloads, pendingGauge,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// observe records one finished call (awsproxy Config.OnDone).
func (m *metrics) observe(c *awsproxy.Call) {
	action := c.Classification.Action
	if action == "" {
		action = "unknown"
	}
	d := effect(c)
	m.requests.WithLabelValues(action, d).Inc()
	m.latency.WithLabelValues(d).Observe(c.Duration.Seconds())
}

// effect is the decision label: the policy effect, "refused" when the
// gateway refused the call before or without a decision, "none" for calls
// no policy decides (the gateway's own STS answers).
func effect(c *awsproxy.Call) string {
	switch {
	case c.Decision != nil:
		return string(c.Decision.Effect)
	case c.Err != nil:
		return "refused"
	default:
		return "none"
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
