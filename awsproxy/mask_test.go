package awsproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/policy"
)

// maskPolicy masks S3 object content: by path in cfg/, with the
// aws-secrets profile in txt/, by path with the opt-out in media/.
const maskPolicy = `
default: deny
rules:
  - name: writes
    effect: allow
    when: request.action in ["s3:CreateBucket", "s3:PutObject"]
  - name: read-config
    effect: allow
    when: request.action == "s3:GetObject" && request.resource.iamLike("arn:aws:s3:::cfg/*")
    mask:
      - {path: aws.secret_access_key, strategy: redact}
  - name: read-text
    effect: allow
    when: request.action == "s3:GetObject" && request.resource.iamLike("arn:aws:s3:::txt/*")
    mask: [aws-secrets]
  - name: read-media
    effect: allow
    when: request.action == "s3:GetObject" && request.resource.iamLike("arn:aws:s3:::media/*")
    mask:
      - {path: aws.secret_access_key, strategy: redact, onUnmaskable: pass}
`

const (
	objSecret  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	objToken   = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampletokenexampletokenexampletokenexampletoken=="
	jsonObject = `{"aws":{"access_key_id":"AKIAIOSFODNN7EXAMPLE","secret_access_key":"` + objSecret + `","region":"eu-west-1"},"name":"app"}`
	textObject = "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = " + objSecret + "\naws_session_token = " + objToken + "\n"
)

// maskHarness is a gateway with maskPolicy (or yml) in front of the
// SigV4-verifying S3, with the buckets cfg, txt and media.
func maskHarness(t *testing.T, yml string, cfgFn func(*awsproxy.Config)) *harness {
	t.Helper()
	pc, err := policy.Parse("masks.yaml", []byte(yml))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(pc, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(p), nil)}
		c.Account = "123456789012"
		if cfgFn != nil {
			cfgFn(c)
		}
	}})
	s3c := h.s3Client(t)
	for _, b := range []string{"cfg", "txt", "media"} {
		if _, err := s3c.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket %s: %v", b, err)
		}
	}
	return h
}

func putObject(t *testing.T, c *s3.Client, bucket, key, contentType, body string) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), ContentType: aws.String(contentType), Body: strings.NewReader(body),
	}); err != nil {
		t.Fatalf("PutObject %s/%s: %v", bucket, key, err)
	}
}

// stockS3 is an S3 client as a stock SDK builds it, retries included
// (three attempts, the standard retryer), pointed at the gateway.
func stockS3(t *testing.T, h *harness) *s3.Client {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "")
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(testRegion),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAKID, clientSecret, "")),
		config.WithHTTPClient(h.Gateway.Client()),
		config.WithBaseEndpoint(h.Gateway.URL),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}

func getObject(t *testing.T, c *s3.Client, bucket, key string) ([]byte, error) {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err == nil && out.ContentLength != nil && *out.ContentLength != int64(len(b)) {
		t.Errorf("Content-Length %d, body %d bytes", *out.ContentLength, len(b))
	}
	return b, err
}

// lastCall returns the last finished call for operation op.
func lastCall(t *testing.T, h *harness, op string) *awsproxy.Call {
	t.Helper()
	calls := h.Calls()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].Classification.Operation == op {
			return calls[i]
		}
	}
	t.Fatalf("no %s call", op)
	return nil
}

// TestMaskS3JSONObjectByPath: an application/json object in S3 (a
// REST-XML service) is masked by the policy path, read as JSON because its
// media type says so.
func TestMaskS3JSONObjectByPath(t *testing.T) {
	h := maskHarness(t, maskPolicy, nil)
	c := stockS3(t, h)
	putObject(t, c, "cfg", "app.json", "application/json", jsonObject)
	b, err := getObject(t, c, "cfg", "app.json")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(objSecret)) {
		t.Fatalf("the secret reached the client: %s", b)
	}
	var doc struct {
		AWS  map[string]string `json:"aws"`
		Name string            `json:"name"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("masked object is not JSON: %v: %s", err, b)
	}
	if doc.AWS["secret_access_key"] != "****" || doc.AWS["region"] != "eu-west-1" || doc.AWS["access_key_id"] != "AKIAIOSFODNN7EXAMPLE" || doc.Name != "app" {
		t.Fatalf("masked object = %s", b)
	}
	call := lastCall(t, h, "GetObject")
	if r := call.Masked; !r.Masked() || r.Format != "json" || r.Total() != 1 {
		t.Fatalf("call report = %+v", r)
	}
}

// TestMaskS3TextObjectWithProfile: the aws-secrets profile finds AWS
// credentials in a text/plain object.
func TestMaskS3TextObjectWithProfile(t *testing.T) {
	h := maskHarness(t, maskPolicy, nil)
	c := stockS3(t, h)
	putObject(t, c, "txt", "credentials", "text/plain", textObject)
	b, err := getObject(t, c, "txt", "credentials")
	if err != nil {
		t.Fatal(err)
	}
	want := "[default]\naws_access_key_id = ****MPLE\naws_secret_access_key = ****\naws_session_token = ****\n"
	if string(b) != want {
		t.Fatalf("object = %q, want %q", b, want)
	}
	if r := lastCall(t, h, "GetObject").Masked; r.Format != "text" || r.Total() != 3 {
		t.Fatalf("call report = %+v", r)
	}
}

// TestMaskS3ManagerDownload: the s3 manager's ranged download gets the
// object masked when its first part is the whole object, and an error
// when a part is a fragment: never the secret.
func TestMaskS3ManagerDownload(t *testing.T) {
	h := maskHarness(t, maskPolicy, nil)
	c := stockS3(t, h)
	putObject(t, c, "cfg", "app.json", "application/json", jsonObject)
	putObject(t, c, "txt", "credentials", "text/plain", textObject)
	ctx := context.Background()

	buf := manager.NewWriteAtBuffer(nil)
	n, err := manager.NewDownloader(c).Download(ctx, buf, &s3.GetObjectInput{Bucket: aws.String("cfg"), Key: aws.String("app.json")})
	if err != nil {
		t.Fatalf("whole-object download: %v", err)
	}
	got := buf.Bytes()[:n]
	if bytes.Contains(got, []byte(objSecret)) || !json.Valid(got) || !bytes.Contains(got, []byte(`"secret_access_key":"****"`)) {
		t.Fatalf("download = %s", got)
	}
	if call := lastCall(t, h, "GetObject"); call.Status != http.StatusPartialContent || !call.Masked.Masked() {
		t.Fatalf("the manager's ranged GET: status %d, report %+v", call.Status, call.Masked)
	}

	for _, obj := range [][2]string{{"cfg", "app.json"}, {"txt", "credentials"}} {
		before := h.S3Hits.Load()
		buf := manager.NewWriteAtBuffer(nil)
		_, err := manager.NewDownloader(c, func(d *manager.Downloader) { d.PartSize = 32; d.Concurrency = 1 }).
			Download(ctx, buf, &s3.GetObjectInput{Bucket: aws.String(obj[0]), Key: aws.String(obj[1])})
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != awsproxy.CodeResponseWithheld {
			t.Fatalf("%s/%s in 32-byte parts: err = %v, want %s", obj[0], obj[1], err, awsproxy.CodeResponseWithheld)
		}
		if b := buf.Bytes(); bytes.Contains(b, []byte(objSecret[:16])) || bytes.Contains(b, []byte(objSecret[16:])) {
			t.Fatalf("part of the secret reached the writer: %q", b)
		}
		if hits := h.S3Hits.Load() - before; hits != 1 {
			t.Fatalf("%d GETs reached S3, want 1 (no retry of a withheld part)", hits)
		}
	}
}

// TestMaskUnmaskableWithheld: a binary or unparseable body under a path
// mask is withheld with 403 ResponseWithheld, which the stock SDK does
// not retry: the call reached S3 exactly once.
func TestMaskUnmaskableWithheld(t *testing.T) {
	h := maskHarness(t, maskPolicy, nil)
	c := stockS3(t, h)
	objects := []struct{ key, contentType, body, reason string }{
		{"logo.png", "image/png", "\x89PNG\r\n\x1a\n" + jsonObject, `media type \"image/png\" is neither JSON, XML nor text`},
		{"broken.json", "application/json", jsonObject[:40], "the JSON body does not parse"},
		{"creds.txt", "text/plain", textObject, "a text body (text/plain) cannot be masked by the paths"},
		{"blob", "application/octet-stream", "\x00\x01" + textObject, "binary content cannot be read"},
	}
	for _, o := range objects {
		putObject(t, c, "cfg", o.key, o.contentType, o.body)
	}
	for _, o := range objects {
		t.Run(o.key, func(t *testing.T) {
			before := h.S3Hits.Load()
			b, err := getObject(t, c, "cfg", o.key)
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != awsproxy.CodeResponseWithheld {
				t.Fatalf("err = %v, body %q: want %s", err, b, awsproxy.CodeResponseWithheld)
			}
			var re *smithyhttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusForbidden {
				t.Fatalf("status: %v", err)
			}
			if !strings.Contains(ae.ErrorMessage(), strings.ReplaceAll(o.reason, `\"`, `"`)) || strings.Contains(err.Error(), objSecret) {
				t.Fatalf("message %q", ae.ErrorMessage())
			}
			if hits := h.S3Hits.Load() - before; hits != 1 {
				t.Fatalf("%d GETs reached S3, want 1: the SDK retried a call that already ran", hits)
			}
			call := lastCall(t, h, "GetObject")
			ev := awsproxy.AuditEvent(call, audit.PhaseCompletion)
			if !call.Forwarded || ev.Response.Refused || ev.Response.ErrorCode != awsproxy.CodeResponseWithheld || !strings.Contains(ev.Response.ErrorMessage, strings.ReplaceAll(o.reason, `\"`, `"`)) {
				t.Fatalf("audit response = %+v", ev.Response)
			}
		})
	}
}

// TestMaskOptOutPasses: with onUnmaskable: pass, a binary body goes to the
// client unchanged and the call record and audit event say so.
func TestMaskOptOutPasses(t *testing.T) {
	h := maskHarness(t, maskPolicy, nil)
	c := stockS3(t, h)
	body := "\x89PNG\r\n\x1a\n" + jsonObject
	putObject(t, c, "media", "logo.png", "image/png", body)
	b, err := getObject(t, c, "media", "logo.png")
	if err != nil || string(b) != body {
		t.Fatalf("opt-out: %q, %v", b, err)
	}
	call := lastCall(t, h, "GetObject")
	if r := call.Masked; r == nil || len(r.Skipped) != 1 || r.Skipped[0].Path != "aws.secret_access_key" || !strings.Contains(r.SkipReason, "image/png") {
		t.Fatalf("call report = %+v", call.Masked)
	}
	ev := awsproxy.AuditEvent(call, audit.PhaseCompletion)
	if len(ev.Masks) != 1 || ev.Masks[0].Strategy != "pass" || ev.Masks[0].Path != "aws.secret_access_key" || !strings.Contains(ev.Masks[0].Rule, "image/png") {
		t.Fatalf("audit masks = %+v", ev.Masks)
	}
	// A JSON object under the same rule is still masked.
	putObject(t, c, "media", "meta.json", "application/json", jsonObject)
	if b, err := getObject(t, c, "media", "meta.json"); err != nil || bytes.Contains(b, []byte(objSecret)) {
		t.Fatalf("JSON under the opt-out rule: %s, %v", b, err)
	}
}

// TestMaskObligationsCheckedBeforeForwarding: an obligation this gateway
// cannot apply (hash without Config.MaskHashKey) refuses the call before
// it reaches S3, so nothing runs upstream and nothing is retried there.
func TestMaskObligationsCheckedBeforeForwarding(t *testing.T) {
	yml := `
rules:
  - name: buckets
    effect: allow
    when: request.action == "s3:CreateBucket"
  - name: writes-hashed
    effect: allow
    when: request.action == "s3:PutObject"
    mask: [{path: ETag, strategy: hash}]
`
	h := maskHarness(t, yml, nil)
	c := stockS3(t, h)
	before := h.S3Hits.Load()
	_, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String("cfg"), Key: aws.String("k"), Body: strings.NewReader("x")})
	if err == nil {
		t.Fatal("PutObject succeeded")
	}
	if hits := h.S3Hits.Load() - before; hits != 0 {
		t.Fatalf("%d PutObject requests reached S3, want 0", hits)
	}
	if call := lastCall(t, h, "PutObject"); call.Forwarded || call.Err == nil || !strings.Contains(call.Err.Message, "the call was not made") {
		t.Fatalf("call = forwarded %v, err %v", call.Forwarded, call.Err)
	}
}

// TestMaskWithheldKeepsUpstreamErrorStatus: when the upstream answered
// with an error the masks cannot read, the withheld answer keeps the
// upstream's status, so the standard retryer retries exactly what it
// would have retried unmasked (a 503) and nothing else (a 400).
func TestMaskWithheldKeepsUpstreamErrorStatus(t *testing.T) {
	for _, tt := range []struct {
		status   int
		wantHits int64
	}{{http.StatusServiceUnavailable, 3}, {http.StatusBadRequest, 1}} {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			var hits atomic.Int64
			up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(tt.status)
				io.WriteString(w, "<html><body>upstream trouble</body></html>")
			}))
			defer up.Close()
			yml := `
rules:
  - name: secrets
    effect: allow
    when: request.service == "secretsmanager"
    mask: [{path: SecretString, strategy: redact}]
`
			pc, err := policy.Parse("p.yaml", []byte(yml))
			if err != nil {
				t.Fatal(err)
			}
			p, err := policy.Compile(pc, policy.Options{})
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t, harnessOptions{Upstreams: map[string]string{"secretsmanager": up.URL}, Config: func(c *awsproxy.Config) {
				c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(p), nil)}
			}})
			t.Setenv("AWS_CA_BUNDLE", "")
			cfg, err := config.LoadDefaultConfig(context.Background(),
				config.WithRegion(testRegion),
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(clientAKID, clientSecret, "")),
				config.WithHTTPClient(h.Gateway.Client()),
				config.WithBaseEndpoint(h.Gateway.URL),
				config.WithRetryer(func() aws.Retryer {
					return retry.NewStandard(func(o *retry.StandardOptions) {
						o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
					})
				}),
			)
			if err != nil {
				t.Fatal(err)
			}
			_, err = secretsmanager.NewFromConfig(cfg).GetSecretValue(context.Background(), &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
			var ae smithy.APIError
			var re *smithyhttp.ResponseError
			if !errors.As(err, &ae) || ae.ErrorCode() != awsproxy.CodeResponseWithheld || !errors.As(err, &re) || re.HTTPStatusCode() != tt.status {
				t.Fatalf("err = %v, want %s with status %d", err, awsproxy.CodeResponseWithheld, tt.status)
			}
			if hits.Load() != tt.wantHits {
				t.Fatalf("upstream saw %d calls, want %d", hits.Load(), tt.wantHits)
			}
		})
	}
}
