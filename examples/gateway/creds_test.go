package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4test"
	"github.com/gatehouse-dev/gatehouse/internal/syncbuf"
)

// callerIdentity answers sts:GetCallerIdentity for arn.
func callerIdentity(w http.ResponseWriter, arn string) {
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult>`+
		`<Arn>%s</Arn><UserId>AIDATESTUSER</UserId><Account>111122223333</Account>`+
		`</GetCallerIdentityResult><ResponseMetadata><RequestId>sts-gci</RequestId></ResponseMetadata></GetCallerIdentityResponse>`, arn)
}

// fakeSTS is an STS endpoint that answers GetCallerIdentity for requests
// SigV4-signed with key and secret, and refuses anything else the way STS
// does.
func fakeSTS(t *testing.T, key, secret string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(body))
		if _, err := sigv4test.Verify(r, body, aws.Credentials{AccessKeyID: key, SecretAccessKey: secret}); err != nil || form.Get("Action") != "GetCallerIdentity" {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>`+
				`<Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error>`+
				`<RequestId>sts-refused</RequestId></ErrorResponse>`)
			return
		}
		callerIdentity(w, "arn:aws:iam::111122223333:user/gatehouse-base")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// noAWSEnvironment clears every source the AWS SDK's default credential
// chain reads: environment keys, shared files, web identity, container and
// instance metadata.
func noAWSEnvironment(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "",
		"AWS_PROFILE": "", "AWS_DEFAULT_PROFILE": "",
		"AWS_CONFIG_FILE":             filepath.Join(dir, "no-config"),
		"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "no-credentials"),
		"AWS_ROLE_ARN":                "", "AWS_WEB_IDENTITY_TOKEN_FILE": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI": "", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_EC2_METADATA_DISABLED": "true",
		"AWS_MAX_ATTEMPTS":          "1",
		"AWS_ENDPOINT_URL_STS":      "",
	} {
		t.Setenv(k, v)
	}
}

// runBriefly runs the binary's run with args and returns its error and
// stdout; a gateway that starts serving instead is stopped and reported.
func runBriefly(t *testing.T, args ...string) (error, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, stdout, io.Discard) }()
	select {
	case err := <-done:
		return err, stdout.String()
	case <-time.After(45 * time.Second):
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if strings.Contains(stdout.String(), "listening on") {
			cancel()
			<-done
			t.Fatalf("run %q started serving: %q", args, stdout.String())
		}
	}
	t.Fatalf("run %q neither returned nor served", args)
	return nil, ""
}

// TestCredentialsCheckedAtStart: a gateway whose AWS credentials cannot be
// resolved, or (with aws.assumeRole) that STS does not accept, would fail
// every call with a 500. Both -check and the server name the problem and
// stop before listening.
func TestCredentialsCheckedAtStart(t *testing.T) {
	e := newEnv(t)
	const staticBlock = "  credentials: static\n  static:\n    accessKeyIdEnv: GATEHOUSE_TEST_KEY_ID\n    secretAccessKeyEnv: GATEHOUSE_TEST_SECRET\n"
	if !strings.Contains(e.config(), staticBlock) {
		t.Fatal("the test config has no static credentials block")
	}
	defaultChain := strings.Replace(e.config(), staticBlock, "  credentials: default\n", 1)
	assumeRole := strings.Replace(e.config(), staticBlock, staticBlock+"  assumeRole: true\n  region: eu-west-1\n", 1)
	stsURL := fakeSTS(t, upstreamKey, upstreamSecret)
	tests := []struct {
		name    string
		config  string
		env     map[string]string
		wantErr string // empty: the configuration is good
	}{
		{"default chain finds nothing", defaultChain, nil, "aws.credentials: default: no usable AWS credentials"},
		{"default chain from the environment", defaultChain, map[string]string{"AWS_ACCESS_KEY_ID": upstreamKey, "AWS_SECRET_ACCESS_KEY": upstreamSecret}, ""},
		{"assumeRole, STS refuses the key", assumeRole, map[string]string{"AWS_ENDPOINT_URL_STS": stsURL, "GATEHOUSE_TEST_SECRET": "not-the-secret"}, "aws.assumeRole: STS did not accept the gateway's credentials"},
		{"assumeRole, STS unreachable", assumeRole, map[string]string{"AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1"}, "aws.assumeRole: STS did not accept the gateway's credentials"},
		{"assumeRole, STS accepts the key", assumeRole, map[string]string{"AWS_ENDPOINT_URL_STS": stsURL}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			noAWSEnvironment(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			path := e.write("creds.yaml", tt.config)
			for _, args := range [][]string{{"-config", path, "-check"}, {"-config", path}} {
				if tt.wantErr == "" && !slices.Contains(args, "-check") {
					continue
				}
				err, out := runBriefly(t, args...)
				if tt.wantErr == "" {
					if err != nil || !strings.Contains(out, "configuration ok") {
						t.Fatalf("%q = %v, %q; want configuration ok", args, err, out)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("%q = %v, want an error containing %q", args, err, tt.wantErr)
				}
				if strings.Contains(out, "configuration ok") || strings.Contains(out, "listening on") {
					t.Fatalf("%q printed %q despite the error", args, out)
				}
			}
		})
	}
}

// TestDefaultAuditTrail: a configuration without an audit section gets the
// hash-chained file trail, fail-closed, in the state directory, and it
// records the calls.
func TestDefaultAuditTrail(t *testing.T) {
	e := newEnv(t)
	state := filepath.Join(e.dir, "state")
	gw := e.start(e.withAudit(""))
	if _, err := oneShot(e.agent(gw.url, "agent")).ListBuckets(context.Background(), &s3.ListBucketsInput{}); err != nil {
		t.Fatal(err)
	}
	if err := gw.stop(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(state, "audit")
	if !strings.Contains(gw.stderr.String(), `"msg":"audit trail","dir":"`+dir+`","mode":"fail-closed"`) {
		t.Errorf("the start does not say where the trail is:\n%s", gw.stderr.String())
	}
	rep, err := audit.VerifyDir(dir, "", audit.VerifyConfig{})
	if err != nil || !rep.OK() {
		t.Fatalf("default trail in %s: %v %+v", dir, err, rep)
	}
	events, err := audit.ReadEvents(mustGlob(t, filepath.Join(dir, "*.jsonl"))...)
	if err != nil {
		t.Fatal(err)
	}
	var intent, completion bool
	for _, ev := range events {
		if ev.Request.Action == "s3:ListAllMyBuckets" {
			intent = intent || ev.Phase == audit.PhaseIntent
			completion = completion || ev.Phase == audit.PhaseCompletion
		}
	}
	if !intent || !completion {
		t.Fatalf("the default trail lacks the ListBuckets intent or completion among %d events", len(events))
	}
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("no files match %s: %v", pattern, err)
	}
	return m
}

// TestDefaultAuditDir: audit.dir defaults to "audit" in $STATE_DIRECTORY
// (systemd's StateDirectory=), else in /var/lib/gatehouse.
func TestDefaultAuditDir(t *testing.T) {
	for _, tc := range []struct{ state, want string }{
		{"", "/var/lib/gatehouse/audit"},
		{"/var/lib/gw", "/var/lib/gw/audit"},
		{"/var/lib/gw:/var/lib/other", "/var/lib/gw/audit"},
	} {
		t.Setenv("STATE_DIRECTORY", tc.state)
		cfg, err := ParseConfig(strings.NewReader(minimalConfig))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cfg.Audit.Sinks, []string{"file"}) || cfg.Audit.Dir != tc.want || cfg.Audit.Mode != "" {
			t.Fatalf("STATE_DIRECTORY=%q: audit %+v, want sinks [file] in %s, fail-closed", tc.state, cfg.Audit, tc.want)
		}
	}
}
