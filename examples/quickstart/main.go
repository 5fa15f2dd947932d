// Command quickstart runs the whole gatehouse flow on 127.0.0.1 and prints
// what happens at each step. Everything is in-process:
//
//   - a development OIDC provider (client-credentials for a demo agent and
//     a demo approver);
//   - AWS stand-ins: an S3 that verifies SigV4 (gofakes3) and small Secrets
//     Manager and IAM endpoints; they know only the gateway's own key;
//   - the gateway: keyless session credentials through its STS endpoint,
//     the operation catalog, the starter policy for MCP agents, masking,
//     and an approval broker with its approver API;
//   - the MCP server of examples/mcpserver (package awstools), whose AWS
//     tools hold nothing but the agent's OIDC token (the web-identity flow)
//     and sign the MCP session id and tool name into every AWS call;
//   - the agent: an MCP client calling those tools in turn, and an approver
//     using the approval API.
//
// The agent lists buckets (allowed), reads a secret (masked), deletes a
// production bucket (held: the tool answers approval_pending with the
// approval id, the approver approves, and wait_for_approval makes the
// call), and tries to create an IAM user (denied: a tool error). With
// -serve the gateway and the MCP server keep running and the quickstart
// prints how to try them by hand.
//
// Run it with: go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/examples/mcpserver/awstools"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

const (
	upstreamKey    = "AKIADEMOUPSTREAM01"
	upstreamSecret = "upstream-secret-held-only-by-the-gateway"
	region         = "us-east-1"
	roleARN        = "arn:aws:iam::111122223333:role/mcp-agents"
	audience       = "gatehouse"
)

func main() {
	serve := flag.Bool("serve", false, "keep the gateway and the MCP server running after the demo and print how to use them by hand")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// world is everything the demo runs.
type world struct {
	out      io.Writer
	auditDir string // hash-chained audit trail and session recordings
	trail    *audit.Trail
	idp      *testidp.IdP
	gateway  string
	mcpURL   string // the MCP server's streamable HTTP endpoint
	broker   *approval.Broker
	mu       sync.Mutex
	lastCall *awsproxy.Call
	stop     []func()
}

// step is one tool call of the agent.
type step struct {
	say  string
	tool string
	args map[string]any
}

func run(ctx context.Context, out io.Writer, serve bool) error {
	w := &world{out: out}
	defer func() {
		for i := len(w.stop) - 1; i >= 0; i-- {
			w.stop[i]()
		}
	}()
	if err := w.start(ctx); err != nil {
		return err
	}
	cfg, err := w.startMCPServer()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "gatehouse quickstart: gateway %s, identity provider %s, MCP server %s\n", w.gateway, w.idp.Issuer, w.mcpURL)
	fmt.Fprintln(out, "The MCP server holds no AWS key: only the agent's OIDC token, exchanged at the gateway's STS endpoint.")
	ac := awstools.AWSConfig(cfg)
	ac.Logger = logging.Nop{}
	who, err := sts.NewFromConfig(ac).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("GetCallerIdentity: %w", err)
	}
	fmt.Fprintf(out, "\nthe MCP server's AWS calls run as %s\n", aws.ToString(who.Arn))

	client := mcp.NewClient(&mcp.Implementation{Name: "quickstart-agent", Version: "0.1.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: w.mcpURL, DisableStandaloneSSE: true}, nil)
	if err != nil {
		return fmt.Errorf("connect to the MCP server: %w", err)
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return fmt.Errorf("list tools: %w", err)
	}
	var names []string
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	fmt.Fprintf(out, "agent: MCP session %s, tools: %s\n", cs.ID(), strings.Join(names, ", "))

	steps := []step{
		{"list the buckets", "list_buckets", map[string]any{}},
		{"read the database secret", "get_secret", map[string]any{"secret_id": "prod/db"}},
		{"delete the production bucket prod-reports (needs a human)", "delete_bucket", map[string]any{"bucket": "prod-reports"}},
		{"create an IAM user", "create_iam_user", map[string]any{"user_name": "backdoor"}},
	}
	for i := 0; i < len(steps); i++ {
		s := steps[i]
		args, _ := json.Marshal(s.args)
		fmt.Fprintf(out, "\n-> agent: %s\n   tool:     %s %s\n", s.say, s.tool, args)
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: s.tool, Arguments: s.args})
		if err != nil {
			return fmt.Errorf("%s: %w", s.tool, err)
		}
		text := resultText(res)
		var pending struct {
			Status     string `json:"status"`
			ApprovalID string `json:"approval_id"`
		}
		json.Unmarshal([]byte(text), &pending)
		switch {
		case res.IsError:
			fmt.Fprintf(out, "   result:   tool error: %s\n", text)
		case pending.Status == "approval_pending":
			fmt.Fprintf(out, "   result:   approval_pending, approval_id %s (the call was not made)\n", pending.ApprovalID)
		default:
			fmt.Fprintf(out, "   result:   %s\n", text)
		}
		w.describeLastCall()
		if pending.Status == "approval_pending" {
			w.approveNext(ctx)
			// Next, the agent waits for the approval: the server repeats
			// the identical call, which the approval is bound to.
			steps = append(steps[:i+1], append([]step{{"wait for the approval, then delete", "wait_for_approval",
				map[string]any{"approval_id": pending.ApprovalID, "timeout_seconds": 10}}}, steps[i+1:]...)...)
		}
	}
	if err := cs.Close(); err != nil {
		return err
	}
	if err := w.trail.Close(); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(w.auditDir, "trail", "*.jsonl"))
	rep, err := audit.Verify(files...)
	if err != nil {
		return fmt.Errorf("the audit trail does not verify: %w", err)
	}
	fmt.Fprintf(out, "\naudit trail: %d events in a hash chain that verifies, under %s\n", rep.Events, w.auditDir)
	sessions, _ := audit.Sessions(filepath.Join(w.auditDir, "sessions"))
	for _, ss := range sessions {
		if ss.ID != cs.ID() {
			continue // the STS exchange and the identity check
		}
		dir := filepath.Join(w.auditDir, "sessions")
		fmt.Fprintf(out, "replay the agent's MCP session (%d AWS calls):\n  go run ./examples/replay timeline %s %s\n  go run ./examples/replay html %s %s -o session.html\n",
			ss.Exchanges, dir, ss.ID, dir, ss.ID)
		fmt.Fprintf(out, "verify the trail:\n  go run ./examples/replay verify %s\n", filepath.Join(w.auditDir, "trail"))
	}
	fmt.Fprintln(out, "\ndone: every tool call became AWS calls verified, tied to the agent's identity and MCP session, decided by policy, audited and re-signed by the gateway.")
	if serve {
		fmt.Fprintf(out, "\nThe gateway keeps running at %s and the MCP server at %s (streamable HTTP).\n"+
			"Point an MCP client at the MCP server, or use a stock AWS SDK with an OIDC token for the agent in a file:\n\n"+
			"  export AWS_ROLE_ARN=%s AWS_WEB_IDENTITY_TOKEN_FILE=/path/to/token AWS_REGION=%s\n"+
			"  export AWS_ENDPOINT_URL_STS=%s AWS_ENDPOINT_URL=%s\n\n"+
			"Get a token from the demo identity provider with:\n\n"+
			"  curl -s -u reporting-agent:agent-secret -d grant_type=client_credentials %s\n\nPress Ctrl-C to stop.\n",
			w.gateway, w.mcpURL, roleARN, region, w.gateway, w.gateway, w.idp.TokenURL())
		select {}
	}
	return nil
}

// resultText is a tool result's text, with JSON made compact to print on
// one line.
func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	var buf bytes.Buffer
	if json.Compact(&buf, []byte(b.String())) == nil {
		return buf.String()
	}
	return b.String()
}

// startMCPServer serves the awstools MCP server on 127.0.0.1 with the
// agent's OIDC token in a file, as a workload would have it.
func (w *world) startMCPServer() (awstools.Config, error) {
	token, err := w.clientToken("reporting-agent", "agent-secret")
	if err != nil {
		return awstools.Config{}, err
	}
	dir, err := os.MkdirTemp("", "gatehouse-quickstart-")
	if err != nil {
		return awstools.Config{}, err
	}
	w.stop = append(w.stop, func() { os.RemoveAll(dir) })
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return awstools.Config{}, err
	}
	cfg := awstools.Config{
		Gateway: w.gateway, Region: region, RoleARN: roleARN, Token: stscreds.IdentityTokenFile(tokenFile),
		MaxApprovalWait: 20 * time.Second, PollInterval: 100 * time.Millisecond,
	}
	srv, err := awstools.NewServer(cfg)
	if err != nil {
		return awstools.Config{}, err
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", awstools.Handler(srv))
	u, err := w.listen(mux)
	if err != nil {
		return awstools.Config{}, err
	}
	w.mcpURL = u + "/mcp"
	return cfg, nil
}

// start brings up the identity provider, the AWS stand-ins and the gateway.
func (w *world) start(ctx context.Context) error {
	idp, err := testidp.Start(audience, map[string]testidp.Client{
		"reporting-agent": {Secret: "agent-secret", Subject: "reporting-agent", Groups: []string{"mcp-agents"}},
		"alice":           {Secret: "approver-secret", Subject: "alice", Groups: []string{"platform-oncall"}},
	})
	if err != nil {
		return err
	}
	w.idp = idp
	w.stop = append(w.stop, idp.Close)

	backend := s3mem.New()
	for _, b := range []string{"prod-reports", "scratch"} {
		if err := backend.CreateBucket(ctx, b); err != nil {
			return err
		}
	}
	s3URL, err := w.listen(gofakes3.New(backend, gofakes3.WithV4Auth(map[string]string{upstreamKey: upstreamSecret})).Server())
	if err != nil {
		return err
	}
	secretsURL, err := w.listen(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(rw).Encode(map[string]any{
			"ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-Ab12Cd", "Name": "prod/db",
			"SecretString": `{"username":"app","password":"correct-horse-battery-staple"}`, "VersionId": "1",
		})
	}))
	if err != nil {
		return err
	}
	iamURL, err := w.listen(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		http.Error(rw, "the IAM stand-in must never be reached", http.StatusTeapot)
	}))
	if err != nil {
		return err
	}

	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuers: []identity.Issuer{{URL: idp.Issuer, Audiences: []string{audience}}}})
	if err != nil {
		return err
	}
	roles, err := identity.NewRoleMapper([]identity.Role{{Name: "mcp-agents", ARN: roleARN, When: `"mcp-agents" in principal.groups`}})
	if err != nil {
		return err
	}
	sessions, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{{ID: "demo", Secret: bytes.Repeat([]byte("k"), 32)}}})
	if err != nil {
		return err
	}
	engine, err := demoPolicy()
	if err != nil {
		return err
	}
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		return err
	}
	gw, err := listenURL()
	if err != nil {
		return err
	}
	// The audit trail (fail closed: a call that cannot be audited is not
	// made) and the session recordings stay on disk for the replay tool.
	if w.auditDir, err = os.MkdirTemp("", "gatehouse-quickstart-audit-"); err != nil {
		return err
	}
	sink, err := audit.NewFileSink(audit.FileConfig{Dir: filepath.Join(w.auditDir, "trail")})
	if err != nil {
		return err
	}
	if w.trail, err = audit.NewTrail(audit.TrailConfig{Sink: sink}); err != nil {
		return err
	}
	w.stop = append(w.stop, func() { w.trail.Close() })
	recorder, err := audit.NewFileRecorder(audit.FileRecorderConfig{Dir: filepath.Join(w.auditDir, "sessions")})
	if err != nil {
		return err
	}
	w.broker, err = approval.New(approval.Config{Store: store, URLBase: gw.url + awsproxy.OwnPrefix + "approvals/ui/", Events: awsproxy.ApprovalEvents(w.trail)})
	if err != nil {
		return err
	}
	approvals, err := approval.NewHandler(approval.HandlerConfig{Broker: w.broker})
	if err != nil {
		return err
	}
	handler, err := awsproxy.New(awsproxy.Config{
		Audit:         w.trail,
		Recorder:      recorder,
		Authenticator: awsproxy.SessionAuthenticator(sessions),
		WebIdentity:   &identity.Exchanger{Verifier: verifier, Roles: roles, Sessions: sessions},
		Credentials:   awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider(upstreamKey, upstreamSecret, "")),
		Upstreams:     map[string]string{"s3": s3URL, "secretsmanager": secretsURL, "iam": iamURL},
		Stages:        []awsproxy.Stage{awsproxy.PolicyStage(engine, w.broker)},
		OnDone: func(c *awsproxy.Call) {
			w.mu.Lock()
			w.lastCall = c
			w.mu.Unlock()
		},
	})
	if err != nil {
		return err
	}
	bearer := &identity.Bearer{Verifier: verifier}
	// The gateway's own endpoints live under awsproxy.OwnPrefix, where no
	// AWS request can land; the data path is never behind a ServeMux,
	// which would clean "//", "." and ".." out of S3 keys.
	own := http.NewServeMux()
	own.Handle(awsproxy.OwnPrefix+"approvals/", http.StripPrefix(awsproxy.OwnPrefix+"approvals", bearer.Wrap(approvals)))
	w.gateway = gw.url
	w.stop = append(w.stop, gw.serve(awsproxy.Router{Own: own, Data: handler}))
	return nil
}

// demoPolicy is the starter policy for MCP agents with the hold on
// destructive production S3 calls shortened to a second: a held call
// answers ApprovalPending quickly, and the MCP tool turns that into an
// approval id the agent can wait on.
func demoPolicy() (*policy.Engine, error) {
	cfg, err := policy.Starter("mcp-agents")
	if err != nil {
		return nil, err
	}
	for i := range cfg.Rules {
		if cfg.Rules[i].Name == "approve-s3-destructive-production" && cfg.Rules[i].Approval != nil {
			a := *cfg.Rules[i].Approval
			a.HoldTimeout = time.Second
			cfg.Rules[i].Approval = &a
		}
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		return nil, err
	}
	return policy.NewStaticEngine(p), nil
}

// clientToken runs the client-credentials grant at the identity provider.
func (w *world) clientToken(id, secret string) (string, error) {
	req, err := http.NewRequest(http.MethodPost, w.idp.TokenURL(), strings.NewReader("grant_type=client_credentials"))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("token endpoint answered %s", resp.Status)
	}
	return tok.AccessToken, nil
}

// approveNext plays the approver: it waits for a pending approval, then
// approves it through the approval API with its own token.
func (w *world) approveNext(ctx context.Context) {
	token, err := w.clientToken("alice", "approver-secret")
	if err != nil {
		fmt.Fprintln(w.out, "   approver: no token:", err)
		return
	}
	call := func(method, path string) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, method, w.gateway+awsproxy.OwnPrefix+"approvals"+path, strings.NewReader(`{"reason":"checked the ticket"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		return http.DefaultClient.Do(req)
	}
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		resp, err := call(http.MethodGet, "/approvals?state=pending")
		if err != nil {
			continue
		}
		var list struct {
			Approvals []approval.RecordView `json:"approvals"`
		}
		json.NewDecoder(resp.Body).Decode(&list)
		resp.Body.Close()
		if len(list.Approvals) == 0 {
			continue
		}
		rec := list.Approvals[0]
		fmt.Fprintf(w.out, "   approver: alice sees approval %s: %s on %s (%s)\n", rec.ID, rec.Action, strings.Join(rec.Resources, ", "), rec.Requirements[0].Reason)
		resp, err = call(http.MethodPost, "/approvals/"+rec.ID+"/approve")
		if err == nil {
			fmt.Fprintf(w.out, "   approver: alice approves it (%s)\n", resp.Status)
			resp.Body.Close()
		}
		return
	}
	fmt.Fprintln(w.out, "   approver: nothing to approve")
}

// describeLastCall prints what the gateway decided about the last call.
func (w *world) describeLastCall() {
	w.mu.Lock()
	c := w.lastCall
	w.mu.Unlock()
	if c == nil || c.Decision == nil {
		return
	}
	line := "   gateway:  " + c.Classification.Action
	if r := firstOr(c.Classification.Resources, ""); r != "" {
		line += " " + r
	}
	line += fmt.Sprintf(" -> %s", c.Decision.Effect)
	if c.Decision.Rule != "" {
		line += " by rule " + c.Decision.Rule
	}
	if c.Approval != nil {
		line += fmt.Sprintf(", approval %s %s", c.Approval.ID, c.Approval.State)
	}
	if c.Masked != nil && c.Masked.Masked() {
		var paths []string
		for _, e := range c.Masked.Entries {
			paths = append(paths, e.Path+" ("+string(e.Strategy)+")")
		}
		line += ", masked " + strings.Join(paths, ", ")
	}
	if session, tool := awsproxy.MCPContext(c); session != "" {
		line += fmt.Sprintf(" [signed: MCP tool %s]", tool)
	}
	fmt.Fprintln(w.out, line)
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// listen serves h on a free port of 127.0.0.1.
func (w *world) listen(h http.Handler) (string, error) {
	l, err := listenURL()
	if err != nil {
		return "", err
	}
	w.stop = append(w.stop, l.serve(h))
	return l.url, nil
}

type listener struct {
	ln  net.Listener
	url string
}

func listenURL() (*listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	return &listener{ln: ln, url: "http://" + ln.Addr().String()}, nil
}

// serve starts an http.Server with the timeouts a gateway should have
// against slow clients, and returns its stop function.
func (l *listener) serve(h http.Handler) func() {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20}
	go srv.Serve(l.ln)
	return func() { srv.Close() }
}
