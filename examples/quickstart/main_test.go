package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs the whole demo in-process, the agent an MCP client
// of the awstools MCP server, and checks each tool call's outcome: allowed,
// masked, approval_pending then approved and done, denied.
func TestQuickstart(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	t.Setenv("TMPDIR", t.TempDir()) // the audit trail and recordings land here
	var out bytes.Buffer
	if err := run(context.Background(), &out, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	session := regexp.MustCompile(`agent: MCP session (\S+), tools: .*create_iam_user.*wait_for_approval`).FindStringSubmatch(got)
	if session == nil {
		t.Fatalf("output lacks the MCP session and its tools\n%s", got)
	}
	sid := regexp.QuoteMeta(session[1])
	pending := regexp.MustCompile(`result:   approval_pending, approval_id (\w+)`).FindStringSubmatch(got)
	if pending == nil {
		t.Fatalf("output lacks the approval_pending result\n%s", got)
	}
	id := regexp.QuoteMeta(pending[1])
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`the MCP server's AWS calls run as arn:aws:sts::111122223333:assumed-role/mcp-agents/`),
		regexp.MustCompile(`tool:     list_buckets \{\}\n   result:   \{"buckets":\["prod-reports","scratch"\]\}`),
		regexp.MustCompile(`s3:ListAllMyBuckets .*-> allow by rule allow-read-only \[signed: MCP tool list_buckets\]`),
		regexp.MustCompile(`tool:     get_secret \{"secret_id":"prod/db"\}\n   result:   \{.*"secret_string":"\*\*\*\*"`),
		regexp.MustCompile(`secretsmanager:GetSecretValue .* masked SecretString \(redact\) \[signed: MCP tool get_secret\]`),
		regexp.MustCompile(`tool:     delete_bucket \{"bucket":"prod-reports"\}\n   result:   approval_pending, approval_id ` + id),
		regexp.MustCompile(`s3:DeleteBucket arn:aws:s3:::prod-reports -> approve by rule approve-s3-destructive-production, approval ` + id + ` pending`),
		regexp.MustCompile(`approver: alice sees approval ` + id + `: s3:DeleteBucket on arn:aws:s3:::prod-reports`),
		regexp.MustCompile(`approver: alice approves it \(200 OK\)`),
		regexp.MustCompile(`tool:     wait_for_approval \{"approval_id":"` + id + `".*\}\n   result:   deleted bucket prod-reports`),
		regexp.MustCompile(`s3:DeleteBucket arn:aws:s3:::prod-reports -> approve by rule approve-s3-destructive-production, approval ` + id + ` consumed \[signed: MCP tool delete_bucket\]`),
		regexp.MustCompile(`tool:     create_iam_user \{"user_name":"backdoor"\}\n   result:   tool error: AccessDenied: .*iam:CreateUser`),
		regexp.MustCompile(`iam:CreateUser .* -> deny \[signed: MCP tool create_iam_user\]`),
		regexp.MustCompile(`audit trail: \d+ events in a hash chain that verifies`),
		regexp.MustCompile(`replay the agent's MCP session \(5 AWS calls\)`),
		regexp.MustCompile(`go run ./examples/replay timeline \S+ ` + sid + `\n`),
		regexp.MustCompile(`go run ./examples/replay html \S+ ` + sid + ` -o session.html`),
		regexp.MustCompile(`go run ./examples/replay verify \S+`),
	} {
		if !want.MatchString(got) {
			t.Errorf("output lacks %s\n%s", want, got)
		}
	}
	if strings.Contains(got, "correct-horse-battery-staple") {
		t.Fatal("the secret reached the agent's output")
	}
}
