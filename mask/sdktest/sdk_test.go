package sdktest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentity"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecrpublic"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	ststypes "github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go/logging"

	"github.com/gatehouse-dev/gatehouse/mask"
)

func mustNew(t *testing.T, rules ...mask.Rule) *mask.Masker {
	t.Helper()
	m, err := mask.New(mask.Config{Rules: rules})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// upstream is a canned AWS response.
type upstream struct {
	contentType string
	body        string
	gzip        bool // send the body gzip-encoded
	crc32       bool // add X-Amz-Crc32 as DynamoDB does (of the bytes sent)
	checksum    bool // add x-amz-checksum-crc32 and Content-MD5
}

func (u upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	body := []byte(u.body)
	if u.gzip {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(body)
		zw.Close()
		body = b.Bytes()
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Type", u.contentType)
	w.Header().Set("X-Amzn-Requestid", "req-1")
	if u.crc32 {
		w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
	if u.checksum {
		w.Header().Set("X-Amz-Checksum-Crc32", "AAAAAA==")
		w.Header().Set("Content-Md5", "AAAAAAAAAAAAAAAAAAAAAA==")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// gateway starts upstream and, in front of it, a reverse proxy whose
// ModifyResponse masks with m, the way awsproxy's hook will. Reports go to
// *reports. A masking error answers with an AWS-shaped JSON error.
func gateway(t *testing.T, up http.Handler, m *mask.Masker, reports *[]*mask.Report) string {
	t.Helper()
	us := httptest.NewServer(up)
	t.Cleanup(us.Close)
	target, _ := url.Parse(us.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			if m == nil {
				return nil
			}
			rep, err := m.MaskResponse(resp)
			if err == nil && reports != nil {
				*reports = append(*reports, rep)
			}
			return err
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-Errortype", "MaskingFailed")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, `{"__type":"MaskingFailed","message":"response could not be masked"}`)
		},
	}
	fs := httptest.NewServer(proxy)
	t.Cleanup(fs.Close)
	return fs.URL
}

// sdkLog collects what the SDK logs: DynamoDB reports a CRC32 mismatch
// only as a warning when it closes the body.
type sdkLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *sdkLog) Logf(_ logging.Classification, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.b, format+"\n", v...)
}

func (l *sdkLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func sdkConfig(t *testing.T, endpoint string) aws.Config {
	cfg, _ := sdkConfigLog(t, endpoint)
	return cfg
}

func sdkConfigLog(t *testing.T, endpoint string) (aws.Config, *sdkLog) {
	t.Helper()
	t.Setenv("AWS_CA_BUNDLE", "")
	log := &sdkLog{}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithLogger(log),
		config.WithRegion("us-east-1"),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		config.WithRetryMaxAttempts(1),
		config.WithHTTPClient(&http.Client{}),
		config.WithBaseEndpoint(endpoint),
	)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, log
}

func profileMasker(t *testing.T, service, op string) *mask.Masker {
	t.Helper()
	p, err := mask.CompileProfile(mask.ProfileAWSSecrets, mask.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m := p.Masker(service, op)
	if m == nil {
		t.Fatalf("profile has no rules for %s %s", service, op)
	}
	return m
}

const (
	jsonType11 = "application/x-amz-json-1.1"
	xmlType    = "text/xml"
	secretKey  = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	token      = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampletokenexampletokenexampletokenexampletoken=="
)

func TestSDKParsesMaskedResponses(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		service string
		op      string
		up      upstream
		call    func(t *testing.T, cfg aws.Config) []string // returns values that must be masked
		secrets []string                                    // must not reach the client
	}{
		{"secretsmanager GetSecretValue", "secretsmanager", "GetSecretValue",
			upstream{contentType: jsonType11, body: `{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf","Name":"db","SecretString":"{\"username\":\"admin\",\"password\":\"hunter2\"}","VersionId":"EXAMPLE1-90ab-cdef-fedc-ba987SECRET1","VersionStages":["AWSCURRENT"],"CreatedDate":1.523477145713E9}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.Name) != "db" || len(out.VersionStages) != 1 || out.CreatedDate == nil {
					t.Errorf("unmasked fields lost: %+v", out)
				}
				return []string{aws.ToString(out.SecretString)}
			}, []string{"hunter2"}},
		{"secretsmanager GetSecretValue binary", "secretsmanager", "GetSecretValue",
			upstream{contentType: jsonType11, body: `{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:bin","Name":"bin","SecretBinary":"aHVudGVyMg==","VersionId":"v"}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("bin")})
				if err != nil {
					t.Fatal(err)
				}
				if out.SecretBinary != nil {
					t.Errorf("SecretBinary = %q, want removed", out.SecretBinary)
				}
				return nil
			}, []string{"aHVudGVyMg"}},
		{"secretsmanager BatchGetSecretValue", "secretsmanager", "BatchGetSecretValue",
			upstream{contentType: jsonType11, body: `{"SecretValues":[{"ARN":"arn:a","Name":"a","SecretString":"hunter2","VersionId":"v1","VersionStages":["AWSCURRENT"]},{"ARN":"arn:b","Name":"b","SecretBinary":"aHVudGVyMg==","VersionId":"v2"}],"Errors":[]}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := secretsmanager.NewFromConfig(cfg).BatchGetSecretValue(ctx, &secretsmanager.BatchGetSecretValueInput{SecretIdList: []string{"a", "b"}})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.SecretValues) != 2 || out.SecretValues[1].SecretBinary != nil {
					t.Fatalf("SecretValues = %+v", out.SecretValues)
				}
				return []string{aws.ToString(out.SecretValues[0].SecretString)}
			}, []string{"hunter2", "aHVudGVyMg"}},
		{"ssm GetParameter SecureString", "ssm", "GetParameter",
			upstream{contentType: jsonType11, body: `{"Parameter":{"ARN":"arn:aws:ssm:us-east-1:123456789012:parameter/db/pass","DataType":"text","LastModifiedDate":1.7E9,"Name":"/db/pass","Type":"SecureString","Value":"hunter2","Version":3}}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/db/pass"), WithDecryption: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				if out.Parameter.Version != 3 || aws.ToString(out.Parameter.Name) != "/db/pass" {
					t.Errorf("Parameter = %+v", out.Parameter)
				}
				return []string{aws.ToString(out.Parameter.Value)}
			}, []string{"hunter2"}},
		{"ssm GetParameter String stays", "ssm", "GetParameter",
			upstream{contentType: jsonType11, body: `{"Parameter":{"Name":"/app/region","Type":"String","Value":"eu-west-1","Version":1}}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ssm.NewFromConfig(cfg).GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String("/app/region")})
				if err != nil {
					t.Fatal(err)
				}
				if v := aws.ToString(out.Parameter.Value); v != "eu-west-1" {
					t.Errorf("String parameter masked: %q", v)
				}
				return nil
			}, nil},
		{"ssm GetParameters", "ssm", "GetParameters",
			upstream{contentType: jsonType11, body: `{"InvalidParameters":["/nope"],"Parameters":[{"Name":"/a","Type":"String","Value":"plain","Version":1},{"Name":"/b","Type":"SecureString","Value":"hunter2","Version":1},{"Name":"/c","Type":"StringList","Value":"x,y","Version":1}]}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ssm.NewFromConfig(cfg).GetParameters(ctx, &ssm.GetParametersInput{Names: []string{"/a", "/b", "/c", "/nope"}, WithDecryption: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Parameters) != 3 || aws.ToString(out.Parameters[0].Value) != "plain" || aws.ToString(out.Parameters[2].Value) != "x,y" {
					t.Errorf("Parameters = %+v", out.Parameters)
				}
				return []string{aws.ToString(out.Parameters[1].Value)}
			}, []string{"hunter2"}},
		{"ssm GetParametersByPath", "ssm", "GetParametersByPath",
			upstream{contentType: jsonType11, body: `{"NextToken":"n","Parameters":[{"Name":"/db/user","Type":"String","Value":"admin"},{"Name":"/db/pass","Type":"SecureString","Value":"hunter2"}]}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ssm.NewFromConfig(cfg).GetParametersByPath(ctx, &ssm.GetParametersByPathInput{Path: aws.String("/db"), WithDecryption: aws.Bool(true)})
				if err != nil {
					t.Fatal(err)
				}
				if len(out.Parameters) != 2 || aws.ToString(out.Parameters[0].Value) != "admin" {
					t.Errorf("Parameters = %+v", out.Parameters)
				}
				return []string{aws.ToString(out.Parameters[1].Value)}
			}, []string{"hunter2"}},
		{"sts AssumeRole", "sts", "AssumeRole",
			upstream{contentType: xmlType, body: stsCredentialsXML("AssumeRole", `<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/demo/s</Arn><AssumedRoleId>AROA3XFRBF535PLBIFPI4:s</AssumedRoleId></AssumedRoleUser><PackedPolicySize>6</PackedPolicySize><SourceIdentity>alice</SourceIdentity>`)},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/demo"), RoleSessionName: aws.String("s")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.SourceIdentity) != "alice" || out.Credentials.Expiration == nil {
					t.Errorf("unmasked fields lost: %+v", out)
				}
				if v := aws.ToString(out.Credentials.AccessKeyId); v != mask.Marker+"MPLE" {
					t.Errorf("AccessKeyId = %q", v)
				}
				return []string{aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}
			}, []string{secretKey, token, "ASIAIOSFODNN7EXAMPLE"}},
		{"sts GetSessionToken", "sts", "GetSessionToken",
			upstream{contentType: xmlType, body: stsCredentialsXML("GetSessionToken", "")},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := sts.NewFromConfig(cfg).GetSessionToken(ctx, &sts.GetSessionTokenInput{})
				if err != nil {
					t.Fatal(err)
				}
				return []string{aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}
			}, []string{secretKey, token}},
		{"sts GetFederationToken", "sts", "GetFederationToken",
			upstream{contentType: xmlType, body: stsCredentialsXML("GetFederationToken", `<FederatedUser><Arn>arn:aws:sts::123456789012:federated-user/bob</Arn><FederatedUserId>123456789012:bob</FederatedUserId></FederatedUser><PackedPolicySize>6</PackedPolicySize>`)},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := sts.NewFromConfig(cfg).GetFederationToken(ctx, &sts.GetFederationTokenInput{Name: aws.String("bob")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.FederatedUser.FederatedUserId) != "123456789012:bob" {
					t.Errorf("FederatedUser = %+v", out.FederatedUser)
				}
				return []string{aws.ToString(out.Credentials.SecretAccessKey), aws.ToString(out.Credentials.SessionToken)}
			}, []string{secretKey, token}},
		{"iam CreateAccessKey", "iam", "CreateAccessKey",
			upstream{contentType: xmlType, body: `<CreateAccessKeyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
  <CreateAccessKeyResult>
    <AccessKey>
      <UserName>Bob</UserName>
      <AccessKeyId>AKIAIOSFODNN7EXAMPLE</AccessKeyId>
      <Status>Active</Status>
      <SecretAccessKey>` + secretKey + `</SecretAccessKey>
      <CreateDate>2026-11-25T12:00:00Z</CreateDate>
    </AccessKey>
  </CreateAccessKeyResult>
  <ResponseMetadata><RequestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>
</CreateAccessKeyResponse>`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := iam.NewFromConfig(cfg).CreateAccessKey(ctx, &iam.CreateAccessKeyInput{UserName: aws.String("Bob")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.AccessKey.UserName) != "Bob" || out.AccessKey.CreateDate == nil {
					t.Errorf("AccessKey = %+v", out.AccessKey)
				}
				return []string{aws.ToString(out.AccessKey.SecretAccessKey)}
			}, []string{secretKey}},
		{"lambda GetFunction", "lambda", "GetFunction",
			upstream{contentType: "application/json", body: `{"Code":{"Location":"https://awslambda-us-east-1-tasks.s3.us-east-1.amazonaws.com/snapshots/f","RepositoryType":"S3"},"Configuration":{"FunctionName":"f","FunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:f","Runtime":"go1.x","Environment":{"Variables":{"DB_PASSWORD":"hunter2","API_TOKEN":"tok-12345"}},"MemorySize":128},"Tags":{"team":"x"}}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := lambda.NewFromConfig(cfg).GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String("f")})
				if err != nil {
					t.Fatal(err)
				}
				v := out.Configuration.Environment.Variables
				if len(v) != 2 || aws.ToInt32(out.Configuration.MemorySize) != 128 || out.Tags["team"] != "x" {
					t.Errorf("Configuration = %+v", out.Configuration)
				}
				return []string{v["DB_PASSWORD"], v["API_TOKEN"]}
			}, []string{"hunter2", "tok-12345"}},
		{"lambda GetFunctionConfiguration", "lambda", "GetFunctionConfiguration",
			upstream{contentType: "application/json", body: `{"FunctionName":"f","Environment":{"Variables":{"DB_PASSWORD":"hunter2"}},"Timeout":3}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := lambda.NewFromConfig(cfg).GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("f")})
				if err != nil {
					t.Fatal(err)
				}
				return []string{out.Environment.Variables["DB_PASSWORD"]}
			}, []string{"hunter2"}},
		{"ecs DescribeTaskDefinition", "ecs", "DescribeTaskDefinition",
			upstream{contentType: jsonType11, body: `{"taskDefinition":{"family":"web","revision":4,"containerDefinitions":[{"name":"app","image":"nginx","environment":[{"name":"DB_PASSWORD","value":"hunter2"},{"name":"MODE","value":"prod"}],"secrets":[{"name":"K","valueFrom":"arn:aws:ssm:us-east-1:123456789012:parameter/k"}]}]},"tags":[]}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ecs.NewFromConfig(cfg).DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String("web")})
				if err != nil {
					t.Fatal(err)
				}
				c := out.TaskDefinition.ContainerDefinitions[0]
				if aws.ToString(c.Environment[0].Name) != "DB_PASSWORD" || len(c.Secrets) != 1 {
					t.Errorf("container = %+v", c)
				}
				return []string{aws.ToString(c.Environment[0].Value), aws.ToString(c.Environment[1].Value)}
			}, []string{"hunter2"}},
		{"ec2 GetPasswordData", "ec2", "GetPasswordData",
			upstream{contentType: xmlType, body: `<?xml version="1.0" encoding="UTF-8"?>
<GetPasswordDataResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
    <requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>
    <instanceId>i-1234567890abcdef0</instanceId>
    <timestamp>2026-11-25T12:00:00.000Z</timestamp>
    <passwordData>TGludXggcGFzc3dvcmQgZXhhbXBsZQ==</passwordData>
</GetPasswordDataResponse>`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ec2.NewFromConfig(cfg).GetPasswordData(ctx, &ec2.GetPasswordDataInput{InstanceId: aws.String("i-1234567890abcdef0")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.InstanceId) != "i-1234567890abcdef0" || out.Timestamp == nil {
					t.Errorf("out = %+v", out)
				}
				return []string{aws.ToString(out.PasswordData)}
			}, []string{"TGludXggcGFzc3dvcmQ"}},
		{"ecr GetAuthorizationToken", "ecr", "GetAuthorizationToken",
			upstream{contentType: jsonType11, body: `{"authorizationData":[{"authorizationToken":"QVdTOmh1bnRlcjI=","expiresAt":1.7E9,"proxyEndpoint":"https://123456789012.dkr.ecr.us-east-1.amazonaws.com"}]}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := ecr.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
				if err != nil {
					t.Fatal(err)
				}
				a := out.AuthorizationData[0]
				if a.ExpiresAt == nil || !strings.HasPrefix(aws.ToString(a.ProxyEndpoint), "https://") {
					t.Errorf("AuthorizationData = %+v", a)
				}
				return []string{aws.ToString(a.AuthorizationToken)}
			}, []string{"QVdTOmh1bnRlcjI"}},
		{"cognito GetCredentialsForIdentity", "cognito-identity", "GetCredentialsForIdentity",
			upstream{contentType: jsonType11, body: `{"Credentials":{"AccessKeyId":"ASIAIOSFODNN7EXAMPLE","Expiration":1.7E9,"SecretKey":"` + strings.ReplaceAll(secretKey, "/", `\/`) + `","SessionToken":"` + token + `"},"IdentityId":"us-east-1:0000-1111"}`},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := cognitoidentity.NewFromConfig(cfg).GetCredentialsForIdentity(ctx, &cognitoidentity.GetCredentialsForIdentityInput{IdentityId: aws.String("us-east-1:0000-1111")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.IdentityId) != "us-east-1:0000-1111" || out.Credentials.Expiration == nil {
					t.Errorf("out = %+v", out)
				}
				if v := aws.ToString(out.Credentials.AccessKeyId); v != mask.Marker+"MPLE" {
					t.Errorf("AccessKeyId = %q", v)
				}
				return []string{aws.ToString(out.Credentials.SecretKey), aws.ToString(out.Credentials.SessionToken)}
			}, []string{secretKey, token}},
		{"s3 GetObject text", "s3", "GetObject",
			upstream{contentType: "text/plain", body: "[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = " + secretKey + "\naws_session_token = " + token + "\n"},
			func(t *testing.T, cfg aws.Config) []string {
				out, err := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }).GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("b"), Key: aws.String("credentials")})
				if err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(out.Body)
				if err != nil {
					t.Fatal(err)
				}
				want := "[default]\naws_access_key_id = ****MPLE\naws_secret_access_key = ****\naws_session_token = ****\n"
				if string(b) != want || aws.ToInt64(out.ContentLength) != int64(len(want)) {
					t.Errorf("object = %q (length %d), want %q", b, aws.ToInt64(out.ContentLength), want)
				}
				return nil
			}, []string{secretKey, token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reports []*mask.Report
			cfg := sdkConfig(t, gateway(t, tt.up, profileMasker(t, tt.service, tt.op), &reports))
			masked := tt.call(t, cfg)
			for _, v := range masked {
				if v != mask.Marker {
					t.Errorf("value %q reached the client, want %q", v, mask.Marker)
				}
			}
			if len(reports) != 1 {
				t.Fatalf("got %d reports", len(reports))
			}
			if len(tt.secrets) > 0 && !reports[0].Masked() {
				t.Errorf("report says nothing was masked")
			}
		})
	}
}

func stsCredentialsXML(op, extra string) string {
	return `<` + op + `Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <` + op + `Result>
    ` + extra + `
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>` + secretKey + `</SecretAccessKey>
      <SessionToken>` + token + `</SessionToken>
      <Expiration>2026-11-25T12:00:00Z</Expiration>
    </Credentials>
  </` + op + `Result>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</` + op + `Response>`
}

// TestSDKDynamoDBCRC32 checks that the SDK's X-Amz-Crc32 validation passes
// after masking, for plain and gzip bodies, and that a stale CRC would
// have been caught (the check is live).
func TestSDKDynamoDBCRC32(t *testing.T) {
	ctx := context.Background()
	const item = `{"Item":{"id":{"S":"u1"},"password":{"S":"hunter2"},"age":{"N":"42"}}}`
	m := mustNew(t, mask.Rule{Name: "password", JSON: "Item.password.S"})
	for _, gz := range []bool{false, true} {
		t.Run("gzip="+strconv.FormatBool(gz), func(t *testing.T) {
			up := upstream{contentType: "application/x-amz-json-1.0", body: item, crc32: true, gzip: gz}
			cfg, log := sdkConfigLog(t, gateway(t, up, m, nil))
			out, err := dynamodb.NewFromConfig(cfg, gzipOpt).GetItem(ctx, &dynamodb.GetItemInput{
				TableName: aws.String("users"),
				Key:       map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u1"}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if v := out.Item["password"].(*ddbtypes.AttributeValueMemberS).Value; v != mask.Marker {
				t.Errorf("password = %q", v)
			}
			if v := out.Item["age"].(*ddbtypes.AttributeValueMemberN).Value; v != "42" {
				t.Errorf("age = %q", v)
			}
			if l := log.String(); l != "" {
				t.Errorf("SDK logged: %s", l)
			}
		})
	}
	t.Run("unmasked passes through with original CRC", func(t *testing.T) {
		up := upstream{contentType: "application/x-amz-json-1.0", body: `{"Item":{"id":{"S":"u1"}}}`, crc32: true, gzip: true}
		cfg, log := sdkConfigLog(t, gateway(t, up, m, nil))
		if _, err := dynamodb.NewFromConfig(cfg, gzipOpt).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("users"), Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u1"}}}); err != nil {
			t.Fatal(err)
		}
		if l := log.String(); l != "" {
			t.Errorf("SDK logged: %s", l)
		}
	})
	t.Run("stale CRC is rejected by the SDK", func(t *testing.T) {
		up := upstream{contentType: "application/x-amz-json-1.0", body: item, crc32: true}
		stale := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := httptest.NewRecorder()
			up.ServeHTTP(rec, r)
			resp := rec.Result()
			crc := resp.Header.Get("X-Amz-Crc32")
			if _, err := m.MaskResponse(resp); err != nil {
				t.Error(err)
			}
			resp.Header.Set("X-Amz-Crc32", crc)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			io.Copy(w, resp.Body)
		})
		cfg, log := sdkConfigLog(t, gateway(t, stale, nil, nil))
		_, err := dynamodb.NewFromConfig(cfg).GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("users"), Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "u1"}}})
		// The SDK reports a CRC32 mismatch when it closes the body: as an
		// error or, in current versions, as a logged warning.
		if err == nil && !strings.Contains(log.String(), "did not match expected checksum") {
			t.Fatalf("err = %v, log = %q: the stale CRC went unnoticed", err, log.String())
		}
	})
}

// TestSDKFailsClosed checks that oversize and invalid upstream bodies never
// reach the SDK: the gateway's error does.
func TestSDKFailsClosed(t *testing.T) {
	ctx := context.Background()
	big := `{"Name":"db","SecretString":"` + strings.Repeat("x", 2048) + `"}`
	tests := []struct {
		name string
		up   upstream
		max  int64
	}{
		{"oversize", upstream{contentType: jsonType11, body: big}, 1024},
		{"oversize after gunzip", upstream{contentType: jsonType11, body: big, gzip: true}, 1024},
		{"invalid JSON", upstream{contentType: jsonType11, body: `{"Name":"db","SecretString":"hunter2"`}, 0},
		{"invalid JSON content-type lies", upstream{contentType: jsonType11, body: `<x>hunter2</x>`}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := mask.New(mask.Config{Rules: mask.ProfileRules(mask.ProfileAWSSecrets, "secretsmanager", "GetSecretValue"), MaxBody: tt.max})
			if err != nil {
				t.Fatal(err)
			}
			cfg := sdkConfig(t, gateway(t, tt.up, m, nil))
			out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("db")})
			if err == nil {
				t.Fatalf("call succeeded: %+v", out)
			}
			if !strings.Contains(err.Error(), "MaskingFailed") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("err = %v", err)
			}
		})
	}
	t.Run("invalid XML", func(t *testing.T) {
		up := upstream{contentType: xmlType, body: `<AssumeRoleResponse><AssumeRoleResult><Credentials><SecretAccessKey>` + secretKey + `</SecretAccessKey></Credentials>`}
		cfg := sdkConfig(t, gateway(t, up, profileMasker(t, "sts", "AssumeRole"), nil))
		_, err := sts.NewFromConfig(cfg).AssumeRole(ctx, &sts.AssumeRoleInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/demo"), RoleSessionName: aws.String("s")})
		if err == nil || strings.Contains(err.Error(), secretKey) {
			t.Fatalf("err = %v", err)
		}
	})
}

// gzipOpt makes the DynamoDB client ask for gzip and decode it itself
// (after checking the CRC32 of the compressed bytes).
func gzipOpt(o *dynamodb.Options) { o.EnableAcceptEncodingGzip = true }

// sdkTested lists the operations that TestSDKParsesMaskedResponses and
// TestSDKProfileOperations call through a real SDK client.
var sdkTested = map[string]bool{
	"secretsmanager GetSecretValue": true, "secretsmanager BatchGetSecretValue": true,
	"ssm GetParameter": true, "ssm GetParameters": true, "ssm GetParametersByPath": true,
	"sts AssumeRole": true, "sts GetSessionToken": true, "sts GetFederationToken": true,
	"iam CreateAccessKey": true, "lambda GetFunction": true, "lambda GetFunctionConfiguration": true,
	"ecs DescribeTaskDefinition": true, "ec2 GetPasswordData": true, "ecr GetAuthorizationToken": true,
	"cognito-identity GetCredentialsForIdentity": true, "s3 GetObject": true,
}

// TestSDKProfileOperations covers the profile's remaining operations with
// real SDK clients, so every entry is checked against a shape the SDK parses.
func TestSDKProfileOperations(t *testing.T) {
	ctx := context.Background()
	type call func(t *testing.T, cfg aws.Config) []*string
	lambdaConfig := `{"FunctionName":"f","Environment":{"Variables":{"DB_PASSWORD":"hunter2"}}}`
	lambdaEnv := func(c *lambdatypes.EnvironmentResponse) []*string {
		v := c.Variables["DB_PASSWORD"]
		return []*string{&v}
	}
	taskDef := `{"taskDefinition":{"family":"web","containerDefinitions":[{"name":"app","environment":[{"name":"DB_PASSWORD","value":"hunter2"}]}]}}`
	serviceCred := func(op string) string {
		return `<` + op + `Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><` + op + `Result><ServiceSpecificCredential>
<CreateDate>2026-11-25T12:00:00Z</CreateDate><ServiceName>codecommit.amazonaws.com</ServiceName><ServiceUserName>bob-at-123</ServiceUserName>
<ServicePassword>hunter2hunter2</ServicePassword><ServiceCredentialSecret>hunter3hunter3</ServiceCredentialSecret>
<ServiceSpecificCredentialId>ACCA1234567890EXAMPLE</ServiceSpecificCredentialId><UserName>bob</UserName><Status>Active</Status>
</ServiceSpecificCredential></` + op + `Result><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></` + op + `Response>`
	}
	tests := []struct {
		service, op string
		up          upstream
		call        call
	}{
		{"sts", "AssumeRoleWithWebIdentity", upstream{contentType: xmlType, body: stsCredentialsXML("AssumeRoleWithWebIdentity", `<SubjectFromWebIdentityToken>alice</SubjectFromWebIdentityToken>`)},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := sts.NewFromConfig(cfg).AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), RoleSessionName: aws.String("s"), WebIdentityToken: aws.String("jwt")})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.Credentials.SecretAccessKey, out.Credentials.SessionToken}
			}},
		{"sts", "AssumeRoleWithSAML", upstream{contentType: xmlType, body: stsCredentialsXML("AssumeRoleWithSAML", `<Subject>alice</Subject>`)},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := sts.NewFromConfig(cfg).AssumeRoleWithSAML(ctx, &sts.AssumeRoleWithSAMLInput{RoleArn: aws.String("arn:aws:iam::123456789012:role/r"), PrincipalArn: aws.String("arn:aws:iam::123456789012:saml-provider/p"), SAMLAssertion: aws.String("PHNhbWw+")})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.Credentials.SecretAccessKey, out.Credentials.SessionToken}
			}},
		{"sts", "AssumeRoot", upstream{contentType: xmlType, body: stsCredentialsXML("AssumeRoot", `<SourceIdentity>alice</SourceIdentity>`)},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := sts.NewFromConfig(cfg).AssumeRoot(ctx, &sts.AssumeRootInput{TargetPrincipal: aws.String("123456789012"), TaskPolicyArn: &ststypes.PolicyDescriptorType{Arn: aws.String("arn:aws:iam::aws:policy/root-task/IAMAuditRootUserCredentials")}})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.Credentials.SecretAccessKey, out.Credentials.SessionToken}
			}},
		{"ssm", "GetParameterHistory", upstream{contentType: jsonType11, body: `{"Parameters":[{"Name":"/p","Type":"SecureString","Value":"hunter2","Version":1},{"Name":"/p","Type":"String","Value":"plain","Version":2}]}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := ssm.NewFromConfig(cfg).GetParameterHistory(ctx, &ssm.GetParameterHistoryInput{Name: aws.String("/p")})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(out.Parameters[1].Value) != "plain" {
					t.Errorf("String value masked")
				}
				return []*string{out.Parameters[0].Value}
			}},
		{"lambda", "ListFunctions", upstream{contentType: "application/json", body: `{"Functions":[` + lambdaConfig + `,` + lambdaConfig + `]}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := lambda.NewFromConfig(cfg).ListFunctions(ctx, &lambda.ListFunctionsInput{})
				if err != nil {
					t.Fatal(err)
				}
				return append(lambdaEnv(out.Functions[0].Environment), lambdaEnv(out.Functions[1].Environment)...)
			}},
		{"lambda", "ListVersionsByFunction", upstream{contentType: "application/json", body: `{"Versions":[` + lambdaConfig + `]}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := lambda.NewFromConfig(cfg).ListVersionsByFunction(ctx, &lambda.ListVersionsByFunctionInput{FunctionName: aws.String("f")})
				if err != nil {
					t.Fatal(err)
				}
				return lambdaEnv(out.Versions[0].Environment)
			}},
		{"lambda", "CreateFunction", upstream{contentType: "application/json", body: lambdaConfig},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := lambda.NewFromConfig(cfg).CreateFunction(ctx, &lambda.CreateFunctionInput{FunctionName: aws.String("f"), Role: aws.String("arn:aws:iam::123456789012:role/r"), Code: &lambdatypes.FunctionCode{ZipFile: []byte("x")}})
				if err != nil {
					t.Fatal(err)
				}
				return lambdaEnv(out.Environment)
			}},
		{"lambda", "UpdateFunctionConfiguration", upstream{contentType: "application/json", body: lambdaConfig},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := lambda.NewFromConfig(cfg).UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("f")})
				if err != nil {
					t.Fatal(err)
				}
				return lambdaEnv(out.Environment)
			}},
		{"lambda", "UpdateFunctionCode", upstream{contentType: "application/json", body: lambdaConfig},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := lambda.NewFromConfig(cfg).UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String("f"), ZipFile: []byte("x")})
				if err != nil {
					t.Fatal(err)
				}
				return lambdaEnv(out.Environment)
			}},
		{"lambda", "PublishVersion", upstream{contentType: "application/json", body: lambdaConfig},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := lambda.NewFromConfig(cfg).PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: aws.String("f")})
				if err != nil {
					t.Fatal(err)
				}
				return lambdaEnv(out.Environment)
			}},
		{"ecs", "RegisterTaskDefinition", upstream{contentType: jsonType11, body: taskDef},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := ecs.NewFromConfig(cfg).RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("web"), ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app")}}})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.TaskDefinition.ContainerDefinitions[0].Environment[0].Value}
			}},
		{"ecs", "DeregisterTaskDefinition", upstream{contentType: jsonType11, body: taskDef},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := ecs.NewFromConfig(cfg).DeregisterTaskDefinition(ctx, &ecs.DeregisterTaskDefinitionInput{TaskDefinition: aws.String("web:1")})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.TaskDefinition.ContainerDefinitions[0].Environment[0].Value}
			}},
		{"ecs", "DescribeTasks", upstream{contentType: jsonType11, body: `{"failures":[],"tasks":[{"taskArn":"arn:t","overrides":{"containerOverrides":[{"name":"app","environment":[{"name":"DB_PASSWORD","value":"hunter2"}]}]}}]}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := ecs.NewFromConfig(cfg).DescribeTasks(ctx, &ecs.DescribeTasksInput{Tasks: []string{"t"}})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.Tasks[0].Overrides.ContainerOverrides[0].Environment[0].Value}
			}},
		{"iam", "CreateServiceSpecificCredential", upstream{contentType: xmlType, body: serviceCred("CreateServiceSpecificCredential")},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := iam.NewFromConfig(cfg).CreateServiceSpecificCredential(ctx, &iam.CreateServiceSpecificCredentialInput{UserName: aws.String("bob"), ServiceName: aws.String("codecommit.amazonaws.com")})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.ServiceSpecificCredential.ServicePassword, out.ServiceSpecificCredential.ServiceCredentialSecret}
			}},
		{"iam", "ResetServiceSpecificCredential", upstream{contentType: xmlType, body: serviceCred("ResetServiceSpecificCredential")},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := iam.NewFromConfig(cfg).ResetServiceSpecificCredential(ctx, &iam.ResetServiceSpecificCredentialInput{ServiceSpecificCredentialId: aws.String("ACCA1234567890EXAMPLE")})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.ServiceSpecificCredential.ServicePassword, out.ServiceSpecificCredential.ServiceCredentialSecret}
			}},
		{"ecr-public", "GetAuthorizationToken", upstream{contentType: jsonType11, body: `{"authorizationData":{"authorizationToken":"QVdTOmh1bnRlcjI=","expiresAt":1.7E9}}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := ecrpublic.NewFromConfig(cfg).GetAuthorizationToken(ctx, &ecrpublic.GetAuthorizationTokenInput{})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.AuthorizationData.AuthorizationToken}
			}},
		{"cognito-identity", "GetOpenIdToken", upstream{contentType: jsonType11, body: `{"IdentityId":"us-east-1:1","Token":"eyJraWQiOiJ1cy1lYXN0LTEifQ.eyJzdWIiOiJ1cy1lYXN0LTE6MSJ9.sig"}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := cognitoidentity.NewFromConfig(cfg).GetOpenIdToken(ctx, &cognitoidentity.GetOpenIdTokenInput{IdentityId: aws.String("us-east-1:1")})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.Token}
			}},
		{"cognito-identity", "GetOpenIdTokenForDeveloperIdentity", upstream{contentType: jsonType11, body: `{"IdentityId":"us-east-1:1","Token":"eyJraWQiOiJ1cy1lYXN0LTEifQ.eyJzdWIiOiJ1cy1lYXN0LTE6MSJ9.sig"}`},
			func(t *testing.T, cfg aws.Config) []*string {
				out, err := cognitoidentity.NewFromConfig(cfg).GetOpenIdTokenForDeveloperIdentity(ctx, &cognitoidentity.GetOpenIdTokenForDeveloperIdentityInput{IdentityPoolId: aws.String("us-east-1:p"), Logins: map[string]string{"login.example": "alice"}})
				if err != nil {
					t.Fatal(err)
				}
				return []*string{out.Token}
			}},
	}
	for _, tt := range tests {
		sdkTested[tt.service+" "+tt.op] = true
		t.Run(tt.service+" "+tt.op, func(t *testing.T) {
			cfg := sdkConfig(t, gateway(t, tt.up, profileMasker(t, tt.service, tt.op), nil))
			for i, v := range tt.call(t, cfg) {
				if aws.ToString(v) != mask.Marker {
					t.Errorf("value %d = %q, want %q", i, aws.ToString(v), mask.Marker)
				}
			}
		})
	}
	ops, _ := mask.Profile(mask.ProfileAWSSecrets)
	var missing []string
	for _, op := range ops {
		if !sdkTested[op.Service+" "+op.Operation] {
			missing = append(missing, op.Service+" "+op.Operation)
		}
	}
	if len(missing) > 0 {
		t.Errorf("profile entries without an SDK test: %s", strings.Join(missing, ", "))
	}
}
