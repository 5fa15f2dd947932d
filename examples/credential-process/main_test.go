package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
)

func TestCredentialProcess(t *testing.T) {
	ctx := context.Background()
	idp, err := testidp.Start("gatehouse", map[string]testidp.Client{"agent": {Secret: "agent-secret", Groups: []string{"mcp-agents"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
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
	gw, err := awsproxy.New(awsproxy.Config{
		Authenticator: awsproxy.SessionAuthenticator(sessions),
		Credentials:   awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider("AKIAUNUSED", "unused", "")),
		WebIdentity:   &identity.Exchanger{Verifier: v, Roles: roles, Sessions: sessions},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

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
