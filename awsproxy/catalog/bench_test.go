package catalog

import (
	"net/http"
	"testing"
)

// sdkHeaders are the headers aws-sdk-go-v2 sends on every call; the
// classifier must look past them.
func sdkHeaders(h http.Header) http.Header {
	h.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261125/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=00")
	h.Set("X-Amz-Date", "20261125T120000Z")
	h.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	h.Set("User-Agent", "aws-sdk-go-v2/1.48.0 ua/2.1 os/linux lang/go#1.26 md/GOOS#linux md/GOARCH#amd64 api/s3#1.114.10")
	h.Set("Amz-Sdk-Invocation-Id", "7e6a3c1e-8d4b-4a8e-9d61-2b1f1d5f0c11")
	h.Set("Amz-Sdk-Request", "attempt=1; max=3")
	h.Set("Accept-Encoding", "identity")
	return h
}

func benchRequests() []struct {
	name string
	req  *Request
} {
	vhost := rq("s3", "GET", "/photos/2026/cat.jpg", "x-id=GetObject")
	vhost.Bucket = "media-bucket"
	out := []struct {
		name string
		req  *Request
	}{
		{"rest-xml/s3-GetObject", rq("s3", "GET", "/media-bucket/photos/2026/cat.jpg", "x-id=GetObject")},
		{"rest-xml/s3-GetObject-vhost", vhost},
		{"rest-xml/s3-ListObjectsV2", rq("s3", "GET", "/media-bucket", "list-type=2&prefix=photos%2F")},
		{"rest-xml/s3-UploadPart", rq("s3", "PUT", "/media-bucket/big.bin", "partNumber=7&uploadId=abc&x-id=UploadPart", "Content-Length", "5242880")},
		{"rest-xml/route53-ChangeRRSets", rq("route53", "POST", "/2013-04-01/hostedzone/Z0123/rrset", "")},
		{"rest-json/lambda-Invoke", rq("lambda", "POST", "/2015-03-31/functions/thumbnailer/invocations", "Qualifier=prod")},
		{"rest-json/bedrock-Converse", rq("bedrock", "POST", "/model/us.anthropic.claude-3-haiku-20240307-v1%3A0/converse", "")},
		{"rest-json/eks-DescribeCluster", rq("eks", "GET", "/clusters/prod", "")},
		{"json/dynamodb-GetItem", target("dynamodb", "DynamoDB_20120810.GetItem", `{"TableName":"Orders","Key":{"id":{"S":"1"}},"ConsistentRead":true}`)},
		{"json/secretsmanager-GetSecretValue", target("secretsmanager", "secretsmanager.GetSecretValue", `{"SecretId":"prod/db"}`)},
		{"query/sts-AssumeRole", form("sts", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeployer&RoleSessionName=agent-1")},
		{"query/sns-Publish", form("sns", "Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3Aalerts&Message=hello")},
		{"ec2/DescribeInstances", form("ec2", "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2")},
		{"rpcv2cbor/cloudwatch-GetMetricData", rq("monitoring", "POST", "/service/GraniteServiceVersion20100801/operation/GetMetricData", "", "Smithy-Protocol", "rpc-v2-cbor")},
	}
	for _, r := range out {
		sdkHeaders(r.req.Header)
	}
	return out
}

// BenchmarkClassify measures one classification per protocol, with the
// headers a real SDK sends.
func BenchmarkClassify(b *testing.B) {
	c := Default()
	for _, bc := range benchRequests() {
		if got := c.Classify(bc.req); !got.Known() {
			b.Fatalf("%s: not recognised", bc.name)
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.Classify(bc.req)
			}
		})
	}
}

// BenchmarkDecode measures loading the embedded table (done once per
// process by Default).
func BenchmarkDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decode(table); err != nil {
			b.Fatal(err)
		}
	}
}
