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
//   - an agent using the stock AWS SDK for Go v2 with nothing but its OIDC
//     token (the web-identity flow), and an approver using the approval API.
//
// The agent lists buckets (allowed), reads a secret (masked), deletes a
// production bucket (held until the approver approves), and tries to
// create an IAM user (denied). With -serve the gateway keeps running and
// the quickstart prints how to try it by hand.
//
// Run it with: go run ./examples/quickstart
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
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
	serve := flag.Bool("serve", false, "keep the gateway running after the demo and print how to use it by hand")
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
	broker   *approval.Broker
	mu       sync.Mutex
	lastCall *awsproxy.Call
	stop     []func()
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
	agent, err := w.agentConfig(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "gatehouse quickstart: gateway %s, identity provider %s\n", w.gateway, w.idp.Issuer)
	fmt.Fprintln(out, "The agent holds no AWS key: only its OIDC token, exchanged at the gateway's STS endpoint.")
	who, err := sts.NewFromConfig(agent).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return fmt.Errorf("GetCallerIdentity: %w", err)
	}
	fmt.Fprintf(out, "\nagent is %s\n", aws.ToString(who.Arn))

	s3c := s3.NewFromConfig(agent, func(o *s3.Options) { o.UsePathStyle = true })
	sm := secretsmanager.NewFromConfig(agent)
	iamc := iam.NewFromConfig(agent)
	steps := []struct {
		name string
		call func() (string, error)
	}{
		{"list buckets", func() (string, error) {
			res, err := s3c.ListBuckets(ctx, &s3.ListBucketsInput{})
			if err != nil {
				return "", err
			}
			var names []string
			for _, b := range res.Buckets {
				names = append(names, aws.ToString(b.Name))
			}
			return "buckets: " + strings.Join(names, ", "), nil
		}},
		{"read the database secret", func() (string, error) {
			res, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
			if err != nil {
				return "", err
			}
			return fmt.Sprintf("SecretString = %q", aws.ToString(res.SecretString)), nil
		}},
		{"delete the production bucket prod-reports (needs a human)", func() (string, error) {
			go w.approveNext(ctx)
			_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("prod-reports")})
			return "bucket deleted after approval", err
		}},
		{"create an IAM user", func() (string, error) {
			_, err := iamc.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String("backdoor")})
			return "user created", err
		}},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "\n-> agent: %s\n", s.name)
		msg, err := s.call()
		var ae smithy.APIError
		switch {
		case err == nil:
			fmt.Fprintf(out, "   result:   %s\n", msg)
		case errors.As(err, &ae):
			fmt.Fprintf(out, "   result:   refused, %s: %s\n", ae.ErrorCode(), ae.ErrorMessage())
		default:
			return fmt.Errorf("%s: %w", s.name, err)
		}
		w.describeLastCall()
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
		if ss.Exchanges < 2 {
			continue // the STS exchange's own record
		}
		id := ss.ID
		fmt.Fprintf(out, "replay the agent's session:\n  go run ./examples/replay timeline %s %s\n  go run ./examples/replay html %s %s -o session.html\n",
			filepath.Join(w.auditDir, "sessions"), id, filepath.Join(w.auditDir, "sessions"), id)
		fmt.Fprintf(out, "verify the trail:\n  go run ./examples/replay verify %s\n", filepath.Join(w.auditDir, "trail"))
		break
	}
	fmt.Fprintln(out, "\ndone: every call was verified, tied to the agent's identity, decided by policy, audited and re-signed by the gateway.")
	if serve {
		fmt.Fprintf(out, "\nThe gateway keeps running at %s. With an OIDC token for the agent in a file:\n\n"+
			"  export AWS_ROLE_ARN=%s AWS_WEB_IDENTITY_TOKEN_FILE=/path/to/token AWS_REGION=%s\n"+
			"  export AWS_ENDPOINT_URL_STS=%s AWS_ENDPOINT_URL=%s\n\n"+
			"Get a token from the demo identity provider with:\n\n"+
			"  curl -s -u reporting-agent:agent-secret -d grant_type=client_credentials %s\n\nPress Ctrl-C to stop.\n",
			w.gateway, roleARN, region, w.gateway, w.gateway, w.idp.TokenURL())
		select {}
	}
	return nil
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
	engine, err := policy.NewEngine(policy.EngineConfig{Files: []string{"starter:mcp-agents"}})
	if err != nil {
		return err
	}
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
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
	w.broker, err = approval.New(approval.Config{Store: store, URLBase: gw.url + "/approvals/ui/", Events: awsproxy.ApprovalEvents(w.trail)})
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
	mux.Handle("/approvals/", http.StripPrefix("/approvals", bearer.Wrap(approvals)))
	mux.Handle("/", handler)
	w.gateway = gw.url
	w.stop = append(w.stop, gw.serve(mux))
	return nil
}

// agentConfig is the agent's stock SDK configuration: its token goes to the
// gateway's STS endpoint, every call to the gateway.
func (w *world) agentConfig(ctx context.Context) (aws.Config, error) {
	token, err := w.clientToken("reporting-agent", "agent-secret")
	if err != nil {
		return aws.Config{}, err
	}
	dir, err := os.MkdirTemp("", "gatehouse-quickstart-")
	if err != nil {
		return aws.Config{}, err
	}
	w.stop = append(w.stop, func() { os.RemoveAll(dir) })
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		return aws.Config{}, err
	}
	stsClient := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(w.gateway)})
	return aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(w.gateway),
		Credentials:  aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsClient, roleARN, stscreds.IdentityTokenFile(tokenFile))),
		Logger:       logging.Nop{},
	}, nil
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
		req, _ := http.NewRequestWithContext(ctx, method, w.gateway+"/approvals"+path, strings.NewReader(`{"reason":"checked the ticket"}`))
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
	line := fmt.Sprintf("   gateway:  %s %s -> %s", c.Classification.Action, firstOr(c.Classification.Resources, ""), c.Decision.Effect)
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
