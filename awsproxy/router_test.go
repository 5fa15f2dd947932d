package awsproxy

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzRouter sends arbitrary request targets through the router: a target
// outside OwnPrefix reaches the data path with its path exactly as sent;
// one inside reaches the endpoints' mux only when it is clean, and nothing
// is ever redirected.
func FuzzRouter(f *testing.F) {
	for _, s := range []string{
		"/", "/bucket/key", "/bucket//key", "/bucket/a/../../other/x", "/bucket/%2E%2E/x", "/bucket/a%2Fb",
		OwnPrefix + "healthz", OwnPrefix + "../bucket/x", OwnPrefix + "approvals/ui/", OwnPrefix + "%2e%2e/x",
		"/%40gatehouse/healthz", "//" + OwnPrefix, "/@gatehouse", "*", "/ü/ключ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: gw\r\n\r\n")))
		if err != nil {
			return // net/http refuses it before any handler
		}
		sent := req.URL.EscapedPath()
		var where string
		var seen string
		rt := Router{
			Own: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				where, seen = "own", r.URL.Path
			}),
			Data: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				where, seen = "data", r.URL.EscapedPath()
			}),
		}
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		if rec.Code >= 300 && rec.Code < 400 {
			t.Fatalf("%q redirected (%d)", target, rec.Code)
		}
		own := strings.HasPrefix(sent, OwnPrefix) || sent == strings.TrimSuffix(OwnPrefix, "/")
		switch {
		case !own && (where != "data" || seen != sent):
			t.Fatalf("%q: reached %s with path %q, want the data path with %q", target, where, seen, sent)
		case own && where == "data":
			t.Fatalf("%q under %s reached the data path", target, OwnPrefix)
		case own && where == "own" && (cleanPath(seen) != seen || !strings.HasPrefix(seen, OwnPrefix)):
			t.Fatalf("%q reached the endpoints with the unclean path %q", target, seen)
		case own && where == "" && rec.Code != http.StatusNotFound:
			t.Fatalf("%q refused with %d, want 404", target, rec.Code)
		}
	})
}

// TestRouterVirtualHostedKeys: under virtual-hosted addressing the path is
// a key, and a key may start with "@gatehouse/": such a request goes to
// the data path, not the gateway's endpoints.
func TestRouterVirtualHostedKeys(t *testing.T) {
	h, err := New(Config{Authenticator: StaticAuthenticator{}, Credentials: StaticCredentials(nil), VirtualHostDomains: []string{"s3.gw.example"}})
	if err != nil {
		t.Fatal(err)
	}
	own := false
	rt := Router{Own: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { own = true }), Data: h}
	for _, tc := range []struct {
		host string
		own  bool
	}{
		{"bucket.s3.gw.example", false},
		{"bucket.s3.gw.example:8443", false},
		{"gw.example", true},
		{"s3.gw.example", true},
	} {
		own = false
		r := httptest.NewRequest("GET", "http://"+tc.host+OwnPrefix+"healthz", nil)
		rt.ServeHTTP(httptest.NewRecorder(), r)
		if own != tc.own {
			t.Errorf("Host %s: reached the endpoints %v, want %v", tc.host, own, tc.own)
		}
	}
}
