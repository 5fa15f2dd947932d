package awsproxy_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
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
	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
)

// testIdP is an OIDC issuer on 127.0.0.1: discovery document, JWKS, and
// RS256 tokens signed with a key generated for the test.
type testIdP struct {
	srv    *httptest.Server
	key    *rsa.PrivateKey
	signer jose.Signer
}

func newTestIdP(t *testing.T) *testIdP {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	idp := &testIdP{key: key}
	mux := http.NewServeMux()
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": idp.srv.URL, "jwks_uri": idp.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	idp.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	return idp
}

// token returns a client-credentials style access token for subject.
func (idp *testIdP) token(t *testing.T, subject string, groups []string, ttl time.Duration) string {
	t.Helper()
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": idp.srv.URL, "sub": subject, "aud": "gatehouse", "azp": subject + "-client",
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "groups": groups,
	})
	sig, err := idp.signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const agentRoleARN = "arn:aws:iam::123456789012:role/mcp-agents"

// keylessGateway is a gateway that exchanges web identity tokens for
// session credentials sealed under sessionKey.
func keylessGateway(t *testing.T, idp *testIdP, sessionKey []byte) *harness {
	t.Helper()
	v, err := identity.NewVerifier(context.Background(), identity.VerifierConfig{Issuers: []identity.Issuer{{URL: idp.srv.URL, Audiences: []string{"gatehouse"}}}})
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
	cfg := sdkFromEnvironment(t, h.Gateway.URL, idp.token(t, "agent-42", []string{"mcp-agents"}, 10*time.Minute))

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
		if c.Session == nil || c.Session.Principal.Subject != "agent-42" || c.Session.Principal.Issuer != idp.srv.URL {
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
		{"principal outside the role's groups", idp.token(t, "intruder", []string{"other"}, 10*time.Minute), "AccessDenied"},
		{"expired identity token", idp.token(t, "agent-42", []string{"mcp-agents"}, -10*time.Minute), "ExpiredTokenException"},
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
