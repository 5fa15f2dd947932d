package main

import (
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// TestNoLiveSecretInArtefacts runs the binary with a hash-chained audit
// trail, session recordings and the slog sink, and with a policy that lets
// secrets reach the caller unmasked (the policy's choice). It then reads
// every file the gateway wrote, and everything it logged, for the live
// secrets of the run: the agent's OIDC token, the session credentials the
// gateway minted, the upstream key, the secret values that went in and
// out, a presigned URL's signature. None may appear anywhere.
func TestNoLiveSecretInArtefacts(t *testing.T) {
	e := newEnv(t)
	const secretOut = "hunter2-the-database-password-out"
	const secretIn = "correct-horse-battery-staple-in"
	sm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		switch r.Header.Get("X-Amz-Target") {
		case "secretsmanager.GetSecretValue":
			json.NewEncoder(w).Encode(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf", "Name": "db",
				"SecretString": `{"password":"` + secretOut + `"}`, "VersionId": "v1"})
		default:
			json.NewEncoder(w).Encode(map[string]any{"ARN": "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf", "Name": "db", "VersionId": "v2"})
		}
	}))
	t.Cleanup(sm.Close)
	open := e.write("open-secrets.yaml", `default: deny
rules:
  - name: secrets-unmasked
    effect: allow
    when: request.service == "secretsmanager"
    reason: this test lets secrets through to the caller, unmasked
  - name: sandbox
    effect: allow
    when: request.resources.exists(r, r.iamLike("arn:aws:s3:::sandbox-1*"))
`)
	dir, rec := filepath.Join(t.TempDir(), "trail"), filepath.Join(t.TempDir(), "sessions")
	cfg := e.withAudit("audit:\n  sinks: [slog, file]\n  dir: " + dir + "\n  recordingsDir: " + rec + "\n")
	cfg = strings.Replace(cfg, "upstreams:\n  s3: "+e.s3URL+"\n", "upstreams:\n  s3: "+e.s3URL+"\n  secretsmanager: "+sm.URL+"\n", 1)
	cfg = strings.Replace(cfg, `["starter:mcp-agents", `+e.policy+"]", "["+open+"]", 1)
	if !strings.Contains(cfg, "["+open+"]") {
		t.Fatal("the test config's policy files were not replaced")
	}
	gw := e.start(cfg)
	ctx := context.Background()
	agent := e.agent(gw.url, "agent")
	creds, err := agent.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	token, err := os.ReadFile(filepath.Join(e.dir, "token-agent"))
	if err != nil {
		t.Fatal(err)
	}

	smc := secretsmanager.NewFromConfig(agent)
	out, err := smc.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	if err != nil || !strings.Contains(aws.ToString(out.SecretString), secretOut) {
		t.Fatalf("GetSecretValue (allowed unmasked by policy): %v %v", out, err)
	}
	if _, err := smc.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String("db"), SecretString: aws.String(secretIn)}); err != nil {
		t.Fatalf("PutSecretValue: %v", err)
	}
	s3c := s3Client(agent)
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("sandbox-1"), Key: aws.String("note"), Body: strings.NewReader("hello")}); err != nil {
		t.Fatal(err)
	}
	ps, err := s3.NewPresignClient(s3c).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("sandbox-1"), Key: aws.String("note")})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(ps.URL)
	signature := u.Query().Get("X-Amz-Signature")
	if code, body := get(t, ps.URL); code != 200 || body != "hello" {
		t.Fatalf("presigned GET: %d %q", code, body)
	}
	if err := gw.stop(); err != nil {
		t.Fatal(err)
	}

	secrets := map[string]string{
		"the agent's OIDC token":       strings.TrimSpace(string(token)),
		"the session secret key":       creds.SecretAccessKey,
		"the session token":            creds.SessionToken,
		"the upstream secret key":      upstreamSecret,
		"the secret value sent out":    secretOut,
		"the secret value written":     secretIn,
		"the presigned URL signature":  signature,
		"the OIDC token's signature":   lastDotPart(string(token)),
		"the session token's last 40B": creds.SessionToken[len(creds.SessionToken)-40:],
	}
	for what, v := range secrets {
		if len(v) < 16 {
			t.Fatalf("%s is too short to look for: %q", what, v)
		}
	}
	artefacts := map[string]string{"the gateway's log": gw.stderr.String()}
	var files int
	for _, root := range []string{dir, rec, e.dir} {
		filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), "token-") || d.Name() == "session.key" {
				return nil // the test's own inputs
			}
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			artefacts[path] = string(b)
			files++
			return nil
		})
	}
	if files < 2 {
		t.Fatalf("the gateway wrote only %d files", files)
	}
	for name, content := range artefacts {
		for what, v := range secrets {
			if strings.Contains(content, v) {
				t.Errorf("%s holds %s", name, what)
			}
		}
	}
}

func lastDotPart(jwt string) string {
	jwt = strings.TrimSpace(jwt)
	return jwt[strings.LastIndexByte(jwt, '.')+1:]
}
