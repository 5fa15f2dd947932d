package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
)

// keylessGateway starts an IdP and a gateway that exchanges its tokens,
// forwarding S3 to upstreamS3 (may be "").
func keylessGateway(t *testing.T, upstreamS3 string) (*testidp.IdP, *httptest.Server) {
	t.Helper()
	ctx := context.Background()
	idp, err := testidp.Start("gatehouse", map[string]testidp.Client{"agent": {Secret: "agent-secret", Groups: []string{"mcp-agents"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	v, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuers: []identity.Issuer{{URL: idp.Issuer, Audiences: []string{"gatehouse"}}}})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := identity.NewRoleMapper([]identity.Role{{Name: "agents", ARN: "arn:aws:iam::111122223333:role/agents", When: `"mcp-agents" in principal.groups`}})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{{ID: "a", Secret: bytes.Repeat([]byte{7}, 32)}}})
	if err != nil {
		t.Fatal(err)
	}
	upstreams := map[string]string{}
	if upstreamS3 != "" {
		upstreams["s3"] = upstreamS3
	}
	gw, err := awsproxy.New(awsproxy.Config{
		Authenticator: awsproxy.SessionAuthenticator(sessions),
		Credentials:   awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider(upstreamKey, upstreamSecret, "")),
		WebIdentity:   &identity.Exchanger{Verifier: v, Roles: roles, Sessions: sessions},
		Upstreams:     upstreams,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return idp, srv
}

func TestCredentialProcess(t *testing.T) {
	ctx := context.Background()
	idp, srv := keylessGateway(t, "")

	tests := []struct {
		name    string
		opts    options
		wantErr string
	}{
		{name: "exchange", opts: options{TokenURL: idp.TokenURL(), ClientID: "agent", ClientSecret: "agent-secret", Audience: "gatehouse", Gateway: srv.URL, Region: "us-east-1"}},
		{name: "wrong client secret", opts: options{TokenURL: idp.TokenURL(), ClientID: "agent", ClientSecret: "nope", Gateway: srv.URL, Region: "us-east-1"}, wantErr: "client-credentials token"},
		{name: "role not permitted", opts: options{TokenURL: idp.TokenURL(), ClientID: "agent", ClientSecret: "agent-secret", Gateway: srv.URL, Region: "us-east-1", Role: "arn:aws:iam::111122223333:role/admins"}, wantErr: "AccessDenied"},
		{name: "missing gateway", opts: options{TokenURL: idp.TokenURL(), ClientID: "agent", ClientSecret: "agent-secret"}, wantErr: "-gateway is required"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(ctx, tc.opts, &out)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var pc processCredentials
			if err := json.Unmarshal(out.Bytes(), &pc); err != nil || pc.Version != 1 || !strings.HasPrefix(pc.AccessKeyID, "GHS") {
				t.Fatalf("output %s (%v)", out.String(), err)
			}
			// The SDK's own credential_process parser accepts the output,
			// and the credentials it yields work at the gateway.
			file := filepath.Join(t.TempDir(), "creds.json")
			os.WriteFile(file, out.Bytes(), 0o600)
			prov := processcreds.NewProvider("cat " + file)
			creds, err := prov.Retrieve(ctx)
			if err != nil {
				t.Fatalf("SDK rejects the output: %v", err)
			}
			if !creds.CanExpire || creds.Expires.Before(time.Now()) {
				t.Fatalf("credentials expiry %v", creds.Expires)
			}
			client := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: prov})
			who, err := client.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatalf("GetCallerIdentity with the exchanged credentials: %v", err)
			}
			if got := aws.ToString(who.Arn); !strings.HasPrefix(got, "arn:aws:sts::111122223333:assumed-role/agents/") {
				t.Fatalf("caller ARN %s", got)
			}
		})
	}
}

const upstreamKey, upstreamSecret = "AKIAUPSTREAMCLI0001", "upstream-secret"

// TestAWSCLIWithCredentialProcess: the real AWS CLI v2, configured with
// this helper as its credential_process and --endpoint-url at the gateway,
// creates a bucket, copies a file up and lists it, holding no AWS key.
func TestAWSCLIWithCredentialProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the helper binary; skipped in -short mode")
	}
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		t.Skip("AWS CLI v2 not installed at /usr/bin/aws (apt-get install awscli)")
	}
	fake := gofakes3.New(s3mem.New(), gofakes3.WithV4Auth(map[string]string{upstreamKey: upstreamSecret}))
	s3srv := httptest.NewServer(fake.Server())
	defer s3srv.Close()
	idp, gw := keylessGateway(t, s3srv.URL)
	dir := t.TempDir()
	bin := filepath.Join(dir, "credential-process")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cfgFile := filepath.Join(dir, "config")
	os.WriteFile(cfgFile, []byte("[default]\nregion = us-east-1\ncredential_process = "+bin+
		" -token-url "+idp.TokenURL()+" -client-id agent -audience gatehouse -gateway "+gw.URL+"\n"), 0o600)
	local := filepath.Join(dir, "hello.txt")
	os.WriteFile(local, []byte("hello from the CLI"), 0o600)
	env := []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "AWS_CONFIG_FILE=" + cfgFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "GATEHOUSE_CLIENT_SECRET=agent-secret"}
	aws := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/usr/bin/aws", append([]string{"--endpoint-url", gw.URL}, args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	aws("s3", "mb", "s3://cli-bucket")
	aws("s3", "cp", local, "s3://cli-bucket/hello.txt")
	if out := aws("s3", "ls", "s3://cli-bucket"); !strings.Contains(out, "hello.txt") {
		t.Fatalf("s3 ls output lacks the object:\n%s", out)
	}
	if out := aws("sts", "get-caller-identity"); !strings.Contains(out, "assumed-role/agents/") {
		t.Fatalf("get-caller-identity: %s", out)
	}
}
