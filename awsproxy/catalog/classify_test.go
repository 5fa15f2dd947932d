package catalog

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// rq builds a request; query is a raw query string, headers alternate
// names and values.
func rq(signing, method, path, query string, headers ...string) *Request {
	q, err := url.ParseQuery(query)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	for i := 0; i+1 < len(headers); i += 2 {
		h.Add(headers[i], headers[i+1])
	}
	return &Request{SigningName: signing, Region: "us-east-1", Account: testAccount, Method: method, RawPath: path, Query: q, Header: h}
}

func withBody(r *Request, body string) *Request {
	r.Body = []byte(body)
	return r
}

func form(signing, body string) *Request {
	return withBody(rq(signing, "POST", "/", "", "Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), body)
}

func target(signing, t, body string) *Request {
	return withBody(rq(signing, "POST", "/", "", "X-Amz-Target", t, "Content-Type", "application/x-amz-json-1.0"), body)
}

func TestClassify(t *testing.T) {
	c := Default()
	tests := []struct {
		name    string
		req     *Request
		service string // model name; "" for no service
		op      string
		action  string
		res     []string // nil: not checked
		params  map[string]string
	}{
		// S3 paths that differ only in query subresources, labels and
		// required parameters.
		{"s3 bucket listing", rq("s3", "GET", "/b", ""), "s3", "ListObjects", "s3:ListBucket", []string{"arn:aws:s3:::b"}, nil},
		{"s3 bucket listing trailing slash", rq("s3", "GET", "/b/", ""), "s3", "ListObjects", "s3:ListBucket", []string{"arn:aws:s3:::b"}, nil},
		{"s3 list-type=2", rq("s3", "GET", "/b", "list-type=2"), "s3", "ListObjectsV2", "s3:ListBucket", nil, nil},
		{"s3 list-type=1 is not V2", rq("s3", "GET", "/b", "list-type=1"), "s3", "ListObjects", "s3:ListBucket", nil, nil},
		{"s3 bucket tagging", rq("s3", "GET", "/b", "tagging"), "s3", "GetBucketTagging", "s3:GetBucketTagging", []string{"arn:aws:s3:::b"}, nil},
		{"s3 object tagging", rq("s3", "GET", "/b/k", "tagging"), "s3", "GetObjectTagging", "s3:GetObjectTagging", []string{"arn:aws:s3:::b/k"}, nil},
		{"s3 object ending in slash", rq("s3", "GET", "/b/dir/", ""), "s3", "GetObject", "s3:GetObject", []string{"arn:aws:s3:::b/dir/"}, nil},
		{"s3 empty path segments in key", rq("s3", "GET", "/b//a//b", ""), "s3", "GetObject", "s3:GetObject", []string{"arn:aws:s3:::b//a//b"}, nil},
		{"s3 escaped key", rq("s3", "GET", "/b/a%2Fb%20c", ""), "s3", "GetObject", "s3:GetObject", []string{"arn:aws:s3:::b/a/b c"}, map[string]string{"Key": "a/b c"}},
		{"s3 ListParts by uploadId", rq("s3", "GET", "/b/k", "uploadId=u"), "s3", "ListParts", "s3:ListMultipartUploadParts", nil, nil},
		{"s3 abort by uploadId", rq("s3", "DELETE", "/b/k", "uploadId=u"), "s3", "AbortMultipartUpload", "s3:AbortMultipartUpload", nil, nil},
		{"s3 delete object", rq("s3", "DELETE", "/b/k", ""), "s3", "DeleteObject", "s3:DeleteObject", nil, nil},
		{"s3 put object", rq("s3", "PUT", "/b/k", ""), "s3", "PutObject", "s3:PutObject", nil, nil},
		{"s3 upload part", rq("s3", "PUT", "/b/k", "partNumber=1&uploadId=u"), "s3", "UploadPart", "s3:PutObject", nil, nil},
		{"s3 copy object", rq("s3", "PUT", "/b/k", "", "X-Amz-Copy-Source", "/src/a%2Bb?versionId=3"), "s3", "CopyObject", "s3:PutObject",
			[]string{"arn:aws:s3:::b/k", "arn:aws:s3:::src/a+b"}, nil},
		{"s3 upload part copy", rq("s3", "PUT", "/b/k", "partNumber=1&uploadId=u", "X-Amz-Copy-Source", "src/x"), "s3", "UploadPartCopy", "s3:PutObject", nil, nil},
		{"s3 complete upload", rq("s3", "POST", "/b/k", "uploadId=u"), "s3", "CompleteMultipartUpload", "s3:PutObject", nil, nil},
		{"s3 create upload", rq("s3", "POST", "/b/k", "uploads"), "s3", "CreateMultipartUpload", "s3:PutObject", nil, nil},
		{"s3 select", rq("s3", "POST", "/b/k", "select&select-type=2"), "s3", "SelectObjectContent", "s3:GetObject", nil, nil},
		{"s3 analytics get by id", rq("s3", "GET", "/b", "analytics&id=x"), "s3", "GetBucketAnalyticsConfiguration", "s3:GetAnalyticsConfiguration", nil, nil},
		{"s3 analytics list", rq("s3", "GET", "/b", "analytics"), "s3", "ListBucketAnalyticsConfigurations", "s3:GetAnalyticsConfiguration", nil, nil},
		{"s3 service root", rq("s3", "GET", "/", ""), "s3", "ListBuckets", "s3:ListAllMyBuckets", nil, nil},
		{"s3 empty path", rq("s3", "GET", "", ""), "s3", "ListBuckets", "s3:ListAllMyBuckets", nil, nil},
		{"s3 virtual host root", func() *Request { r := rq("s3", "GET", "/", "list-type=2"); r.Bucket = "vb"; return r }(), "s3", "ListObjectsV2", "s3:ListBucket", []string{"arn:aws:s3:::vb"}, map[string]string{"Bucket": "vb"}},
		{"s3 virtual host object", func() *Request { r := rq("s3", "HEAD", "/a/b.txt", ""); r.Bucket = "vb"; return r }(), "s3", "HeadObject", "s3:GetObject", []string{"arn:aws:s3:::vb/a/b.txt"}, nil},
		{"s3 cn partition", func() *Request { r := rq("s3", "GET", "/b/k", ""); r.Region = "cn-north-1"; return r }(), "s3", "GetObject", "s3:GetObject", []string{"arn:aws-cn:s3:::b/k"}, nil},
		{"s3 unknown method", rq("s3", "PATCH", "/b/k", ""), "s3", "", "s3:Unknown", nil, nil},
		{"s3 presigned GET", rq("s3", "GET", "/b/k", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc&X-Amz-Credential=a"), "s3", "GetObject", "s3:GetObject", nil, nil},

		// S3 Control shares the signing name: its /v20180820 paths and
		// account header pick it.
		{"s3control access point", rq("s3", "GET", "/v20180820/accesspoint/ap1", "", "X-Amz-Account-Id", testAccount), "s3control", "GetAccessPoint", "s3:GetAccessPoint", nil, map[string]string{"Name": "ap1", "AccountId": testAccount}},
		{"s3control greedy label before literal", rq("s3", "GET", "/v20180820/mrap/instances/a/b/policy", "", "X-Amz-Account-Id", testAccount), "s3control", "GetMultiRegionAccessPointPolicy", "s3:GetMultiRegionAccessPointPolicy", nil, map[string]string{"Name": "a/b"}},
		{"bucket named like the s3control prefix", rq("s3", "GET", "/v20180820/accesspoint/ap1", ""), "s3", "GetObject", "s3:GetObject", []string{"arn:aws:s3:::v20180820/accesspoint/ap1"}, nil},

		// Other REST services.
		{"lambda function vs configuration", rq("lambda", "GET", "/2015-03-31/functions/f/configuration", ""), "lambda", "GetFunctionConfiguration", "lambda:GetFunctionConfiguration", nil, nil},
		{"lambda function", rq("lambda", "GET", "/2015-03-31/functions/f", ""), "lambda", "GetFunction", "lambda:GetFunction", nil, nil},
		{"lambda partial ARN", rq("lambda", "GET", "/2015-03-31/functions/210987654321:function:f", ""), "lambda", "GetFunction", "lambda:GetFunction",
			[]string{"arn:aws:lambda:us-east-1:210987654321:function:f"}, nil},
		{"lambda layer version", rq("lambda", "GET", "/2018-10-31/layers/L/versions/3", ""), "lambda", "GetLayerVersion", "lambda:GetLayerVersion",
			[]string{arn("lambda", "layer:L:3")}, nil},
		{"lambda get layer by arn", rq("lambda", "GET", "/2018-10-31/layers", "find=LayerVersion&Arn=arn:aws:lambda:us-east-1:1:layer:L:3"), "lambda", "GetLayerVersionByArn", "lambda:GetLayerVersion", nil, nil},
		{"lambda list layers", rq("lambda", "GET", "/2018-10-31/layers", ""), "lambda", "ListLayers", "lambda:ListLayers", nil, nil},
		{"apigateway uses the method as action", rq("apigateway", "DELETE", "/restapis/r1", ""), "apigateway", "DeleteRestApi", "apigateway:DELETE", nil, nil},
		{"apigateway v2 by path", rq("apigateway", "GET", "/v2/apis", ""), "apigatewayv2", "GetApis", "apigateway:GET", nil, nil},
		{"execute-api connections", rq("execute-api", "POST", "/@connections/c1", ""), "apigatewaymanagementapi", "PostToConnection", "execute-api:ManageConnections", nil, nil},
		{"bedrock runtime vs agent runtime vs agent", rq("bedrock", "POST", "/agents/a1/agentAliases/al1/sessions/s1/text", ""), "bedrock-agent-runtime", "InvokeAgent", "bedrock:InvokeAgent",
			[]string{arn("bedrock", "agent/a1")}, nil},
		{"bedrock agent control plane", rq("bedrock", "GET", "/agents/a1/", ""), "bedrock-agent", "GetAgent", "bedrock:GetAgent", nil, nil},
		{"bedrock control plane", rq("bedrock", "GET", "/foundation-models", ""), "bedrock", "ListFoundationModels", "bedrock:ListFoundationModels", nil, nil},
		{"bedrock unknown path", rq("bedrock", "GET", "/no/such/thing/here/at/all", ""), "bedrock", "", "bedrock:Unknown", nil, nil},
		{"ses v2 over rest", rq("ses", "GET", "/v2/email/identities", ""), "sesv2", "ListEmailIdentities", "ses:ListEmailIdentities", nil, nil},
		{"ses v1 over query", form("ses", "Action=SendEmail&Version=2010-12-01&Source=a%40example.com"), "email", "SendEmail", "ses:SendEmail", nil, map[string]string{"Source": "a@example.com"}},
		{"lex v1 vs v2 trailing slash", rq("lex", "DELETE", "/bots/b1/", ""), "models.lex.v2", "DeleteBot", "lex:DeleteBot", nil, nil},
		{"lex v1 without slash", rq("lex", "DELETE", "/bots/b1", ""), "lex-models", "DeleteBot", "lex:DeleteBot", nil, nil},

		// JSON protocol.
		{"dynamodb streams share the signing name", target("dynamodb", "DynamoDBStreams_20120810.GetRecords", `{"ShardIterator":"x"}`), "streams.dynamodb", "GetRecords", "dynamodb:GetRecords", nil, nil},
		{"dynamodb unknown op", target("dynamodb", "DynamoDB_20120810.Frobnicate", `{}`), "dynamodb", "", "dynamodb:Unknown", nil, nil},
		{"dynamodb table ARN as name", target("dynamodb", "DynamoDB_20120810.GetItem", `{"TableName":"arn:aws:dynamodb:us-west-2:1:table/T"}`), "dynamodb", "GetItem", "dynamodb:GetItem",
			[]string{"arn:aws:dynamodb:us-west-2:1:table/T"}, nil},
		{"dynamodb duplicate keys show both", target("dynamodb", "DynamoDB_20120810.DeleteTable", `{"TableName":"A","TableName":"B"}`), "dynamodb", "DeleteTable", "dynamodb:DeleteTable",
			[]string{arn("dynamodb", "table/A"), arn("dynamodb", "table/B")}, map[string]string{"TableName": "A,B"}},
		{"dynamodb escaped JSON", target("dynamodb", "DynamoDB_20120810.Scan", `{"Table\u004eame":"T\u00e9\"x"}`), "dynamodb", "Scan", "dynamodb:Scan", nil, map[string]string{"TableName": "Té\"x"}},
		{"dynamodb without body", target("dynamodb", "DynamoDB_20120810.Scan", ""), "dynamodb", "Scan", "dynamodb:Scan", nil, nil},
		{"dynamodb PartiQL batch takes the strongest", target("dynamodb", "DynamoDB_20120810.BatchExecuteStatement",
			`{"Statements":[{"Statement":"SELECT * FROM A"},{"Statement":"UPDATE \"B\" SET x=1"}]}`), "dynamodb", "BatchExecuteStatement", "dynamodb:PartiQLUpdate",
			[]string{arn("dynamodb", "table/A"), arn("dynamodb", "table/B")}, nil},
		{"dynamodb PartiQL without statement", target("dynamodb", "DynamoDB_20120810.ExecuteStatement", `{}`), "dynamodb", "ExecuteStatement", "dynamodb:PartiQLDelete", nil, nil},
		{"dynamodb TransactGetItems", target("dynamodb", "DynamoDB_20120810.TransactGetItems", `{"TransactItems":[{"Get":{"TableName":"A"}},{"Get":{"TableName":"B"}}]}`),
			"dynamodb", "TransactGetItems", "dynamodb:GetItem", []string{arn("dynamodb", "table/A"), arn("dynamodb", "table/B")}, nil},
		{"events and eventbridge share a target prefix", target("events", "AWSEvents.PutEvents", `{}`), "events", "PutEvents", "events:PutEvents", nil, nil},
		{"target for a query service that moved to JSON", target("monitoring", "GraniteServiceVersion20100801.ListMetrics", `{}`), "monitoring", "ListMetrics", "cloudwatch:ListMetrics", nil, nil},
		{"conflicting targets are unknown", func() *Request {
			r := target("dynamodb", "DynamoDB_20120810.GetItem", `{}`)
			r.Header.Add("X-Amz-Target", "DynamoDB_20120810.DeleteTable")
			return r
		}(), "dynamodb", "", "dynamodb:Unknown", nil, nil},
		{"sensitive members are left out", target("secretsmanager", "secretsmanager.PutSecretValue", `{"SecretId":"s","SecretString":"hunter2"}`),
			"secretsmanager", "PutSecretValue", "secretsmanager:PutSecretValue", []string{arn("secretsmanager", "secret:s")}, map[string]string{"SecretId": "s", "SecretString": ""}},
		{"kms alias and key ids", target("kms", "TrentService.ReEncrypt", `{"SourceKeyId":"alias/a","DestinationKeyId":"k2"}`), "kms", "ReEncrypt", "kms:ReEncryptFrom",
			[]string{arn("kms", "alias/a"), arn("kms", "key/k2")}, nil},
		{"sqs query compatibility", form("sqs", "Action=SendMessage&Version=2012-11-05&QueueUrl=https%3A%2F%2Fsqs.us-east-1.amazonaws.com%2F1%2Fq&MessageBody=x"),
			"sqs", "SendMessage", "sqs:SendMessage", []string{"arn:aws:sqs:us-east-1:1:q"}, nil},

		// Query and EC2 protocols.
		{"query action in the URL", rq("sts", "GET", "/", "Action=GetCallerIdentity&Version=2011-06-15"), "sts", "GetCallerIdentity", "sts:GetCallerIdentity", nil, nil},
		{"query list members", form("sns", "Action=SetSubscriptionAttributes&SubscriptionArn=arn%3Aaws%3Asns%3Aus-east-1%3A1%3At%3Aid&AttributeName=RawMessageDelivery&AttributeValue=true"),
			"sns", "SetSubscriptionAttributes", "sns:SetSubscriptionAttributes", []string{"arn:aws:sns:us-east-1:1:t:id"}, nil},
		{"elb v1 by Version", form("elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2012-06-01&LoadBalancerNames.member.1=a"), "elasticloadbalancing", "DescribeLoadBalancers",
			"elasticloadbalancing:DescribeLoadBalancers", nil, map[string]string{"LoadBalancerNames": "a"}},
		{"elb v2 by Version", form("elasticloadbalancing", "Action=DescribeLoadBalancers&Version=2015-12-01&Names.member.1=a&Names.member.2=b"), "elasticloadbalancingv2", "DescribeLoadBalancers",
			"elasticloadbalancing:DescribeLoadBalancers", nil, map[string]string{"Names": "a,b"}},
		{"rds shares actions with docdb and neptune", form("rds", "Action=DescribeDBClusters&Version=2014-10-31"), "rds", "DescribeDBClusters", "rds:DescribeDBClusters", nil, nil},
		{"query unknown action", form("iam", "Action=DoSomethingNew&Version=2010-05-08"), "iam", "", "iam:Unknown", nil, nil},
		{"query conflicting actions", form("iam", "Action=GetUser&Action=DeleteUser"), "iam", "", "iam:Unknown", nil, nil},
		{"query action in URL and body disagree", withBody(rq("iam", "POST", "/", "Action=GetUser", "Content-Type", "application/x-www-form-urlencoded"), "Action=DeleteUser"), "iam", "", "iam:Unknown", nil, nil},
		{"ec2 security groups", form("ec2", "Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-1&GroupId.2=sg-2"), "ec2", "DescribeSecurityGroups", "ec2:DescribeSecurityGroups",
			[]string{arn("ec2", "security-group/sg-1"), arn("ec2", "security-group/sg-2")}, nil},
		{"iam role path and policy", form("iam", "Action=PutRolePolicy&RoleName=r&PolicyName=p&PolicyDocument=%7B%7D"), "iam", "PutRolePolicy", "iam:PutRolePolicy",
			[]string{"arn:aws:iam::" + testAccount + ":role/r"}, nil},
		{"sts role ARN kept, other services' roles dropped", form("sts", "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&WebIdentityToken=t&RoleSessionName=s"),
			"sts", "AssumeRoleWithWebIdentity", "sts:AssumeRoleWithWebIdentity", []string{"arn:aws:iam::1:role/r"}, nil},
		{"ssm document vs parameter", target("ssm", "AmazonSSM.GetDocument", `{"Name":"AWS-RunShellScript"}`), "ssm", "GetDocument", "ssm:GetDocument",
			[]string{arn("ssm", "document/AWS-RunShellScript")}, nil},
		{"logs ARN identifier", target("logs", "Logs_20140328.StartLiveTail", `{"logGroupIdentifiers":["arn:aws:logs:us-east-1:1:log-group:g:*"]}`), "logs", "StartLiveTail", "logs:StartLiveTail", nil, nil},

		// Unknown services and odd input.
		{"unknown signing name", rq("nosuchservice", "GET", "/", ""), "", "", "", nil, nil},
		{"empty request", &Request{}, "", "", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Classify(tt.req)
			gs := ""
			if got.Service != nil {
				gs = got.Service.Name
			}
			if gs != tt.service || got.Operation != tt.op || got.Action != tt.action {
				t.Fatalf("got %s.%s %s, want %s.%s %s", gs, got.Operation, got.Action, tt.service, tt.op, tt.action)
			}
			if got.Known() != (tt.op != "") {
				t.Errorf("Known() = %v", got.Known())
			}
			if tt.res != nil && !equalStrings(got.Resources, tt.res) {
				t.Errorf("resources %q, want %q", got.Resources, tt.res)
			}
			for k, v := range tt.params {
				if got.Params[k] != v {
					t.Errorf("Params[%s] = %q, want %q (all %v)", k, got.Params[k], v, got.Params)
				}
			}
			if !got.Known() && (got.ReadOnly || got.CredentialIssuing || got.ReturnsSecrets || got.Resources != nil || got.Params != nil) {
				t.Errorf("unknown operation with flags, resources or params: %+v", got)
			}
		})
	}
}

func TestClassifyBounds(t *testing.T) {
	c := Default()
	t.Run("long values are cut", func(t *testing.T) {
		long := strings.Repeat("é", MaxParamValue)
		got := c.Classify(target("dynamodb", "DynamoDB_20120810.Scan", `{"TableName":"`+long+`"}`))
		v := got.Params["TableName"]
		if len(v) > MaxParamValue || !strings.HasPrefix(long, v) || !got.Truncated {
			t.Errorf("len %d, truncated %v", len(v), got.Truncated)
		}
	})
	t.Run("lists are bounded", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("Action=DescribeInstances&Version=2016-11-15")
		for i := 1; i <= 100; i++ {
			b.WriteString("&InstanceId." + itoa(i) + "=i-" + itoa(i))
		}
		got := c.Classify(form("ec2", b.String()))
		if n := strings.Count(got.Params["InstanceIds"], ",") + 1; n != MaxListValues || !got.Truncated {
			t.Errorf("%d values, truncated %v", n, got.Truncated)
		}
		if len(got.Resources) != MaxListValues {
			t.Errorf("%d resources", len(got.Resources))
		}
	})
	t.Run("params are bounded", func(t *testing.T) {
		// rds CreateDBInstance has more than MaxParams scalar members
		// (54 in the models this catalog was generated from).
		svc := c.Service("rds")
		op := svc.Operation("CreateDBInstance")
		var b strings.Builder
		n := 0
		for _, m := range op.Inputs {
			if m.kind == kindScalar && !m.Sensitive && m.Location == LocationBody {
				b.WriteString("&" + m.Wire + "=v")
				n++
			}
		}
		if n <= MaxParams {
			t.Fatalf("rds CreateDBInstance has only %d scalar members; pick an operation with more than %d", n, MaxParams)
		}
		got := c.Classify(form("rds", "Action=CreateDBInstance&Version="+svc.APIVersion+b.String()))
		if got.Operation != "CreateDBInstance" || len(got.Params) != MaxParams || !got.Truncated {
			t.Errorf("%s: %d params, truncated %v", got.Operation, len(got.Params), got.Truncated)
		}
	})
	t.Run("bodies past MaxBody are cut", func(t *testing.T) {
		body := `{"TableName":"T","Padding":"` + strings.Repeat("x", MaxBody) + `","IndexName":"late"}`
		got := c.Classify(target("dynamodb", "DynamoDB_20120810.Query", body))
		if got.Params["TableName"] != "T" || got.Params["IndexName"] != "" || !got.Truncated {
			t.Errorf("params %v, truncated %v", got.Params, got.Truncated)
		}
	})
	t.Run("deep JSON nesting", func(t *testing.T) {
		body := `{"Key":` + strings.Repeat(`{"a":`, 100000) + `1` + strings.Repeat(`}`, 100000) + `,"TableName":"T"}`
		got := c.Classify(target("dynamodb", "DynamoDB_20120810.GetItem", body))
		if got.Operation != "GetItem" {
			t.Errorf("got %q", got.Operation)
		}
	})
	t.Run("very long paths", func(t *testing.T) {
		got := c.Classify(rq("s3", "GET", "/b/"+strings.Repeat("a/", 10000)+"k", ""))
		if got.Operation != "GetObject" || got.Params["Key"] == "" {
			t.Errorf("got %q %v", got.Operation, got.Params)
		}
	})
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
