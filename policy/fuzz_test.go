package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzLoad feeds arbitrary bytes to Parse and Compile. They must not
// panic; errors must be positioned *Errors wrapping ErrInvalid; a policy
// that compiles must decide identically with and without the index.
func FuzzLoad(f *testing.F) {
	seeds := []string{
		policyA, policyB, policyBad,
		"rules: []\n",
		"default: deny\nrules:\n  - name: x\n    effect: approve\n    when: |\n      request.action.iamLike(\"s3:Delete*\") && request.time.inWindow(\"Mon-Fri 09:00-18:00\", \"UTC\")\n    approval: {approvers: [a], minApprovals: 2, mode: queue, holdTimeout: 10s, grantTTL: 1h, unavailable: queue}\n    mask: [aws-secrets, {path: a.b, strategy: partial, keep: 4}]\n    audit: {bodies: true}\n",
		"rules:\n  - &r {name: a, effect: allow, when: 'request.sourceIp.inCidr([\"10.0.0.0/8\"])'}\n  - *r\n",
		"rules:\n  - name: m\n    effect: allow\n    when: 'true'\n    mask:\n      - {profile: aws-secrets, onUnmaskable: pass}\n      - {path: \"$.a\\\\.b.*.c?.**.d\", strategy: redact, onUnmaskable: withhold}\n      - {path: \"a..b[\", strategy: hash}\n",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	for _, glob := range []string{"starter/*.yaml", "testdata/explain/extra.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			if data, err := os.ReadFile(file); err == nil {
				f.Add(data)
			}
		}
	}
	in := agentInput("s3:DeleteObject", "arn:aws:s3:::prod-x/k")
	in.Request.Params = map[string]any{"bucket": "prod-x"}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			return
		}
		cfg, err := Parse("f.yaml", data)
		if err == nil {
			_, err = Compile(cfg, Options{NoIndex: true})
		}
		if err != nil {
			checkLoadError(t, err, strings.Count(string(data), "\n")+2)
			return
		}
		with, err := Compile(cfg, Options{})
		if err != nil {
			t.Fatalf("compiles without the index but not with it: %v", err)
		}
		without, _ := Compile(cfg, Options{NoIndex: true})
		a, b := with.Decide(in), without.Explain(in)
		if decisionKey(a) != decisionKey(b) {
			t.Fatalf("index changes the decision:\n%s\n%s", decisionKey(a), decisionKey(b))
		}
		_ = b.Explain()
	})
}

func checkLoadError(t *testing.T, err error, maxLine int) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error does not wrap ErrInvalid: %v", err)
	}
	var list ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		t.Fatalf("error is not an ErrorList: %T %v", err, err)
	}
	for _, e := range list {
		if e.Pos.File != "f.yaml" && e.Pos.File != "" {
			t.Fatalf("error names file %q: %v", e.Pos.File, e)
		}
		if e.Pos.Line < 0 || e.Pos.Line > maxLine || e.Pos.Column < 0 {
			t.Fatalf("error position out of the file (%d lines): %v", maxLine, e)
		}
	}
}

// FuzzDecide feeds arbitrary inputs to a fixed policy: the starter policy,
// the explain test rules and rules that read params, claims, MCP arguments,
// time windows and networks. Decide must not panic, must return a valid
// decision and must decide identically with and without the index.
func FuzzDecide(f *testing.F) {
	cfg, err := Load("starter:mcp-agents", "testdata/explain/extra.yaml", "testdata/fuzz-rules.yaml")
	if err != nil {
		f.Fatal(err)
	}
	with, err := Compile(cfg, Options{})
	if err != nil {
		f.Fatal(err)
	}
	without, err := Compile(cfg, Options{NoIndex: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("s3", "s3:GetObject", "arn:aws:s3:::prod-x/k", "10.1.2.3", "mcp-agents", "Bucket", "prod-x", int64(1767607200), true, false, "read_file")
	f.Add("iam", "iam:DeleteRole", "arn:aws:iam::111122223333:role/app", "::1", "ci", "", "", int64(0), false, false, "")
	f.Add("sts", "sts:AssumeRole", "", "not-an-ip", "", "window", "Mon 25:00-26:00", int64(-62135596800), false, true, "x")
	f.Add("monitoring", "cloudwatch:DeleteAlarms", "arn:aws:rds:*:*:db:prod-a", "192.168.0.1", "mcp-agents", "zone", "Mars/Olympus", int64(1<<40), false, false, "t")
	f.Fuzz(func(t *testing.T, service, action, resource, ip, group, key, val string, unix int64, readOnly, creds bool, tool string) {
		in := &Input{
			Principal: principal("fuzz", group),
			Request: Request{
				Service: service, Action: action, Resource: resource, Resources: []string{resource, val},
				SourceIP: ip, ReadOnly: readOnly, CredentialIssuing: creds, ReturnsSecrets: readOnly && creds,
				Params: map[string]any{key: val}, UserAgent: val, Time: time.Unix(unix%(1<<40), 0).UTC(),
			},
		}
		in.Principal.Claims = map[string]any{key: val, "writableBuckets": []any{val}}
		if tool != "" {
			in.MCP = &MCP{Tool: tool, Arguments: map[string]any{key: val}}
		}
		a, b := with.Decide(in), without.Decide(in)
		if !a.Effect.valid() || a.Default != (a.Rule == "") || a.Reason == "" {
			t.Fatalf("invalid decision %+v", a)
		}
		if decisionKey(a) != decisionKey(b) {
			t.Fatalf("index changes the decision:\n%s\n%s", decisionKey(a), decisionKey(b))
		}
	})
}
