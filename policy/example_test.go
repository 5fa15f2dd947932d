package policy_test

import (
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy"
)

// A policy written in YAML, compiled once and asked for decisions.
func Example() {
	cfg, err := policy.Parse("policy.yaml", []byte(`
default: deny
rules:
  - name: deny-credential-issuing
    effect: deny
    when: request.credentialIssuing
    reason: agents may not mint AWS credentials
  - name: allow-reads
    effect: allow
    when: request.readOnly && "mcp-agents" in principal.groups
    mask: [aws-secrets]
  - name: approve-prod-deletes
    effect: approve
    when: >
      request.action.iamLike("s3:Delete*") &&
      request.resources.exists(r, r.iamLike("arn:aws:s3:::prod-*"))
    approval: {approvers: [platform-oncall], mode: hold}
`))
	if err != nil {
		panic(err)
	}
	p, err := policy.Compile(cfg, policy.Options{})
	if err != nil {
		panic(err)
	}
	agent := identity.Principal{Issuer: "https://idp.example.com", Subject: "agent-1", Groups: []string{"mcp-agents"}}
	at := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	for _, r := range []policy.Request{
		{Service: "s3", Action: "s3:GetObject", ReadOnly: true, Resources: []string{"arn:aws:s3:::logs/a"}, Time: at},
		{Service: "s3", Action: "s3:DeleteObject", Resources: []string{"arn:aws:s3:::prod-orders/a"}, Time: at},
		{Service: "sts", Action: "sts:AssumeRole", CredentialIssuing: true, Time: at},
		{Service: "s3", Action: "s3:PutObject", Resources: []string{"arn:aws:s3:::logs/a"}, Time: at},
	} {
		d := p.Decide(&policy.Input{Principal: agent, Request: r})
		fmt.Printf("%-16s %-7s %-24s %v\n", r.Action, d.Effect, d.Rule, d.Obligations.Masks)
	}
	// Output:
	// s3:GetObject     allow   allow-reads              [profile aws-secrets]
	// s3:DeleteObject  approve approve-prod-deletes     []
	// sts:AssumeRole   deny    deny-credential-issuing  []
	// s3:PutObject     deny                             []
}

// Compile reports every problem with its position in the file, pointing
// inside CEL conditions.
func ExampleCompile_errors() {
	cfg, _ := policy.Parse("policy.yaml", []byte(`
rules:
  - name: reads
    effect: allow
    when: |
      request.readOnly &&
        principal.grups.exists(g, g == "agents")
  - name: deletes
    effect: deny
    when: request.action.iamLike("s3:delete*")
`))
	_, err := policy.Compile(cfg, policy.Options{})
	fmt.Println(err)
	// Output:
	// policy: policy.yaml:7:18: rule "reads": when: undefined field 'grups'
	// policy: policy.yaml:10:34: rule "deletes": when: bad wildcard pattern: action pattern "s3:delete*": IAM actions start with an upper-case letter and matching is case-sensitive
}

// An Engine serves the current policy and reloads it atomically; a bad
// file never replaces a good policy.
func ExampleEngine() {
	e, err := policy.NewEngine(policy.EngineConfig{Files: []string{"starter:mcp-agents"}})
	if err != nil {
		panic(err)
	}
	in := &policy.Input{
		Principal: identity.Principal{Subject: "agent-1", Groups: []string{"mcp-agents"}},
		Request:   policy.Request{Service: "iam", Action: "iam:DeleteRole", Resources: []string{"arn:aws:iam::111122223333:role/app"}},
	}
	d := e.Decide(in)
	fmt.Println(d)
	fmt.Println(d.Approvals[0].Approval)
	// Output:
	// approve by rule "approve-iam-changes-production" (matched: approve-iam-changes-production)
	// approvers=[security-oncall] min=2 mode=queue hold=25s grant=15m0s unavailable=queue
}
