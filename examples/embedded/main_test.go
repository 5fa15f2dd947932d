package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/internal/syncbuf"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

const audience = "gatehouse-embedded"

// jsonLines decodes the JSON log lines written to buf.
func jsonLines(buf *syncbuf.Buffer) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

type fixture struct {
	idp    *testidp.IdP
	url    string
	audit  *syncbuf.Buffer
	broker *approval.Broker
	events *audittest.Memory // the audit trail's events
}

func start(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	idp, err := testidp.Start(audience, map[string]testidp.Client{
		"ops-agent":    {Secret: "s1", Subject: "ops-agent", Groups: []string{"mcp-agents", "data-operators"}},
		"reader-agent": {Secret: "s2", Subject: "reader-agent", Groups: []string{"mcp-agents"}},
		"someone-else": {Secret: "s3", Subject: "someone-else", Groups: []string{"marketing"}},
		"data-owner":   {Secret: "s4", Subject: "dana", Groups: []string{"data-owners"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuers: []identity.Issuer{{URL: idp.Issuer, Audiences: []string{audience}}}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	buf := &syncbuf.Buffer{}
	events := &audittest.Memory{}
	trail, err := audit.NewTrail(audit.TrailConfig{Sink: events})
	if err != nil {
		t.Fatal(err)
	}
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := approval.New(approval.Config{Store: store, URLBase: base + "/approvals/ui/"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHandler(Config{
		BaseURL: base, Issuers: []string{idp.Issuer}, Verifier: verifier,
		Logger: slog.New(slog.NewJSONHandler(buf, nil)), Broker: broker, Audit: trail,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return &fixture{idp: idp, url: base, audit: buf, broker: broker, events: events}
}

// bearerTransport adds the token to every request of the MCP client.
type bearerTransport struct{ token string }

func (b bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func (f *fixture) connect(t *testing.T, client string) *mcp.ClientSession {
	t.Helper()
	tok, err := f.idp.Token(client)
	if err != nil {
		t.Fatal(err)
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint: f.url + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{tok}}, DisableStandaloneSSE: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *mcp.ClientSession) []string {
	t.Helper()
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	return names
}

func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (string, bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v (denials must be tool errors)", tool, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

func TestGuardedServer(t *testing.T) {
	f := start(t)
	cs := f.connect(t, "ops-agent")

	// tools/list is filtered: drop_database is for DBAs only.
	if got, want := toolNames(t, cs), []string{"delete_records", "echo", "read_config"}; !slices.Equal(got, want) {
		t.Errorf("ops-agent sees tools %v, want %v", got, want)
	}

	// An allowed call.
	if out, isErr := call(t, cs, "echo", map[string]any{"text": "hello"}); isErr || out != "hello" {
		t.Errorf("echo = %q, isError %v", out, isErr)
	}

	// A masked result: the password, the API key and the DSN's password
	// never leave the server; the rest does.
	out, isErr := call(t, cs, "read_config", map[string]any{"service": "billing"})
	if isErr {
		t.Fatalf("read_config failed: %s", out)
	}
	for _, secret := range []string{"correct-horse-battery-staple", "sk_live_51HxQeRkZ9aV3bC7", "s3cr3t-pw"} {
		if strings.Contains(out, secret) {
			t.Errorf("read_config leaked %q: %s", secret, out)
		}
	}
	var cfg struct {
		Service  string `json:"service"`
		APIKey   string `json:"api_key"`
		Database struct {
			Host     string `json:"host"`
			Password string `json:"password"`
		} `json:"database"`
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("masked result is not JSON: %v: %s", err, out)
	}
	if cfg.Database.Password != "****" || cfg.APIKey != "****3bC7" || cfg.Database.Host != "db.internal" || cfg.Service != "billing" {
		t.Errorf("masked config = %+v", cfg)
	}

	// Allowed by rule, then denied by an argument rule: a tool error.
	if out, isErr := call(t, cs, "delete_records", map[string]any{"table": "sandbox_orders"}); isErr || !strings.Contains(out, "deleted 3 records") {
		t.Errorf("delete sandbox = %q, isError %v", out, isErr)
	}
	out, isErr = call(t, cs, "delete_records", map[string]any{"table": "prod_orders"})
	if !isErr || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, "deny-production-deletes") {
		t.Errorf("delete prod = %q, isError %v; want a tool error naming the rule", out, isErr)
	}
	// A hidden tool called anyway: denied, as a tool error.
	out, isErr = call(t, cs, "drop_database", map[string]any{"database": "billing"})
	if !isErr || !strings.Contains(out, "no rule allows it") {
		t.Errorf("drop_database = %q, isError %v", out, isErr)
	}

	// One audit line per tool call, tied to the session and the principal.
	lines := jsonLines(f.audit)
	if len(lines) != 5 {
		t.Fatalf("audit lines = %d, want 5: %v", len(lines), lines)
	}
	for _, l := range lines {
		if l["session"] != cs.ID() || !strings.Contains(l["principal"].(string), "ops-agent") {
			t.Errorf("audit line %v: want session %q and principal ops-agent", l, cs.ID())
		}
	}
	if l := lines[1]; l["tool"] != "read_config" || l["masked"].(float64) < 3 {
		t.Errorf("read_config audit = %v", l)
	}
	if l := lines[3]; l["tool"] != "delete_records" || l["effect"] != "deny" || l["rule"] != "deny-production-deletes" || l["is_error"] != true {
		t.Errorf("prod delete audit = %v", l)
	}

	// The audit trail has the calls, tied to the principal and the tool.
	var sawMasked bool
	for _, e := range f.events.Events() {
		if e.Request.MCPTool == "read_config" && e.Principal.Subject == "ops-agent" && len(e.Masks) > 0 {
			sawMasked = true
		}
	}
	if !sawMasked {
		t.Errorf("no audit event for the masked read_config call among %d", len(f.events.Events()))
	}
}

func TestListFilteredPerPrincipal(t *testing.T) {
	f := start(t)
	if got, want := toolNames(t, f.connect(t, "reader-agent")), []string{"echo", "read_config"}; !slices.Equal(got, want) {
		t.Errorf("reader-agent sees %v, want %v", got, want)
	}
	cs := f.connect(t, "someone-else")
	if got := toolNames(t, cs); len(got) != 0 {
		t.Errorf("someone-else sees %v, want nothing", got)
	}
	if out, isErr := call(t, cs, "echo", map[string]any{"text": "x"}); !isErr || !strings.Contains(out, "AccessDenied") {
		t.Errorf("echo by someone-else = %q, isError %v", out, isErr)
	}
}

func TestUnauthenticated(t *testing.T) {
	f := start(t)
	resp, err := http.Post(f.url+"/mcp", "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	want := `resource_metadata="` + f.url + MetadataPath + `"`
	if got := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || !strings.Contains(got, want) {
		t.Errorf("WWW-Authenticate = %q, want %s", got, want)
	}

	resp, err = http.Get(f.url + MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md identity.ResourceMetadata
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	if md.Resource != f.url+"/mcp" || !slices.Equal(md.AuthorizationServers, []string{f.idp.Issuer}) {
		t.Errorf("metadata = %+v", md)
	}

	// A token that does not verify is refused.
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	_, err = c.Connect(context.Background(), &mcp.StreamableClientTransport{
		Endpoint: f.url + "/mcp", HTTPClient: &http.Client{Transport: bearerTransport{"not-a-token"}}, DisableStandaloneSSE: true, MaxRetries: -1,
	}, nil)
	if err == nil {
		t.Error("connect with a bad token succeeded")
	}
}

func TestApproval(t *testing.T) {
	f := start(t)
	cs := f.connect(t, "ops-agent")
	args := map[string]any{"table": "customers_eu", "where": "inactive"}

	// The call is held: the result carries the approval id, the tool did
	// not run.
	out, isErr := call(t, cs, "delete_records", args)
	var pending struct {
		Status      string `json:"status"`
		ApprovalID  string `json:"approval_id"`
		ApprovalURL string `json:"approval_url"`
	}
	if err := json.Unmarshal([]byte(out), &pending); err != nil || isErr {
		t.Fatalf("delete customers = %q, isError %v", out, isErr)
	}
	if pending.Status != "approval_pending" || pending.ApprovalID == "" || !strings.HasPrefix(pending.ApprovalURL, f.url+"/approvals/ui/") {
		t.Fatalf("pending = %+v", pending)
	}
	rec, err := f.broker.Get(context.Background(), pending.ApprovalID)
	if err != nil || rec.Action != "mcp:delete_records" || rec.State != approval.Pending {
		t.Fatalf("approval record %+v, %v", rec, err)
	}
	// The approver sees the arguments the approval is bound to, and the
	// policy revision it was asked under.
	if d := rec.Detail; d == nil || d.Operation != "delete_records" || d.Body == nil ||
		d.Body.Preview != `{"table":"customers_eu","where":"inactive"}` || len(d.Body.SHA256) != 64 || rec.Policy == "" {
		t.Fatalf("approval detail %+v (body %+v), policy %q", rec.Detail, rec.Detail.Body, rec.Policy)
	}
	// Other arguments are another call: the approval does not cover them.
	if out, _ := call(t, cs, "delete_records", map[string]any{"table": "customers_us"}); strings.Contains(out, pending.ApprovalID) || strings.Contains(out, "deleted") {
		t.Errorf("a different call shares the approval: %s", out)
	}

	// A data owner approves through the approval API, with a bearer token.
	tok, err := f.idp.Token("data-owner")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, f.url+"/approvals/approvals/"+pending.ApprovalID+"/approve", strings.NewReader(`{"reason":"ticket 42"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("approve: %s", resp.Status)
	}

	// The identical call now runs, once.
	if out, isErr := call(t, cs, "delete_records", args); isErr || out != "deleted 3 records from customers_eu" {
		t.Errorf("approved delete = %q, isError %v", out, isErr)
	}
	lines := jsonLines(f.audit)
	// The grant was used: the same call again does not run.
	if out, _ := call(t, cs, "delete_records", args); strings.Contains(out, "deleted") {
		t.Errorf("the approval was used twice: %s", out)
	}
	if l := lines[len(lines)-1]; l["approval"] != pending.ApprovalID || l["effect"] != "approve" || l["is_error"] != false {
		t.Errorf("audit of the approved call = %v", l)
	}
}
