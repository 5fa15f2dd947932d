package catalog_test

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
)

// Classify a DynamoDB call and an S3 call the way the gateway does after
// it has verified the caller's signature: signing name and region from the
// credential scope, the account from the role the call will run as.
func Example() {
	c := catalog.Default()

	ddb := c.Classify(&catalog.Request{
		SigningName: "dynamodb", Region: "eu-west-1", Account: "123456789012",
		Method: "POST", RawPath: "/",
		Header: http.Header{"X-Amz-Target": {"DynamoDB_20120810.Query"}},
		Body:   []byte(`{"TableName":"Orders","IndexName":"ByCustomer"}`),
	})
	fmt.Println(ddb.Service.EndpointPrefix, ddb.Operation, ddb.Action, ddb.ReadOnly)
	fmt.Println(ddb.Resources)
	fmt.Println(ddb.Params["TableName"])

	s3 := c.Classify(&catalog.Request{
		SigningName: "s3", Region: "us-east-1", Method: "GET", RawPath: "/reports/2026/q3.csv",
		Query: url.Values{"versionId": {"v7"}}, Bucket: "finance",
	})
	fmt.Println(s3.Operation, s3.Action, s3.Resources)

	// Output:
	// dynamodb Query dynamodb:Query true
	// [arn:aws:dynamodb:eu-west-1:123456789012:table/Orders/index/ByCustomer]
	// Orders
	// GetObject s3:GetObjectVersion [arn:aws:s3:::finance/reports/2026/q3.csv]
}

// Several services share a signing name; the request decides which one it
// addresses, and the gateway routes with that service's endpoint prefix.
func ExampleCatalog_Classify_sharedSigningName() {
	c := catalog.Default()
	for _, path := range []string{
		"/model/anthropic.claude-3-haiku-20240307-v1:0/converse",
		"/agents/A1/agentAliases/L1/sessions/S1/text",
		"/foundation-models",
	} {
		method := "POST"
		if path == "/foundation-models" {
			method = "GET"
		}
		got := c.Classify(&catalog.Request{SigningName: "bedrock", Region: "us-west-2", Method: method, RawPath: path})
		fmt.Println(got.Service.EndpointPrefix, got.Operation, got.Action)
	}
	// Output:
	// bedrock-runtime Converse bedrock:InvokeModel
	// bedrock-agent-runtime InvokeAgent bedrock:InvokeAgent
	// bedrock ListFoundationModels bedrock:ListFoundationModels
}
