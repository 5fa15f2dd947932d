package awsproxy_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

const gatewayPolicy = `
default: deny
rules:
  - name: read-only
    effect: allow
    when: request.readOnly && !request.returnsSecrets
  - name: secrets-masked
    effect: allow
    when: request.returnsSecrets
    mask:
      - profile: aws-secrets
  - name: scratch-writes
    effect: allow
    when: request.action == "s3:PutObject" && request.resource.iamLike("arn:aws:s3:::scratch/*")
  - name: bucket-admin
    effect: allow
    when: request.action in ["s3:CreateBucket", "s3:DeleteBucket"]
  - name: never-delete-prod
    effect: deny
    when: request.action == "s3:DeleteBucket" && request.resource.iamLike("arn:aws:s3:::prod-*")
    reason: production buckets are not deleted by agents
`

// TestPolicyDecidesEveryCall drives stock SDK clients through a gateway with
// a PolicyStage: allowed calls reach the upstream, denied ones get
// AccessDenied naming the rule and never leave the gateway, and a secret
// the policy says to mask reaches the client masked.
func TestPolicyDecidesEveryCall(t *testing.T) {
	cfg, err := policy.Parse("gateway.yaml", []byte(gatewayPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var secretHits, ddbHits atomic.Int64
	secrets := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secretHits.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		json.NewEncoder(w).Encode(map[string]any{
			"ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf", "Name": "db",
			"SecretString": `{"password":"hunter2-very-secret"}`, "VersionId": "v1",
		})
	}))
	defer secrets.Close()
	ddb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ddbHits.Add(1)
		w.WriteHeader(500)
	}))
	defer ddb.Close()
	h := newHarness(t, harnessOptions{
		Upstreams: map[string]string{"secretsmanager": secrets.URL, "dynamodb": ddb.URL},
		Config: func(c *awsproxy.Config) {
			c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(p), nil)}
			c.Account = "123456789012"
		},
	})
	ctx := context.Background()
	s3c := h.s3Client(t)
	for _, b := range []string{"scratch", "prod-data"} {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket %s (allowed by bucket-admin): %v", b, err)
		}
	}
	if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("scratch"), Key: aws.String("a"), Body: strings.NewReader("x")}); err != nil {
		t.Fatalf("PutObject to scratch (allowed): %v", err)
	}
	if _, err := s3c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("scratch")}); err != nil {
		t.Fatalf("ListObjectsV2 (read-only): %v", err)
	}

	refused := []struct {
		name, rule string
		call       func() error
	}{
		{"write outside scratch (default deny)", "", func() error {
			_, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("prod-data"), Key: aws.String("a"), Body: strings.NewReader("x")})
			return err
		}},
		{"delete a production bucket", "never-delete-prod", func() error {
			_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("prod-data")})
			return err
		}},
		{"DynamoDB write (default deny)", "", func() error {
			_, err := dynamodb.NewFromConfig(h.awsConfig(t, clientAKID, clientSecret)).PutItem(ctx, &dynamodb.PutItemInput{
				TableName: aws.String("t"), Item: map[string]ddbtypes.AttributeValue{"k": &ddbtypes.AttributeValueMemberS{Value: "v"}},
			})
			return err
		}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			before, ddbBefore := h.S3Hits.Load(), ddbHits.Load()
			err := tc.call()
			var ae smithy.APIError
			if !errorsAs(err, &ae) || !strings.HasPrefix(ae.ErrorCode(), "AccessDenied") {
				t.Fatalf("error %v, want AccessDenied", err)
			}
			if tc.rule != "" && !strings.Contains(ae.ErrorMessage(), `gatehouse rule "`+tc.rule+`"`) {
				t.Fatalf("message %q does not name rule %s", ae.ErrorMessage(), tc.rule)
			}
			if !strings.Contains(ae.ErrorMessage(), testPrincipal.String()) {
				t.Fatalf("message %q does not name the principal", ae.ErrorMessage())
			}
			if h.S3Hits.Load() != before || ddbHits.Load() != ddbBefore {
				t.Fatal("a denied call reached the upstream")
			}
		})
	}

	sm := secretsmanager.NewFromConfig(h.awsConfig(t, clientAKID, clientSecret))
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	if got := aws.ToString(out.SecretString); strings.Contains(got, "hunter2") || got != "****" {
		t.Fatalf("SecretString reached the client as %q", got)
	}
	if aws.ToString(out.Name) != "db" {
		t.Fatalf("unmasked fields lost: %+v", out)
	}
	var masked bool
	for _, c := range h.Calls() {
		if c.Classification.Operation == "GetSecretValue" {
			masked = c.Masked != nil && c.Masked.Masked() && c.Decision != nil && c.Decision.Rule == "secrets-masked"
		}
	}
	if !masked {
		t.Fatal("the call record lacks the decision or the mask report")
	}
}

func errorsAs(err error, target *smithy.APIError) bool {
	for err != nil {
		if ae, ok := err.(smithy.APIError); ok {
			*target = ae
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

const approvalPolicy = `
default: deny
rules:
  - name: reads
    effect: allow
    when: request.readOnly
  - name: bucket-create
    effect: allow
    when: request.action == "s3:CreateBucket"
  - name: delete-needs-approval
    effect: approve
    when: request.action == "s3:DeleteBucket"
    reason: deleting a bucket needs a human
    approval:
      approvers: [sec]
      mode: hold
      holdTimeout: 2s
`

// TestApprovalHoldThroughGateway: a held call completes upstream once an
// approver approves it; an approval that comes too late leaves the client
// with ApprovalPending and a one-time grant for the identical retry; a
// different request never rides on the grant; a denied one is refused.
func TestApprovalHoldThroughGateway(t *testing.T) {
	cfg, err := policy.Parse("approvals.yaml", []byte(approvalPolicy))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := approval.New(approval.Config{Store: store, URLBase: "https://gatehouse.example/approvals/ui/"})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(p), broker)}
	}})
	approver := identity.Principal{Issuer: "https://idp.test", Subject: "alice", Groups: []string{"sec"}}
	ctx := context.Background()
	s3c := h.s3Client(t)
	for _, b := range []string{"held-a", "held-b", "held-c", "held-d"} {
		if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	// approveNext approves (or denies) the next pending record as alice.
	decideNext := func(approve bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			recs, err := broker.List(ctx, approval.Filter{State: approval.Pending})
			if err == nil && len(recs) > 0 {
				if approve {
					_, err = broker.Approve(ctx, recs[0].ID, approver, "ok")
				} else {
					_, err = broker.Deny(ctx, recs[0].ID, approver, "not today")
				}
				if err != nil {
					t.Errorf("deciding %s: %v", recs[0].ID, err)
				}
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Error("no pending approval appeared")
	}

	t.Run("hold then approve", func(t *testing.T) {
		go decideNext(true)
		if _, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("held-a")}); err != nil {
			t.Fatalf("held DeleteBucket after approval: %v", err)
		}
		if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("held-a")}); err == nil {
			t.Fatal("bucket still exists after the approved delete")
		}
	})
	t.Run("hold then deny", func(t *testing.T) {
		go decideNext(false)
		_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("held-b")})
		if got := apiCode(err); got != "AccessDenied" {
			t.Fatalf("denied delete: %q (%v)", got, err)
		}
	})
	t.Run("hold timeout, then one grant for the identical retry", func(t *testing.T) {
		before := h.S3Hits.Load()
		_, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("held-c")})
		var ae smithy.APIError
		if !errorsAs(err, &ae) || ae.ErrorCode() != "ApprovalPending" || !strings.Contains(ae.ErrorMessage(), "https://gatehouse.example/approvals/ui/") {
			t.Fatalf("timed-out hold: %v", err)
		}
		if h.S3Hits.Load() != before {
			t.Fatal("a held call reached the upstream")
		}
		decideNext(true)
		// A different request (another bucket) cannot use the grant.
		if _, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("held-d")}); apiCode(err) != "ApprovalPending" {
			t.Fatalf("another request rode on the grant: %v", err)
		}
		decideNext(false) // clean up the record that request opened
		if _, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("held-c")}); err != nil {
			t.Fatalf("identical retry after approval: %v", err)
		}
		// The grant is spent: the same request again is held anew.
		_, err = s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String("held-c")})
		if got := apiCode(err); got != "ApprovalPending" {
			t.Fatalf("replayed grant: %q (%v)", got, err)
		}
	})
}

// TestPolicySeesSignedMCPContext: the MCP session and tool an MCP server
// signs into its AWS calls reach policy as mcp.*; unsigned ones do not.
func TestPolicySeesSignedMCPContext(t *testing.T) {
	cfg, err := policy.Parse("mcp.yaml", []byte(`
default: deny
rules:
  - name: reads
    effect: allow
    when: request.readOnly
  - name: no-cleanup-tool
    effect: deny
    when: mcp.tool == "cleanup"
    reason: the cleanup tool may not touch AWS
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(p), nil)}
	}})
	for _, tc := range []struct {
		name     string
		signed   bool
		wantCode string
	}{
		{"signed tool header is enforced", true, "AccessDenied"},
		{"unsigned tool header is ignored", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr http.Header
			if tc.signed {
				hdr = http.Header{awsproxy.HeaderMCPTool: {"cleanup"}, awsproxy.HeaderMCPSession: {"s-1"}}
			}
			r := h.signed(t, reqSpec{path: "/", header: hdr})
			if !tc.signed {
				r.Header.Set(awsproxy.HeaderMCPTool, "cleanup")
			}
			resp, body := h.do(t, r)
			if got := resp.Header.Get("X-Gatehouse-Error"); got != tc.wantCode {
				t.Fatalf("error %q, want %q: %s", got, tc.wantCode, body)
			}
		})
	}
}
