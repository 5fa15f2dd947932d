package catalog

import (
	"context"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	brtypes "github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	logtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eks"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
)

var update = flag.Bool("update", false, "rewrite testdata/sdk-golden.txt")

const (
	testAccount = "123456789012"
	vhostDomain = "s3.gatehouse.test"
)

// captured is one request as the test server saw it.
type captured struct {
	method, host, path, rawQuery string
	header                       http.Header
	body                         []byte
}

// recorder is an httptest handler that keeps every request and answers
// with a minimal success for the request's protocol.
type recorder struct {
	mu   sync.Mutex
	reqs []captured
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, captured{r.Method, r.Host, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Clone(), body})
	rec.mu.Unlock()
	switch ct := r.Header.Get("Content-Type"); {
	case strings.Contains(ct, "cbor"):
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.Write([]byte{0xa0})
	case strings.Contains(ct, "json"):
		w.Header().Set("Content-Type", ct)
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte("{}"))), 10))
		w.Write([]byte("{}"))
	default:
		w.WriteHeader(http.StatusOK)
	}
}

func (rec *recorder) take() []captured {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := rec.reqs
	rec.reqs = nil
	return out
}

// toRequest builds the catalog request the gateway would: signing name and
// region from the credential scope, the virtual-host bucket from the Host.
func toRequest(c captured) (*Request, error) {
	authz := c.header.Get("Authorization")
	_, cred, ok := strings.Cut(authz, "Credential=")
	if !ok {
		return nil, fmt.Errorf("no SigV4 Authorization header: %q", authz)
	}
	cred, _, _ = strings.Cut(cred, ",")
	scope := strings.Split(cred, "/")
	if len(scope) != 5 {
		return nil, fmt.Errorf("bad credential scope %q", cred)
	}
	q, err := url.ParseQuery(c.rawQuery)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(c.host)
	bucket, _ := strings.CutSuffix(host, "."+vhostDomain)
	if bucket == host {
		bucket = ""
	}
	return &Request{
		SigningName: scope[3], Region: scope[2], Account: testAccount,
		Method: c.method, RawPath: c.path, Query: q, Header: c.header, Bucket: bucket, Body: c.body,
	}, nil
}

// sdkCase is one SDK call and what the catalog must say about it.
type sdkCase struct {
	name      string
	call      func(ctx context.Context, cfg aws.Config) error
	service   string // model name
	op        string // "" for an operation the models do not know
	action    string
	flags     string // "ro", "cred,sec", "sec", "ro,sec" or ""
	resources []string
	params    map[string]string // a subset of Params
}

func flagString(c Classification) string {
	var f []string
	if c.ReadOnly {
		f = append(f, "ro")
	}
	if c.CredentialIssuing {
		f = append(f, "cred")
	}
	if c.ReturnsSecrets {
		f = append(f, "sec")
	}
	return strings.Join(f, ",")
}

// sdkConfig returns an SDK configuration whose every connection goes to
// the test server, whatever host the SDK picked.
func sdkConfig(t *testing.T, srv *httptest.Server, endpoint string) aws.Config {
	t.Helper()
	addr := srv.Listener.Addr().String()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
	}}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", "")),
		config.WithHTTPClient(client),
		config.WithRetryMaxAttempts(1),
		config.WithBaseEndpoint(endpoint),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func isolateSDK(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

func pathStyle(o *s3.Options) { o.UsePathStyle = true }

func ddbKey(id string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: id}}
}

func arn(service, resource string) string {
	return "arn:aws:" + service + ":us-east-1:" + testAccount + ":" + resource
}

// sdkCases are the golden calls. Each is made by a real aws-sdk-go-v2
// client.
func sdkCases() []sdkCase {
	s3c := func(cfg aws.Config) *s3.Client { return s3.NewFromConfig(cfg, pathStyle) }
	obj := "arn:aws:s3:::media-bucket/photos/cat.jpg"
	bkt := "arn:aws:s3:::media-bucket"
	ctxS3 := func(f func(ctx context.Context, c *s3.Client) error) func(context.Context, aws.Config) error {
		return func(ctx context.Context, cfg aws.Config) error { return f(ctx, s3c(cfg)) }
	}
	B, K := aws.String("media-bucket"), aws.String("photos/cat.jpg")
	return []sdkCase{
		// S3 (rest-xml), path style.
		{name: "s3 ListBuckets", service: "s3", op: "ListBuckets", action: "s3:ListAllMyBuckets", flags: "ro",
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
				return err
			})},
		{name: "s3 CreateBucket", service: "s3", op: "CreateBucket", action: "s3:CreateBucket", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: B})
				return err
			})},
		{name: "s3 HeadBucket", service: "s3", op: "HeadBucket", action: "s3:ListBucket", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: B})
				return err
			})},
		{name: "s3 ListObjectsV2", service: "s3", op: "ListObjectsV2", action: "s3:ListBucket", flags: "ro", resources: []string{bkt},
			params: map[string]string{"Bucket": "media-bucket", "Prefix": "photos/"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: B, Prefix: aws.String("photos/")})
				return err
			})},
		{name: "s3 ListObjects", service: "s3", op: "ListObjects", action: "s3:ListBucket", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.ListObjects(ctx, &s3.ListObjectsInput{Bucket: B})
				return err
			})},
		{name: "s3 GetObject", service: "s3", op: "GetObject", action: "s3:GetObject", flags: "ro", resources: []string{obj},
			params: map[string]string{"Bucket": "media-bucket", "Key": "photos/cat.jpg", "Range": "bytes=0-9"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: B, Key: K, Range: aws.String("bytes=0-9")})
				return err
			})},
		{name: "s3 GetObject version", service: "s3", op: "GetObject", action: "s3:GetObjectVersion", flags: "ro", resources: []string{obj},
			params: map[string]string{"VersionId": "v42"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: B, Key: K, VersionId: aws.String("v42")})
				return err
			})},
		{name: "s3 GetObject odd key", service: "s3", op: "GetObject", action: "s3:GetObject", flags: "ro",
			resources: []string{"arn:aws:s3:::media-bucket/a b/ü?x=1&y/..//z"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: B, Key: aws.String("a b/ü?x=1&y/..//z")})
				return err
			})},
		{name: "s3 HeadObject", service: "s3", op: "HeadObject", action: "s3:GetObject", flags: "ro", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: B, Key: K})
				return err
			})},
		{name: "s3 PutObject", service: "s3", op: "PutObject", action: "s3:PutObject", resources: []string{obj},
			params: map[string]string{"ContentType": "image/jpeg"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: B, Key: K, Body: strings.NewReader("meow"), ContentType: aws.String("image/jpeg")})
				return err
			})},
		{name: "s3 PutObject SSE-C", service: "s3", op: "PutObject", action: "s3:PutObject", resources: []string{obj},
			params: map[string]string{"SSECustomerAlgorithm": "AES256"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: B, Key: K, Body: strings.NewReader("meow"),
					SSECustomerAlgorithm: aws.String("AES256"), SSECustomerKey: aws.String(strings.Repeat("k", 32))})
				return err
			})},
		{name: "s3 DeleteObject", service: "s3", op: "DeleteObject", action: "s3:DeleteObject", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: B, Key: K})
				return err
			})},
		{name: "s3 DeleteObject version", service: "s3", op: "DeleteObject", action: "s3:DeleteObjectVersion", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: B, Key: K, VersionId: aws.String("v1")})
				return err
			})},
		{name: "s3 DeleteObjects", service: "s3", op: "DeleteObjects", action: "s3:DeleteObject", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: B, Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: K}}}})
				return err
			})},
		{name: "s3 CopyObject", service: "s3", op: "CopyObject", action: "s3:PutObject",
			resources: []string{obj, "arn:aws:s3:::src-bucket/in/cat 1.jpg"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: B, Key: K, CopySource: aws.String("src-bucket/in/cat%201.jpg")})
				return err
			})},
		{name: "s3 CreateMultipartUpload", service: "s3", op: "CreateMultipartUpload", action: "s3:PutObject", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: B, Key: K})
				return err
			})},
		{name: "s3 UploadPart", service: "s3", op: "UploadPart", action: "s3:PutObject", resources: []string{obj},
			params: map[string]string{"PartNumber": "2", "UploadId": "up-1"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: B, Key: K, PartNumber: aws.Int32(2), UploadId: aws.String("up-1"), Body: strings.NewReader("part")})
				return err
			})},
		{name: "s3 UploadPartCopy", service: "s3", op: "UploadPartCopy", action: "s3:PutObject",
			resources: []string{obj, "arn:aws:s3:::src-bucket/big.bin"},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: B, Key: K, PartNumber: aws.Int32(1), UploadId: aws.String("up-1"), CopySource: aws.String("src-bucket/big.bin")})
				return err
			})},
		{name: "s3 CompleteMultipartUpload", service: "s3", op: "CompleteMultipartUpload", action: "s3:PutObject", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: B, Key: K, UploadId: aws.String("up-1")})
				return err
			})},
		{name: "s3 AbortMultipartUpload", service: "s3", op: "AbortMultipartUpload", action: "s3:AbortMultipartUpload", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: B, Key: K, UploadId: aws.String("up-1")})
				return err
			})},
		{name: "s3 ListParts", service: "s3", op: "ListParts", action: "s3:ListMultipartUploadParts", flags: "ro", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: B, Key: K, UploadId: aws.String("up-1")})
				return err
			})},
		{name: "s3 ListMultipartUploads", service: "s3", op: "ListMultipartUploads", action: "s3:ListBucketMultipartUploads", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: B})
				return err
			})},
		{name: "s3 GetObjectTagging", service: "s3", op: "GetObjectTagging", action: "s3:GetObjectTagging", flags: "ro", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: B, Key: K})
				return err
			})},
		{name: "s3 PutObjectTagging", service: "s3", op: "PutObjectTagging", action: "s3:PutObjectTagging", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: B, Key: K, Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}})
				return err
			})},
		{name: "s3 GetBucketTagging", service: "s3", op: "GetBucketTagging", action: "s3:GetBucketTagging", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetBucketTagging(ctx, &s3.GetBucketTaggingInput{Bucket: B})
				return err
			})},
		{name: "s3 DeleteBucketTagging", service: "s3", op: "DeleteBucketTagging", action: "s3:PutBucketTagging", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.DeleteBucketTagging(ctx, &s3.DeleteBucketTaggingInput{Bucket: B})
				return err
			})},
		{name: "s3 PutBucketLifecycleConfiguration", service: "s3", op: "PutBucketLifecycleConfiguration", action: "s3:PutLifecycleConfiguration", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{Bucket: B,
					LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: []s3types.LifecycleRule{{Status: s3types.ExpirationStatusEnabled, Filter: &s3types.LifecycleRuleFilter{Prefix: aws.String("tmp/")}, Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(1)}}}}})
				return err
			})},
		{name: "s3 GetBucketLifecycleConfiguration", service: "s3", op: "GetBucketLifecycleConfiguration", action: "s3:GetLifecycleConfiguration", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetBucketLifecycleConfiguration(ctx, &s3.GetBucketLifecycleConfigurationInput{Bucket: B})
				return err
			})},
		{name: "s3 GetBucketNotificationConfiguration", service: "s3", op: "GetBucketNotificationConfiguration", action: "s3:GetBucketNotification", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetBucketNotificationConfiguration(ctx, &s3.GetBucketNotificationConfigurationInput{Bucket: B})
				return err
			})},
		{name: "s3 PutBucketPolicy", service: "s3", op: "PutBucketPolicy", action: "s3:PutBucketPolicy", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: B, Policy: aws.String("{}")})
				return err
			})},
		{name: "s3 GetBucketPolicy", service: "s3", op: "GetBucketPolicy", action: "s3:GetBucketPolicy", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: B})
				return err
			})},
		{name: "s3 PutBucketAcl", service: "s3", op: "PutBucketAcl", action: "s3:PutBucketAcl", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.PutBucketAcl(ctx, &s3.PutBucketAclInput{Bucket: B, ACL: s3types.BucketCannedACLPrivate})
				return err
			})},
		{name: "s3 GetObjectAcl", service: "s3", op: "GetObjectAcl", action: "s3:GetObjectAcl", flags: "ro", resources: []string{obj},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.GetObjectAcl(ctx, &s3.GetObjectAclInput{Bucket: B, Key: K})
				return err
			})},
		{name: "s3 ListObjectVersions", service: "s3", op: "ListObjectVersions", action: "s3:ListBucketVersions", flags: "ro", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: B})
				return err
			})},
		{name: "s3 DeleteBucket", service: "s3", op: "DeleteBucket", action: "s3:DeleteBucket", resources: []string{bkt},
			call: ctxS3(func(ctx context.Context, c *s3.Client) error {
				_, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: B})
				return err
			})},

		// Route 53 (rest-xml, global).
		{name: "route53 ListHostedZones", service: "route53", op: "ListHostedZones", action: "route53:ListHostedZones", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := route53.NewFromConfig(cfg).ListHostedZones(ctx, &route53.ListHostedZonesInput{})
				return err
			}},
		{name: "route53 GetHostedZone", service: "route53", op: "GetHostedZone", action: "route53:GetHostedZone", flags: "ro",
			params: map[string]string{"Id": "Z0123"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := route53.NewFromConfig(cfg).GetHostedZone(ctx, &route53.GetHostedZoneInput{Id: aws.String("Z0123")})
				return err
			}},
		{name: "route53 ChangeResourceRecordSets", service: "route53", op: "ChangeResourceRecordSets", action: "route53:ChangeResourceRecordSets",
			params: map[string]string{"HostedZoneId": "Z0123"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := route53.NewFromConfig(cfg).ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String("Z0123"),
					ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
						Name: aws.String("a.example.com"), Type: r53types.RRTypeA, TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("192.0.2.1")}}}}}}})
				return err
			}},

		// Lambda, EKS, Bedrock (rest-json).
		{name: "lambda Invoke", service: "lambda", op: "Invoke", action: "lambda:InvokeFunction",
			resources: []string{arn("lambda", "function:thumbnailer:prod")}, params: map[string]string{"FunctionName": "thumbnailer", "Qualifier": "prod"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("thumbnailer"), Qualifier: aws.String("prod"), Payload: []byte(`{"k":1}`)})
				return err
			}},
		{name: "lambda Invoke by ARN", service: "lambda", op: "Invoke", action: "lambda:InvokeFunction",
			resources: []string{"arn:aws:lambda:us-east-1:210987654321:function:other"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("arn:aws:lambda:us-east-1:210987654321:function:other")})
				return err
			}},
		{name: "lambda GetFunction", service: "lambda", op: "GetFunction", action: "lambda:GetFunction", flags: "ro,sec",
			resources: []string{arn("lambda", "function:thumbnailer")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := lambda.NewFromConfig(cfg).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("thumbnailer")})
				return err
			}},
		{name: "lambda GetFunctionConfiguration", service: "lambda", op: "GetFunctionConfiguration", action: "lambda:GetFunctionConfiguration", flags: "ro,sec",
			resources: []string{arn("lambda", "function:thumbnailer")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := lambda.NewFromConfig(cfg).GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("thumbnailer")})
				return err
			}},
		{name: "lambda ListFunctions", service: "lambda", op: "ListFunctions", action: "lambda:ListFunctions", flags: "ro,sec",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := lambda.NewFromConfig(cfg).ListFunctions(ctx, &lambda.ListFunctionsInput{})
				return err
			}},
		{name: "lambda DeleteFunction", service: "lambda", op: "DeleteFunction", action: "lambda:DeleteFunction",
			resources: []string{arn("lambda", "function:thumbnailer")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := lambda.NewFromConfig(cfg).DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String("thumbnailer")})
				return err
			}},
		{name: "eks ListClusters", service: "eks", op: "ListClusters", action: "eks:ListClusters", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := eks.NewFromConfig(cfg).ListClusters(ctx, &eks.ListClustersInput{})
				return err
			}},
		{name: "eks DescribeCluster", service: "eks", op: "DescribeCluster", action: "eks:DescribeCluster", flags: "ro",
			params: map[string]string{"name": "prod"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := eks.NewFromConfig(cfg).DescribeCluster(ctx, &eks.DescribeClusterInput{Name: aws.String("prod")})
				return err
			}},
		{name: "bedrock InvokeModel", service: "bedrock-runtime", op: "InvokeModel", action: "bedrock:InvokeModel",
			resources: []string{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := bedrockruntime.NewFromConfig(cfg).InvokeModel(ctx, &bedrockruntime.InvokeModelInput{
					ModelId: aws.String("anthropic.claude-3-haiku-20240307-v1:0"), Body: []byte(`{}`), ContentType: aws.String("application/json")})
				return err
			}},
		{name: "bedrock Converse", service: "bedrock-runtime", op: "Converse", action: "bedrock:InvokeModel",
			resources: []string{arn("bedrock", "inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := bedrockruntime.NewFromConfig(cfg).Converse(ctx, &bedrockruntime.ConverseInput{
					ModelId:  aws.String("us.anthropic.claude-3-haiku-20240307-v1:0"),
					Messages: []brtypes.Message{{Role: brtypes.ConversationRoleUser, Content: []brtypes.ContentBlock{&brtypes.ContentBlockMemberText{Value: "hi"}}}}})
				return err
			}},

		// DynamoDB (json 1.0).
		{name: "dynamodb GetItem", service: "dynamodb", op: "GetItem", action: "dynamodb:GetItem", flags: "ro",
			resources: []string{arn("dynamodb", "table/Orders")}, params: map[string]string{"TableName": "Orders", "ConsistentRead": "true"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("Orders"), Key: ddbKey("1"), ConsistentRead: aws.Bool(true)})
				return err
			}},
		{name: "dynamodb PutItem", service: "dynamodb", op: "PutItem", action: "dynamodb:PutItem",
			resources: []string{arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("Orders"), Item: ddbKey("1")})
				return err
			}},
		{name: "dynamodb UpdateItem", service: "dynamodb", op: "UpdateItem", action: "dynamodb:UpdateItem",
			resources: []string{arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String("Orders"), Key: ddbKey("1"),
					UpdateExpression: aws.String("SET n = :n"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":n": &ddbtypes.AttributeValueMemberN{Value: "2"}}})
				return err
			}},
		{name: "dynamodb Query index", service: "dynamodb", op: "Query", action: "dynamodb:Query", flags: "ro",
			resources: []string{arn("dynamodb", "table/Orders/index/ByCustomer")}, params: map[string]string{"IndexName": "ByCustomer"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).Query(ctx, &dynamodb.QueryInput{TableName: aws.String("Orders"), IndexName: aws.String("ByCustomer"),
					KeyConditionExpression: aws.String("c = :c"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":c": &ddbtypes.AttributeValueMemberS{Value: "x"}}})
				return err
			}},
		{name: "dynamodb Scan", service: "dynamodb", op: "Scan", action: "dynamodb:Scan", flags: "ro",
			resources: []string{arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("Orders")})
				return err
			}},
		{name: "dynamodb BatchGetItem", service: "dynamodb", op: "BatchGetItem", action: "dynamodb:BatchGetItem", flags: "ro",
			resources: []string{arn("dynamodb", "table/Customers"), arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{
					"Customers": {Keys: []map[string]ddbtypes.AttributeValue{ddbKey("1")}},
					"Orders":    {Keys: []map[string]ddbtypes.AttributeValue{ddbKey("2")}},
				}})
				return err
			}},
		{name: "dynamodb BatchWriteItem", service: "dynamodb", op: "BatchWriteItem", action: "dynamodb:BatchWriteItem",
			resources: []string{arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{
					"Orders": {{DeleteRequest: &ddbtypes.DeleteRequest{Key: ddbKey("1")}}},
				}})
				return err
			}},
		{name: "dynamodb TransactWriteItems", service: "dynamodb", op: "TransactWriteItems", action: "dynamodb:DeleteItem",
			resources: []string{arn("dynamodb", "table/Orders"), arn("dynamodb", "table/Audit")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
					{Put: &ddbtypes.Put{TableName: aws.String("Orders"), Item: ddbKey("1")}},
					{Delete: &ddbtypes.Delete{TableName: aws.String("Audit"), Key: ddbKey("2")}},
				}})
				return err
			}},
		{name: "dynamodb ExecuteStatement select", service: "dynamodb", op: "ExecuteStatement", action: "dynamodb:PartiQLSelect", flags: "ro",
			resources: []string{arn("dynamodb", "table/Music")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).ExecuteStatement(ctx, &dynamodb.ExecuteStatementInput{Statement: aws.String(`SELECT * FROM "Music" WHERE Artist = 'x'`)})
				return err
			}},
		{name: "dynamodb ExecuteStatement delete", service: "dynamodb", op: "ExecuteStatement", action: "dynamodb:PartiQLDelete",
			resources: []string{arn("dynamodb", "table/Music")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).ExecuteStatement(ctx, &dynamodb.ExecuteStatementInput{Statement: aws.String(`delete from Music where Artist = 'x'`)})
				return err
			}},
		{name: "dynamodb DescribeTable", service: "dynamodb", op: "DescribeTable", action: "dynamodb:DescribeTable", flags: "ro",
			resources: []string{arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("Orders")})
				return err
			}},
		{name: "dynamodb ListTables", service: "dynamodb", op: "ListTables", action: "dynamodb:ListTables", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
				return err
			}},
		{name: "dynamodb DeleteTable", service: "dynamodb", op: "DeleteTable", action: "dynamodb:DeleteTable",
			resources: []string{arn("dynamodb", "table/Orders")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := dynamodb.NewFromConfig(cfg).DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("Orders")})
				return err
			}},

		// Secrets Manager, SSM, KMS, SQS, ECS, Logs, ECR (json 1.1 / 1.0).
		{name: "secretsmanager GetSecretValue", service: "secretsmanager", op: "GetSecretValue", action: "secretsmanager:GetSecretValue", flags: "ro,sec",
			resources: []string{arn("secretsmanager", "secret:prod/db")}, params: map[string]string{"SecretId": "prod/db"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
				return err
			}},
		{name: "secretsmanager BatchGetSecretValue", service: "secretsmanager", op: "BatchGetSecretValue", action: "secretsmanager:BatchGetSecretValue", flags: "ro,sec",
			resources: []string{arn("secretsmanager", "secret:a"), arn("secretsmanager", "secret:b-AbCdEf")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := secretsmanager.NewFromConfig(cfg).BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a", arn("secretsmanager", "secret:b-AbCdEf")}})
				return err
			}},
		{name: "secretsmanager CreateSecret", service: "secretsmanager", op: "CreateSecret", action: "secretsmanager:CreateSecret",
			resources: []string{arn("secretsmanager", "secret:prod/api")}, params: map[string]string{"Name": "prod/api"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := secretsmanager.NewFromConfig(cfg).CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String("prod/api"), SecretString: aws.String("hunter2")})
				return err
			}},
		{name: "secretsmanager ListSecrets", service: "secretsmanager", op: "ListSecrets", action: "secretsmanager:ListSecrets", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := secretsmanager.NewFromConfig(cfg).ListSecrets(ctx, &secretsmanager.ListSecretsInput{})
				return err
			}},
		{name: "ssm GetParameter", service: "ssm", op: "GetParameter", action: "ssm:GetParameter", flags: "ro,sec",
			resources: []string{arn("ssm", "parameter/app/db/password")}, params: map[string]string{"Name": "/app/db/password", "WithDecryption": "true"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/db/password"), WithDecryption: aws.Bool(true)})
				return err
			}},
		{name: "ssm GetParameters", service: "ssm", op: "GetParameters", action: "ssm:GetParameters", flags: "ro,sec",
			resources: []string{arn("ssm", "parameter/a"), arn("ssm", "parameter/b/c")}, params: map[string]string{"Names": "a,/b/c"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ssm.NewFromConfig(cfg).GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"a", "/b/c"}})
				return err
			}},
		{name: "ssm GetParametersByPath", service: "ssm", op: "GetParametersByPath", action: "ssm:GetParametersByPath", flags: "ro,sec",
			resources: []string{arn("ssm", "parameter/app")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ssm.NewFromConfig(cfg).GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/app")})
				return err
			}},
		{name: "ssm PutParameter", service: "ssm", op: "PutParameter", action: "ssm:PutParameter",
			resources: []string{arn("ssm", "parameter/app/flag")}, params: map[string]string{"Type": "String"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ssm.NewFromConfig(cfg).PutParameter(ctx, &ssm.PutParameterInput{Name: aws.String("/app/flag"), Value: aws.String("on"), Type: "String"})
				return err
			}},
		{name: "ssm StartSession", service: "ssm", op: "StartSession", action: "ssm:StartSession", flags: "cred,sec",
			resources: []string{arn("ec2", "instance/i-0abc")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ssm.NewFromConfig(cfg).StartSession(ctx, &ssm.StartSessionInput{Target: aws.String("i-0abc")})
				return err
			}},
		{name: "kms Decrypt", service: "kms", op: "Decrypt", action: "kms:Decrypt", flags: "sec",
			resources: []string{arn("kms", "alias/app")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := kms.NewFromConfig(cfg).Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: []byte("x"), KeyId: aws.String("alias/app")})
				return err
			}},
		{name: "kms Encrypt", service: "kms", op: "Encrypt", action: "kms:Encrypt",
			resources: []string{arn("kms", "key/1234abcd-12ab-34cd-56ef-1234567890ab")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := kms.NewFromConfig(cfg).Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String("1234abcd-12ab-34cd-56ef-1234567890ab"), Plaintext: []byte("x")})
				return err
			}},
		{name: "kms GenerateDataKey", service: "kms", op: "GenerateDataKey", action: "kms:GenerateDataKey", flags: "sec",
			resources: []string{arn("kms", "key/k1")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := kms.NewFromConfig(cfg).GenerateDataKey(ctx, &kms.GenerateDataKeyInput{KeyId: aws.String(arn("kms", "key/k1")), KeySpec: "AES_256"})
				return err
			}},
		{name: "kms ListKeys", service: "kms", op: "ListKeys", action: "kms:ListKeys", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := kms.NewFromConfig(cfg).ListKeys(ctx, &kms.ListKeysInput{})
				return err
			}},
		{name: "sqs SendMessage", service: "sqs", op: "SendMessage", action: "sqs:SendMessage",
			resources: []string{arn("sqs", "jobs")}, params: map[string]string{"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sqs.NewFromConfig(cfg).SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/jobs"), MessageBody: aws.String("hi")})
				return err
			}},
		{name: "sqs ReceiveMessage", service: "sqs", op: "ReceiveMessage", action: "sqs:ReceiveMessage",
			resources: []string{"arn:aws:sqs:us-east-1:210987654321:other"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sqs.NewFromConfig(cfg).ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/210987654321/other")})
				return err
			}},
		{name: "sqs CreateQueue", service: "sqs", op: "CreateQueue", action: "sqs:CreateQueue",
			resources: []string{arn("sqs", "jobs")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sqs.NewFromConfig(cfg).CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("jobs")})
				return err
			}},
		{name: "sqs SendMessageBatch", service: "sqs", op: "SendMessageBatch", action: "sqs:SendMessage",
			resources: []string{arn("sqs", "jobs")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sqs.NewFromConfig(cfg).SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String("https://sqs.us-east-1.amazonaws.com/123456789012/jobs"),
					Entries: []sqstypes.SendMessageBatchRequestEntry{{Id: aws.String("1"), MessageBody: aws.String("a")}}})
				return err
			}},
		{name: "ecs DescribeServices", service: "ecs", op: "DescribeServices", action: "ecs:DescribeServices", flags: "ro",
			resources: []string{arn("ecs", "cluster/prod"), arn("ecs", "service/prod/web")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ecs.NewFromConfig(cfg).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("prod"), Services: []string{"web"}})
				return err
			}},
		{name: "ecs RunTask", service: "ecs", op: "RunTask", action: "ecs:RunTask",
			resources: []string{arn("ecs", "cluster/prod"), arn("ecs", "task-definition/web:3")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ecs.NewFromConfig(cfg).RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String("prod"), TaskDefinition: aws.String("web:3")})
				return err
			}},
		{name: "ecs ExecuteCommand", service: "ecs", op: "ExecuteCommand", action: "ecs:ExecuteCommand", flags: "cred,sec",
			resources: []string{arn("ecs", "cluster/prod"), arn("ecs", "task/prod/abc123")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ecs.NewFromConfig(cfg).ExecuteCommand(ctx, &ecs.ExecuteCommandInput{Cluster: aws.String("prod"), Task: aws.String("abc123"), Command: aws.String("sh"), Interactive: true})
				return err
			}},
		{name: "ecs ListClusters", service: "ecs", op: "ListClusters", action: "ecs:ListClusters", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ecs.NewFromConfig(cfg).ListClusters(ctx, &ecs.ListClustersInput{})
				return err
			}},
		{name: "logs PutLogEvents", service: "logs", op: "PutLogEvents", action: "logs:PutLogEvents",
			resources: []string{arn("logs", "log-group:/app/web:log-stream:i-1")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudwatchlogs.NewFromConfig(cfg).PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: aws.String("/app/web"), LogStreamName: aws.String("i-1"),
					LogEvents: []logtypes.InputLogEvent{{Message: aws.String("m"), Timestamp: aws.Int64(1)}}})
				return err
			}},
		{name: "logs FilterLogEvents", service: "logs", op: "FilterLogEvents", action: "logs:FilterLogEvents", flags: "ro",
			resources: []string{arn("logs", "log-group:/app/web")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudwatchlogs.NewFromConfig(cfg).FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String("/app/web")})
				return err
			}},
		{name: "logs CreateLogGroup", service: "logs", op: "CreateLogGroup", action: "logs:CreateLogGroup",
			resources: []string{arn("logs", "log-group:/app/new")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudwatchlogs.NewFromConfig(cfg).CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/app/new")})
				return err
			}},
		{name: "ecr GetAuthorizationToken", service: "ecr", op: "GetAuthorizationToken", action: "ecr:GetAuthorizationToken", flags: "cred,sec",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
				return err
			}},

		// STS, IAM, SNS, RDS, CloudFormation (query).
		{name: "sts GetCallerIdentity", service: "sts", op: "GetCallerIdentity", action: "sts:GetCallerIdentity", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
				return err
			}},
		{name: "sts AssumeRole", service: "sts", op: "AssumeRole", action: "sts:AssumeRole", flags: "cred,sec",
			resources: []string{"arn:aws:iam::" + testAccount + ":role/deployer"}, params: map[string]string{"RoleSessionName": "agent-1"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::" + testAccount + ":role/deployer"), RoleSessionName: aws.String("agent-1")})
				return err
			}},
		{name: "sts GetSessionToken", service: "sts", op: "GetSessionToken", action: "sts:GetSessionToken", flags: "cred,sec",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sts.NewFromConfig(cfg).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
				return err
			}},
		{name: "iam CreateRole", service: "iam", op: "CreateRole", action: "iam:CreateRole",
			resources: []string{"arn:aws:iam::" + testAccount + ":role/app"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := iam.NewFromConfig(cfg).CreateRole(ctx, &iam.CreateRoleInput{RoleName: aws.String("app"), AssumeRolePolicyDocument: aws.String("{}")})
				return err
			}},
		{name: "iam AttachRolePolicy", service: "iam", op: "AttachRolePolicy", action: "iam:AttachRolePolicy",
			resources: []string{"arn:aws:iam::" + testAccount + ":role/app", "arn:aws:iam::aws:policy/AdministratorAccess"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := iam.NewFromConfig(cfg).AttachRolePolicy(ctx, &iam.AttachRolePolicyInput{RoleName: aws.String("app"), PolicyArn: aws.String("arn:aws:iam::aws:policy/AdministratorAccess")})
				return err
			}},
		{name: "iam CreateAccessKey", service: "iam", op: "CreateAccessKey", action: "iam:CreateAccessKey", flags: "cred,sec",
			resources: []string{"arn:aws:iam::" + testAccount + ":user/ci"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := iam.NewFromConfig(cfg).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("ci")})
				return err
			}},
		{name: "iam ListUsers", service: "iam", op: "ListUsers", action: "iam:ListUsers", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := iam.NewFromConfig(cfg).ListUsers(ctx, &iam.ListUsersInput{})
				return err
			}},
		{name: "iam GetRole", service: "iam", op: "GetRole", action: "iam:GetRole", flags: "ro",
			resources: []string{"arn:aws:iam::" + testAccount + ":role/app"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := iam.NewFromConfig(cfg).GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String("app")})
				return err
			}},
		{name: "sns Publish", service: "sns", op: "Publish", action: "sns:Publish",
			resources: []string{arn("sns", "alerts")}, params: map[string]string{"Subject": "s"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sns.NewFromConfig(cfg).Publish(ctx, &sns.PublishInput{TopicArn: aws.String(arn("sns", "alerts")), Message: aws.String("m"), Subject: aws.String("s")})
				return err
			}},
		{name: "sns CreateTopic", service: "sns", op: "CreateTopic", action: "sns:CreateTopic",
			resources: []string{arn("sns", "alerts")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sns.NewFromConfig(cfg).CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String("alerts")})
				return err
			}},
		{name: "sns ListTopics", service: "sns", op: "ListTopics", action: "sns:ListTopics", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := sns.NewFromConfig(cfg).ListTopics(ctx, &sns.ListTopicsInput{})
				return err
			}},
		{name: "rds DescribeDBInstances", service: "rds", op: "DescribeDBInstances", action: "rds:DescribeDBInstances", flags: "ro",
			resources: []string{arn("rds", "db:orders-db")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := rds.NewFromConfig(cfg).DescribeDBInstances(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String("orders-db")})
				return err
			}},
		{name: "rds CreateDBSnapshot", service: "rds", op: "CreateDBSnapshot", action: "rds:CreateDBSnapshot",
			resources: []string{arn("rds", "db:orders-db"), arn("rds", "snapshot:before-upgrade")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := rds.NewFromConfig(cfg).CreateDBSnapshot(ctx, &rds.CreateDBSnapshotInput{DBInstanceIdentifier: aws.String("orders-db"), DBSnapshotIdentifier: aws.String("before-upgrade")})
				return err
			}},
		{name: "rds DeleteDBInstance", service: "rds", op: "DeleteDBInstance", action: "rds:DeleteDBInstance",
			resources: []string{arn("rds", "db:orders-db")}, params: map[string]string{"SkipFinalSnapshot": "true"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := rds.NewFromConfig(cfg).DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String("orders-db"), SkipFinalSnapshot: aws.Bool(true)})
				return err
			}},
		{name: "cloudformation CreateStack", service: "cloudformation", op: "CreateStack", action: "cloudformation:CreateStack",
			resources: []string{arn("cloudformation", "stack/web/*")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudformation.NewFromConfig(cfg).CreateStack(ctx, &cloudformation.CreateStackInput{StackName: aws.String("web"), TemplateBody: aws.String("{}")})
				return err
			}},
		{name: "cloudformation DescribeStacks", service: "cloudformation", op: "DescribeStacks", action: "cloudformation:DescribeStacks", flags: "ro",
			resources: []string{arn("cloudformation", "stack/web/*")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudformation.NewFromConfig(cfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String("web")})
				return err
			}},
		{name: "cloudformation DeleteStack", service: "cloudformation", op: "DeleteStack", action: "cloudformation:DeleteStack",
			resources: []string{arn("cloudformation", "stack/web/*")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudformation.NewFromConfig(cfg).DeleteStack(ctx, &cloudformation.DeleteStackInput{StackName: aws.String("web")})
				return err
			}},

		// EC2 (ec2 protocol).
		{name: "ec2 DescribeInstances", service: "ec2", op: "DescribeInstances", action: "ec2:DescribeInstances", flags: "ro",
			resources: []string{arn("ec2", "instance/i-1"), arn("ec2", "instance/i-2")}, params: map[string]string{"InstanceIds": "i-1,i-2"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-1", "i-2"}})
				return err
			}},
		{name: "ec2 RunInstances", service: "ec2", op: "RunInstances", action: "ec2:RunInstances",
			resources: []string{arn("ec2", "security-group/sg-1"), "arn:aws:ec2:us-east-1::image/ami-1", arn("ec2", "subnet/subnet-1")},
			params:    map[string]string{"InstanceType": "t3.micro", "MinCount": "1"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String("ami-1"), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
					InstanceType: ec2types.InstanceTypeT3Micro, SubnetId: aws.String("subnet-1"), SecurityGroupIds: []string{"sg-1"}})
				return err
			}},
		{name: "ec2 TerminateInstances", service: "ec2", op: "TerminateInstances", action: "ec2:TerminateInstances",
			resources: []string{arn("ec2", "instance/i-1")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-1"}})
				return err
			}},
		{name: "ec2 DescribeVolumes", service: "ec2", op: "DescribeVolumes", action: "ec2:DescribeVolumes", flags: "ro",
			resources: []string{arn("ec2", "volume/vol-1")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).DescribeVolumes(ctx, &ec2.DescribeVolumesInput{VolumeIds: []string{"vol-1"}})
				return err
			}},
		{name: "ec2 AuthorizeSecurityGroupIngress", service: "ec2", op: "AuthorizeSecurityGroupIngress", action: "ec2:AuthorizeSecurityGroupIngress",
			resources: []string{arn("ec2", "security-group/sg-1")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: aws.String("sg-1"),
					IpPermissions: []ec2types.IpPermission{{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: []ec2types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}}}})
				return err
			}},
		{name: "ec2 CreateKeyPair", service: "ec2", op: "CreateKeyPair", action: "ec2:CreateKeyPair", flags: "cred,sec",
			resources: []string{arn("ec2", "key-pair/ops")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).CreateKeyPair(ctx, &ec2.CreateKeyPairInput{KeyName: aws.String("ops")})
				return err
			}},
		{name: "ec2 GetPasswordData", service: "ec2", op: "GetPasswordData", action: "ec2:GetPasswordData", flags: "ro,sec",
			resources: []string{arn("ec2", "instance/i-1")},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := ec2.NewFromConfig(cfg).GetPasswordData(ctx, &ec2.GetPasswordDataInput{InstanceId: aws.String("i-1")})
				return err
			}},

		// CloudWatch: the current SDK speaks Smithy RPC v2 CBOR to it.
		{name: "cloudwatch GetMetricData", service: "monitoring", op: "GetMetricData", action: "cloudwatch:GetMetricData", flags: "ro",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudwatch.NewFromConfig(cfg).GetMetricData(ctx, &cloudwatch.GetMetricDataInput{StartTime: aws.Time(time.Unix(0, 0)), EndTime: aws.Time(time.Unix(60, 0)),
					MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("q"), Expression: aws.String("1")}}})
				return err
			}},
		{name: "cloudwatch PutMetricData", service: "monitoring", op: "PutMetricData", action: "cloudwatch:PutMetricData",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudwatch.NewFromConfig(cfg).PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("app"),
					MetricData: []cwtypes.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}})
				return err
			}},
		{name: "cloudwatch newer operation", service: "monitoring", op: "", action: "cloudwatch:Unknown",
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := cloudwatch.NewFromConfig(cfg).DeleteAlarmMuteRule(ctx, &cloudwatch.DeleteAlarmMuteRuleInput{AlarmMuteRuleName: aws.String("r")})
				return err
			}},
	}
}

// TestSDKGolden makes each call with a real aws-sdk-go-v2 client against
// a loopback server, classifies the captured request and checks the
// result; testdata/sdk-golden.txt records every captured request line and
// classification (go test -run TestSDKGolden -update rewrites it).
func TestSDKGolden(t *testing.T) {
	isolateSDK(t)
	rec := &recorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	cfg := sdkConfig(t, srv, srv.URL)
	c := Default()
	var golden []string
	ops := map[string]bool{}
	protocols := map[string]bool{}
	for _, tc := range sdkCases() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = tc.call(ctx, cfg) // the minimal answers may not satisfy the SDK
		cancel()
		reqs := rec.take()
		if len(reqs) != 1 {
			t.Errorf("%s: the SDK sent %d requests, want 1", tc.name, len(reqs))
			continue
		}
		r, err := toRequest(reqs[0])
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		got := c.Classify(r)
		golden = append(golden, goldenLine(tc.name, reqs[0], got))
		checkCase(t, tc, got)
		if got.Service != nil {
			protocols[got.Service.Protocol] = true
			if got.Operation != "" {
				ops[got.Service.Name+"."+got.Operation] = true
			}
		}
	}
	// Virtual-hosted S3: the SDK puts the bucket in the host name.
	vcfg := sdkConfig(t, srv, "http://"+vhostDomain+":"+port)
	vcases := []sdkCase{
		{name: "s3 vhost GetObject", service: "s3", op: "GetObject", action: "s3:GetObject", flags: "ro",
			resources: []string{"arn:aws:s3:::media-bucket/photos/cat.jpg"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := s3.NewFromConfig(cfg).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("media-bucket"), Key: aws.String("photos/cat.jpg")})
				return err
			}},
		{name: "s3 vhost ListObjectsV2", service: "s3", op: "ListObjectsV2", action: "s3:ListBucket", flags: "ro",
			resources: []string{"arn:aws:s3:::media-bucket"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := s3.NewFromConfig(cfg).ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("media-bucket")})
				return err
			}},
		{name: "s3 vhost PutBucketTagging", service: "s3", op: "PutBucketTagging", action: "s3:PutBucketTagging",
			resources: []string{"arn:aws:s3:::media-bucket"},
			call: func(ctx context.Context, cfg aws.Config) error {
				_, err := s3.NewFromConfig(cfg).PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: aws.String("media-bucket"),
					Tagging: &s3types.Tagging{TagSet: []s3types.Tag{{Key: aws.String("a"), Value: aws.String("b")}}}})
				return err
			}},
	}
	for _, tc := range vcases {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = tc.call(ctx, vcfg)
		cancel()
		reqs := rec.take()
		if len(reqs) != 1 {
			t.Errorf("%s: the SDK sent %d requests, want 1", tc.name, len(reqs))
			continue
		}
		r, err := toRequest(reqs[0])
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if r.Bucket != "media-bucket" {
			t.Errorf("%s: host %q is not virtual-hosted", tc.name, reqs[0].host)
		}
		got := c.Classify(r)
		golden = append(golden, goldenLine(tc.name, reqs[0], got))
		checkCase(t, tc, got)
		ops[got.Service.Name+"."+got.Operation] = true
	}
	t.Logf("%d SDK calls, %d distinct operations, protocols %v", len(golden), len(ops), slices.Sorted(mapKeys(protocols)))
	if len(ops) < 60 {
		t.Errorf("only %d distinct operations covered, want at least 60", len(ops))
	}
	for _, p := range []string{ProtocolRESTXML, ProtocolRESTJSON, ProtocolJSON, ProtocolQuery, ProtocolEC2} {
		if !protocols[p] {
			t.Errorf("no golden call for protocol %s", p)
		}
	}
	text := strings.Join(golden, "\n") + "\n"
	const file = "testdata/sdk-golden.txt"
	if *update {
		if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(want) != text {
		wl, gl := strings.Split(string(want), "\n"), strings.Split(text, "\n")
		for i := 0; i < max(len(wl), len(gl)); i++ {
			var w, g string
			if i < len(wl) {
				w = wl[i]
			}
			if i < len(gl) {
				g = gl[i]
			}
			if w != g {
				t.Errorf("%s line %d:\n got  %s\n want %s", file, i+1, g, w)
				break
			}
		}
	}
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func checkCase(t *testing.T, tc sdkCase, got Classification) {
	t.Helper()
	if got.Service == nil || got.Service.Name != tc.service || got.Operation != tc.op {
		gs := "<nil>"
		if got.Service != nil {
			gs = got.Service.Name
		}
		t.Errorf("%s: classified as %s.%s, want %s.%s", tc.name, gs, got.Operation, tc.service, tc.op)
		return
	}
	if got.Action != tc.action {
		t.Errorf("%s: action %s, want %s", tc.name, got.Action, tc.action)
	}
	if f := flagString(got); f != tc.flags {
		t.Errorf("%s: flags %q, want %q", tc.name, f, tc.flags)
	}
	if !equalStrings(slices.Sorted(slices.Values(got.Resources)), slices.Sorted(slices.Values(tc.resources))) {
		t.Errorf("%s: resources %q, want %q", tc.name, got.Resources, tc.resources)
	}
	for k, v := range tc.params {
		if got.Params[k] != v {
			t.Errorf("%s: Params[%s] = %q, want %q (all: %v)", tc.name, k, got.Params[k], v, got.Params)
		}
	}
	for k, v := range got.Params {
		if strings.Contains(v, "hunter2") || strings.Contains(v, "kkkkkkkk") {
			t.Errorf("%s: sensitive value in Params[%s]", tc.name, k)
		}
	}
}

// goldenLine renders a captured request and its classification without
// the parts that change from run to run (dates, signatures, ids).
func goldenLine(name string, c captured, got Classification) string {
	wire := c.method + " " + c.path
	if q := stableQuery(c.rawQuery); q != "" {
		wire += "?" + q
	}
	if t := c.header.Get("X-Amz-Target"); t != "" {
		wire += " target=" + t
	}
	if c.header.Get("Smithy-Protocol") != "" {
		wire += " smithy=" + c.header.Get("Smithy-Protocol")
	}
	if strings.HasPrefix(c.header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		vals, _ := url.ParseQuery(string(c.body))
		wire += " Action=" + vals.Get("Action")
	}
	svc := "-"
	if got.Service != nil {
		svc = got.Service.Name + "(" + got.Service.EndpointPrefix + ")"
	}
	keys := slices.Sorted(mapKeys(got.Params))
	var ps []string
	for _, k := range keys {
		if strings.HasSuffix(strings.ToLower(k), "token") {
			ps = append(ps, k+"=<random>") // idempotency tokens
			continue
		}
		// Go maps reach the wire in random order: sort list values.
		vs := strings.Split(got.Params[k], ",")
		slices.Sort(vs)
		ps = append(ps, k+"="+strings.Join(vs, ","))
	}
	res := slices.Sorted(slices.Values(got.Resources))
	return fmt.Sprintf("%s | %s | %s %s %s [%s] {%s} %s", name, wire, svc, orDash(got.Operation), got.Action,
		strings.Join(res, " "), strings.Join(ps, " "), orDash(flagString(got)))
}

func stableQuery(raw string) string {
	var keep []string
	for part := range strings.SplitSeq(raw, "&") {
		if part != "" {
			keep = append(keep, part)
		}
	}
	slices.Sort(keep)
	return strings.Join(keep, "&")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
