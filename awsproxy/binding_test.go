package awsproxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// bindingPolicy holds every risky S3 call in queue mode, so that the first
// attempt is answered ApprovalPending at once and an identical retry
// consumes the grant.
const bindingPolicy = `
default: deny
rules:
  - name: reads
    effect: allow
    when: request.readOnly
  - name: setup
    effect: allow
    when: request.action == "s3:CreateBucket" || (request.action == "s3:PutObject" && request.resource.iamLike("arn:aws:s3:::src/*"))
  - name: risky
    effect: approve
    when: >-
      request.action in ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketPolicy"] ||
      (request.action == "s3:PutObject" && request.resource.iamLike("arn:aws:s3:::guarded/*"))
    reason: a human looks at this first
    approval:
      approvers: [sec]
      mode: queue
`

var bindingApprover = identity.Principal{Issuer: "https://idp.test", Subject: "alice", Groups: []string{"sec"}}

type bindingHarness struct {
	*harness
	engine *policy.Engine
	broker *approval.Broker
}

func newBindingHarness(t *testing.T, pol string, urlBase string) *bindingHarness {
	t.Helper()
	compiled, err := policy.Compile(*mustPolicyConfig(t, pol), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	engine := policy.NewStaticEngine(compiled)
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		t.Fatal(err)
	}
	broker, err := approval.New(approval.Config{Store: store, URLBase: urlBase})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(engine, broker)}
	}})
	for _, b := range []string{"guarded", "src"} {
		h.mustCreateBucket(t, b)
	}
	return &bindingHarness{harness: h, engine: engine, broker: broker}
}

func mustPolicyConfig(t *testing.T, src string) *policy.Config {
	t.Helper()
	cfg, err := policy.Parse("binding.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

// pending sends r and requires an ApprovalPending answer that never reached
// the upstream; it returns the approval id from the response headers.
func (h *bindingHarness) pending(t *testing.T, what string, r *http.Request) string {
	t.Helper()
	before := h.S3Hits.Load()
	resp, body := h.do(t, r)
	p, ok := awsproxy.PendingApprovalFrom(resp.Header)
	if !ok {
		t.Fatalf("%s: %d %s %q, want ApprovalPending with an approval id header", what, resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"), body)
	}
	if h.S3Hits.Load() != before {
		t.Fatalf("%s: a call waiting for approval reached the upstream", what)
	}
	return p.ID
}

// forwarded sends r and requires that it was not held and reached the
// upstream.
func (h *bindingHarness) forwarded(t *testing.T, what string, r *http.Request) *http.Response {
	t.Helper()
	before := h.S3Hits.Load()
	resp, body := h.do(t, r)
	if code := resp.Header.Get("X-Gatehouse-Error"); code != "" {
		t.Fatalf("%s: refused by the gateway: %s %s", what, code, body)
	}
	if h.S3Hits.Load() == before {
		t.Fatalf("%s: never reached the upstream", what)
	}
	return resp
}

func (h *bindingHarness) approve(t *testing.T, id string) {
	t.Helper()
	if _, err := h.broker.Approve(context.Background(), id, bindingApprover, "looked at it"); err != nil {
		t.Fatalf("approving %s: %v", id, err)
	}
}

// unsignedChunked encodes data as a STREAMING-UNSIGNED-PAYLOAD-TRAILER
// body with a CRC32 trailer.
func unsignedChunked(data []byte, chunk int) []byte {
	var b bytes.Buffer
	for off := 0; off < len(data); off += chunk {
		end := min(off+chunk, len(data))
		fmt.Fprintf(&b, "%x\r\n", end-off)
		b.Write(data[off:end])
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "0\r\nx-amz-checksum-crc32:%s\r\n\r\n", crc32Base64(data))
	return b.Bytes()
}

func (h *bindingHarness) unsignedChunkedPut(t *testing.T, path string, data []byte) *http.Request {
	body := unsignedChunked(data, 8<<10)
	return h.signed(t, reqSpec{method: "PUT", path: path, body: body, hash: awsproxy.PayloadStreamingUnsigned, header: http.Header{
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data))},
		"X-Amz-Trailer":                {"x-amz-checksum-crc32"},
	}})
}

// signedChunkedPut builds a STREAMING-AWS4-HMAC-SHA256-PAYLOAD upload of
// data, every chunk signed by the client's key.
func (h *bindingHarness) signedChunkedPut(t *testing.T, path string, data []byte) *http.Request {
	now := time.Now().UTC()
	amzDate := now.Format("20060102T150405Z")
	scope := now.Format("20060102") + "/" + testRegion + "/s3/aws4_request"
	key := deriveKey(clientSecret, now.Format("20060102"), testRegion, "s3")
	probe := signedChunkedBody(key, amzDate, scope, strings.Repeat("0", 64), data, 8<<10, "")
	hdr := http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Decoded-Content-Length": {fmt.Sprint(len(data))}}
	r := h.signed(t, reqSpec{method: "PUT", path: path, body: probe, hash: awsproxy.PayloadStreamingSigned, at: now, header: hdr})
	auth := r.Header.Get("Authorization")
	seed := auth[strings.LastIndex(auth, "Signature=")+len("Signature="):]
	body := signedChunkedBody(key, amzDate, scope, seed, data, 8<<10, "")
	r.Body = io.NopCloser(bytes.NewReader(body))
	return r
}

// TestApprovalBindsEffectiveRequest: a grant covers exactly the request
// that was approved. The same call with another header that changes what
// S3 does, or another body in any payload mode, is a new request that
// needs its own approval and never reaches the upstream on the old grant;
// the approved request itself passes once.
func TestApprovalBindsEffectiveRequest(t *testing.T) {
	policyA := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/reader"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::guarded/*"}]}`)
	policyB := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::guarded/*"}]}`)
	dataA := bytes.Repeat([]byte("approved payload "), 3000)
	dataB := bytes.Clone(dataA)
	dataB[len(dataB)-1] = '!'
	tests := []struct {
		name string
		// req builds the approved request (variant false) or the request
		// that must not ride on its grant (variant true).
		req func(h *bindingHarness, t *testing.T, variant bool) *http.Request
		// check, if set, runs after the approved request went through.
		check func(h *bindingHarness, t *testing.T)
	}{
		{"signed x-amz-bypass-governance-retention", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			hdr := http.Header{}
			if v {
				hdr.Set("X-Amz-Bypass-Governance-Retention", "true")
			}
			return h.signed(t, reqSpec{method: "DELETE", path: "/guarded/locked?versionId=v1", header: hdr})
		}, nil},
		{"signed x-amz-mfa", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			hdr := http.Header{}
			if v {
				hdr.Set("X-Amz-Mfa", "arn:aws:iam::123456789012:mfa/root 123456")
			}
			return h.signed(t, reqSpec{method: "DELETE", path: "/guarded/locked", header: hdr})
		}, nil},
		{"another x-amz-acl", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			acl := "private"
			if v {
				acl = "public-read-write"
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/acl", body: []byte("x"), header: http.Header{"X-Amz-Acl": {acl}}})
		}, nil},
		{"another x-amz-copy-source", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			src := "/src/public"
			if v {
				src = "/src/secret"
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/copy", header: http.Header{"X-Amz-Copy-Source": {src}}})
		}, nil},
		{"another server-side encryption", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			hdr := http.Header{"X-Amz-Server-Side-Encryption": {"aws:kms"}}
			if v {
				hdr.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "arn:aws:kms:us-east-1:999999999999:key/attacker")
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/sse", body: []byte("x"), header: hdr})
		}, nil},
		{"another object-lock mode", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			mode := "GOVERNANCE"
			if v {
				mode = "COMPLIANCE"
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/lock", body: []byte("x"), header: http.Header{
				"X-Amz-Object-Lock-Mode": {mode}, "X-Amz-Object-Lock-Retain-Until-Date": {"2030-01-01T00:00:00Z"},
			}})
		}, nil},
		{"another user metadata value", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			owner := "team-a"
			if v {
				owner = "team-b"
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/meta", body: []byte("x"), header: http.Header{"X-Amz-Meta-Owner": {owner}}})
		}, nil},
		{"unsigned Content-Type changed on the way", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			r := h.signed(t, reqSpec{method: "PUT", path: "/guarded/page", body: []byte("<p>hi</p>"), hash: awsproxy.PayloadUnsigned})
			ct := "text/plain"
			if v {
				ct = "text/html"
			}
			r.Header.Set("Content-Type", ct) // after signing: unsigned, yet forwarded
			return r
		}, nil},
		{"UNSIGNED-PAYLOAD PutBucketPolicy with another policy", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			body := policyA
			if v {
				body = policyB
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded?policy", body: body, hash: awsproxy.PayloadUnsigned})
		}, nil},
		{"literal SHA-256 PutObject with another body", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			body := dataA
			if v {
				body = dataB
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/literal", body: body})
		}, nil},
		{"STREAMING-UNSIGNED-PAYLOAD-TRAILER PutObject with another body", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			if v {
				return h.unsignedChunkedPut(t, "/guarded/stream-unsigned", dataB)
			}
			return h.unsignedChunkedPut(t, "/guarded/stream-unsigned", dataA)
		}, func(h *bindingHarness, t *testing.T) { h.wantObject(t, "guarded", "stream-unsigned", dataA) }},
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD PutObject with another body", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			if v {
				return h.signedChunkedPut(t, "/guarded/stream-signed", dataB)
			}
			return h.signedChunkedPut(t, "/guarded/stream-signed", dataA)
		}, func(h *bindingHarness, t *testing.T) { h.wantObject(t, "guarded", "stream-signed", dataA) }},
		{"UNSIGNED-PAYLOAD PutObject with another body", func(h *bindingHarness, t *testing.T, v bool) *http.Request {
			body := dataA
			if v {
				body = dataB
			}
			return h.signed(t, reqSpec{method: "PUT", path: "/guarded/unsigned", body: body, hash: awsproxy.PayloadUnsigned})
		}, func(h *bindingHarness, t *testing.T) { h.wantObject(t, "guarded", "unsigned", dataA) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newBindingHarness(t, bindingPolicy, "")
			id := h.pending(t, "first attempt", tc.req(h, t, false))
			h.approve(t, id)
			other := h.pending(t, "the changed request after the approval", tc.req(h, t, true))
			if other == id {
				t.Fatalf("the changed request was filed under the approved record %s", id)
			}
			h.forwarded(t, "the approved request", tc.req(h, t, false))
			calls := h.Calls()
			last := calls[len(calls)-1]
			ev := awsproxy.AuditEvent(last, audit.PhaseCompletion)
			if ev.Approval == nil || ev.Approval.ID != id || ev.Approval.State != "consumed" || len(ev.Approval.Fingerprint) != 64 ||
				len(ev.Approval.BodySHA256) != 64 || ev.Approval.PolicyRevision != h.engine.Policy().Revision() {
				t.Fatalf("the completion event's approval: %+v", ev.Approval)
			}
			if tc.check != nil {
				tc.check(h, t)
			}
			h.pending(t, "the approved request again (the grant is spent)", tc.req(h, t, false))
		})
	}
}

func (h *bindingHarness) wantObject(t *testing.T, bucket, key string, want []byte) {
	t.Helper()
	out, err := h.s3Client(t).GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("GetObject %s/%s: %v", bucket, key, err)
	}
	got, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(got, want) {
		t.Fatalf("%s/%s holds %d bytes, not the %d approved", bucket, key, len(got), len(want))
	}
}

// TestApprovalBindsDecision: a grant names the policy revision it was made
// under, and a reload that changes the decision for the request voids it,
// while a reload that changes nothing the decision asks for keeps it.
func TestApprovalBindsDecision(t *testing.T) {
	req := func(h *bindingHarness, t *testing.T) *http.Request {
		return h.signed(t, reqSpec{method: "DELETE", path: "/guarded/obj"})
	}
	t.Run("decision changed", func(t *testing.T) {
		h := newBindingHarness(t, bindingPolicy, "")
		id := h.pending(t, "first attempt", req(h, t))
		rec, err := h.broker.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Policy == "" || rec.Policy != h.engine.Policy().Revision() {
			t.Fatalf("record names policy revision %q, want %q", rec.Policy, h.engine.Policy().Revision())
		}
		h.approve(t, id)
		stricter := strings.Replace(bindingPolicy, "approvers: [sec]", "approvers: [sec]\n      minApprovals: 2", 1)
		if err := h.engine.Replace(*mustPolicyConfig(t, stricter)); err != nil {
			t.Fatal(err)
		}
		if got := h.pending(t, "the approved request after a reload that asks for two approvers", req(h, t)); got == id {
			t.Fatal("the stricter decision attached to the old record")
		}
	})
	t.Run("only the reason changed", func(t *testing.T) {
		h := newBindingHarness(t, bindingPolicy, "")
		id := h.pending(t, "first attempt", req(h, t))
		h.approve(t, id)
		reworded := strings.Replace(bindingPolicy, "a human looks at this first", "reworded", 1)
		if err := h.engine.Replace(*mustPolicyConfig(t, reworded)); err != nil {
			t.Fatal(err)
		}
		h.forwarded(t, "the approved request after a reload that only rewords a reason", req(h, t))
	})
}

// TestApprovalPendingIsMachineReadable: a pending answer names the approval
// id, page, expiry and mode in headers and in the AWS error body, and its
// message reads well when no page URL is configured.
func TestApprovalPendingIsMachineReadable(t *testing.T) {
	for _, urlBase := range []string{"", "https://gatehouse.example/approvals/ui/"} {
		t.Run("urlBase="+urlBase, func(t *testing.T) {
			h := newBindingHarness(t, bindingPolicy, urlBase)
			resp, body := h.do(t, h.signed(t, reqSpec{method: "DELETE", path: "/guarded/obj"}))
			p, ok := awsproxy.PendingApprovalFrom(resp.Header)
			if !ok {
				t.Fatalf("no pending approval in the headers: %v %s", resp.Header, body)
			}
			rec, err := h.broker.Get(context.Background(), p.ID)
			if err != nil {
				t.Fatalf("the header's approval id %q: %v", p.ID, err)
			}
			if p.Mode != "queue" || !p.Expires.Equal(rec.ExpiresAt.Truncate(time.Second)) {
				t.Fatalf("mode %q expires %v, want queue and %v", p.Mode, p.Expires, rec.ExpiresAt)
			}
			wantURL := ""
			if urlBase != "" {
				wantURL = urlBase + p.ID
			}
			if p.URL != wantURL {
				t.Fatalf("url %q, want %q", p.URL, wantURL)
			}
			var e struct {
				Code, Message, ApprovalId, ApprovalUrl, ApprovalExpires, ApprovalMode string
			}
			if err := xml.Unmarshal(body, &e); err != nil {
				t.Fatal(err)
			}
			if e.Code != awsproxy.CodeApprovalPending || e.ApprovalId != p.ID || e.ApprovalUrl != p.URL || e.ApprovalMode != "queue" || e.ApprovalExpires == "" {
				t.Fatalf("error body %+v", e)
			}
			if strings.Contains(e.Message, " at ;") || strings.Contains(e.Message, "pending at ") != (urlBase != "") {
				t.Fatalf("message %q", e.Message)
			}
			// A stock SDK client's error carries the same (its request has
			// other headers, so it is a request of its own).
			_, err = h.s3Client(t).DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String("guarded"), Key: aws.String("obj")})
			got, ok := awsproxy.PendingApprovalOf(err)
			if !ok {
				t.Fatalf("PendingApprovalOf(%v): no pending approval", err)
			}
			if _, err := h.broker.Get(context.Background(), got.ID); err != nil || got.Mode != "queue" || (got.URL != "") != (urlBase != "") {
				t.Fatalf("PendingApprovalOf: %+v (%v)", got, err)
			}
			if _, ok := awsproxy.PendingApprovalOf(io.EOF); ok {
				t.Fatal("PendingApprovalOf accepted an error that is no response")
			}
		})
	}
}

// TestApprovalShowsWhatIsApproved: the record an approver sees holds every
// bound header, the body's digest and a preview with secrets masked.
func TestApprovalShowsWhatIsApproved(t *testing.T) {
	h := newBindingHarness(t, bindingPolicy, "")
	body := []byte(`{"Version":"2012-10-17","Statement":[{"Sid":"k","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::guarded/*","Condition":{"StringEquals":{"aws:Referer":"AKIAIOSFODNN7EXAMPLE secret=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}}}]}`)
	r := h.signed(t, reqSpec{method: "PUT", path: "/guarded?policy", body: body, hash: awsproxy.PayloadUnsigned, header: http.Header{
		"X-Amz-Expected-Bucket-Owner": {"123456789012"},
		"Content-Type":                {"application/json"},
	}})
	id := h.pending(t, "PutBucketPolicy", r)
	rec, err := h.broker.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	d := rec.Detail
	if d == nil || d.Operation != "PutBucketPolicy" || d.Method != "PUT" || d.Path != "/guarded" || d.Query != "policy=" {
		t.Fatalf("detail %+v", d)
	}
	headers := map[string]string{}
	for _, hd := range d.Headers {
		headers[hd.Name] = hd.Value
	}
	if headers["x-amz-expected-bucket-owner"] != "123456789012" || headers["content-type"] != "application/json" {
		t.Fatalf("bound headers %v lack the expected-bucket-owner or content type", headers)
	}
	for _, never := range []string{"authorization", "x-amz-date", "x-amz-content-sha256", "user-agent"} {
		if _, ok := headers[never]; ok {
			t.Fatalf("header %s is shown as bound: %v", never, headers)
		}
	}
	b := d.Body
	if b == nil || b.Size != int64(len(body)) || b.SHA256 != hexSHA(body) {
		t.Fatalf("body %+v, want %d bytes with sha256 %s", b, len(body), hexSHA(body))
	}
	if !strings.Contains(b.Preview, `"Principal":"*"`) || strings.Contains(b.Preview, "wJalrXUtnFEMI") || !b.Masked {
		t.Fatalf("preview %q (masked %v): want the policy shown with the secret key masked", b.Preview, b.Masked)
	}
	js, _ := json.Marshal(rec)
	if strings.Contains(string(js), "wJalrXUtnFEMI") {
		t.Fatal("the stored record holds the secret")
	}
}

// TestApprovalBindsOperation: two JSON operations that share one IAM
// action (SQS SendMessage and SendMessageBatch are both sqs:SendMessage)
// are different requests: a grant for one never forwards the other.
func TestApprovalBindsOperation(t *testing.T) {
	var seen []string
	sqs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Amz-Target"))
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(sqs.Close)
	compiled, err := policy.Compile(*mustPolicyConfig(t, `
default: deny
rules:
  - name: sends
    effect: approve
    when: request.action == "sqs:SendMessage"
    approval: {approvers: [sec], mode: queue}
`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store, _ := approval.NewMemoryStore(approval.MemoryConfig{})
	broker, err := approval.New(approval.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	h := &bindingHarness{harness: newHarness(t, harnessOptions{Upstreams: map[string]string{"sqs": sqs.URL}, Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(compiled), broker)}
	}}), broker: broker}
	body := []byte(`{"QueueUrl":"https://sqs.us-east-1.amazonaws.com/123456789012/q","MessageBody":"one harmless message",` +
		`"Entries":[{"Id":"1","MessageBody":"rm -rf /"}]}`)
	send := func(op string) *http.Request {
		return h.signed(t, reqSpec{method: "POST", path: "/", service: "sqs", body: body, header: http.Header{
			"X-Amz-Target": {"AmazonSQS." + op}, "Content-Type": {"application/x-amz-json-1.0"},
		}})
	}
	id := h.pendingAt(t, "SendMessage", send("SendMessage"))
	h.approve(t, id)
	if other := h.pendingAt(t, "SendMessageBatch on the SendMessage grant", send("SendMessageBatch")); other == id {
		t.Fatal("SendMessageBatch attached to the SendMessage record")
	}
	if len(seen) != 0 {
		t.Fatalf("the upstream saw %v before anything was approved for it", seen)
	}
	resp, b := h.do(t, send("SendMessage"))
	if resp.StatusCode != 200 || len(seen) != 1 || seen[0] != "AmazonSQS.SendMessage" {
		t.Fatalf("the approved SendMessage: %d %s, upstream saw %v", resp.StatusCode, b, seen)
	}
}

// pendingAt is pending for a harness whose upstream is not the S3 one.
func (h *bindingHarness) pendingAt(t *testing.T, what string, r *http.Request) string {
	t.Helper()
	resp, body := h.do(t, r)
	p, ok := awsproxy.PendingApprovalFrom(resp.Header)
	if !ok {
		t.Fatalf("%s: %d %s %q, want ApprovalPending", what, resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"), body)
	}
	return p.ID
}

// TestApprovalRefusesWhatCannotBeShown: a call that needs approval but
// could not be shown to an approver whole (a bound header past the
// approval page's bounds, too many bound headers) is refused, and no
// approval is filed for it.
func TestApprovalRefusesWhatCannotBeShown(t *testing.T) {
	long := http.Header{"X-Amz-Meta-Note": {strings.Repeat("a", approval.MaxDetailHeaderValue) + "approved-by-alice"}}
	many := http.Header{"X-Amz-Website-Redirect-Location": {"https://evil.example/phish"}}
	for i := range approval.MaxDetailHeaders {
		many.Set(fmt.Sprintf("X-Amz-Meta-A%03d", i), "x")
	}
	for name, hdr := range map[string]http.Header{"a long header": long, "too many headers": many} {
		t.Run(name, func(t *testing.T) {
			h := newBindingHarness(t, bindingPolicy, "")
			before := h.S3Hits.Load()
			resp, body := h.do(t, h.signed(t, reqSpec{method: "PUT", path: "/guarded/o", body: []byte("x"), header: hdr}))
			if resp.StatusCode != 400 || !strings.Contains(string(body), "must see everything") || h.S3Hits.Load() != before {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			if recs, _ := h.broker.List(context.Background(), approval.Filter{}); len(recs) != 0 {
				t.Fatalf("an approval was filed: %+v", recs)
			}
		})
	}
}

// TestApprovalBindsContentEncodingOfPlainBodies: outside aws-chunked
// uploads, Content-Encoding (aws-chunked included) is stored with the
// object and is bound as sent.
func TestApprovalBindsContentEncodingOfPlainBodies(t *testing.T) {
	h := newBindingHarness(t, bindingPolicy, "")
	put := func(ce string) *http.Request {
		return h.signed(t, reqSpec{method: "PUT", path: "/guarded/ce", body: []byte("x"), hash: awsproxy.PayloadUnsigned,
			header: http.Header{"Content-Encoding": {ce}}})
	}
	id := h.pending(t, "gzip", put("gzip"))
	h.approve(t, id)
	if other := h.pending(t, "gzip,aws-chunked", put("gzip,aws-chunked")); other == id {
		t.Fatal("another Content-Encoding attached to the approved record")
	}
}

// TestPolicyJudgesOnlyForwardedHeaders: a header the gateway will not
// forward (an unsigned x-amz-* header, or one a Connection header names as
// hop-by-hop) can never satisfy a policy condition.
func TestPolicyJudgesOnlyForwardedHeaders(t *testing.T) {
	compiled, err := policy.Compile(*mustPolicyConfig(t, `
default: deny
rules:
  - name: setup
    effect: allow
    when: request.action == "s3:CreateBucket"
  - name: encrypted-puts-only
    effect: allow
    when: request.action == "s3:PutObject" && request.params["ServerSideEncryption"] == "AES256"
`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(compiled), nil)}
	}})
	h.mustCreateBucket(t, "bkt")
	t.Run("signed: allowed", func(t *testing.T) {
		r := h.signed(t, reqSpec{method: "PUT", path: "/bkt/signed", body: []byte("x"), header: http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}})
		if resp, body := h.do(t, r); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	})
	t.Run("unsigned: not judged", func(t *testing.T) {
		before := h.S3Hits.Load()
		r := h.signed(t, reqSpec{method: "PUT", path: "/bkt/unsigned", body: []byte("x")})
		r.Header.Set("X-Amz-Server-Side-Encryption", "AES256") // after signing
		resp, body := h.do(t, r)
		if resp.Header.Get("X-Gatehouse-Error") != "AccessDenied" || h.S3Hits.Load() != before {
			t.Fatalf("%d %s: an unsigned header the gateway drops satisfied the policy", resp.StatusCode, body)
		}
	})
	t.Run("named by Connection: refused", func(t *testing.T) {
		before := h.S3Hits.Load()
		r := h.signed(t, reqSpec{method: "PUT", path: "/bkt/hop", body: []byte("x"), header: http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}})
		r.Header.Set("Connection", "X-Amz-Server-Side-Encryption")
		resp, body := h.do(t, r)
		if resp.StatusCode != 400 || h.S3Hits.Load() != before {
			t.Fatalf("%d %s: a header a proxy strips as hop-by-hop was judged and forwarded", resp.StatusCode, body)
		}
	})
}

// TestUnsignedBodiesOfOtherServicesAreJudged: a DynamoDB call sent with
// UNSIGNED-PAYLOAD is classified from its body like any other (a deny rule
// on the table holds), and aws-chunked bodies are refused outside S3.
func TestUnsignedBodiesOfOtherServicesAreJudged(t *testing.T) {
	var hits int
	ddb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(ddb.Close)
	compiled, err := policy.Compile(*mustPolicyConfig(t, `
default: deny
rules:
  - name: tables
    effect: allow
    when: request.service == "dynamodb"
  - name: never-prod
    effect: deny
    when: request.resources.exists(r, r.iamLike("arn:aws:dynamodb:*:*:table/prod"))
`), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{Upstreams: map[string]string{"dynamodb": ddb.URL}, Config: func(c *awsproxy.Config) {
		c.Stages = []awsproxy.Stage{awsproxy.PolicyStage(policy.NewStaticEngine(compiled), nil)}
		c.Account = "123456789012"
	}})
	del := func(hash string) *http.Request {
		return h.signed(t, reqSpec{method: "POST", path: "/", service: "dynamodb", body: []byte(`{"TableName":"prod"}`), hash: hash, header: http.Header{
			"X-Amz-Target": {"DynamoDB_20120810.DeleteTable"}, "Content-Type": {"application/x-amz-json-1.0"}, "X-Amz-Content-Sha256": {hash},
		}})
	}
	for _, tc := range []struct{ hash, code string }{
		{hexSHA([]byte(`{"TableName":"prod"}`)), "AccessDeniedException"},
		{awsproxy.PayloadUnsigned, "AccessDeniedException"},
		{awsproxy.PayloadStreamingUnsigned, "ValidationException"},
	} {
		resp, body := h.do(t, del(tc.hash))
		if got := resp.Header.Get("X-Gatehouse-Error"); got != tc.code || hits != 0 {
			t.Fatalf("DeleteTable prod with %s: %d %q %s (upstream hits %d)", tc.hash, resp.StatusCode, got, body, hits)
		}
	}
}

// TestBufferedBodiesAreBounded: the bodies all calls hold at once are
// bounded by MaxBufferedBytes; past it a call is refused with a throttling
// error, and what finished calls held is given back.
func TestBufferedBodiesAreBounded(t *testing.T) {
	ddb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(ddb.Close)
	h := newHarness(t, harnessOptions{Upstreams: map[string]string{"dynamodb": ddb.URL}, Config: func(c *awsproxy.Config) {
		c.MaxBufferedBytes = 100
	}})
	call := func(n int) *http.Response {
		body := []byte(`{"TableName":"` + strings.Repeat("t", n) + `"}`)
		r := h.signed(t, reqSpec{method: "POST", path: "/", service: "dynamodb", body: body, header: http.Header{
			"X-Amz-Target": {"DynamoDB_20120810.DescribeTable"}, "Content-Type": {"application/x-amz-json-1.0"},
		}})
		r.Header.Del("X-Amz-Content-Sha256") // signed over the body's hash: the gateway holds it
		resp, _ := h.do(t, r)
		return resp
	}
	for i := range 10 {
		if resp := call(40); resp.StatusCode != 200 {
			t.Fatalf("call %d of 56 bytes under a 100-byte bound: %d %s", i, resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"))
		}
	}
	if resp := call(200); resp.StatusCode != 503 || resp.Header.Get("X-Gatehouse-Error") != "ThrottlingException" {
		t.Fatalf("a 216-byte body over a 100-byte bound: %d %s", resp.StatusCode, resp.Header.Get("X-Gatehouse-Error"))
	}
}

// TestProtocolMarkersMustAgree: SQS accepts the JSON and the query
// protocol; a request naming one operation in X-Amz-Target and another as
// a form Action is refused, never classified as one and run as the other.
func TestProtocolMarkersMustAgree(t *testing.T) {
	var hits int
	sqs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits++ }))
	t.Cleanup(sqs.Close)
	h := newHarness(t, harnessOptions{Upstreams: map[string]string{"sqs": sqs.URL}})
	for name, r := range map[string]*http.Request{
		"form body": h.signed(t, reqSpec{method: "POST", path: "/", service: "sqs", body: []byte("Action=DeleteQueue&QueueUrl=q"), header: http.Header{
			"X-Amz-Target": {"AmazonSQS.ListQueues"}, "Content-Type": {"application/x-www-form-urlencoded"}}}),
		"query Action": h.signed(t, reqSpec{method: "POST", path: "/?Action=DeleteQueue&QueueUrl=q", service: "sqs", body: []byte("{}"), header: http.Header{
			"X-Amz-Target": {"AmazonSQS.ListQueues"}, "Content-Type": {"application/x-amz-json-1.0"}}}),
	} {
		resp, body := h.do(t, r)
		if resp.StatusCode != 400 || hits != 0 {
			t.Fatalf("%s: %d %s (upstream hits %d)", name, resp.StatusCode, body, hits)
		}
	}
}
