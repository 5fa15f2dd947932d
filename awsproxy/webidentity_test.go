package awsproxy_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/internal/testidp"
)

// newTestIdP starts an in-process OIDC provider with two workloads.
func newTestIdP(t *testing.T) *testidp.IdP {
	t.Helper()
	idp, err := testidp.Start("gatehouse", map[string]testidp.Client{
		"agent-42": {Secret: "s1", Groups: []string{"mcp-agents"}},
		"intruder": {Secret: "s2", Groups: []string{"other"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idp.Close)
	return idp
}

func idpToken(t *testing.T, idp *testidp.IdP, client string, ttl time.Duration) string {
	t.Helper()
	tok, err := idp.TokenFor(client, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const agentRoleARN = "arn:aws:iam::123456789012:role/mcp-agents"

// keylessGateway is a gateway that exchanges web identity tokens for
// session credentials sealed under sessionKey.
func keylessGateway(t *testing.T, idp *testidp.IdP, sessionKey []byte) *harness {
	t.Helper()
	v, err := identity.NewVerifier(context.Background(), identity.VerifierConfig{Issuers: []identity.Issuer{{URL: idp.Issuer, Audiences: []string{"gatehouse"}}}})
	if err != nil {
		t.Fatal(err)
	}
	roles, err := identity.NewRoleMapper([]identity.Role{{Name: "mcp-agents", ARN: agentRoleARN, When: `"mcp-agents" in principal.groups`}})
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{{ID: "k1", Secret: sessionKey}}, MaxDuration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Authenticator = awsproxy.SessionAuthenticator(sessions)
		c.WebIdentity = &identity.Exchanger{Verifier: v, Roles: roles, Sessions: sessions}
	}})
}

// sdkFromEnvironment configures a stock SDK exactly as a workload would:
// only environment variables, no code, no AWS key anywhere.
func sdkFromEnvironment(t *testing.T, gatewayURL, token string) aws.Config {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	for k, v := range map[string]string{
		"AWS_ROLE_ARN": agentRoleARN, "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile, "AWS_ROLE_SESSION_NAME": "",
		"AWS_ENDPOINT_URL_STS": gatewayURL, "AWS_ENDPOINT_URL": gatewayURL, "AWS_REGION": testRegion,
		"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty, "AWS_CA_BUNDLE": "",
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithLogger(logging.Nop{}), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestKeylessWebIdentityFlow(t *testing.T) {
	idp := newTestIdP(t)
	sessionKey := []byte(strings.Repeat("k", 32))
	h := keylessGateway(t, idp, sessionKey)
	ctx := context.Background()
	cfg := sdkFromEnvironment(t, h.Gateway.URL, idpToken(t, idp, "agent-42", 10*time.Minute))

	client := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("keyless")}); err != nil {
		t.Fatalf("CreateBucket with web identity credentials: %v", err)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("keyless"), Key: aws.String("k"), Body: strings.NewReader("v")}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("keyless")})
	if err != nil || len(list.Contents) != 1 {
		t.Fatalf("ListObjectsV2: %v", err)
	}
	who, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if !strings.HasPrefix(aws.ToString(who.Arn), "arn:aws:sts::123456789012:assumed-role/mcp-agents/") || aws.ToString(who.Account) != "123456789012" {
		t.Fatalf("GetCallerIdentity = %s / %s", aws.ToString(who.Arn), aws.ToString(who.Account))
	}
	for _, c := range h.Calls() {
		if c.Session == nil || c.Session.Principal.Subject != "agent-42" || c.Session.Principal.Issuer != idp.Issuer {
			t.Errorf("call %s %s not tied to the workload identity", c.Request.Method, c.Request.URL)
		}
	}
	if got := h.S3Hits.Load(); got != 3 {
		t.Errorf("%d requests reached the upstream, want 3 (STS calls are answered by the gateway)", got)
	}

	// The minted credentials work on a second replica sharing the key, and
	// nowhere else.
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(creds.AccessKeyID, "GHS") || creds.SessionToken == "" {
		t.Fatalf("unexpected credentials %q", creds.AccessKeyID)
	}
	for _, tc := range []struct {
		name string
		key  []byte
		tok  string
		code string
	}{
		{"replica sharing the key", sessionKey, creds.SessionToken, ""},
		{"replica with another key", []byte(strings.Repeat("x", 32)), creds.SessionToken, "InvalidAccessKeyId"},
		{"tampered session token", sessionKey, creds.SessionToken[:len(creds.SessionToken)-2] + "AA", "InvalidAccessKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := keylessGateway(t, idp, tc.key)
			c := s3.New(s3.Options{
				Region: testRegion, BaseEndpoint: aws.String(other.Gateway.URL), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, tc.tok),
			})
			_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
			if got := apiCode(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}

func TestWebIdentityRefusals(t *testing.T) {
	idp := newTestIdP(t)
	h := keylessGateway(t, idp, []byte(strings.Repeat("k", 32)))
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		token string
		code  string
	}{
		{"principal outside the role's groups", idpToken(t, idp, "intruder", 10*time.Minute), "AccessDenied"},
		{"expired identity token", idpToken(t, idp, "agent-42", -10*time.Minute), "ExpiredTokenException"},
		{"not a JWT", "garbage", "InvalidIdentityToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := sdkFromEnvironment(t, h.Gateway.URL, tc.token)
			_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err == nil || !strings.Contains(err.Error(), tc.code) {
				t.Fatalf("error %v, want one naming %s", err, tc.code)
			}
			if h.S3Hits.Load() != 0 {
				t.Fatal("something reached the upstream")
			}
		})
	}
}

// TestSessionExpiry: credentials minted for a session that has ended are
// refused with ExpiredToken, even though the token itself is genuine.
func TestSessionExpiry(t *testing.T) {
	key := []byte(strings.Repeat("e", 32))
	past := time.Now().Add(-2 * time.Hour)
	minter, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{{ID: "k", Secret: key}}, MaxDuration: 4 * time.Hour, Now: func() time.Time { return past }})
	if err != nil {
		t.Fatal(err)
	}
	checker, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{{ID: "k", Secret: key}}})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) { c.Authenticator = awsproxy.SessionAuthenticator(checker) }})
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		ttl  time.Duration // from the minting clock, two hours ago
		code string
	}{
		{"ended an hour ago", time.Hour, "ExpiredToken"},
		{"still valid", 3 * time.Hour, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds, err := minter.Mint(testPrincipal, "", past.Add(tc.ttl))
			if err != nil {
				t.Fatal(err)
			}
			client := s3.New(s3.Options{
				Region: testRegion, BaseEndpoint: aws.String(h.Gateway.URL), UsePathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
			})
			_, err = client.ListBuckets(ctx, &s3.ListBucketsInput{})
			if got := apiCode(err); got != tc.code {
				t.Fatalf("code %q (%v), want %q", got, err, tc.code)
			}
		})
	}
}
