package policy

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseCasesErrors(t *testing.T) {
	tests := []struct {
		name    string
		yml     string
		wantErr string
	}{
		{"unknown case field", "cases:\n  - name: a\n    princpal: {}\n    want: {effect: allow}\n", `c.yaml:3:5: unknown field "princpal" in a case`},
		{"unknown request field", "cases:\n  - name: a\n    request: {actoin: s3:GetObject}\n    want: {effect: allow}\n", `c.yaml:3:15: unknown field "actoin" in request`},
		{"missing want", "cases:\n  - name: a\n    request: {action: s3:GetObject}\n", `c.yaml:2:5: want: case "a" has no want`},
		{"missing effect", "cases:\n  - name: a\n    want: {rule: x}\n", "c.yaml:3:11: want: want needs an effect"},
		{"bad effect", "cases:\n  - name: a\n    want: {effect: permit}\n", `c.yaml:3:20: want.effect: effect must be allow, deny or approve, not "permit"`},
		{"bad time", "cases:\n  - name: a\n    request: {time: monday}\n    want: {effect: deny}\n", "c.yaml:3:21: request.time: want an RFC 3339 time"},
		{"bad bool", "cases:\n  - name: a\n    request: {readOnly: maybe}\n    want: {effect: deny}\n", "c.yaml:3:25: request.readOnly: want true or false"},
		{"groups not a list", "cases:\n  - name: a\n    principal: {groups: admins}\n    want: {effect: deny}\n", "c.yaml:3:25: principal.groups: want a list of strings"},
		{"cases not a list", "cases: {}\n", "c.yaml:1:8: cases: want a list of cases"},
		{"unknown top-level field", "case: []\n", `c.yaml:1:1: unknown field "case" in the cases file`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseCases("c.yaml", []byte(tt.yml))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseCasesDefaultsAndConveniences(t *testing.T) {
	cases, err := ParseCases("c.yaml", []byte(`
defaults:
  principal: {subject: agent-1, groups: [mcp-agents], claims: {tier: gold, n: 3, ratio: 0.5, nested: {list: [1, two, null, true]}}}
  request: {time: 2026-01-05T10:00:00Z, sourceIp: 10.0.0.1}
  mcp: {sessionId: s-1}
cases:
  - name: first
    request: {action: s3:GetObject, resource: "arn:aws:s3:::b/k"}
    mcp: {tool: read}
    want: {effect: allow}
  - name: second
    principal: {subject: agent-2}
    request: {service: monitoring, action: cloudwatch:GetMetricData, resources: [a, b], params: {x: 1}}
    want: {effect: deny, default: true, masks: [], matched: [], recordBodies: false, approvers: [x]}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 {
		t.Fatalf("%d cases", len(cases))
	}
	a, b := cases[0], cases[1]
	if a.Input.Request.Service != "s3" || !slices.Equal(a.Input.Request.Resources, []string{"arn:aws:s3:::b/k"}) ||
		a.Input.Request.SourceIP != "10.0.0.1" || !a.Input.Request.Time.Equal(time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)) ||
		a.Input.Principal.Subject != "agent-1" || a.Input.MCP == nil || a.Input.MCP.SessionID != "s-1" || a.Input.MCP.Tool != "read" {
		t.Errorf("first case input = %+v", a.Input)
	}
	claims := a.Input.Principal.Claims
	if claims["tier"] != "gold" || claims["n"] != int64(3) || claims["ratio"] != 0.5 {
		t.Errorf("claims = %#v", claims)
	}
	if nested, _ := claims["nested"].(map[string]any); nested == nil || !slices.Equal(nested["list"].([]any), []any{int64(1), "two", nil, true}) {
		t.Errorf("nested claims = %#v", claims["nested"])
	}
	if b.Input.Request.Service != "monitoring" || !slices.Equal(b.Input.Request.Resources, []string{"a", "b"}) || b.Input.Principal.Subject != "agent-2" ||
		!slices.Equal(b.Input.Principal.Groups, []string{"mcp-agents"}) || b.Input.MCP.Tool != "" {
		t.Errorf("second case input = %+v", b.Input)
	}
	if b.Want.Default == nil || !*b.Want.Default || b.Want.Masks == nil || len(b.Want.Masks) != 0 || b.Want.RecordBodies == nil {
		t.Errorf("second case want = %+v", b.Want)
	}
	if a.Source.String() != "c.yaml:7:5" {
		t.Errorf("source = %s", a.Source)
	}
}

// TestRunCasesReportsFailures: each kind of expectation is checked.
func TestRunCasesReportsFailures(t *testing.T) {
	p := mustCompile(t, rulesYAML(
		[4]string{"read", "allow", "request.readOnly", "mask: [aws-secrets]"},
		[4]string{"del", "approve", `request.action == "s3:DeleteObject"`, "approval: {approvers: [ops]}\naudit: {bodies: true}"},
	), Options{})
	yes, no := true, false
	read := *agentInput("s3:GetObject", "")
	read.Request.ReadOnly = true
	del := *agentInput("s3:DeleteObject", "")
	tests := []struct {
		name string
		in   Input
		want Expect
		fail string
	}{
		{"pass", read, Expect{Effect: Allow, Rule: "read", Matched: []string{"read"}, Masks: []string{"aws-secrets"}, Default: &no, RecordBodies: &no}, ""},
		{"pass approve", del, Expect{Effect: Approve, Approvers: []string{"ops"}, RecordBodies: &yes, Masks: []string{}}, ""},
		{"effect", read, Expect{Effect: Deny}, "effect: got allow, want deny"},
		{"rule", read, Expect{Effect: Allow, Rule: "other"}, `rule: got "read", want "other"`},
		{"default", read, Expect{Effect: Allow, Default: &yes}, "default: got false, want true"},
		{"matched", read, Expect{Effect: Allow, Matched: []string{}}, "matched: got [read], want []"},
		{"masks", read, Expect{Effect: Allow, Masks: []string{}}, "masks: got [aws-secrets], want []"},
		{"bodies", del, Expect{Effect: Approve, RecordBodies: &no}, "recordBodies: got true, want false"},
		{"approvers", del, Expect{Effect: Approve, Approvers: []string{"sec"}}, "approvers: got [ops], want [sec]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := RunCases(p, []Case{{Name: tt.name, Input: tt.in, Want: tt.want}})[0]
			got := strings.Join(r.Failures, "; ")
			if got != tt.fail || r.Passed() != (tt.fail == "") {
				t.Fatalf("failures = %q, want %q", got, tt.fail)
			}
			report := Report([]CaseResult{r}, false)
			if tt.fail != "" && (!strings.HasPrefix(report, "FAIL "+tt.name) || !strings.Contains(report, "| decision:")) {
				t.Errorf("report = %q", report)
			}
			if tt.fail == "" && report != "PASS "+tt.name+" ()\n" {
				t.Errorf("report = %q", report)
			}
		})
	}
}
