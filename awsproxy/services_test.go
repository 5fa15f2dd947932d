package awsproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4test"
)

const (
	// clientToken is the session token the client presents to the gateway;
	// it must never reach AWS.
	clientToken = "client-session-token-must-not-leak"
	testAccount = "123456789012"
	lambdaARN   = "arn:aws:lambda:us-east-1:" + testAccount + ":function:gate-fn"
	svcTimeout  = 10 * time.Second
)

// serviceNames are the non-S3 signing names the fake upstream serves.
var serviceNames = []string{"sts", "dynamodb", "secretsmanager", "ec2", "lambda"}

// ---------------------------------------------------------------------------
// The fake AWS endpoint.

// upstreamRequest is what the fake AWS endpoint received.
type upstreamRequest struct {
	Service, Region string
	Method          string
	Path            string // escaped path as received
	Query           string // raw query as received
	Header          http.Header
	Body            []byte
}

// sigUpstream is a fake AWS endpoint for the non-S3 services. Every request
// must carry a SigV4 signature by the upstream key, which it verifies with
// aws-sdk-go-v2's own signer; it then answers like the service would.
type sigUpstream struct {
	srv      *httptest.Server
	mu       sync.Mutex
	reqs     []upstreamRequest
	problems []string
}

func newSigUpstream(t *testing.T) *sigUpstream {
	t.Helper()
	u := &sigUpstream{}
	u.srv = httptest.NewServer(u)
	t.Cleanup(u.srv.Close)
	return u
}

// Upstreams maps every served service to this endpoint.
func (u *sigUpstream) Upstreams() map[string]string {
	m := make(map[string]string, len(serviceNames))
	for _, s := range serviceNames {
		m[s] = u.srv.URL
	}
	return m
}

func (u *sigUpstream) Requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

// Hits is the number of requests that reached the endpoint, verified or not.
func (u *sigUpstream) Hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs) + len(u.problems)
}

// Problems lists the requests the endpoint refused and why.
func (u *sigUpstream) Problems() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.problems...)
}

func (u *sigUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		u.refuse(w, "", "reading body: "+err.Error())
		return
	}
	auth, err := verifyUpstreamRequest(r, body)
	if err != nil {
		u.refuse(w, auth.Service, fmt.Sprintf("%s %s: %v", r.Method, r.RequestURI, err))
		return
	}
	u.mu.Lock()
	u.reqs = append(u.reqs, upstreamRequest{
		Service: auth.Service, Region: auth.Region,
		Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		Header: r.Header.Clone(), Body: body,
	})
	u.mu.Unlock()
	respondAsAWS(w, r, auth.Service, body)
}

// refuse records a problem and answers with an error no gateway produces,
// so the SDK call fails loudly.
func (u *sigUpstream) refuse(w http.ResponseWriter, service, problem string) {
	u.mu.Lock()
	u.problems = append(u.problems, problem)
	u.mu.Unlock()
	writeServiceError(w, service, http.StatusForbidden, "UpstreamRefused", problem)
}

// verifyUpstreamRequest checks, the way AWS would, that r is signed by the
// upstream key (sigv4test.Verify), and that nothing of the client's
// credentials reached the upstream.
func verifyUpstreamRequest(r *http.Request, body []byte) (sigv4test.Auth, error) {
	if v := r.Header.Values("X-Amz-Security-Token"); len(v) > 0 {
		return sigv4test.Auth{}, fmt.Errorf("X-Amz-Security-Token %q reached the upstream", v)
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, clientToken) || strings.Contains(v, clientAKID) || strings.Contains(v, clientSecret) {
				return sigv4test.Auth{}, fmt.Errorf("header %s carries client credentials: %q", k, v)
			}
		}
	}
	if t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date")); err == nil {
		if d := time.Since(t); d > 5*time.Minute || d < -5*time.Minute {
			return sigv4test.Auth{}, fmt.Errorf("re-signed at %v, %v from now", t, d)
		}
	}
	return sigv4test.Verify(r, body, aws.Credentials{AccessKeyID: upAKID, SecretAccessKey: upSecret})
}

// writeServiceError answers with the error shape of service's protocol.
func writeServiceError(w http.ResponseWriter, service string, status int, code, msg string) {
	switch service {
	case "sts":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>up-1</RequestId></ErrorResponse>`, code, escapeXMLText(msg))
	case "ec2":
		w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, `<Response><Errors><Error><Code>%s</Code><Message>%s</Message></Error></Errors><RequestID>up-1</RequestID></Response>`, code, escapeXMLText(msg))
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", code)
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
	}
}

func escapeXMLText(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '&':
			b.WriteString("&amp;")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

const stsCallerIdentityXML = `<?xml version="1.0" encoding="UTF-8"?>
<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/gatehouse-agents/agent-1</Arn>
    <UserId>AROAUPSTREAMROLE00001:agent-1</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata>
    <RequestId>2f8e9c1a-sts-request</RequestId>
  </ResponseMetadata>
</GetCallerIdentityResponse>
`

const stsAccessKeyInfoXML = `<?xml version="1.0" encoding="UTF-8"?>
<GetAccessKeyInfoResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetAccessKeyInfoResult>
    <Account>210987654321</Account>
  </GetAccessKeyInfoResult>
  <ResponseMetadata>
    <RequestId>5b0c7e11-sts-request</RequestId>
  </ResponseMetadata>
</GetAccessKeyInfoResponse>
`

const ec2DescribeInstancesXML = `<?xml version="1.0" encoding="UTF-8"?>
<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>7a62c49f-ec2-request</requestId>
  <reservationSet>
    <item>
      <reservationId>r-0a1b2c3d4e5f60718</reservationId>
      <ownerId>123456789012</ownerId>
      <groupSet/>
      <instancesSet>
        <item>
          <instanceId>i-0gate000000000001</instanceId>
          <imageId>ami-0123456789abcdef0</imageId>
          <instanceState>
            <code>16</code>
            <name>running</name>
          </instanceState>
          <privateDnsName>ip-10-0-0-12.ec2.internal</privateDnsName>
          <instanceType>t3.micro</instanceType>
          <launchTime>2025-01-02T03:04:05.000Z</launchTime>
        </item>
      </instancesSet>
    </item>
  </reservationSet>
</DescribeInstancesResponse>
`

const lambdaListFunctionsJSON = `{"Functions":[{"FunctionName":"gate-fn","FunctionArn":"` + lambdaARN + `","Runtime":"python3.12","Handler":"app.handler","MemorySize":128,"Timeout":3,"LastModified":"2025-01-02T03:04:05.000+0000"}],"NextMarker":null}`

const secretValueJSON = `{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf","Name":"prod/db","VersionId":"a1b2c3d4-5678-90ab-cdef-EXAMPLE11111","SecretString":"{\"password\":\"hunter2\"}","VersionStages":["AWSCURRENT"],"CreatedDate":1735787045.123}`

// respondAsAWS answers one verified request like the real service.
func respondAsAWS(w http.ResponseWriter, r *http.Request, service string, body []byte) {
	h := w.Header()
	h.Set("X-Amzn-Requestid", "upstream-request-1")
	op := r.Header.Get("X-Amz-Target")
	if service == "sts" || service == "ec2" {
		// Query protocols: a form body, or (presigned) the query string.
		form, err := url.ParseQuery(string(body))
		if r.Method == http.MethodGet {
			form, err = r.URL.Query(), nil
		}
		if err != nil || r.URL.Path != "/" {
			writeServiceError(w, service, http.StatusBadRequest, "MalformedQueryString", "bad query request")
			return
		}
		op = form.Get("Action")
	}
	switch {
	case service == "sts" && op == "GetCallerIdentity":
		h.Set("Content-Type", "text/xml")
		io.WriteString(w, stsCallerIdentityXML)
	case service == "sts" && op == "GetAccessKeyInfo":
		h.Set("Content-Type", "text/xml")
		io.WriteString(w, stsAccessKeyInfoXML)
	case service == "ec2" && op == "DescribeInstances":
		h.Set("Content-Type", "text/xml;charset=UTF-8")
		io.WriteString(w, ec2DescribeInstancesXML)
	case service == "dynamodb" && op == "DynamoDB_20120810.ListTables":
		writeDynamoDB(w, `{"TableNames":["gate-audit","gate-table"]}`)
	case service == "dynamodb" && op == "DynamoDB_20120810.PutItem":
		writeDynamoDB(w, `{"ConsumedCapacity":{"TableName":"gate-table","CapacityUnits":1.0}}`)
	case service == "secretsmanager" && op == "secretsmanager.GetSecretValue":
		h.Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, secretValueJSON)
	case service == "lambda" && r.Method == http.MethodGet && r.URL.Path == "/2015-03-31/functions":
		h.Set("Content-Type", "application/json")
		io.WriteString(w, lambdaListFunctionsJSON)
	case service == "lambda" && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") && strings.HasSuffix(r.URL.Path, "/invocations"):
		h.Set("Content-Type", "application/json")
		h.Set("X-Amz-Executed-Version", "7")
		if r.Header.Get("X-Amz-Log-Type") == "Tail" {
			h.Set("X-Amz-Log-Result", base64.StdEncoding.EncodeToString([]byte("START RequestId: 1\nEND RequestId: 1\n")))
		}
		fmt.Fprintf(w, `{"echo":%s}`, body)
	default:
		writeServiceError(w, service, http.StatusBadRequest, "UnknownOperationException", fmt.Sprintf("no fake for %s %s %s %q", service, r.Method, r.URL.Path, op))
	}
}

// writeDynamoDB answers with a JSON 1.0 body and the CRC32 DynamoDB adds.
func writeDynamoDB(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE([]byte(body))), 10))
	io.WriteString(w, body)
}

// ---------------------------------------------------------------------------
// Client-side helpers.

// tokenAuthenticator accepts the client key only together with its session
// token, so that clients send X-Amz-Security-Token to the gateway.
type tokenAuthenticator struct{}

func (tokenAuthenticator) Authenticate(_ context.Context, c awsproxy.Credential) (*awsproxy.Session, error) {
	if c.AccessKeyID != clientAKID {
		return nil, fmt.Errorf("%w: %q", awsproxy.ErrUnknownAccessKey, c.AccessKeyID)
	}
	if c.SessionToken != clientToken {
		return nil, awsproxy.ErrInvalidToken
	}
	return &awsproxy.Session{Principal: testPrincipal, SecretAccessKey: clientSecret}, nil
}

// skewedSigner signs like the SDK's default signer with a clock that is
// off by skew.
type skewedSigner struct {
	inner *v4.Signer
	skew  time.Duration
}

func newSkewedSigner(service string, skew time.Duration) *skewedSigner {
	return &skewedSigner{
		inner: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" }),
		skew:  skew,
	}
}

func (s *skewedSigner) SignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) error {
	return s.inner.SignHTTP(ctx, creds, r, payloadHash, service, region, t.Add(s.skew), optFns...)
}

// presigningClient turns each header-signed request of an SDK client into
// a presigned-URL request (signed at now+skew, valid for expires) before
// sending it, so that the SDK itself parses the gateway's answer.
type presigningClient struct {
	next    aws.HTTPClient
	creds   aws.Credentials
	skew    time.Duration
	expires time.Duration
}

func (p presigningClient) Do(req *http.Request) (*http.Response, error) {
	scope, err := sigv4test.ParseAuthorization(req.Header.Get("Authorization"))
	if err != nil {
		return nil, err
	}
	var body []byte
	if req.Body != nil {
		if body, err = io.ReadAll(req.Body); err != nil {
			return nil, err
		}
		req.Body.Close()
	}
	out := req.Clone(req.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Security-Token"} {
		out.Header.Del(k)
	}
	hash := out.Header.Get("X-Amz-Content-Sha256")
	if hash == "" {
		if scope.Service == "s3" {
			hash = "UNSIGNED-PAYLOAD"
		} else {
			sum := sha256.Sum256(body)
			hash = hex.EncodeToString(sum[:])
		}
	}
	q := out.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(p.expires/time.Second)))
	out.URL.RawQuery = q.Encode()
	signer := v4.NewSigner(func(o *v4.SignerOptions) {
		o.DisableURIPathEscaping = scope.Service == "s3"
		o.DisableHeaderHoisting = true
	})
	signed, _, err := signer.PresignHTTP(req.Context(), p.creds, out, hash, scope.Service, scope.Region, time.Now().Add(p.skew))
	if err != nil {
		return nil, err
	}
	if out.URL, err = url.Parse(signed); err != nil {
		return nil, err
	}
	out.RequestURI = ""
	return p.next.Do(out)
}

// serviceProbes make one cheap call per service; signer, if not nil, replaces the
// client's SigV4 signer.
var serviceProbes = map[string]func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error{
	"s3": func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error {
		_, err := s3.NewFromConfig(cfg, func(o *s3.Options) {
			o.UsePathStyle = true
			if signer != nil {
				o.HTTPSignerV4 = signer
			}
		}).ListBuckets(ctx, &s3.ListBucketsInput{})
		return err
	},
	"sts": func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error {
		// Not GetCallerIdentity: the gateway may answer that one itself.
		_, err := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if signer != nil {
				o.HTTPSignerV4 = signer
			}
		}).GetAccessKeyInfo(ctx, &sts.GetAccessKeyInfoInput{AccessKeyId: aws.String("AKIAOTHERACCOUNT0001")})
		return err
	},
	"ec2": func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error {
		_, err := ec2.NewFromConfig(cfg, func(o *ec2.Options) {
			if signer != nil {
				o.HTTPSignerV4 = signer
			}
		}).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
		return err
	},
	"dynamodb": func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error {
		_, err := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
			if signer != nil {
				o.HTTPSignerV4 = signer
			}
		}).ListTables(ctx, &dynamodb.ListTablesInput{})
		return err
	},
	"secretsmanager": func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error {
		_, err := secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
			if signer != nil {
				o.HTTPSignerV4 = signer
			}
		}).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("prod/db")})
		return err
	},
	"lambda": func(ctx context.Context, cfg aws.Config, signer *skewedSigner) error {
		_, err := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
			if signer != nil {
				o.HTTPSignerV4 = signer
			}
		}).ListFunctions(ctx, &lambda.ListFunctionsInput{})
		return err
	},
}

// sdkLog collects what SDK clients log (the SDK only warns, for example,
// when a DynamoDB response fails its CRC32 check).
type sdkLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *sdkLog) Logf(c logging.Classification, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(c)+" "+fmt.Sprintf(format, v...))
}

// Take returns and forgets the lines logged so far.
func (l *sdkLog) Take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := l.lines
	l.lines = nil
	return lines
}

func sdkHTTPStatus(err error) int {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

// waitForCalls waits until the gateway has finished n calls (OnDone runs
// after the response is written, so it can trail the client by a moment).
func waitForCalls(t *testing.T, h *harness, n int) []*awsproxy.Call {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		calls := h.Calls()
		if len(calls) >= n || time.Now().After(deadline) {
			return calls
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func svcContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), svcTimeout)
	t.Cleanup(cancel)
	return ctx
}

// sameWireBody compares bodies as JSON or form values when they are, bytes
// otherwise.
func sameWireBody(contentType string, got []byte, want string) bool {
	switch {
	case strings.Contains(contentType, "json"):
		var g, w any
		if json.Unmarshal(got, &g) != nil || json.Unmarshal([]byte(want), &w) != nil {
			return false
		}
		return reflect.DeepEqual(g, w)
	case strings.HasPrefix(contentType, "application/x-www-form-urlencoded"):
		g, err1 := url.ParseQuery(string(got))
		w, err2 := url.ParseQuery(want)
		return err1 == nil && err2 == nil && reflect.DeepEqual(g, w)
	}
	return string(got) == want
}

// ---------------------------------------------------------------------------
// Tests.

// upstreamWant is what the fake AWS endpoint must have received for a call.
type upstreamWant struct {
	method, path, query string
	target              string            // X-Amz-Target (JSON protocols)
	contentType         string            // prefix of Content-Type
	body                string            // compared by sameWireBody
	header              map[string]string // further headers that must arrive
}

// TestServicesThroughGateway calls each service with its real SDK client
// through the gateway and checks both what the SDK parsed and what reached
// the (signature-verifying) upstream.
func TestServicesThroughGateway(t *testing.T) {
	cases := []struct {
		name     string
		service  string
		protocol awsproxy.Protocol
		call     func(ctx context.Context, cfg aws.Config) (any, error)
		want     func(t *testing.T, out any, forwarded bool)
		upstream upstreamWant
		wantErr  bool
		// mayAnswerLocally: the gateway may answer the call itself
		// instead of forwarding it (GetCallerIdentity: work in progress
		// in sts.go answers it with the caller's gateway identity).
		mayAnswerLocally bool
	}{
		{
			name: "sts GetCallerIdentity", service: "sts", protocol: awsproxy.ProtocolQuery, mayAnswerLocally: true,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			},
			want: func(t *testing.T, out any, forwarded bool) {
				o := out.(*sts.GetCallerIdentityOutput)
				account, arn, user := aws.ToString(o.Account), aws.ToString(o.Arn), aws.ToString(o.UserId)
				if forwarded && (account != testAccount || arn != "arn:aws:sts::123456789012:assumed-role/gatehouse-agents/agent-1" || user != "AROAUPSTREAMROLE00001:agent-1") {
					t.Errorf("GetCallerIdentity = %s %s %s", account, arn, user)
				}
				if !forwarded && (len(account) != 12 || !strings.HasPrefix(arn, "arn:aws:sts::"+account+":") || user == "") {
					t.Errorf("gateway-answered GetCallerIdentity = %s %s %s", account, arn, user)
				}
			},
			upstream: upstreamWant{method: "POST", path: "/", contentType: "application/x-www-form-urlencoded",
				body: "Action=GetCallerIdentity&Version=2011-06-15"},
		},
		{
			name: "sts GetAccessKeyInfo", service: "sts", protocol: awsproxy.ProtocolQuery,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return sts.NewFromConfig(cfg).GetAccessKeyInfo(ctx, &sts.GetAccessKeyInfoInput{AccessKeyId: aws.String("AKIAOTHERACCOUNT0001")})
			},
			want: func(t *testing.T, out any, _ bool) {
				if a := aws.ToString(out.(*sts.GetAccessKeyInfoOutput).Account); a != "210987654321" {
					t.Errorf("GetAccessKeyInfo account = %q", a)
				}
			},
			upstream: upstreamWant{method: "POST", path: "/", contentType: "application/x-www-form-urlencoded",
				body: "Action=GetAccessKeyInfo&AccessKeyId=AKIAOTHERACCOUNT0001&Version=2011-06-15"},
		},
		{
			name: "dynamodb ListTables", service: "dynamodb", protocol: awsproxy.ProtocolJSON,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(10)})
			},
			want: func(t *testing.T, out any, _ bool) {
				o := out.(*dynamodb.ListTablesOutput)
				if !reflect.DeepEqual(o.TableNames, []string{"gate-audit", "gate-table"}) {
					t.Errorf("TableNames = %q", o.TableNames)
				}
			},
			upstream: upstreamWant{method: "POST", path: "/", target: "DynamoDB_20120810.ListTables",
				contentType: "application/x-amz-json-1.0", body: `{"Limit":10}`},
		},
		{
			name: "dynamodb PutItem", service: "dynamodb", protocol: awsproxy.ProtocolJSON,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return dynamodb.NewFromConfig(cfg).PutItem(ctx, &dynamodb.PutItemInput{
					TableName: aws.String("gate-table"),
					Item: map[string]ddbtypes.AttributeValue{
						"pk":   &ddbtypes.AttributeValueMemberS{Value: "k1 ü/+"},
						"n":    &ddbtypes.AttributeValueMemberN{Value: "42"},
						"tags": &ddbtypes.AttributeValueMemberSS{Value: []string{"a", "b"}},
					},
					ReturnConsumedCapacity: ddbtypes.ReturnConsumedCapacityTotal,
				})
			},
			want: func(t *testing.T, out any, _ bool) {
				o := out.(*dynamodb.PutItemOutput)
				if o.ConsumedCapacity == nil || aws.ToFloat64(o.ConsumedCapacity.CapacityUnits) != 1 || aws.ToString(o.ConsumedCapacity.TableName) != "gate-table" {
					t.Errorf("ConsumedCapacity = %+v", o.ConsumedCapacity)
				}
			},
			upstream: upstreamWant{method: "POST", path: "/", target: "DynamoDB_20120810.PutItem",
				contentType: "application/x-amz-json-1.0",
				body:        `{"TableName":"gate-table","Item":{"pk":{"S":"k1 ü/+"},"n":{"N":"42"},"tags":{"SS":["a","b"]}},"ReturnConsumedCapacity":"TOTAL"}`},
		},
		{
			name: "secretsmanager GetSecretValue", service: "secretsmanager", protocol: awsproxy.ProtocolJSON,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{
					SecretId: aws.String("prod/db"), VersionStage: aws.String("AWSCURRENT"),
				})
			},
			want: func(t *testing.T, out any, _ bool) {
				o := out.(*secretsmanager.GetSecretValueOutput)
				if aws.ToString(o.SecretString) != `{"password":"hunter2"}` || aws.ToString(o.Name) != "prod/db" ||
					!reflect.DeepEqual(o.VersionStages, []string{"AWSCURRENT"}) || o.CreatedDate == nil || o.CreatedDate.Unix() != 1735787045 {
					t.Errorf("GetSecretValue = %q %q %q %v", aws.ToString(o.SecretString), aws.ToString(o.Name), o.VersionStages, o.CreatedDate)
				}
			},
			upstream: upstreamWant{method: "POST", path: "/", target: "secretsmanager.GetSecretValue",
				contentType: "application/x-amz-json-1.1", body: `{"SecretId":"prod/db","VersionStage":"AWSCURRENT"}`},
		},
		{
			name: "ec2 DescribeInstances", service: "ec2", protocol: awsproxy.ProtocolEC2,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{
					InstanceIds: []string{"i-0gate000000000001"},
					Filters:     []ec2types.Filter{{Name: aws.String("tag:team"), Values: []string{"gate house"}}},
				})
			},
			want: func(t *testing.T, out any, _ bool) {
				o := out.(*ec2.DescribeInstancesOutput)
				if len(o.Reservations) != 1 || len(o.Reservations[0].Instances) != 1 {
					t.Fatalf("Reservations = %+v", o.Reservations)
				}
				in := o.Reservations[0].Instances[0]
				if aws.ToString(in.InstanceId) != "i-0gate000000000001" || in.State == nil || in.State.Name != ec2types.InstanceStateNameRunning ||
					in.InstanceType != ec2types.InstanceTypeT3Micro || aws.ToString(o.Reservations[0].OwnerId) != testAccount {
					t.Errorf("instance = %s %+v %s", aws.ToString(in.InstanceId), in.State, in.InstanceType)
				}
			},
			upstream: upstreamWant{method: "POST", path: "/", contentType: "application/x-www-form-urlencoded",
				body: "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-0gate000000000001&Filter.1.Name=tag%3Ateam&Filter.1.Value.1=gate+house"},
		},
		{
			name: "lambda ListFunctions", service: "lambda", protocol: awsproxy.ProtocolRESTJSON,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return lambda.NewFromConfig(cfg).ListFunctions(ctx, &lambda.ListFunctionsInput{MaxItems: aws.Int32(5), Marker: aws.String("a b/c")})
			},
			want: func(t *testing.T, out any, _ bool) {
				o := out.(*lambda.ListFunctionsOutput)
				if len(o.Functions) != 1 || aws.ToString(o.Functions[0].FunctionArn) != lambdaARN || o.Functions[0].Runtime != lambdatypes.RuntimePython312 || o.NextMarker != nil {
					t.Errorf("ListFunctions = %+v", o)
				}
			},
			upstream: upstreamWant{method: "GET", path: "/2015-03-31/functions", query: "Marker=a%20b%2Fc&MaxItems=5"},
		},
		{
			name: "lambda Invoke", service: "lambda", protocol: awsproxy.ProtocolRESTJSON,
			call: func(ctx context.Context, cfg aws.Config) (any, error) {
				return lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{
					FunctionName:   aws.String(lambdaARN),
					Qualifier:      aws.String("prod"),
					Payload:        []byte(`{"ping":"gate"}`),
					LogType:        lambdatypes.LogTypeTail,
					InvocationType: lambdatypes.InvocationTypeRequestResponse,
				})
			},
			want: func(t *testing.T, out any, _ bool) {
				o := out.(*lambda.InvokeOutput)
				logs, _ := base64.StdEncoding.DecodeString(aws.ToString(o.LogResult))
				if string(o.Payload) != `{"echo":{"ping":"gate"}}` || o.StatusCode != 200 || aws.ToString(o.ExecutedVersion) != "7" || !strings.HasPrefix(string(logs), "START") {
					t.Errorf("Invoke = %d %q %q %q", o.StatusCode, o.Payload, aws.ToString(o.ExecutedVersion), logs)
				}
			},
			upstream: upstreamWant{method: "POST",
				path:  "/2015-03-31/functions/" + strings.ReplaceAll(lambdaARN, ":", "%3A") + "/invocations",
				query: "Qualifier=prod", body: `{"ping":"gate"}`,
				header: map[string]string{"X-Amz-Log-Type": "Tail", "X-Amz-Invocation-Type": "RequestResponse"}},
		},
	}
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			up := newSigUpstream(t)
			h := newHarness(t, harnessOptions{TLS: tlsOn, Upstreams: up.Upstreams(), Config: func(cfg *awsproxy.Config) {
				cfg.Authenticator = tokenAuthenticator{}
			}})
			cfg := h.awsConfig(t, clientAKID, clientSecret)
			cfg.Credentials = credentials.NewStaticCredentialsProvider(clientAKID, clientSecret, clientToken)
			logs := &sdkLog{}
			cfg.Logger = logs
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ctx := svcContext(t)
					before, callsBefore := len(up.Requests()), len(h.Calls())
					out, err := tc.call(ctx, cfg)
					if (err != nil) != tc.wantErr {
						t.Fatalf("call error = %v (code %q), upstream problems %q", err, apiCode(err), up.Problems())
					}
					if p := up.Problems(); len(p) > 0 {
						t.Fatalf("upstream refused requests: %q", p)
					}
					// A DynamoDB CRC32 mismatch is only logged by the SDK.
					if l := logs.Take(); len(l) > 0 {
						t.Errorf("SDK logged: %q", l)
					}
					reqs := up.Requests()
					forwarded := len(reqs) == before+1
					tc.want(t, out, forwarded)
					calls := waitForCalls(t, h, callsBefore+1)
					if len(calls) != callsBefore+1 {
						t.Fatalf("gateway finished %d calls, want 1", len(calls)-callsBefore)
					}
					c := calls[len(calls)-1]
					if c.Err != nil || c.Status != http.StatusOK || c.Service != tc.service || c.Protocol != tc.protocol ||
						c.Session == nil || c.Session.Principal.Subject != testPrincipal.Subject {
						t.Errorf("gateway call: err=%v status=%d service=%s protocol=%v session=%+v", c.Err, c.Status, c.Service, c.Protocol, c.Session)
					}
					if len(reqs) == before && tc.mayAnswerLocally {
						t.Logf("answered by the gateway itself, not forwarded")
						return
					}
					if !forwarded {
						t.Fatalf("upstream received %d requests, want 1", len(reqs)-before)
					}
					got, w := reqs[len(reqs)-1], tc.upstream
					if got.Service != tc.service || got.Region != testRegion {
						t.Errorf("upstream scope = %s/%s, want %s/%s", got.Service, got.Region, tc.service, testRegion)
					}
					if got.Method != w.method || got.Path != w.path || got.Query != w.query {
						t.Errorf("upstream request = %s %s?%s, want %s %s?%s", got.Method, got.Path, got.Query, w.method, w.path, w.query)
					}
					if v := got.Header.Get("X-Amz-Target"); v != w.target {
						t.Errorf("X-Amz-Target = %q, want %q", v, w.target)
					}
					ct := got.Header.Get("Content-Type")
					if !strings.HasPrefix(ct, w.contentType) {
						t.Errorf("Content-Type = %q, want %q", ct, w.contentType)
					}
					if !sameWireBody(ct, got.Body, w.body) {
						t.Errorf("upstream body = %s, want %s", got.Body, w.body)
					}
					for k, v := range w.header {
						if got.Header.Get(k) != v {
							t.Errorf("upstream header %s = %q, want %q", k, got.Header.Get(k), v)
						}
					}
				})
			}
		})
	}
}

// TestServicesUpstreamVerifier proves the fake upstream's verification is
// not vacuous: a correctly signed request passes, and requests signed with
// the wrong secret, by another key, with a token, or altered after signing
// are refused.
func TestServicesUpstreamVerifier(t *testing.T) {
	up := newSigUpstream(t)
	body := `{"TableName":"t"}`
	cases := []struct {
		name    string
		akid    string
		secret  string
		token   string
		tamper  func(r *http.Request)
		wantErr bool
	}{
		{name: "valid", akid: upAKID, secret: upSecret},
		{name: "wrong secret", akid: upAKID, secret: "nope", wantErr: true},
		{name: "client key", akid: clientAKID, secret: clientSecret, wantErr: true},
		{name: "session token", akid: upAKID, secret: upSecret, token: "tok", wantErr: true},
		{name: "target changed", akid: upAKID, secret: upSecret, wantErr: true,
			tamper: func(r *http.Request) { r.Header.Set("X-Amz-Target", "DynamoDB_20120810.DeleteTable") }},
		{name: "path changed", akid: upAKID, secret: upSecret, wantErr: true,
			tamper: func(r *http.Request) { r.URL.Path = "/x" }},
		{name: "body changed", akid: upAKID, secret: upSecret, wantErr: true,
			tamper: func(r *http.Request) { r.Body = io.NopCloser(strings.NewReader(`{"TableName":"u"}`)) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := svcContext(t)
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, up.srv.URL+"/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/x-amz-json-1.0")
			req.Header.Set("X-Amz-Target", "DynamoDB_20120810.ListTables")
			sum := sha256.Sum256([]byte(body))
			creds := aws.Credentials{AccessKeyID: tc.akid, SecretAccessKey: tc.secret, SessionToken: tc.token}
			if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "dynamodb", testRegion, time.Now()); err != nil {
				t.Fatal(err)
			}
			if tc.tamper != nil {
				tc.tamper(req)
			}
			resp, err := up.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if gotErr := resp.StatusCode != http.StatusOK; gotErr != tc.wantErr {
				t.Fatalf("status = %d, wantErr %v; problems %q", resp.StatusCode, tc.wantErr, up.Problems())
			}
		})
	}
}

// TestServicesAuthErrors checks that refusals come back in each protocol's
// error shape, so every SDK reports the code its users know, and that
// nothing refused reaches any upstream.
func TestServicesAuthErrors(t *testing.T) {
	type codes struct{ wrongSecret, unknownKey, skewed, presignExpired string }
	byService := map[string]codes{
		"s3":             {"SignatureDoesNotMatch", "InvalidAccessKeyId", "RequestTimeTooSkewed", "AccessDenied"},
		"sts":            {"SignatureDoesNotMatch", "InvalidClientTokenId", "RequestTimeTooSkewed", "RequestExpired"},
		"ec2":            {"SignatureDoesNotMatch", "InvalidClientTokenId", "RequestTimeTooSkewed", "RequestExpired"},
		"dynamodb":       {"InvalidSignatureException", "UnrecognizedClientException", "InvalidSignatureException", "InvalidSignatureException"},
		"secretsmanager": {"InvalidSignatureException", "UnrecognizedClientException", "InvalidSignatureException", "InvalidSignatureException"},
		"lambda":         {"InvalidSignatureException", "UnrecognizedClientException", "InvalidSignatureException", "InvalidSignatureException"},
	}
	type scenario struct {
		name         string
		akid, secret string
		skew         time.Duration // of the signing clock
		presign      bool          // send as a presigned URL valid for 60s
		code         func(codes) string
	}
	scenarios := []scenario{
		{name: "wrong secret", akid: clientAKID, secret: "wrong-secret", code: func(c codes) string { return c.wrongSecret }},
		{name: "unknown key", akid: "GHNOSUCHKEY0000001", secret: clientSecret, code: func(c codes) string { return c.unknownKey }},
		{name: "upstream key used directly", akid: upAKID, secret: upSecret, code: func(c codes) string { return c.unknownKey }},
		{name: "clock 20m behind", akid: clientAKID, secret: clientSecret, skew: -20 * time.Minute, code: func(c codes) string { return c.skewed }},
		{name: "clock 20m ahead", akid: clientAKID, secret: clientSecret, skew: 20 * time.Minute, code: func(c codes) string { return c.skewed }},
		{name: "presigned URL expired", akid: clientAKID, secret: clientSecret, skew: -20 * time.Minute, presign: true, code: func(c codes) string { return c.presignExpired }},
	}
	type testCase struct {
		name     string
		service  string
		scenario scenario
		wantErr  string
	}
	var cases []testCase
	for _, sc := range scenarios {
		for _, svc := range []string{"s3", "sts", "ec2", "dynamodb", "secretsmanager", "lambda"} {
			cases = append(cases, testCase{name: sc.name + "/" + svc, service: svc, scenario: sc, wantErr: sc.code(byService[svc])})
		}
	}
	for _, tlsOn := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[tlsOn], func(t *testing.T) {
			up := newSigUpstream(t)
			h := newHarness(t, harnessOptions{TLS: tlsOn, Upstreams: up.Upstreams()})
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					ctx := svcContext(t)
					cfg := h.awsConfig(t, tc.scenario.akid, tc.scenario.secret)
					var signer *skewedSigner
					if tc.scenario.presign {
						cfg.HTTPClient = presigningClient{
							next:    h.Gateway.Client(),
							creds:   aws.Credentials{AccessKeyID: tc.scenario.akid, SecretAccessKey: tc.scenario.secret},
							skew:    tc.scenario.skew,
							expires: time.Minute,
						}
					} else if tc.scenario.skew != 0 {
						signer = newSkewedSigner(tc.service, tc.scenario.skew)
					}
					s3Before, upBefore := h.S3Hits.Load(), up.Hits()
					err := serviceProbes[tc.service](ctx, cfg, signer)
					if got := apiCode(err); got != tc.wantErr {
						t.Errorf("error code = %q (%v), want %q", got, err, tc.wantErr)
					}
					if got := h.S3Hits.Load() - s3Before; got != 0 {
						t.Errorf("refused request reached the S3 upstream (%d hits)", got)
					}
					if got := up.Hits() - upBefore; got != 0 {
						t.Errorf("refused request reached the upstream (%d hits)", got)
					}
				})
			}
		})
	}
}

// TestServicesPresignedControl shows that the presigningClient used for
// the expired-URL cases produces URLs the gateway accepts when they are
// still valid, so the refusals above are due to expiry alone.
func TestServicesPresignedControl(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	ctx := svcContext(t)
	cfg := h.awsConfig(t, clientAKID, clientSecret)
	cfg.HTTPClient = presigningClient{
		next:  h.Gateway.Client(),
		creds: aws.Credentials{AccessKeyID: clientAKID, SecretAccessKey: clientSecret},
		// Signed 20 minutes ago but valid for an hour: presigned URLs are
		// bounded by their expiry, not by the skew window.
		skew:    -20 * time.Minute,
		expires: time.Hour,
	}
	before := h.S3Hits.Load()
	if err := serviceProbes["s3"](ctx, cfg, nil); err != nil {
		t.Fatalf("presigned ListBuckets: %v", err)
	}
	if h.S3Hits.Load() != before+1 {
		t.Fatal("presigned request did not reach the S3 upstream")
	}
}

// TestServicesPresignedSTS sends presigned STS GET requests through the
// gateway: a GetCallerIdentity URL made by the SDK's presign client (the
// token format of EKS and Vault's AWS auth) and a GetAccessKeyInfo URL,
// which must be forwarded and re-signed so that STS accepts it.
func TestServicesPresignedSTS(t *testing.T) {
	up := newSigUpstream(t)
	h := newHarness(t, harnessOptions{Upstreams: up.Upstreams()})
	cfg := h.awsConfig(t, clientAKID, clientSecret)
	creds := aws.Credentials{AccessKeyID: clientAKID, SecretAccessKey: clientSecret}
	cases := []struct {
		name      string
		presign   func(ctx context.Context) (string, error)
		want      string // in the response body
		forwarded bool   // must reach the upstream
	}{
		{
			name: "GetCallerIdentity via PresignClient",
			presign: func(ctx context.Context) (string, error) {
				pc := sts.NewPresignClient(sts.NewFromConfig(cfg), func(o *sts.PresignOptions) {
					o.Presigner = expiringPresigner{v4.NewSigner(), time.Minute}
				})
				p, err := pc.PresignGetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
				if err != nil {
					return "", err
				}
				return p.URL, nil
			},
			want: "<Account>",
		},
		{
			name: "GetAccessKeyInfo presigned by hand",
			presign: func(ctx context.Context) (string, error) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet,
					h.Gateway.URL+"/?Action=GetAccessKeyInfo&AccessKeyId=AKIAOTHERACCOUNT0001&Version=2011-06-15&X-Amz-Expires=60", nil)
				u, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, hex.EncodeToString(sha256Sum(nil)), "sts", testRegion, time.Now())
				return u, err
			},
			want:      "<Account>210987654321</Account>",
			forwarded: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := svcContext(t)
			u, err := tc.presign(ctx)
			if err != nil {
				t.Fatal(err)
			}
			before := len(up.Requests())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			resp, err := h.Gateway.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			msg, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(msg), tc.want) {
				t.Fatalf("presigned %s: %d %s; upstream problems %q", tc.name, resp.StatusCode, msg, up.Problems())
			}
			reqs := up.Requests()
			if !tc.forwarded {
				return
			}
			if len(reqs) != before+1 {
				t.Fatalf("upstream received %d requests, want 1", len(reqs)-before)
			}
			got := reqs[len(reqs)-1]
			if got.Method != http.MethodGet || !strings.Contains(got.Query, "Action=GetAccessKeyInfo") || strings.Contains(got.Query, "X-Amz-") {
				t.Fatalf("upstream saw %s ?%s", got.Method, got.Query)
			}
		})
	}
}

// expiringPresigner adds X-Amz-Expires before presigning, as EKS token
// generators do.
type expiringPresigner struct {
	inner   *v4.Signer
	expires time.Duration
}

func (p expiringPresigner) PresignHTTP(ctx context.Context, creds aws.Credentials, r *http.Request, payloadHash, service, region string, t time.Time, optFns ...func(*v4.SignerOptions)) (string, http.Header, error) {
	q := r.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(int(p.expires/time.Second)))
	r.URL.RawQuery = q.Encode()
	return p.inner.PresignHTTP(ctx, creds, r, payloadHash, service, region, t, optFns...)
}

// closedUpstreamURL returns an http URL on 127.0.0.1 where nothing listens.
func closedUpstreamURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// hangingUpstream accepts requests and never answers until the test ends
// or the gateway gives up.
func hangingUpstream(t *testing.T) string {
	t.Helper()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv.URL
}

// resettingUpstream answers with a 200 whose body is cut off by a TCP
// reset after partial bytes; with partial == "" it resets before any
// response.
func resettingUpstream(t *testing.T, contentType, partial string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if partial != "" {
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n%s", contentType, len(partial)+500, partial)
			buf.Flush()
			time.Sleep(20 * time.Millisecond)
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0) // close with RST
		}
		conn.Close()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestServicesUpstreamFailures checks that an unreachable, silent or
// resetting upstream gives the client a prompt, recognisable error.
func TestServicesUpstreamFailures(t *testing.T) {
	const headerTimeout = 300 * time.Millisecond
	gatewayCodes := map[string][2]string{ // service -> {502 code, 504 code}
		"s3":             {"BadGateway", "GatewayTimeout"},
		"sts":            {"BadGateway", "GatewayTimeout"},
		"ec2":            {"BadGateway", "GatewayTimeout"},
		"dynamodb":       {"BadGatewayException", "GatewayTimeoutException"},
		"secretsmanager": {"BadGatewayException", "GatewayTimeoutException"},
		"lambda":         {"BadGatewayException", "GatewayTimeoutException"},
	}
	contentTypes := map[string]string{
		"s3": "application/xml", "sts": "text/xml", "ec2": "text/xml;charset=UTF-8",
		"dynamodb": "application/x-amz-json-1.0", "secretsmanager": "application/x-amz-json-1.1", "lambda": "application/json",
	}
	partials := map[string]string{
		"s3":  `<?xml version="1.0" encoding="UTF-8"?><ListAllMyBucketsResult><Buckets><Bucket><Na`,
		"sts": `<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws`, "ec2": `<DescribeInstancesResponse><reservationSet><item>`,
		"dynamodb": `{"TableNames":["gate-`, "secretsmanager": `{"ARN":"arn:aws:secretsmanager:`, "lambda": `{"Functions":[{"FunctionName":"ga`,
	}
	type failure struct {
		name     string
		upstream func(t *testing.T, service string) string
		status   int // wanted HTTP status; 0: the response is cut off
		code     func(service string) string
	}
	failures := []failure{
		{name: "connection refused", status: http.StatusBadGateway,
			upstream: func(t *testing.T, _ string) string { return closedUpstreamURL(t) },
			code:     func(s string) string { return gatewayCodes[s][0] }},
		{name: "reset before response", status: http.StatusBadGateway,
			upstream: func(t *testing.T, s string) string { return resettingUpstream(t, contentTypes[s], "") },
			code:     func(s string) string { return gatewayCodes[s][0] }},
		{name: "no response headers", status: http.StatusGatewayTimeout,
			upstream: func(t *testing.T, _ string) string { return hangingUpstream(t) },
			code:     func(s string) string { return gatewayCodes[s][1] }},
		{name: "reset mid-response", status: 0,
			upstream: func(t *testing.T, s string) string { return resettingUpstream(t, contentTypes[s], partials[s]) },
			code:     func(string) string { return "" }},
	}
	type testCase struct {
		name    string
		service string
		failure failure
		want    int    // HTTP status the SDK reports
		wantErr string // API error code the SDK reports
	}
	var cases []testCase
	for _, f := range failures {
		for _, svc := range []string{"s3", "sts", "ec2", "dynamodb", "secretsmanager", "lambda"} {
			cases = append(cases, testCase{name: f.name + "/" + svc, service: svc, failure: f, want: f.status, wantErr: f.code(svc)})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Not parallel: awsConfig uses t.Setenv.
			ctx := svcContext(t)
			h := newHarness(t, harnessOptions{
				Upstreams: map[string]string{tc.service: tc.failure.upstream(t, tc.service)},
				Config: func(cfg *awsproxy.Config) {
					tr := awsproxy.NewTransport()
					tr.ResponseHeaderTimeout = headerTimeout
					cfg.Transport = tr
				},
			})
			start := time.Now()
			err := serviceProbes[tc.service](ctx, h.awsConfig(t, clientAKID, clientSecret), nil)
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("call succeeded against a failing upstream")
			}
			if ctx.Err() != nil || elapsed > 3*time.Second {
				t.Fatalf("call took %v (context: %v): %v", elapsed, ctx.Err(), err)
			}
			if got := sdkHTTPStatus(err); got != tc.want {
				t.Errorf("HTTP status = %d, want %d (%v)", got, tc.want, err)
			}
			if got := apiCode(err); got != tc.wantErr {
				t.Errorf("error code = %q, want %q (%v)", got, tc.wantErr, err)
			}
			if tc.want == http.StatusGatewayTimeout && elapsed < headerTimeout {
				t.Errorf("504 after %v, before the %v header timeout", elapsed, headerTimeout)
			}
			if calls := waitForCalls(t, h, 1); len(calls) == 1 {
				t.Logf("SDK error after %v: %v; gateway recorded status %d, err %v", elapsed.Round(time.Millisecond), err, calls[0].Status, calls[0].Err)
			}
		})
	}
}

// TestServicesDynamoDBErrorChecksum checks that the gateway's own DynamoDB
// errors carry X-Amz-Crc32 like DynamoDB's do: the SDK checks the CRC32 of
// every DynamoDB response, errors included, and without the header it
// checks against 0 and logs a warning on each refused call.
func TestServicesDynamoDBErrorChecksum(t *testing.T) {
	up := newSigUpstream(t)
	h := newHarness(t, harnessOptions{Upstreams: up.Upstreams()})
	ctx := svcContext(t)
	cfg := h.awsConfig(t, clientAKID, "wrong-secret")
	logs := &sdkLog{}
	cfg.Logger = logs
	err := serviceProbes["dynamodb"](ctx, cfg, nil)
	if got := apiCode(err); got != "InvalidSignatureException" {
		t.Fatalf("error code = %q (%v)", got, err)
	}
	if l := logs.Take(); len(l) > 0 {
		t.Fatalf("SDK logged: %q", l)
	}
}

// TestServicesTruncatedResponseRecorded checks that a response the
// upstream cut off is not recorded as a success in the gateway's Call
// (what OnDone and the audit log see).
func TestServicesTruncatedResponseRecorded(t *testing.T) {
	h := newHarness(t, harnessOptions{Upstreams: map[string]string{
		"dynamodb": resettingUpstream(t, "application/x-amz-json-1.0", `{"TableNames":["gate-`),
	}})
	ctx := svcContext(t)
	if err := serviceProbes["dynamodb"](ctx, h.awsConfig(t, clientAKID, clientSecret), nil); err == nil {
		t.Fatal("call succeeded against a resetting upstream")
	}
	calls := waitForCalls(t, h, 1)
	if len(calls) != 1 {
		t.Fatalf("gateway finished %d calls", len(calls))
	}
	if c := calls[0]; c.Err == nil || c.Err.Kind != awsproxy.KindBadGateway {
		t.Fatalf("gateway recorded status %d, err %v; want a BadGateway error", c.Status, c.Err)
	}
}

// TestCloudWatchCBORError: CloudWatch's SDK speaks Smithy RPC v2 CBOR; the
// gateway's refusals must be CBOR too so the SDK reports the code.
func TestCloudWatchCBORError(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	cfg := h.awsConfig(t, clientAKID, "wrong-secret")
	_, err := cloudwatch.NewFromConfig(cfg).ListMetrics(context.Background(), &cloudwatch.ListMetricsInput{})
	if got := apiCode(err); got != "InvalidSignatureException" {
		t.Fatalf("code %q (%v), want InvalidSignatureException", got, err)
	}
}
