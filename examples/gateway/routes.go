package main

import (
	"io"
	"net/http"
	"path"
	"strings"
)

// OwnPrefix is the path prefix of the gateway's own endpoints (approvals,
// probes, metrics). Every other path is the AWS data path.
//
// "@" cannot appear in an S3 bucket name (legacy names included: letters,
// digits, ".", "-", "_"), so no path-style S3 request starts with it, and no
// AWS REST API path starts with it either (they start with a letter, a
// digit or a label whose values cannot hold "@"). So no AWS request lands
// on the gateway's endpoints and no bucket is shadowed by them.
const OwnPrefix = "/@gatehouse/"

// router splits the listener between the gateway's own endpoints and the
// AWS data path by the request path exactly as it was sent. It never
// cleans, redirects or otherwise rewrites a path: http.ServeMux would
// (it answers 307 for "//", "." and ".." segments, which are legal, distinct
// S3 keys), so the data path is not behind one.
type router struct {
	own  http.Handler // sees only clean paths under OwnPrefix
	data http.Handler
}

func (rt router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if raw := r.URL.EscapedPath(); !strings.HasPrefix(raw, OwnPrefix) && raw != strings.TrimSuffix(OwnPrefix, "/") {
		rt.data.ServeHTTP(w, r)
		return
	}
	// The mux behind would redirect an unclean path to its cleaned form,
	// which can name a path outside OwnPrefix: such a path is not found.
	if p := r.URL.Path; !strings.HasPrefix(p, OwnPrefix) || cleanPath(p) != p || r.URL.RawPath != "" {
		http.NotFound(w, r)
		return
	}
	rt.own.ServeHTTP(w, r)
}

// cleanPath is path.Clean keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

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
	return router{own: own, data: g.proxy}
}
