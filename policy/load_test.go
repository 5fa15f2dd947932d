package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

// TestLoadErrors: every load-time problem is an error naming
// file:line:column. wantPos is the position of the first error.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		yml     string
		wantErr string
		wantPos string
	}{
		{"empty file", "", "the file is empty", "test.yaml"},
		{"syntax error", "rules: [\n  - name: a\n", "YAML:", "test.yaml:1"},
		{"two documents", "rules: []\n---\nrules: []\n", "more than one YAML document", "test.yaml:2:1"},
		{"unknown top-level field", "rules: []\nrule: []\n", `unknown field "rule" in the policy`, "test.yaml:2:1"},
		{"no rules field", "default: deny\n", "no rules field", "test.yaml:1:1"},
		{"default allow", "default: allow\nrules: []\n", "the only default is deny", "test.yaml:1:10"},
		{"rules not a list", "rules: {a: 1}\n", "want a list of rules", "test.yaml:1:8"},
		{"rule not a mapping", "rules:\n  - just a string\n", "a rule must be a mapping", "test.yaml:2:5"},
		{"unknown rule field", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    whn: x\n", `unknown field "whn" in a rule`, "test.yaml:5:5"},
		{"repeated rule field", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    when: 'false'\n", `field "when" repeated`, "test.yaml:5:5"},
		{"missing name", "rules:\n  - effect: allow\n    when: 'true'\n", "a rule needs a name", "test.yaml:2:5"},
		{"bad name", "rules:\n  - name: 'a b'\n    effect: allow\n    when: 'true'\n", `bad rule name "a b"`, "test.yaml:2:11"},
		{"bad effect", "rules:\n  - name: a\n    effect: permit\n    when: 'true'\n", `effect must be allow, deny or approve, not "permit"`, "test.yaml:3:13"},
		{"missing when", "rules:\n  - name: a\n    effect: allow\n", "a rule needs a condition", "test.yaml:2:5"},
		{"when not a string", "rules:\n  - name: a\n    effect: allow\n    when: [x]\n", "want a string", "test.yaml:4:11"},
		{"undeclared variable", "rules:\n  - name: a\n    effect: allow\n    when: request.readOnly && reqest.service == 's3'\n", "undeclared reference to 'reqest'", "test.yaml:4:31"},
		{"unknown field of request", "rules:\n  - name: a\n    effect: allow\n    when: request.readonly\n", "undefined field 'readonly'", "test.yaml:4:18"},
		{"type error", "rules:\n  - name: a\n    effect: allow\n    when: request.readOnly == 'yes'\n", "found no matching overload for '_==_'", "test.yaml:4:28"},
		{"non-boolean condition", "rules:\n  - name: a\n    effect: allow\n    when: request.service\n", "must be of type bool, not string", "test.yaml:4:11"},
		{"dyn condition", "rules:\n  - name: a\n    effect: allow\n    when: request.params.x\n", "must be of type bool, not dyn", "test.yaml:4:11"},
		{"syntax error in condition", "rules:\n  - name: a\n    effect: allow\n    when: request.readOnly &&\n", "Syntax error", "test.yaml:4:30"},
		{"error in literal block scalar", "rules:\n  - name: a\n    effect: allow\n    when: |\n      request.readOnly &&\n        principal.grups.size() > 0\n", "undefined field 'grups'", "test.yaml:6:18"},
		{"error in folded block scalar", "rules:\n  - name: a\n    effect: allow\n    when: >-\n      request.readOnly &&\n      request.action.iamLike('s3:get*')\n", "IAM actions start with an upper-case letter", "test.yaml:6:30"},
		{"error in double-quoted scalar", "rules:\n  - name: a\n    effect: allow\n    when: \"request.readOnly && request.sourceIp.inCidr('10.0.0.0/33')\"\n", "inCidr", "test.yaml:4:56"},
		{"error in single-quoted scalar with escape", "rules:\n  - name: a\n    effect: allow\n    when: 'request.service == ''s3'' && nope'\n", "undeclared reference to 'nope'", "test.yaml:4:41"},
		{"bad action wildcard", "rules:\n  - name: a\n    effect: deny\n    when: request.action.iamLike('s3 Delete*')\n", "white space", "test.yaml:4:34"},
		{"bad ARN wildcard", "rules:\n  - name: a\n    effect: deny\n    when: iamLike(request.resource, 'arn:aws:s3')\n", "needs six parts", "test.yaml:4:37"},
		{"neither action nor ARN", "rules:\n  - name: a\n    effect: deny\n    when: request.resource.iamLike('prod-*')\n", "neither an IAM action", "test.yaml:4:36"},
		{"empty pattern", "rules:\n  - name: a\n    effect: deny\n    when: request.resource.iamLike('')\n", "empty pattern", "test.yaml:4:36"},
		{"CIDR with host bits", "rules:\n  - name: a\n    effect: deny\n    when: request.sourceIp.inCidr(['10.0.0.0/8', '192.168.1.1/16'])\n", `did you mean "192.168.0.0/16"`, "test.yaml:4:50"},
		{"bad window", "rules:\n  - name: a\n    effect: deny\n    when: request.time.inWindow('Mon-Fri 9:00-18:00')\n", `bad time "9:00"`, "test.yaml:4:33"},
		{"bad zone", "rules:\n  - name: a\n    effect: deny\n    when: request.time.inWindow('Mon-Fri 09:00-18:00', 'Mars/Olympus')\n", `time zone "Mars/Olympus"`, "test.yaml:4:56"},
		{"local zone", "rules:\n  - name: a\n    effect: deny\n    when: request.time.inWindow('09:00-18:00', 'Local')\n", "depends on the machine", "test.yaml:4:48"},
		{"duplicate names", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n  - name: a\n    effect: deny\n    when: 'true'\n", "duplicate rule name (first defined at test.yaml:2:5)", "test.yaml:5:11"},
		{"approval on allow", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    approval: {approvers: [x]}\n", "only approve rules take an approval block", "test.yaml:5:15"},
		{"unknown approval field", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {approver: [x]}\n", `unknown field "approver" in approval`, "test.yaml:5:16"},
		{"zero min approvals", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {minApprovals: 0}\n", "at least 1", "test.yaml:5:30"},
		{"too many approvals", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {minApprovals: 11}\n", "between 1 and 10", "test.yaml:5:30"},
		{"bad mode", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {mode: wait}\n", `mode must be hold, queue or reject, not "wait"`, "test.yaml:5:22"},
		{"bad unavailable", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {unavailable: hold}\n", "unavailable must be reject or queue", "test.yaml:5:29"},
		{"hold timeout too long", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {holdTimeout: 90s}\n", "below SDK read timeouts", "test.yaml:5:29"},
		{"hold timeout not a duration", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {holdTimeout: 25}\n", "want a duration", "test.yaml:5:29"},
		{"grant TTL too long", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {grantTTL: 48h}\n", "grantTTL must be between", "test.yaml:5:26"},
		{"duplicate approver", "rules:\n  - name: a\n    effect: approve\n    when: 'true'\n    approval: {approvers: [x, x]}\n", `approver group "x" listed twice`, "test.yaml:5:27"},
		{"unknown mask profile", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [aws-secret]\n", `unknown mask profile "aws-secret"`, "test.yaml:5:12"},
		{"mask on deny", "rules:\n  - name: a\n    effect: deny\n    when: 'true'\n    mask: [aws-secrets]\n", "a deny rule's masks never apply", "test.yaml:5:11"},
		{"bad strategy", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: x, strategy: blur}]\n", `strategy must be redact, partial, hash or remove, not "blur"`, "test.yaml:5:32"},
		{"keep without partial", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: x, strategy: redact, keep: 4}]\n", "keep applies only to the partial strategy", "test.yaml:5:46"},
		{"keep too large", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: x, strategy: partial, keep: 99}]\n", "keep must be between 0 and 16", "test.yaml:5:47"},
		{"mask without strategy", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: x}]\n", "needs a strategy", "test.yaml:5:12"},
		{"mask profile and path", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{profile: aws-secrets, path: x, strategy: redact}]\n", "either a profile or a path", "test.yaml:5:12"},
		{"mask path a..b[", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: \"a..b[\", strategy: redact}]\n", `mask[0].path: bad mask path "a..b[": empty segment`, "test.yaml:5:22"},
		{"mask path in gjson syntax", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask:\n      - path: Parameters.#.Value\n        strategy: redact\n", `'#' is gjson syntax`, "test.yaml:6:26"},
		{"mask path in XPath syntax", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask:\n      - {strategy: redact, path: '*/Credentials/SecretAccessKey'}\n", `segments are separated by '.'`, "test.yaml:6:36"},
		{"mask path ends with **", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: a.**, strategy: redact}]\n", `must not end with '**'`, "test.yaml:5:21"},
		{"bad onUnmaskable", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    mask: [{path: x, strategy: redact, onUnmaskable: allow}]\n", `onUnmaskable must be withhold or pass, not "allow"`, "test.yaml:5:54"},
		{"audit not a bool", "rules:\n  - name: a\n    effect: allow\n    when: 'true'\n    audit: {bodies: yes please}\n", "want true or false", "test.yaml:5:21"},
		{"alias cycle is bounded", "rules: &a\n  - *a\n", "a rule must be a mapping", "test.yaml:1:8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(tt.yml))
			if err == nil {
				_, err = Compile(cfg, Options{})
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.wantErr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error does not wrap ErrInvalid: %v", err)
			}
			var first *Error
			if !errors.As(err, &first) {
				t.Fatalf("error is not a *Error: %T %v", err, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if got := first.Pos.String(); got != tt.wantPos {
				t.Errorf("position = %s, want %s (error: %v)", got, tt.wantPos, err)
			}
		})
	}
}

// TestLoadMergesFiles: several files merge in order; a duplicate name
// across files names both places; a missing file is an error naming it.
func TestLoadMergesFiles(t *testing.T) {
	fsys := fstest.MapFS{
		"base.yaml":  {Data: []byte("default: deny\nrules:\n  - name: read\n    effect: allow\n    when: request.readOnly\n")},
		"extra.yaml": {Data: []byte("rules:\n  - name: creds\n    effect: deny\n    when: request.credentialIssuing\n")},
		"dup.yaml":   {Data: []byte("rules:\n\n  - name: read\n    effect: deny\n    when: 'false'\n")},
	}
	cfg, err := LoadFS(fsys, "base.yaml", "extra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Rules) != 2 || cfg.Rules[0].Name != "read" || cfg.Rules[1].Name != "creds" || cfg.Rules[1].Source.String() != "extra.yaml:2:5" {
		t.Fatalf("merged rules = %+v", cfg.Rules)
	}
	if _, err := Compile(cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	cfg, err = LoadFS(fsys, "base.yaml", "dup.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "dup.yaml:3:11: rule \"read\": name: duplicate rule name (first defined at base.yaml:3:5)") {
		t.Fatalf("err = %v", err)
	}
	if _, err := LoadFS(fsys, "base.yaml", "missing.yaml"); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("err = %v", err)
	}
	if _, err := Load(); err == nil {
		t.Fatal("Load() without files succeeded")
	}
	if _, err := Load("starter:nope"); err == nil || !strings.Contains(err.Error(), "unknown starter policy") {
		t.Fatalf("err = %v", err)
	}
}

// TestCompileGoConfig: rules built in Go get the same checks; errors name
// the rule and the position inside its condition.
func TestCompileGoConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		opts    Options
		wantErr string
	}{
		{"ok", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true", Mask: []Mask{{Profile: "custom"}}}}}, Options{MaskProfiles: []string{"custom"}}, ""},
		{"default allow", Config{Default: Allow}, Options{}, `the only default is deny, not "allow"`},
		{"no effect", Config{Rules: []Rule{{Name: "a", When: "true"}}}, Options{}, `rule "a": effect: effect must be allow, deny or approve, not ""`},
		{"cel error", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true &&\n  nope"}}}, Options{}, `rule "a": when: 2:3: undeclared reference to 'nope'`},
		{"unnamed", Config{Rules: []Rule{{Effect: Allow, When: "true"}}}, Options{}, `rule rules[0]: name: a rule needs a name`},
		{"duplicate", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true"}, {Name: "a", Effect: Allow, When: "true"}}}, Options{}, "first defined at rules[0]"},
		{"profile not among the caller's", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true", Mask: []Mask{{Profile: "aws-secrets"}}}}}, Options{MaskProfiles: []string{"custom"}}, `unknown mask profile "aws-secrets" (known: custom)`},
		{"negative hold", Config{Rules: []Rule{{Name: "a", Effect: Approve, When: "true", Approval: &Approval{HoldTimeout: -time.Second}}}}, Options{}, "holdTimeout must be between"},
		{"sub-second grant", Config{Rules: []Rule{{Name: "a", Effect: Approve, When: "true", Approval: &Approval{GrantTTL: time.Millisecond}}}}, Options{}, "grantTTL must be at least 1s"},
		{"too long", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: strings.Repeat("true && ", 2000) + "true"}}}, Options{}, "longer than 8192 bytes"},
		{"mask path and opt-out", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true", Mask: []Mask{{Profile: "aws-secrets", OnUnmaskable: Pass}, {Path: `$.a\.b.*.c?.**.d`, Strategy: Redact, OnUnmaskable: Withhold}}}}}, Options{}, ""},
		{"bad mask paths", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true", Mask: []Mask{
			{Path: "a..b[", Strategy: Redact}, {Path: "//SecretAccessKey", Strategy: Redact}, {Path: "$..a", Strategy: Redact}, {Path: " a", Strategy: Redact},
		}}}}, Options{}, `mask[0].path: bad mask path "a..b[": empty segment`},
		{"bad opt-out on a profile", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true", Mask: []Mask{{Profile: "aws-secrets", OnUnmaskable: "ignore"}}}}}, Options{}, `mask[0].onUnmaskable: onUnmaskable must be withhold or pass, not "ignore"`},
		{"invalid UTF-8", Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "'\xff' == ''"}}}, Options{}, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(tt.cfg, tt.opts)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestCompileReportsEveryError: all problems of a file come back at once,
// in file order.
func TestCompileReportsEveryError(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte("rules:\n  - name: a\n    effect: allow\n    when: nope\n  - name: b\n    effect: nah\n    when: 'true'\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = Compile(cfg, Options{})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("err = %v", err)
	}
	if list[0].Pos.Line != 4 || list[1].Pos.Line != 6 {
		t.Errorf("positions = %s, %s", list[0].Pos, list[1].Pos)
	}
}

// TestMaskPathsCompileAtLoad: every mask path is parsed when the policy
// compiles, each mistake reported on its own, and a path in the other
// syntaxes the old loader took (gjson, XML element paths) is refused.
func TestMaskPathsCompileAtLoad(t *testing.T) {
	bad := []string{"a..b[", "//SecretAccessKey", "$..a", " a", "Parameters.#(Type==\"x\")#.Value", "a.@b", "Credentials/SecretAccessKey", "a.**"}
	var masks []Mask
	for _, p := range bad {
		masks = append(masks, Mask{Path: p, Strategy: Redact})
	}
	_, err := Compile(Config{Rules: []Rule{{Name: "a", Effect: Allow, When: "true", Mask: masks}}}, Options{})
	var list ErrorList
	if !errors.As(err, &list) || len(list) != len(bad) {
		t.Fatalf("err = %v, want %d errors", err, len(bad))
	}
	for i, e := range list {
		if e.Field != fmt.Sprintf("mask[%d].path", i) || !strings.Contains(e.Msg, "bad mask path") {
			t.Errorf("error %d: %v", i, e)
		}
	}
}

func TestMaskUses(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`rules:
  - name: deny-all
    effect: deny
    when: request.service == "iam"
  - name: no-masks
    effect: allow
    when: request.service == "s3"
  - name: ddb
    effect: allow
    when: request.service in ["dynamodb", "sqs"] || request.action.startsWith("s3:")
    mask: [aws-secrets]
  - name: anything
    effect: approve
    when: "true"
    mask: [{path: a.b, strategy: redact, onUnmaskable: pass}]
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	uses := p.MaskUses()
	if len(uses) != 2 {
		t.Fatalf("uses = %+v", uses)
	}
	if u := uses[0]; u.Rule != "ddb" || u.Source != "p.yaml:8:5" || fmt.Sprint(u.Services) != "[dynamodb sqs]" || fmt.Sprint(u.ActionPrefixes) != "[s3]" || u.Masks[0].Profile != "aws-secrets" {
		t.Errorf("ddb: %+v", u)
	}
	if u := uses[1]; u.Rule != "anything" || u.Services != nil || u.ActionPrefixes != nil || u.Masks[0].OnUnmaskable != Pass {
		t.Errorf("anything: %+v", u)
	}
}
