package main

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/mask"
	"github.com/gatehouse-dev/gatehouse/policy"
)

func runCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"good policy", []string{"check", "testdata/policy.yaml"}, 0, "ok: 2 rules, revision ", ""},
		{"starter policy", []string{"check", "starter:mcp-agents"}, 0, "ok: 8 rules", ""},
		{"merged files", []string{"check", "starter:mcp-agents", "testdata/policy.yaml"}, 0, "ok: 10 rules", ""},
		{"bad policy names the position", []string{"check", "testdata/bad.yaml"}, 1, "", "policy: testdata/bad.yaml:6:18: rule \"typo\": when: undefined field 'grups'"},
		{"unknown profile", []string{"check", "-profiles", "custom", "testdata/policy.yaml"}, 1, "", `unknown mask profile "aws-secrets" (known: custom)`},
		{"bad mask path names the position", []string{"check", "testdata/badmask.yaml"}, 1, "", `policy: testdata/badmask.yaml:6:19: rule "object-reads": mask[0].path: bad mask path "a..b[": empty segment`},
		{"gjson mask path refused", []string{"check", "testdata/badmask.yaml"}, 1, "", `testdata/badmask.yaml:7:27: rule "object-reads": mask[1].path: bad mask path "Parameters.#.Value": '#' is gjson syntax`},
		{"bad strategy", []string{"check", "testdata/badmask.yaml"}, 1, "", `testdata/badmask.yaml:8:29: rule "object-reads": mask[2].strategy: strategy must be redact, partial, hash or remove, not "blur"`},
		{"bad onUnmaskable", []string{"check", "testdata/badmask.yaml"}, 1, "", `testdata/badmask.yaml:9:46: rule "object-reads": mask[3].onUnmaskable: onUnmaskable must be withhold or pass, not "maybe"`},
		{"profile that masks nothing warns", []string{"check", "testdata/masks.yaml"}, 0, "ok: 2 rules", `warning: testdata/masks.yaml:2:5: rule "table-reads": mask[0]: profile aws-secrets has no rules for any of the`},
		{"missing file", []string{"check", "testdata/nope.yaml"}, 1, "", "testdata/nope.yaml"},
		{"no files", []string{"check"}, 2, "", "usage:"},
		{"no command", nil, 2, "", "usage:"},
		{"unknown command", []string{"lint", "x"}, 2, "", `unknown command "lint"`},
		{"bad flag", []string{"check", "-nope", "x"}, 2, "", "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, "", tt.args...)
			if code != tt.wantCode || !strings.Contains(out, tt.wantOut) || !strings.Contains(errOut, tt.wantErr) {
				t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
		})
	}
}

func TestTest(t *testing.T) {
	code, out, errOut := runCmd(t, "", "test", "testdata/policy.yaml", "--", "testdata/cases.yaml")
	if code != 0 || !strings.Contains(out, "PASS read (testdata/cases.yaml:5:5)") || !strings.Contains(out, "PASS delete") || !strings.HasSuffix(out, "2 passed, 0 failed\n") {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if code, short, _ := runCmd(t, "", "test", "testdata/policy.yaml", "testdata/cases.yaml"); code != 0 || short != out {
		t.Fatalf("test without --: code %d\n%s", code, short)
	}
	code, out, _ = runCmd(t, "", "test", "testdata/policy.yaml", "--", "testdata/cases.yaml", "testdata/failing.cases.yaml")
	if code != 1 || !strings.Contains(out, "FAIL write is wrongly expected to pass") || !strings.Contains(out, "effect: got deny, want allow") ||
		!strings.Contains(out, "| decision:  deny") || !strings.HasSuffix(out, "2 passed, 1 failed\n") {
		t.Fatalf("code %d\nstdout:\n%s", code, out)
	}
	code, out, _ = runCmd(t, "", "test", "-v", "starter:mcp-agents", "--", "starter:mcp-agents.cases")
	if code != 0 || !strings.Contains(out, "18 passed, 0 failed") || !strings.Contains(out, "| trace:") {
		t.Fatalf("starter: code %d\n%s", code, out)
	}
	if code, _, errOut := runCmd(t, "", "test", "testdata/policy.yaml", "--", "testdata/policy.yaml"); code != 1 || !strings.Contains(errOut, `unknown field "rules" in the cases file`) {
		t.Fatalf("policy as cases: code %d, %s", code, errOut)
	}
	if code, _, _ := runCmd(t, "", "test", "testdata/policy.yaml"); code != 2 {
		t.Fatalf("test without cases: code %d", code)
	}
}

func TestExplain(t *testing.T) {
	code, out, errOut := runCmd(t, "", "explain", "testdata/policy.yaml", "--", "testdata/input.json")
	want := []string{
		"input:     principal https://idp.example.com#agent-1 (groups [agents], role \"\")",
		"s3 s3:DeleteObject on [arn:aws:s3:::logs/a] at 2026-01-05T10:00:00Z",
		"decision:  approve",
		"rule:      approve-deletes (testdata/policy.yaml:6:5)",
		"approve-deletes: approvers=[ops] min=1 mode=hold hold=25s grant=10m0s unavailable=reject",
		"1  allow    allow-reads      testdata/policy.yaml:2:5  no match",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q", w)
		}
	}
	if code != 0 || t.Failed() {
		t.Fatalf("code %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	input, err := os.ReadFile("testdata/input.json")
	if err != nil {
		t.Fatal(err)
	}
	code, stdinOut, _ := runCmd(t, string(input), "explain", "testdata/policy.yaml", "--", "-")
	if code != 0 || strings.ReplaceAll(stdinOut, "-:", "testdata/input.json:") != out {
		t.Fatalf("explain from stdin differs:\n%s", stdinOut)
	}
	if code, _, errOut := runCmd(t, "{request: {nope: 1}}", "explain", "testdata/policy.yaml", "--", "-"); code != 1 || !strings.Contains(errOut, `unknown field "nope" in request`) {
		t.Fatalf("bad input: code %d %s", code, errOut)
	}
	if code, _, _ := runCmd(t, "", "explain", "testdata/policy.yaml", "--", "a", "b"); code != 2 {
		t.Fatalf("two inputs: code %d", code)
	}
}

// TestMaskWarningsOnlyWhereUseless: a profile on rules that reach an
// operation it covers (s3 GetObject), or on rules that may match anything,
// draws no warning.
func TestMaskWarningsOnlyWhereUseless(t *testing.T) {
	for _, file := range []string{"testdata/masks.yaml", "testdata/policy.yaml", "starter:mcp-agents"} {
		code, _, errOut := runCmd(t, "", "check", file)
		if code != 0 {
			t.Fatalf("%s: code %d: %s", file, code, errOut)
		}
		if strings.Contains(errOut, "object-reads") || file != "testdata/masks.yaml" && strings.Contains(errOut, "warning") {
			t.Errorf("%s: %s", file, errOut)
		}
	}
}

// TestDefaultProfilesAreMaskProfiles: the profile names policy accepts by
// default are the ones the mask package implements.
func TestDefaultProfilesAreMaskProfiles(t *testing.T) {
	if !slices.Equal(policy.DefaultMaskProfiles, mask.Profiles()) {
		t.Fatalf("policy.DefaultMaskProfiles = %v, mask.Profiles() = %v", policy.DefaultMaskProfiles, mask.Profiles())
	}
}
