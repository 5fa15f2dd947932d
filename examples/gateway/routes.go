package main

import (
	"io"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
)

// OwnPrefix is the path prefix of the gateway's own endpoints (see
// awsproxy.OwnPrefix and awsproxy.Router).
const OwnPrefix = awsproxy.OwnPrefix

// routes is the listener's handler: the gateway's own endpoints under
// OwnPrefix, the AWS data path everywhere else.
func (g *gateway) routes() http.Handler {
	own := http.NewServeMux()
	own.Handle(OwnPrefix+"approvals/", g.approver)
	own.HandleFunc("GET "+OwnPrefix+"healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	own.HandleFunc("GET "+OwnPrefix+"readyz", g.readyz)
	own.HandleFunc("GET "+OwnPrefix+"status", g.status)
	own.Handle("GET "+OwnPrefix+"metrics", g.metrics.handler())
	return awsproxy.Router{Own: own, Data: g.proxy}
}
