package policy

import (
	"fmt"
	"testing"
)

// benchServices are the services the synthetic policies spread rules over.
var benchServices = []string{"s3", "ec2", "iam", "rds", "lambda", "dynamodb", "kms", "sqs", "sns", "secretsmanager"}

// benchConfig builds a policy of n rules shaped like a real one: three
// global rules every request meets (deny credential-issuing calls, deny
// non-agents, allow reads with a mask), then rules of every effect spread
// evenly over services, about ten per service, with conditions on the
// action, the resource ARNs, the groups and the parameters.
func benchConfig(n int) Config {
	cfg := Config{Rules: []Rule{
		{Name: "deny-credential-issuing", Effect: Deny, When: "request.credentialIssuing"},
		{Name: "deny-non-agents", Effect: Deny, When: `!("mcp-agents" in principal.groups)`},
		{Name: "allow-read-only", Effect: Allow, When: "request.readOnly", Mask: []Mask{{Profile: "aws-secrets"}}},
	}}
	services := max(1, (n-3+9)/10)
	for i := range n - len(cfg.Rules) {
		svc := fmt.Sprintf("svc%d", i%services)
		if i%services < len(benchServices) {
			svc = benchServices[i%services]
		}
		r := Rule{Name: fmt.Sprintf("rule-%d", i)}
		switch i % 4 {
		case 0:
			r.Effect, r.When = Approve, fmt.Sprintf(`request.action.iamLike("%s:Delete*") && request.resources.exists(r, r.iamLike("arn:aws:%s:*:*:prod-%d*"))`, svc, svc, i)
			r.Approval = &Approval{Approvers: []string{"oncall"}}
		case 1:
			r.Effect, r.When = Allow, fmt.Sprintf(`request.service == "%s" && "team-%d" in principal.groups`, svc, i)
			r.Mask = []Mask{{Path: fmt.Sprintf("Field%d", i), Strategy: Redact}}
		case 2:
			r.Effect, r.When = Deny, fmt.Sprintf(`request.action in ["%s:Put%d", "%s:Update%d"] && request.resource.iamLike("arn:aws:%s:*:*:locked-*")`, svc, i, svc, i, svc)
		case 3:
			r.Effect, r.When = Allow, fmt.Sprintf(`request.action == "%s:Get%d" && request.sourceIp.inCidr("10.%d.0.0/16")`, svc, i, i%256)
		}
		cfg.Rules = append(cfg.Rules, r)
	}
	return cfg
}

func benchInput() *Input {
	in := agentInput("s3:GetObject", "arn:aws:s3:::app-logs/2026/01/05.gz")
	in.Request.ReadOnly = true
	in.Request.Operation = "GetObject"
	in.Request.Params = map[string]any{"bucket": "app-logs", "key": "2026/01/05.gz"}
	in.Principal.Groups = []string{"mcp-agents", "team-1"}
	return in
}

func benchDecide(b *testing.B, n int, noIndex bool) {
	p, err := Compile(benchConfig(n), Options{NoIndex: noIndex})
	if err != nil {
		b.Fatal(err)
	}
	in := benchInput()
	d := p.Decide(in)
	if d.Effect != Allow {
		b.Fatalf("benchmark input not allowed: %s", d)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	for b.Loop() {
		p.Decide(in)
	}
	if cpu := processCPU() - cpu; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
	b.ReportMetric(float64(d.Evaluated), "rules-evaluated/op")
}

// BenchmarkDecide measures Decide with the rule index at 10, 100 and
// 1,000 rules.
func BenchmarkDecide(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) { benchDecide(b, n, false) })
	}
}

// BenchmarkDecideNoIndex is BenchmarkDecide evaluating every rule.
func BenchmarkDecideNoIndex(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) { benchDecide(b, n, true) })
	}
}

// BenchmarkCompile measures compiling (and type-checking) a policy.
func BenchmarkCompile(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			cfg := benchConfig(n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Compile(cfg, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
