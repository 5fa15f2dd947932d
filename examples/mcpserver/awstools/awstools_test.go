package awstools

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

const (
	upstreamKey    = "AKIATESTUPSTREAM01"
	upstreamSecret = "upstream-secret-held-only-by-the-gateway"
	roleARN        = "arn:aws:iam::111122223333:role/mcp-agents"
	audience       = "gatehouse"
	dbPassword     = "correct-horse-battery-staple"
)

// world is the quickstart's setup, reduced: an OIDC provider, AWS
// stand-ins that know only the gateway's key, the gateway with keyless
// sessions, the starter policy and an approval broker, and the MCP server
// under test with an MCP client connected to it.
type world struct {
	idp     *testidp.IdP
	gateway string
	broker  *approval.Broker
	backend *s3mem.Backend

	mu    sync.Mutex
	calls []*awsproxy.Call
}

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// starterWithShortHold is the starter policy with the production-S3 hold
// shortened, so a held call answers ApprovalPending after a second.
func starterWithShortHold(t *testing.T) *policy.Engine {
	t.Helper()
	cfg, err := policy.Starter("mcp-agents")
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Rules {
		if cfg.Rules[i].Name == "approve-s3-destructive-production" {
			a := *cfg.Rules[i].Approval
			a.HoldTimeout = time.Second
			cfg.Rules[i].Approval = &a
		}
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return policy.NewStaticEngine(p)
}

func startWorld(t *testing.T) *world {
	t.Helper()
	return startWorldWith(t, "http://approvals.invalid/ui/")
}

// startWorldWith starts the world with the approval broker's URL base
// (empty: no approval page configured).
func startWorldWith(t *testing.T, urlBase string) *world {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "")
	ctx := context.Background()
	w := &world{}
	idp, err := testidp.Start(audience, map[string]testidp.Client{
		"reporting-agent": {Secret: "agent-secret", Subject: "reporting-agent", Groups: []string{"mcp-agents"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	w.idp = idp

	w.backend = s3mem.New()
	for _, b := range []string{"prod-reports", "scratch"} {
		if err := w.backend.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	s3URL := serve(t, gofakes3.New(w.backend, gofakes3.WithV4Auth(map[string]string{upstreamKey: upstreamSecret})).Server())
	secretsURL := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(rw).Encode(map[string]any{
			"ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-Ab12Cd", "Name": "prod/db",
			"SecretString": `{"username":"app","password":"` + dbPassword + `"}`, "VersionId": "1",
		})
	}))
	ec2URL := serve(t, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		rw.Header().Set("Content-Type", "text/xml")
		rw.Write([]byte(`<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r1</requestId>` +
			`<reservationSet><item><reservationId>r-1</reservationId><ownerId>111122223333</ownerId><instancesSet><item>` +
			`<instanceId>i-0123456789abcdef0</instanceId><instanceType>t3.micro</instanceType>` +
			`<instanceState><code>16</code><name>running</name></instanceState></item></instancesSet></item></reservationSet>` +
			`</DescribeInstancesResponse>`))
	}))

	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuers: []identity.Issuer{{URL: idp.Issuer, Audiences: []string{audience}}}})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := identity.NewRoleMapper([]identity.Role{{Name: "mcp-agents", ARN: roleARN, When: `"mcp-agents" in principal.groups`}})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{{ID: "test", Secret: bytes.Repeat([]byte("k"), 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	w.broker, err = approval.New(approval.Config{Store: store, URLBase: urlBase})
	if err != nil {
		t.Fatal(err)
	}
	handler, err := awsproxy.New(awsproxy.Config{
		Authenticator: awsproxy.SessionAuthenticator(sessions),
		WebIdentity:   &identity.Exchanger{Verifier: verifier, Roles: roles, Sessions: sessions},
		Credentials:   awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider(upstreamKey, upstreamSecret, "")),
		Upstreams:     map[string]string{"s3": s3URL, "secretsmanager": secretsURL, "ec2": ec2URL},
		Stages:        []awsproxy.Stage{awsproxy.PolicyStage(starterWithShortHold(t), w.broker)},
		OnDone: func(c *awsproxy.Call) {
			w.mu.Lock()
			w.calls = append(w.calls, c)
			w.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.gateway = serve(t, handler)
	return w
}

// connect starts the MCP server under test with the agent's token file
// and connects an MCP client to it over streamable HTTP.
func (w *world) connect(t *testing.T) *mcp.ClientSession {
	t.Helper()
	tok, err := w.idp.Token("reporting-agent")
	if err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(Config{
		Gateway: w.gateway, RoleARN: roleARN, Token: stscreds.IdentityTokenFile(tokenFile),
		MaxApprovalWait: 10 * time.Second, PollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", Handler(srv))
	url := serve(t, mux)
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "1"}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url + "/mcp", DisableStandaloneSSE: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) (*mcp.CallToolResult, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return res, b.String()
}

// lastCall returns the last AWS call the gateway finished for operation.
func (w *world) lastCall(t *testing.T, operation string) *awsproxy.Call {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := len(w.calls) - 1; i >= 0; i-- {
		if w.calls[i].Classification.Operation == operation {
			return w.calls[i]
		}
	}
	t.Fatalf("the gateway saw no %s call", operation)
	return nil
}

func TestAWSToolsThroughGateway(t *testing.T) {
	w := startWorld(t)
	cs := w.connect(t)

	// Allowed: list buckets, with the MCP session and tool in signed headers.
	res, out := call(t, cs, "list_buckets", nil)
	if res.IsError || !strings.Contains(out, "prod-reports") || !strings.Contains(out, "scratch") {
		t.Fatalf("list_buckets = %s (isError %v)", out, res.IsError)
	}
	c := w.lastCall(t, "ListBuckets")
	if got := c.Request.Header.Get(HeaderTool); got != "list_buckets" {
		t.Errorf("gateway saw %s %q, want list_buckets", HeaderTool, got)
	}
	if got := c.Request.Header.Get(HeaderSession); got == "" || got != cs.ID() {
		t.Errorf("gateway saw %s %q, want the MCP session id %q", HeaderSession, got, cs.ID())
	}
	if sh := strings.ToLower(c.Request.Header.Get("Authorization")); !strings.Contains(sh, "x-gatehouse-mcp-session") || !strings.Contains(sh, "x-gatehouse-mcp-tool") {
		t.Errorf("the MCP headers are not signed: %s", c.Request.Header.Get("Authorization"))
	}

	// Allowed and masked by the gateway: the secret value never reaches the agent.
	res, out = call(t, cs, "get_secret", map[string]any{"secret_id": "prod/db"})
	if res.IsError || strings.Contains(out, dbPassword) || !strings.Contains(out, "****") {
		t.Errorf("get_secret = %s (isError %v), want a masked secret", out, res.IsError)
	}
	if c := w.lastCall(t, "GetSecretValue"); c.Request.Header.Get(HeaderTool) != "get_secret" || !c.Masked.Masked() {
		t.Errorf("GetSecretValue: tool header %q, masked %v", c.Request.Header.Get(HeaderTool), c.Masked)
	}

	res, out = call(t, cs, "describe_instances", nil)
	if res.IsError || !strings.Contains(out, "i-0123456789abcdef0") || !strings.Contains(out, "running") {
		t.Errorf("describe_instances = %s (isError %v)", out, res.IsError)
	}

	// Denied: a write outside production is not allowed by the starter
	// policy; the agent sees a tool error, not a protocol error.
	res, out = call(t, cs, "put_object", map[string]any{"bucket": "scratch", "key": "notes.txt", "body": "hello"})
	if !res.IsError || !strings.Contains(out, "AccessDenied") {
		t.Errorf("put_object = %s (isError %v), want an AccessDenied tool error", out, res.IsError)
	}
	if c := w.lastCall(t, "PutObject"); c.Request.Header.Get(HeaderTool) != "put_object" || c.Status != http.StatusForbidden {
		t.Errorf("PutObject: tool header %q, status %d", c.Request.Header.Get(HeaderTool), c.Status)
	}

	// Denied: creating an IAM user is not allowed by the starter policy.
	res, out = call(t, cs, "create_iam_user", map[string]any{"user_name": "backdoor"})
	if !res.IsError || !strings.Contains(out, "AccessDenied") || !strings.Contains(out, "iam:CreateUser") {
		t.Errorf("create_iam_user = %s (isError %v), want an AccessDenied tool error", out, res.IsError)
	}
	if c := w.lastCall(t, "CreateUser"); c.Request.Header.Get(HeaderTool) != "create_iam_user" || c.Status != http.StatusForbidden {
		t.Errorf("CreateUser: tool header %q, status %d", c.Request.Header.Get(HeaderTool), c.Status)
	}

	// Held for approval: the result carries the approval id.
	res, out = call(t, cs, "delete_bucket", map[string]any{"bucket": "prod-reports"})
	var pending pendingStatus
	if err := json.Unmarshal([]byte(out), &pending); err != nil || res.IsError || pending.Status != "approval_pending" || pending.ApprovalID == "" {
		t.Fatalf("delete_bucket = %s (isError %v), want approval_pending with an id", out, res.IsError)
	}
	if !strings.Contains(pending.ApprovalURL, pending.ApprovalID) || !strings.Contains(pending.Next, "wait_for_approval") {
		t.Errorf("pending result = %+v", pending)
	}
	if c := w.lastCall(t, "DeleteBucket"); c.Approval == nil || c.Approval.ID != pending.ApprovalID || c.Request.Header.Get(HeaderTool) != "delete_bucket" {
		t.Errorf("DeleteBucket at the gateway: approval %+v, tool header %q", c.Approval, c.Request.Header.Get(HeaderTool))
	}
	if _, err := w.backend.ListBucket(context.Background(), "prod-reports", nil, gofakes3.ListBucketPage{}); err != nil {
		t.Fatalf("prod-reports is gone before the approval: %v", err)
	}

	// Waiting without an approval ends (bounded) still pending.
	res, out = call(t, cs, "wait_for_approval", map[string]any{"approval_id": pending.ApprovalID, "timeout_seconds": 1})
	if res.IsError || !strings.Contains(out, "approval_pending") {
		t.Errorf("wait_for_approval before approval = %s (isError %v)", out, res.IsError)
	}

	// An approver approves; wait_for_approval repeats the identical call.
	alice := identity.Principal{Issuer: w.idp.Issuer, Subject: "alice", Groups: []string{"platform-oncall"}}
	go func() {
		time.Sleep(300 * time.Millisecond)
		if _, err := w.broker.Approve(context.Background(), pending.ApprovalID, alice, "checked the ticket"); err != nil {
			t.Errorf("approve: %v", err)
		}
	}()
	res, out = call(t, cs, "wait_for_approval", map[string]any{"approval_id": pending.ApprovalID, "timeout_seconds": 10})
	if res.IsError || !strings.Contains(out, "deleted bucket prod-reports") {
		t.Fatalf("wait_for_approval = %s (isError %v)", out, res.IsError)
	}
	if _, err := w.backend.ListBucket(context.Background(), "prod-reports", nil, gofakes3.ListBucketPage{}); err == nil {
		t.Error("prod-reports still exists after the approved delete")
	}
	if c := w.lastCall(t, "DeleteBucket"); c.Status/100 != 2 || c.Request.Header.Get(HeaderTool) != "delete_bucket" {
		t.Errorf("approved DeleteBucket: status %d, tool header %q", c.Status, c.Request.Header.Get(HeaderTool))
	}

	// The approval was consumed: the same id is not waiting any more.
	res, out = call(t, cs, "wait_for_approval", map[string]any{"approval_id": pending.ApprovalID})
	if !res.IsError {
		t.Errorf("wait_for_approval after success = %s, want an error", out)
	}

	res, out = call(t, cs, "list_buckets", nil)
	var lb struct{ Buckets []string }
	if err := json.Unmarshal([]byte(out), &lb); err != nil || res.IsError || !slices.Equal(lb.Buckets, []string{"scratch"}) {
		t.Errorf("list_buckets after delete = %s", out)
	}
}

// TestApprovalFlowWithoutURLBase: with no approval page configured (the
// broker's URL base is optional) a held call still comes back as an
// approval id the agent can wait on, and the approved call then runs. The
// id is read from the gateway's approval headers, never from the message.
func TestApprovalFlowWithoutURLBase(t *testing.T) {
	w := startWorldWith(t, "")
	cs := w.connect(t)
	res, out := call(t, cs, "delete_bucket", map[string]any{"bucket": "prod-reports"})
	var pending pendingStatus
	if err := json.Unmarshal([]byte(out), &pending); err != nil || res.IsError || pending.Status != "approval_pending" || pending.ApprovalID == "" || pending.ApprovalURL != "" {
		t.Fatalf("delete_bucket = %s (isError %v), want approval_pending with an id and no URL", out, res.IsError)
	}
	if c := w.lastCall(t, "DeleteBucket"); c.Approval == nil || c.Approval.ID != pending.ApprovalID || strings.Contains(c.Err.Message, " at ;") {
		t.Fatalf("DeleteBucket at the gateway: approval %+v, message %q", c.Approval, c.Err.Message)
	}
	alice := identity.Principal{Issuer: w.idp.Issuer, Subject: "alice", Groups: []string{"platform-oncall"}}
	if _, err := w.broker.Approve(context.Background(), pending.ApprovalID, alice, "checked"); err != nil {
		t.Fatal(err)
	}
	res, out = call(t, cs, "wait_for_approval", map[string]any{"approval_id": pending.ApprovalID, "timeout_seconds": 10})
	if res.IsError || !strings.Contains(out, "deleted bucket prod-reports") {
		t.Fatalf("wait_for_approval = %s (isError %v)", out, res.IsError)
	}
	if got := aws.ToString(AWSConfig(Config{Gateway: "http://gw"}).BaseEndpoint); got != "http://gw" {
		t.Errorf("BaseEndpoint = %q", got)
	}
}
