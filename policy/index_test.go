package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestIndexKeys(t *testing.T) {
	tests := []struct {
		when string
		want string // keys joined by "|", or "always"
	}{
		{`request.service == "s3"`, "service s3"},
		{`"s3" == request.service`, "service s3"},
		{`request.action == "s3:GetObject"`, "action s3:*"},
		{`request.action == "weird"`, "action weird:*"},
		{`request.action.iamLike("iam:Delete*")`, "action iam:*"},
		{`iamLike(request.action, "rds:*")`, "action rds:*"},
		{`request.action.startsWith("ec2:")`, "action ec2:*"},
		{`request.action.startsWith("ec2")`, "always"},
		{`request.action.iamLike("*:Delete*")`, "always"},
		{`request.action.iamLike("s3*:Delete*")`, "always"},
		{`request.resource.iamLike("arn:aws:s3:::prod-*")`, "always"},
		{`request.service in ["s3", "ec2", "s3"]`, "service ec2|service s3"},
		{`request.action in ["s3:GetObject", "s3:PutObject", "kms:Decrypt"]`, "action kms:*|action s3:*"},
		{`request.service in principal.groups`, "always"},
		{`request.readOnly && request.service == "s3"`, "service s3"},
		{`request.service == "s3" && request.readOnly && request.resource != ""`, "service s3"},
		{`request.service in ["s3", "ec2"] && request.action == "s3:GetObject"`, "action s3:*"},
		{`request.service == "s3" || request.action.iamLike("ec2:*")`, "service s3|action ec2:*"},
		{`request.service == "s3" || request.readOnly`, "always"},
		{`!(request.service == "s3")`, "always"},
		{`request.service != "s3"`, "always"},
		{`(request.service == "s3" || request.service == "ec2") && request.readOnly`, "service ec2|service s3"},
		{`request.readOnly`, "always"},
		{`true`, "always"},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p := mustCompile(t, rulesYAML([4]string{"r", "allow", tt.when, ""}), Options{})
			got := "always"
			if keys := p.rules[0].keys; keys != nil {
				var s []string
				for _, k := range keys {
					s = append(s, k.String())
				}
				got = strings.Join(s, "|")
			}
			if got != tt.want {
				t.Errorf("keys = %s, want %s", got, tt.want)
			}
		})
	}
}

// TestIndexPrunes: the index evaluates fewer rules but decides the same.
func TestIndexPrunes(t *testing.T) {
	cfg, err := Starter("mcp-agents")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d := p.Decide(agentInput("s3:GetObject", "arn:aws:s3:::b/k"))
	if d.Evaluated >= d.Rules {
		t.Errorf("evaluated %d of %d rules: the index pruned nothing", d.Evaluated, d.Rules)
	}
	// A request whose signing name differs from its IAM prefix finds rules
	// by either.
	p = mustCompile(t, rulesYAML(
		[4]string{"by-service", "allow", `request.service == "monitoring"`, ""},
		[4]string{"by-action", "deny", `request.action.iamLike("cloudwatch:Delete*")`, ""},
		[4]string{"other", "deny", `request.service == "s3"`, ""},
	), Options{})
	in := &Input{Request: Request{Service: "monitoring", Action: "cloudwatch:DeleteAlarms"}}
	d = p.Decide(in)
	if d.Effect != Deny || !slices.Equal(matchedNames(d), []string{"by-service", "by-action"}) || d.Evaluated != 2 {
		t.Errorf("got %s, evaluated %d", d, d.Evaluated)
	}
}

// TestIndexEquivalence compiles random policies with and without the
// index and checks that every decision is identical.
func TestIndexEquivalence(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	policies, inputs := 150, 40
	var evalWith, evalWithout, errs, matched int
	if testing.Short() {
		policies = 50
	}
	for i := range policies {
		cfg := randomConfig(r, 1+r.IntN(25))
		with, err := Compile(cfg, Options{})
		if err != nil {
			t.Fatalf("policy %d: %v", i, err)
		}
		without, err := Compile(cfg, Options{NoIndex: true})
		if err != nil {
			t.Fatal(err)
		}
		for range inputs {
			in := randomInput(r)
			a, b := with.Decide(in), without.Decide(in)
			evalWith, evalWithout = evalWith+a.Evaluated, evalWithout+b.Evaluated
			errs, matched = errs+len(b.Errors), matched+len(b.Matched)
			if sa, sb := decisionKey(a), decisionKey(b); sa != sb {
				t.Fatalf("policy %d, input %+v:\nindexed:   %s\nunindexed: %s\n%s", i, in.Request, sa, sb, without.Explain(in).Explain())
			}
		}
	}
	t.Logf("evaluated %d conditions with the index, %d without; %d matches, %d errors", evalWith, evalWithout, matched, errs)
	if evalWith*10 > evalWithout*9 || errs == 0 || matched == 0 {
		t.Errorf("the random policies do not exercise the index, matches and errors enough")
	}
}

// decisionKey renders everything a decision says except how many rules
// were evaluated.
func decisionKey(d Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q %v %q|", d.Effect, d.Rule, d.Default, d.Reason)
	for _, m := range d.Matched {
		fmt.Fprintf(&b, "%s:%v,", m.Rule, m.Err)
	}
	b.WriteString("|")
	for _, m := range d.Errors {
		fmt.Fprintf(&b, "%s:%v,", m.Rule, m.Err)
	}
	fmt.Fprintf(&b, "|%v|%+v", d.Obligations, d.Approvals)
	return b.String()
}

var (
	randServices = []string{"s3", "ec2", "iam", "monitoring", "kms", ""}
	randActions  = []string{"s3:GetObject", "s3:DeleteObject", "s3:PutObject", "ec2:TerminateInstances", "ec2:DescribeInstances",
		"iam:DeleteRole", "cloudwatch:DeleteAlarms", "cloudwatch:GetMetricData", "kms:Decrypt", "sts:AssumeRole", "weird", ""}
	randResources = []string{"arn:aws:s3:::prod-logs/x", "arn:aws:s3:::dev/x", "arn:aws:ec2:eu-west-1:111122223333:instance/i-1", ""}
)

func randomAtom(r *rand.Rand) string {
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	svc := func() string { return pick(randServices[:5]) }
	act := func() string { return pick(randActions[:11]) }
	switch r.IntN(16) {
	case 0:
		return fmt.Sprintf("request.service == %q", svc())
	case 1:
		return fmt.Sprintf("request.action == %q", act())
	case 2:
		return fmt.Sprintf("request.action.iamLike(%q)", strings.SplitN(act(), ":", 2)[0]+":*")
	case 3:
		return fmt.Sprintf("request.service in [%q, %q]", svc(), svc())
	case 4:
		return fmt.Sprintf("request.action in [%q, %q]", act(), act())
	case 5:
		return fmt.Sprintf("request.action.startsWith(%q)", strings.SplitN(act(), ":", 2)[0]+":")
	case 6:
		return "request.readOnly"
	case 7:
		return `"g1" in principal.groups`
	case 8:
		return `request.resource.iamLike("arn:aws:s3:::prod-*")`
	case 9:
		return `request.params.x == "y"` // errors when x is missing
	case 10:
		return `request.action.iamLike("*:Delete*")`
	case 11:
		return "true"
	case 12:
		return "false"
	case 13:
		return fmt.Sprintf("iamLike(request.action, %q)", pick(randActions[:10]))
	case 14:
		return `request.credentialIssuing`
	}
	return fmt.Sprintf("request.service != %q", svc())
}

func randomCondition(r *rand.Rand, depth int) string {
	if depth == 0 || r.IntN(3) == 0 {
		return randomAtom(r)
	}
	switch r.IntN(5) {
	case 0, 1:
		return "(" + randomCondition(r, depth-1) + " && " + randomCondition(r, depth-1) + ")"
	case 2, 3:
		return "(" + randomCondition(r, depth-1) + " || " + randomCondition(r, depth-1) + ")"
	}
	return "!(" + randomCondition(r, depth-1) + ")"
}

func randomConfig(r *rand.Rand, n int) Config {
	var cfg Config
	effects := []Effect{Allow, Deny, Approve}
	for i := range n {
		rule := Rule{Name: fmt.Sprintf("r%d", i), Effect: effects[r.IntN(3)], When: randomCondition(r, 3)}
		if rule.Effect != Deny && r.IntN(2) == 0 {
			rule.Mask = []Mask{{Path: fmt.Sprintf("f%d", r.IntN(4)), Strategy: Redact}}
		}
		if r.IntN(4) == 0 {
			rule.Audit = &Audit{Bodies: true}
		}
		if rule.Effect == Approve {
			rule.Approval = &Approval{Approvers: []string{fmt.Sprintf("g%d", r.IntN(3))}}
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	return cfg
}

func randomInput(r *rand.Rand) *Input {
	pick := func(l []string) string { return l[r.IntN(len(l))] }
	in := &Input{Request: Request{
		Service:           pick(randServices),
		Action:            pick(randActions),
		Resource:          pick(randResources),
		ReadOnly:          r.IntN(2) == 0,
		CredentialIssuing: r.IntN(5) == 0,
		Time:              monday10,
	}}
	if r.IntN(2) == 0 {
		in.Principal.Groups = []string{"g1"}
	}
	if r.IntN(2) == 0 {
		in.Request.Params = map[string]any{"x": pick([]string{"y", "z"})}
	}
	return in
}
