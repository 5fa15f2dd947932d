package approval_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
	"github.com/gatehouse-dev/gatehouse/policy/approval/approvaltest"
)

// tokens is a fake identity.TokenVerifier: token -> principal.
type tokens map[string]identity.Principal

func (v tokens) Verify(_ context.Context, raw string) (*identity.Token, error) {
	p, ok := v[raw]
	if !ok {
		return nil, identity.ErrTokenInvalid
	}
	return &identity.Token{Principal: p}, nil
}

var (
	agent    = approvaltest.Principal("agent-1", "ops")
	alice    = approvaltest.Principal("alice", "ops")
	bob      = approvaltest.Principal("bob", "ops")
	outsider = approvaltest.Principal("mallory", "dev")
)

var testTokens = tokens{"agent": agent, "alice": alice, "bob": bob, "mallory": outsider}

type apiEnv struct {
	*approvaltest.Env
	srv   *httptest.Server
	store approval.Store
}

// newAPI serves the Handler under /approvals-api/ behind identity.Bearer.
func newAPI(t *testing.T, store approval.Store, mod func(*approval.HandlerConfig)) *apiEnv {
	t.Helper()
	if store == nil {
		store = newMemory(t)
	}
	e := &apiEnv{Env: approvaltest.NewEnv(t, store, nil), store: store}
	cfg := approval.HandlerConfig{Broker: e.Broker}
	if mod != nil {
		mod(&cfg)
	}
	h, err := approval.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	bearer := &identity.Bearer{Verifier: testTokens}
	mux := http.NewServeMux()
	mux.Handle("/approvals-api/", http.StripPrefix("/approvals-api", bearer.Wrap(h)))
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *apiEnv) do(t *testing.T, method, path, token, contentType, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+"/approvals-api"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := *e.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *apiEnv) request(t *testing.T, summary map[string]string) approval.Record {
	t.Helper()
	req := approvaltest.Request(agent, "prod", "ops")
	if summary != nil {
		req.Summary = summary
	}
	rec, _, err := e.Broker.Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestAPI(t *testing.T) {
	e := newAPI(t, nil, nil)
	rec := e.request(t, nil)
	id := rec.ID

	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		ctype      string
		body       string
		hdr        []string
		wantStatus int
		wantBody   string
	}{
		{"no token", "GET", "/approvals", "", "", "", nil, 401, ""},
		{"bad token", "GET", "/approvals", "nope", "", "", nil, 401, "invalid_token"},
		{"approver lists pending", "GET", "/approvals", "alice", "", "", nil, 200, `"id":"` + id + `"`},
		{"requester lists own", "GET", "/approvals?state=all", "agent", "", "", nil, 200, `"can_vote":false`},
		{"outsider lists nothing", "GET", "/approvals", "mallory", "", "", nil, 200, `{"approvals":[]}`},
		{"bad state", "GET", "/approvals?state=maybe", "alice", "", "", nil, 400, `"invalid"`},
		{"bad limit", "GET", "/approvals?limit=0", "alice", "", "", nil, 400, `"invalid"`},
		{"show with summary and reason", "GET", "/approvals/" + id, "alice", "", "", nil, 200, `"reason":"deleting a production bucket"`},
		{"show url", "GET", "/approvals/" + id, "alice", "", "", nil, 200, `"url":"https://gw.test/approvals/ui/` + id + `"`},
		{"outsider cannot see", "GET", "/approvals/" + id, "mallory", "", "", nil, 404, `"not_found"`},
		{"unknown id", "GET", "/approvals/nosuchid", "alice", "", "", nil, 404, `"not_found"`},
		{"malformed id", "GET", "/approvals/" + url.PathEscape("../../x"), "alice", "", "", nil, 404, ""},
		{"self approval", "POST", "/approvals/" + id + "/approve", "agent", "", "", nil, 403, `"self_approval"`},
		{"self denial", "POST", "/approvals/" + id + "/deny", "agent", "", "", nil, 403, `"self_approval"`},
		{"outsider approve is not found", "POST", "/approvals/" + id + "/approve", "mallory", "", "", nil, 404, `"not_found"`},
		{"form body refused", "POST", "/approvals/" + id + "/approve", "alice", "application/x-www-form-urlencoded", "reason=x", nil, 415, ""},
		{"bad json", "POST", "/approvals/" + id + "/approve", "alice", "application/json", "{", nil, 400, ""},
		{"cross-site browser post", "POST", "/approvals/" + id + "/approve", "alice", "application/json", "{}", []string{"Sec-Fetch-Site", "cross-site"}, 403, `"cross_origin"`},
		{"cross-origin post", "POST", "/approvals/" + id + "/approve", "alice", "application/json", "{}", []string{"Origin", "https://evil.example"}, 403, `"cross_origin"`},
		{"unknown verb", "POST", "/approvals/" + id + "/delete", "alice", "", "", nil, 404, ""},
		{"reason too long", "POST", "/approvals/" + id + "/approve", "alice", "application/json", `{"reason":"` + strings.Repeat("x", 2000) + `"}`, nil, 400, ""},
		{"approve", "POST", "/approvals/" + id + "/approve", "alice", "application/json", `{"reason":"looks right"}`, nil, 200, `"state":"approved"`},
		{"repeat approve is idempotent", "POST", "/approvals/" + id + "/approve", "alice", "", "", nil, 200, `"state":"approved"`},
		{"second approver too late", "POST", "/approvals/" + id + "/approve", "bob", "", "", nil, 409, `"not_pending"`},
		{"deny after approval", "POST", "/approvals/" + id + "/deny", "bob", "", "", nil, 409, `"not_pending"`},
		{"approved no longer pending", "GET", "/approvals", "alice", "", "", nil, 200, `{"approvals":[]}`},
		{"approved listed by state", "GET", "/approvals?state=approved", "alice", "", "", nil, 200, `"approver":"https://idp.test#alice"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := e.do(t, tt.method, tt.path, tt.token, tt.ctype, tt.body, tt.hdr...)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tt.wantStatus, body)
			}
			if !strings.Contains(body, tt.wantBody) {
				t.Errorf("body %s does not contain %s", body, tt.wantBody)
			}
			if resp.StatusCode != 401 && !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && tt.method == "GET" {
				t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
}

func TestAPINotApprover(t *testing.T) {
	// With a CanView that shows every record, a viewer outside the groups
	// reaches the broker and gets 403 not_approver.
	e := newAPI(t, nil, func(c *approval.HandlerConfig) {
		c.CanView = func(identity.Principal, approval.Record) bool { return true }
	})
	rec := e.request(t, nil)
	resp, body := e.do(t, "POST", "/approvals/"+rec.ID+"/approve", "mallory", "", "")
	if resp.StatusCode != 403 || !strings.Contains(body, `"not_approver"`) {
		t.Errorf("status %d body %s, want 403 not_approver", resp.StatusCode, body)
	}
}

func TestAPIStoreDown(t *testing.T) {
	down := &failingStore{Store: newMemory(t)}
	e := newAPI(t, down, nil)
	rec := e.request(t, nil)
	down.fail.Store(true)
	for _, path := range []string{"/approvals", "/approvals/" + rec.ID} {
		if resp, body := e.do(t, "GET", path, "alice", "", ""); resp.StatusCode != 503 || strings.Contains(body, "database") {
			t.Errorf("GET %s: %d %s, want 503 without internals", path, resp.StatusCode, body)
		}
	}
	if resp, _ := e.do(t, "POST", "/approvals/"+rec.ID+"/approve", "alice", "", ""); resp.StatusCode != 503 {
		t.Errorf("approve with store down: %d, want 503", resp.StatusCode)
	}
}

func TestHandlerWithoutBearer(t *testing.T) {
	h, err := approval.NewHandler(approval.HandlerConfig{Broker: approvaltest.NewEnv(t, newMemory(t), nil).Broker})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/approvals", nil))
	if w.Code != 401 {
		t.Errorf("unauthenticated request: %d, want 401", w.Code)
	}
}

func TestHandlerConfig(t *testing.T) {
	b := approvaltest.NewEnv(t, newMemory(t), nil).Broker
	tests := []struct {
		name string
		cfg  approval.HandlerConfig
		want string
	}{
		{"no broker", approval.HandlerConfig{}, "HandlerConfig.Broker"},
		{"short key", approval.HandlerConfig{Broker: b, CSRFKey: []byte("short")}, "HandlerConfig.CSRFKey"},
		{"bad origin", approval.HandlerConfig{Broker: b, TrustedOrigins: []string{"not a url"}}, "HandlerConfig.TrustedOrigins[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := approval.NewHandler(tt.cfg)
			if !errors.Is(err, approval.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
		})
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func TestUI(t *testing.T) {
	e := newAPI(t, nil, nil)
	rec := e.request(t, map[string]string{"bucket": "prod", "note": `<script>alert(1)</script>`})

	resp, page := e.do(t, "GET", "/ui/", "alice", "", "")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /ui/: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"s3:DeleteBucket", "deleting a production bucket", "arn:aws:s3:::prod", rec.ID,
		`action="` + rec.ID + `/approve"`, `&lt;script&gt;`, "0 of 1 approvals from ops"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("summary rendered unescaped")
	}
	for h, want := range map[string]string{"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"} {
		if resp.Header.Get(h) != want {
			t.Errorf("%s = %q, want %q", h, resp.Header.Get(h), want)
		}
	}
	if !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("CSP %q", resp.Header.Get("Content-Security-Policy"))
	}
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no csrf token in the page")
	}
	aliceToken := m[1]
	_, bobPage := e.do(t, "GET", "/ui/"+rec.ID, "bob", "", "")
	bobToken := csrfRE.FindStringSubmatch(bobPage)[1]
	_, agentPage := e.do(t, "GET", "/ui/"+rec.ID, "agent", "", "")
	if strings.Contains(agentPage, "/approve") {
		t.Error("the requester's page offers approve forms")
	}

	form := func(token, reason string) string {
		return url.Values{"csrf": {token}, "reason": {reason}}.Encode()
	}
	const ctype = "application/x-www-form-urlencoded"
	refused := []struct {
		name   string
		body   string
		hdr    []string
		status int
	}{
		{"no token", form("", "x"), nil, 403},
		{"garbage token", form("123.abc", "x"), nil, 403},
		{"another user's token", form(bobToken, "x"), nil, 403},
		{"cross-site", form(aliceToken, "x"), []string{"Sec-Fetch-Site", "cross-site"}, 403},
		{"foreign origin", form(aliceToken, "x"), []string{"Origin", "https://evil.example"}, 403},
		{"carriage return inserted", form(aliceToken[:len(aliceToken)-5]+"\r"+aliceToken[len(aliceToken)-5:], "x"), nil, 403},
		{"line feed inserted", form(aliceToken[:len(aliceToken)-5]+"\n"+aliceToken[len(aliceToken)-5:], "x"), nil, 403},
		{"CRLF appended", form(aliceToken+"\r\n", "x"), nil, 403},
	}
	for _, tt := range refused {
		t.Run("refused "+tt.name, func(t *testing.T) {
			resp, _ := e.do(t, "POST", "/ui/"+rec.ID+"/approve", "alice", ctype, tt.body, tt.hdr...)
			if resp.StatusCode != tt.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got, _ := e.Broker.Get(context.Background(), rec.ID); got.State != approval.Pending {
				t.Fatalf("record %s after a refused form", got.State)
			}
		})
	}

	// The agent (in group ops) gets a valid token from a page where it may
	// vote on someone else's request, then tries its own.
	if _, _, err := e.Broker.Request(context.Background(), approvaltest.Request(bob, "bobs", "ops")); err != nil {
		t.Fatal(err)
	}
	_, agentList := e.do(t, "GET", "/ui/", "agent", "", "")
	agentToken := csrfRE.FindStringSubmatch(agentList)[1]
	resp, page = e.do(t, "POST", "/ui/"+rec.ID+"/approve", "agent", ctype, form(agentToken, "me"))
	if resp.StatusCode != 403 || !strings.Contains(page, "cannot approve or deny your own request") {
		t.Errorf("self approval via form: %d", resp.StatusCode)
	}

	resp, _ = e.do(t, "POST", "/ui/"+rec.ID+"/approve", "alice", ctype, form(aliceToken, "ship it"), "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "../"+rec.ID {
		t.Fatalf("approve via form: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resolved, _ := url.Parse(e.srv.URL + "/approvals-api/ui/" + rec.ID + "/approve")
	if loc, _ := resolved.Parse(resp.Header.Get("Location")); loc.Path != "/approvals-api/ui/"+rec.ID {
		t.Errorf("redirect resolves to %s", loc.Path)
	}
	_, page = e.do(t, "GET", "/ui/"+rec.ID, "alice", "", "")
	if !strings.Contains(page, "approved") || !strings.Contains(page, "ship it") {
		t.Error("the record page does not show the approval")
	}

	resp, page = e.do(t, "POST", "/ui/"+rec.ID+"/deny", "bob", ctype, form(bobToken, "late"))
	if resp.StatusCode != 409 || !strings.Contains(page, "no longer pending") {
		t.Errorf("deny after approval via form: %d", resp.StatusCode)
	}

	// Tokens expire.
	e.Clock.Advance(approval.CSRFTokenTTL + time.Second)
	resp, _ = e.do(t, "POST", "/ui/"+rec.ID+"/deny", "alice", ctype, form(aliceToken, "x"))
	if resp.StatusCode != 403 {
		t.Errorf("expired token: %d, want 403", resp.StatusCode)
	}

	if resp, _ := e.do(t, "GET", "/ui", "alice", "", ""); resp.StatusCode != 301 || resp.Header.Get("Location") != "ui/" {
		t.Errorf("GET /ui: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestUISharedCSRFKey(t *testing.T) {
	// Two replicas with one CSRF key accept each other's forms.
	store := newMemory(t)
	key := []byte(strings.Repeat("k", 32))
	a := newAPI(t, store, func(c *approval.HandlerConfig) { c.CSRFKey = key })
	b := newAPI(t, store, func(c *approval.HandlerConfig) { c.CSRFKey = key })
	rec := a.request(t, nil)
	_, page := a.do(t, "GET", "/ui/", "alice", "", "")
	token := csrfRE.FindStringSubmatch(page)[1]
	resp, _ := b.do(t, "POST", "/ui/"+rec.ID+"/approve", "alice", "application/x-www-form-urlencoded", url.Values{"csrf": {token}}.Encode())
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("form from replica A posted to B: %d", resp.StatusCode)
	}
}

func TestAPIRecordJSON(t *testing.T) {
	e := newAPI(t, nil, nil)
	rec := e.request(t, nil)
	_, body := e.do(t, "GET", "/approvals/"+rec.ID, "alice", "", "")
	var v approval.RecordView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != rec.ID || v.Action != "s3:DeleteBucket" || v.Summary["bucket"] != "prod" || !v.CanVote ||
		v.Requirements[0].Reason != "deleting a production bucket" || v.Requester.Subject != "agent-1" {
		t.Errorf("view = %+v", v)
	}
}

// TestUIShowsDetail: the page and the API show approvers the effective
// request an approval is bound to: bound headers, the body's digest and
// its masked preview, the policy revision; all of it escaped.
func TestUIShowsDetail(t *testing.T) {
	e := newAPI(t, nil, nil)
	req := approvaltest.Request(agent, "prod", "ops")
	req.PolicyRevision = "rev-7f3a"
	req.Detail = &approval.Detail{
		Service: "s3", Operation: "PutBucketPolicy", Region: "us-east-1", Method: "PUT", Path: "/prod", Query: "policy=",
		Headers: []approval.Header{
			{Name: "x-amz-expected-bucket-owner", Value: "123456789012"},
			{Name: "x-amz-server-side-encryption-customer-key", Value: "sha256:abcd", Digest: true},
		},
		Body: &approval.Body{Size: 42, SHA256: strings.Repeat("ab", 32), ContentType: "application/json",
			Preview: `{"Principal":"*","note":"<script>alert(1)</script>"}`, Masked: true},
	}
	rec, _, err := e.Broker.Request(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	_, page := e.do(t, "GET", "/ui/"+rec.ID, "alice", "", "")
	for _, want := range []string{"PUT /prod?policy=", "PutBucketPolicy", "x-amz-expected-bucket-owner: 123456789012",
		"x-amz-server-side-encryption-customer-key: sha256:abcd</code> (secret, digest shown)", "42 bytes", strings.Repeat("ab", 32),
		"secrets masked", "&#34;Principal&#34;:&#34;*&#34;", "&lt;script&gt;", "rev-7f3a"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script>") {
		t.Error("the preview is rendered unescaped")
	}
	_, body := e.do(t, "GET", "/approvals/"+rec.ID, "alice", "", "")
	var v approval.RecordView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if v.Detail == nil || v.Detail.Body == nil || v.Detail.Body.Preview != req.Detail.Body.Preview || len(v.Detail.Headers) != 2 || v.Policy != "rev-7f3a" {
		t.Fatalf("API record detail %+v policy %q", v.Detail, v.Policy)
	}
}

func TestRequestDetailBounds(t *testing.T) {
	e := newAPI(t, nil, nil)
	big := strings.Repeat("x", approval.MaxBodyPreview+1)
	tests := []struct {
		name   string
		detail approval.Detail
	}{
		{"preview too long", approval.Detail{Body: &approval.Body{SHA256: strings.Repeat("0", 64), Preview: big}}},
		{"preview not UTF-8", approval.Detail{Body: &approval.Body{SHA256: strings.Repeat("0", 64), Preview: "\xff"}}},
		{"body without digest", approval.Detail{Body: &approval.Body{Preview: "x"}}},
		{"header without name", approval.Detail{Headers: []approval.Header{{Value: "v"}}}},
		{"too many headers", approval.Detail{Headers: make([]approval.Header, approval.MaxDetailHeaders+1)}},
		{"path too long", approval.Detail{Path: strings.Repeat("/", approval.MaxDetailField+1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := approvaltest.Request(agent, "prod", "ops")
			req.Detail = &tt.detail
			_, _, err := e.Broker.Request(context.Background(), req)
			var inv *approval.InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("err %v, want *InvalidError", err)
			}
		})
	}
}
