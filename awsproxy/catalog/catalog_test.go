package catalog

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
)

func TestCatalogShape(t *testing.T) {
	c := Default()
	if c.Source() != Source {
		t.Errorf("Source() = %q, want %q", c.Source(), Source)
	}
	head, err := tableHeader()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(head, "source github.com/aws/aws-sdk-go v1.55.8 ") {
		t.Errorf("table header does not name the source module:\n%s", head)
	}
	protocols := map[string]int{}
	ops := 0
	for _, s := range c.Services() {
		protocols[s.Protocol]++
		ops += len(s.Operations())
		if c.Service(s.Name) != s {
			t.Errorf("Service(%q) does not return it", s.Name)
		}
		if !slices.Contains(c.Candidates(s.SigningName), s) {
			t.Errorf("%s is not a candidate of its signing name %q", s.Name, s.SigningName)
		}
		for _, op := range s.Operations() {
			if op.Service() != s || s.Operation(op.Name) != op {
				t.Errorf("%s.%s: broken back references", s.Name, op.Name)
			}
			if op.CredentialIssuing && op.ReadOnly {
				t.Errorf("%s.%s is credential-issuing and read-only", s.Name, op.Name)
			}
			if op.CredentialIssuing && !op.ReturnsSecrets {
				t.Errorf("%s.%s issues credentials but does not return secrets", s.Name, op.Name)
			}
			if !strings.HasPrefix(op.Action, s.IAMPrefix+":") && !strings.Contains(op.Action, ":") {
				t.Errorf("%s.%s: malformed action %q", s.Name, op.Name, op.Action)
			}
		}
	}
	if n := len(c.Services()); n != 384 {
		t.Errorf("%d services, want 384", n)
	}
	if ops != 15554 {
		t.Errorf("%d operations, want 15554", ops)
	}
	want := map[string]int{ProtocolRESTJSON: 223, ProtocolJSON: 138, ProtocolQuery: 18, ProtocolRESTXML: 4, ProtocolEC2: 1}
	for p, n := range want {
		if protocols[p] != n {
			t.Errorf("%d %s services, want %d", protocols[p], p, n)
		}
	}
	names := c.SigningNames()
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Error("SigningNames is not sorted and unique")
	}
	shared := 0
	for _, n := range names {
		if len(c.Candidates(n)) > 1 {
			shared++
		}
	}
	if shared != 34 {
		t.Errorf("%d signing names shared by several services, want 34", shared)
	}
	// Copies, not views.
	c.Services()[0] = nil
	c.SigningNames()[0] = ""
	if c.Services()[0] == nil || c.SigningNames()[0] == "" {
		t.Error("accessors return the catalog's own slices")
	}
}

func TestCandidates(t *testing.T) {
	c := Default()
	tests := []struct {
		name string
		want []string // preferred first, then by name
	}{
		{"bedrock", []string{"bedrock", "bedrock-agent", "bedrock-agent-runtime", "bedrock-runtime"}},
		{"rds", []string{"rds", "docdb", "neptune"}},
		{"s3", []string{"s3", "s3control"}},
		{"dynamodb", []string{"dynamodb", "streams.dynamodb"}},
		{"ses", []string{"email", "mailmanager", "pinpoint-email", "sesv2"}},
		{"execute-api", []string{"apigatewaymanagementapi", "connectparticipant"}},
		{"monitoring", []string{"monitoring"}},
		{"nosuch", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, s := range c.Candidates(tt.name) {
				got = append(got, s.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Candidates(%q) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

func TestServiceFacts(t *testing.T) {
	c := Default()
	tests := []struct {
		name                                                   string
		endpoint, signing, protocol, iam, target, global, json string
	}{
		{"s3", "s3", "s3", ProtocolRESTXML, "s3", "", "s3.amazonaws.com", ""},
		{"monitoring", "monitoring", "monitoring", ProtocolQuery, "cloudwatch", "", "", ""},
		{"email", "email", "ses", ProtocolQuery, "ses", "", "", ""},
		{"sesv2", "email", "ses", ProtocolRESTJSON, "ses", "", "", "1.1"},
		{"ecr", "api.ecr", "ecr", ProtocolJSON, "ecr", "AmazonEC2ContainerRegistry_V20150921", "", "1.1"},
		{"es", "es", "es", ProtocolRESTJSON, "es", "", "", ""},
		{"states", "states", "states", ProtocolJSON, "states", "AWSStepFunctions", "", "1.0"},
		{"elasticloadbalancingv2", "elasticloadbalancing", "elasticloadbalancing", ProtocolQuery, "elasticloadbalancing", "", "", ""},
		{"apigatewaymanagementapi", "execute-api", "execute-api", ProtocolRESTJSON, "execute-api", "", "", "1.1"},
		{"bedrock-runtime", "bedrock-runtime", "bedrock", ProtocolRESTJSON, "bedrock", "", "", ""},
		{"s3control", "s3-control", "s3", ProtocolRESTXML, "s3", "", "", ""},
		{"docdb", "rds", "rds", ProtocolQuery, "rds", "", "", ""},
		{"streams.dynamodb", "streams.dynamodb", "dynamodb", ProtocolJSON, "dynamodb", "DynamoDBStreams_20120810", "", "1.0"},
		{"iam", "iam", "iam", ProtocolQuery, "iam", "", "iam.amazonaws.com", ""},
		{"sts", "sts", "sts", ProtocolQuery, "sts", "", "sts.amazonaws.com", ""},
		{"sso", "portal.sso", "awsssoportal", ProtocolRESTJSON, "sso", "", "", "1.1"},
		{"resourcegroupstaggingapi", "tagging", "tagging", ProtocolJSON, "tag", "ResourceGroupsTaggingAPI_20170126", "", "1.1"},
		{"iot-data", "data-ats.iot", "iotdata", ProtocolRESTJSON, "iot", "", "", ""},
		{"cloudcontrol", "cloudcontrolapi", "cloudcontrolapi", ProtocolJSON, "cloudformation", "CloudApiService", "", "1.0"},
		{"ec2", "ec2", "ec2", ProtocolEC2, "ec2", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := c.Service(tt.name)
			if s == nil {
				t.Fatal("missing")
			}
			got := []string{s.EndpointPrefix, s.SigningName, s.Protocol, s.IAMPrefix, s.TargetPrefix, s.GlobalEndpoint, s.JSONVersion}
			want := []string{tt.endpoint, tt.signing, tt.protocol, tt.iam, tt.target, tt.global, tt.json}
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
	if !c.Service("sqs").QueryCompatible || c.Service("dynamodb").QueryCompatible {
		t.Error("QueryCompatible wrong for sqs or dynamodb")
	}
	if op := c.Service("s3control").Operation("GetAccessPoint"); op.HostPrefix != "{AccountId}." {
		t.Errorf("s3control GetAccessPoint host prefix %q", op.HostPrefix)
	}
	for _, name := range []string{"sts.AssumeRoleWithWebIdentity", "cognito-identity.GetId", "sso.GetRoleCredentials"} {
		svc, o, _ := strings.Cut(name, ".")
		if !c.Service(svc).Operation(o).Unauthenticated {
			t.Errorf("%s is not marked unauthenticated", name)
		}
	}
	if c.Service("sts").Operation("AssumeRole").Unauthenticated {
		t.Error("AssumeRole is marked unauthenticated")
	}
	if m := c.Service("rds").Operation("CreateDBInstance").member('b', "MasterUserPassword"); m == nil || !m.Sensitive {
		t.Error("rds MasterUserPassword is not sensitive")
	}
	if op := c.Service("s3").Operation("GetBucketLifecycle"); !op.Deprecated {
		t.Error("GetBucketLifecycle is not marked deprecated")
	}
}

func TestMembers(t *testing.T) {
	c := Default()
	op := c.Service("s3").Operation("GetObject")
	want := map[string]Member{
		"Bucket":         {Name: "Bucket", Wire: "Bucket", Location: LocationURI, Required: true},
		"Key":            {Name: "Key", Wire: "Key", Location: LocationURI, Required: true},
		"VersionId":      {Name: "VersionId", Wire: "versionId", Location: LocationQuery},
		"Range":          {Name: "Range", Wire: "Range", Location: LocationHeader},
		"SSECustomerKey": {Name: "SSECustomerKey", Wire: "X-Amz-Server-Side-Encryption-Customer-Key", Location: LocationHeader, Sensitive: true},
	}
	for _, m := range op.Inputs {
		if w, ok := want[m.Name]; ok {
			m.kind = 0
			if m != w {
				t.Errorf("%s: got %+v, want %+v", m.Name, m, w)
			}
			delete(want, m.Name)
		}
	}
	if len(want) > 0 {
		t.Errorf("missing members %v", want)
	}
	put := c.Service("s3").Operation("PutObject")
	if m := put.member('b', "Body"); m == nil || m.Location != LocationPayload {
		t.Errorf("PutObject Body: %+v", m)
	}
	ec2 := c.Service("ec2").Operation("DescribeInstances")
	if m := ec2.member('b', "InstanceId"); m == nil || m.Name != "InstanceIds" {
		t.Errorf("EC2 wire name of InstanceIds: %+v", m)
	}
	if m := ec2.member('b', "DryRun"); m == nil {
		t.Error("EC2 capitalisation of dryRun")
	}
}

// TestTablesReferToModel keeps the hand-kept tables honest: every
// service and operation they name exists.
func TestTablesReferToModel(t *testing.T) {
	c := Default()
	check := func(table, svc string, ops []string) {
		s := c.Service(svc)
		if s == nil {
			t.Errorf("%s: no service %q", table, svc)
			return
		}
		for _, o := range ops {
			if s.Operation(o) == nil {
				t.Errorf("%s: no operation %s.%s", table, svc, o)
			}
		}
	}
	for svc, m := range actionExceptions {
		check("actionExceptions", svc, slices.Collect(mapKeys(m)))
	}
	for svc, ops := range credentialOps {
		if svc == "sts" {
			ops = slices.DeleteFunc(slices.Clone(ops), func(o string) bool { return o == "AssumeRoot" }) // newer than the models
		}
		check("credentialOps", svc, ops)
	}
	for svc, ops := range secretOps {
		check("secretOps", svc, ops)
	}
	for svc, m := range notReadOnly {
		check("notReadOnly", svc, slices.Collect(mapKeys(m)))
	}
	for svc := range iamPrefixes {
		check("iamPrefixes", svc, nil)
	}
}

func TestFlags(t *testing.T) {
	c := Default()
	tests := []struct {
		op    string // service.Operation
		flags string
	}{
		{"sts.AssumeRole", "cred,sec"},
		{"sts.AssumeRoleWithWebIdentity", "cred,sec"},
		{"sts.GetSessionToken", "cred,sec"},
		{"sts.GetFederationToken", "cred,sec"},
		{"sts.GetCallerIdentity", "ro"},
		{"iam.CreateAccessKey", "cred,sec"},
		{"iam.ListAccessKeys", "ro"},
		{"ecr.GetAuthorizationToken", "cred,sec"},
		{"sso.GetRoleCredentials", "cred,sec"},
		{"cognito-identity.GetCredentialsForIdentity", "cred,sec"},
		{"cognito-identity.GetId", ""},
		{"redshift.GetClusterCredentials", "cred,sec"},
		{"secretsmanager.GetSecretValue", "ro,sec"},
		{"secretsmanager.DescribeSecret", "ro"},
		{"ssm.GetParameter", "ro,sec"},
		{"ssm.GetParameters", "ro,sec"},
		{"lambda.GetFunction", "ro,sec"},
		{"kms.Decrypt", "sec"},
		{"s3.HeadObject", "ro"},
		{"s3.SelectObjectContent", "ro"},
		{"s3.PutObject", ""},
		{"sqs.ReceiveMessage", ""},
		{"dynamodb.Query", "ro"},
		{"dynamodb.Scan", "ro"},
		{"dynamodb.BatchGetItem", "ro"},
		{"dynamodb.TransactGetItems", "ro"},
		{"dynamodb.ExecuteStatement", ""},
		{"cloudtrail.LookupEvents", "ro"},
		{"logs.FilterLogEvents", "ro"},
		{"iam.SimulatePrincipalPolicy", "ro"},
		{"license-manager.CheckoutLicense", ""},
		{"license-manager.CheckInLicense", ""},
		{"ec2.GetPasswordData", "ro,sec"},
		{"ec2.RunInstances", ""},
	}
	for _, tt := range tests {
		t.Run(tt.op, func(t *testing.T) {
			svc, name, _ := strings.Cut(tt.op, ".")
			op := c.Service(svc).Operation(name)
			if op == nil {
				t.Fatal("no such operation")
			}
			got := flagString(Classification{ReadOnly: op.ReadOnly, CredentialIssuing: op.CredentialIssuing, ReturnsSecrets: op.ReturnsSecrets})
			if got != tt.flags {
				t.Errorf("flags %q, want %q", got, tt.flags)
			}
		})
	}
}

func TestReadOnlyVerbs(t *testing.T) {
	tests := []struct {
		name string
		want bool
	}{
		{"Get", true}, {"GetObject", true}, {"ListObjectsV2", true}, {"Describe", true}, {"HeadBucket", true},
		{"Query", true}, {"Scan", true}, {"BatchGetItem", true}, {"TransactGetItems", true}, {"Search", true},
		{"Getaway", false}, {"Listen", false}, {"Checkout", false}, {"PutObject", false}, {"Delete", false},
		{"Get2Things", true}, {"", false}, {"get", false},
	}
	for _, tt := range tests {
		if got := hasReadOnlyVerb(tt.name); got != tt.want {
			t.Errorf("hasReadOnlyVerb(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestSensitiveNeverInParams fills every top-level member of every JSON
// operation, and every header of every REST operation, and checks that no
// sensitive value reaches Params.
func TestSensitiveNeverInParams(t *testing.T) {
	c := Default()
	const secret = "SENSITIVE-VALUE"
	checked := 0
	for _, s := range c.Services() {
		for _, op := range s.Operations() {
			hasSensitive := false
			for _, m := range op.Inputs {
				hasSensitive = hasSensitive || m.Sensitive
			}
			if !hasSensitive {
				continue
			}
			r := synth(op)
			body := map[string]any{}
			for _, m := range op.Inputs {
				switch {
				case m.Location == LocationHeader:
					r.Header.Set(m.Wire, secret)
				case m.Location == LocationQuery:
					r.Query.Set(m.Wire, secret)
				case m.Location == LocationBody && m.kind == kindList:
					body[m.Wire] = []string{secret}
				case m.Location == LocationBody && m.kind == kindMap:
					body[m.Wire] = map[string]string{secret: secret}
				case m.Location == LocationBody:
					body[m.Wire] = secret
				}
			}
			switch s.Protocol {
			case ProtocolJSON, ProtocolRESTJSON:
				r.Body, _ = json.Marshal(body)
			case ProtocolQuery, ProtocolEC2:
				b := string(r.Body)
				for k := range body {
					b += "&" + k + "=" + secret
				}
				r.Body = []byte(b)
			}
			got := c.Classify(r)
			if got.Service != s || got.Operation != op.Name {
				continue // a wire-identical twin; covered by TestRoundTrip
			}
			checked++
			for _, m := range op.Inputs {
				if m.Sensitive && got.Params[m.Name] != "" {
					t.Errorf("%s.%s: sensitive member %s in Params", s.Name, op.Name, m.Name)
				}
			}
		}
	}
	t.Logf("%d operations with sensitive members checked", checked)
}

// tableHeader returns the first lines of the embedded table.
func tableHeader() (string, error) {
	zr, err := gzip.NewReader(strings.NewReader(table))
	if err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, _ := io.ReadFull(zr, buf)
	head, _, _ := bytes.Cut(buf[:n], []byte("\nS\t"))
	return string(head), nil
}

func TestDecodeRejects(t *testing.T) {
	tests := []struct{ name, text string }{
		{"empty", ""},
		{"wrong magic", "gatehouse-catalog 2\nsource a b\ncounts\n"},
		{"operation before service", "gatehouse-catalog 1\nsource m v\ncounts\nO\tA\tGET\t/\t\t\t\n"},
		{"unknown protocol", "gatehouse-catalog 1\nsource m v\ncounts\nS\tx\t1\tsoap\tx\tx\t\t\t\t\n"},
		{"bad member", "gatehouse-catalog 1\nsource m v\ncounts\nS\tx\t1\tjson\tx\tx\tX\t1.0\t\t\nO\tA\tPOST\t/\t\t\tzzName\n"},
		{"duplicate operation", "gatehouse-catalog 1\nsource m v\ncounts\nS\tx\t1\tjson\tx\tx\tX\t1.0\t\t\nO\tA\tPOST\t/\t\t\t\nO\tA\tPOST\t/\t\t\t\n"},
		{"short record", "gatehouse-catalog 1\nsource m v\ncounts\nS\tx\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parse(tt.text); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := decode("not gzip"); err == nil {
		t.Error("decode accepted a non-gzip table")
	}
	c, err := parse("gatehouse-catalog 1\nsource m v\ncounts\nS\tx\t1\tjson\tx\tx\tX\t1.0\t\t\nO\tA\tPOST\t/\t\t\tbs!Name\n")
	if err != nil {
		t.Fatal(err)
	}
	got := c.Classify(target("x", "X.A", `{"Name":"n"}`))
	if got.Operation != "A" || got.Action != "x:A" || got.Params["Name"] != "n" || c.Source() != "m@v" {
		t.Errorf("tiny catalog: %+v", got)
	}
}
