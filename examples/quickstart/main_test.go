package main

import (
	"bytes"
	"context"
	"regexp"
	"strings"
	"testing"
)

// TestQuickstart runs the whole demo in-process and checks each step's
// outcome: allowed, masked, approved then done, denied.
func TestQuickstart(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	t.Setenv("TMPDIR", t.TempDir()) // the audit trail and recordings land here
	var out bytes.Buffer
	if err := run(context.Background(), &out, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`agent is arn:aws:sts::111122223333:assumed-role/mcp-agents/`),
		regexp.MustCompile(`result:   buckets: prod-reports, scratch`),
		regexp.MustCompile(`s3:ListAllMyBuckets .*-> allow by rule allow-read-only`),
		regexp.MustCompile(`result:   SecretString = "\*\*\*\*"`),
		regexp.MustCompile(`secretsmanager:GetSecretValue .* masked SecretString \(redact\)`),
		regexp.MustCompile(`approver: alice approves it \(200 OK\)`),
		regexp.MustCompile(`result:   bucket deleted after approval`),
		regexp.MustCompile(`s3:DeleteBucket arn:aws:s3:::prod-reports -> approve by rule approve-s3-destructive-production, approval \w+ consumed`),
		regexp.MustCompile(`result:   refused, AccessDenied: .*iam:CreateUser`),
		regexp.MustCompile(`iam:CreateUser .* -> deny`),
		regexp.MustCompile(`audit trail: \d+ events in a hash chain that verifies`),
		regexp.MustCompile(`go run ./examples/replay html \S+ GHS\w+ -o session.html`),
	} {
		if !want.MatchString(got) {
			t.Errorf("output lacks %s\n%s", want, got)
		}
	}
	if strings.Contains(got, "correct-horse-battery-staple") {
		t.Fatal("the secret reached the agent's output")
	}
}
