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
// digits, ".", "-", "_"), so no path-style S3 request starts with it. AWS
// REST API paths start with a letter, a digit, a label whose values cannot
// hold "@", or (API Gateway Management's "/@connections/") another fixed
// word. S3 keys may start with "@gatehouse/", so a virtual-hosted S3
// request (bucket in the Host) always goes to the data path; Router asks
// the Handler which hosts those are. So no AWS request lands on the
// gateway's endpoints and no bucket or key is shadowed by them.
const OwnPrefix = "/@gatehouse/"

// Router splits one listener between a gateway's own endpoints (Own, for
// paths under OwnPrefix) and the AWS data path (Data, everything else,
// and every virtual-hosted S3 request when Data is a *Handler) by the
// request path exactly as it was sent. It never cleans, redirects or
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
	if raw := r.URL.EscapedPath(); !strings.HasPrefix(raw, OwnPrefix) && raw != strings.TrimSuffix(OwnPrefix, "/") || rt.virtualHosted(r) {
		rt.Data.ServeHTTP(w, r)
		return
	}
	if p := r.URL.Path; !strings.HasPrefix(p, OwnPrefix) || cleanPath(p) != p || r.URL.RawPath != "" || rt.Own == nil {
		http.NotFound(w, r)
		return
	}
	rt.Own.ServeHTTP(w, r)
}

// virtualHosted reports whether r addresses an S3 bucket in its Host (when
// Data is a *Handler with Config.VirtualHostDomains): its path is a key.
func (rt Router) virtualHosted(r *http.Request) bool {
	h, ok := rt.Data.(*Handler)
	if !ok {
		return false
	}
	_, ok = h.virtualBucket(r.Host)
	return ok
}

// cleanPath is path.Clean keeping a trailing slash.
func cleanPath(p string) string {
	c := path.Clean(p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}
