package catalog

import (
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

// FuzzClassify feeds arbitrary requests to Classify: it must never panic,
// must keep its bounds and must give the same answer twice (map order
// must not leak into the result).
func FuzzClassify(f *testing.F) {
	c := Default()
	names := c.SigningNames()
	index := map[string]uint16{}
	for i, n := range names {
		index[n] = uint16(i)
	}
	for _, bc := range benchRequests() {
		r := bc.req
		f.Add(index[r.SigningName], r.Method, r.RawPath, r.Query.Encode(), r.Header.Get("X-Amz-Target"), r.Header.Get("Content-Type"), r.Header.Get("Smithy-Protocol"), r.Body, r.Bucket)
	}
	f.Add(index["s3"], "PUT", "/b/k%2", "partNumber=1&uploadId=u&uploadId=v", "", "", "", []byte(nil), "")
	f.Add(index["dynamodb"], "POST", "/", "", "DynamoDB_20120810.BatchWriteItem", "application/x-amz-json-1.0", "", []byte(`{"RequestItems":{"A":[{"PutRequest":{}}],"B":[]},"x":[1,{"y":"\ud83d\ude00"}]}`), "")
	f.Add(index["dynamodb"], "POST", "/", "", "DynamoDB_20120810.ExecuteTransaction", "", "", []byte(`{"TransactStatements":[{"Statement":"update \"T\" set a=1"}]}`), "")
	f.Add(index["sqs"], "POST", "/", "", "", "application/x-www-form-urlencoded", "", []byte("Action=SendMessage&QueueUrl=%zz&QueueUrl=https://q/1/x"), "")
	f.Add(index["lambda"], "GET", "/2015-03-31/functions/arn:aws:lambda:us-east-1:1:function:f/configuration", "", "", "", "", []byte(nil), "")
	f.Add(uint16(0), "GET", "", "", "", "", "", []byte(nil), "")
	f.Fuzz(func(t *testing.T, sel uint16, method, path, query, target, ctype, smithy string, body []byte, bucket string) {
		q, _ := url.ParseQuery(query)
		h := http.Header{}
		if target != "" {
			h.Set("X-Amz-Target", target)
		}
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		if smithy != "" {
			h.Set("Smithy-Protocol", smithy)
		}
		for k := range q {
			if strings.HasPrefix(k, "h-") { // let the fuzzer reach header members
				h[http.CanonicalHeaderKey(k[2:])] = q[k]
			}
		}
		r := &Request{SigningName: names[int(sel)%len(names)], Region: "us-east-1", Account: "1", Method: method, RawPath: path, Query: q, Header: h, Bucket: bucket, Body: body}
		got := c.Classify(r)
		if len(got.Params) > MaxParams || len(got.Resources) > MaxResources {
			t.Fatalf("bounds: %d params, %d resources", len(got.Params), len(got.Resources))
		}
		for k, v := range got.Params {
			if len(v) > MaxListValues*(MaxParamValue+1) {
				t.Fatalf("Params[%s] has %d bytes", k, len(v))
			}
		}
		if got.Operation != "" && (got.Service == nil || got.Service.Operation(got.Operation) == nil) {
			t.Fatalf("operation %q without its service", got.Operation)
		}
		if got.Service == nil && got.Action != "" {
			t.Fatalf("action %q without a service", got.Action)
		}
		if again := c.Classify(r); !reflect.DeepEqual(got, again) {
			t.Fatalf("not deterministic:\n%+v\n%+v", got, again)
		}
	})
}
