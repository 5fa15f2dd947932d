package awsproxy

import (
	"net/http"
	"path"
	"strings"
)

// OwnPrefix is the path prefix under which a gateway serves its own
// endpoints (approvals, probes, metrics) beside the AWS data path on one
// listener. Every other path is the AWS data path.
//
// "@" cannot appear in an S3 bucket name (legacy names included: letters,
// digits, ".", "-", "_"), so no path-style S3 request starts with it, and no
// AWS REST API path starts with it either (they start with a letter, a
// digit or a label whose values cannot hold "@"). So no AWS request lands
// on the gateway's endpoints and no bucket is shadowed by them.
const OwnPrefix = "/@gatehouse/"

// Router splits one listener between a gateway's own endpoints (Own, for
// paths under OwnPrefix) and the AWS data path (Data, everything else) by
// the request path exactly as it was sent. It never cleans, redirects or
// otherwise rewrites a data path: http.ServeMux would (it answers 307 for
// "//", "." and ".." segments, which are legal, distinct S3 keys), so the
// data path must never be behind one. Own sees only clean paths under
// OwnPrefix (an unclean one is not found), so a mux there cannot redirect
// to a path outside the prefix.
type Router struct {
	Own  http.Handler
	Data http.Handler
}

// ServeHTTP implements http.Handler.
func (rt Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if raw := r.URL.EscapedPath(); !strings.HasPrefix(raw, OwnPrefix) && raw != strings.TrimSuffix(OwnPrefix, "/") {
		rt.Data.ServeHTTP(w, r)
		return
	}
	if p := r.URL.Path; !strings.HasPrefix(p, OwnPrefix) || cleanPath(p) != p || r.URL.RawPath != "" || rt.Own == nil {
		http.NotFound(w, r)
		return
	}
	rt.Own.ServeHTTP(w, r)
}

// cleanPath is path.Clean keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
