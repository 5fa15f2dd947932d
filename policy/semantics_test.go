package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/identity"
)

func principal(sub string, groups ...string) identity.Principal {
	return identity.Principal{Issuer: "https://idp.example.com", Subject: sub, Groups: groups}
}

// Condition states of one rule in the semantics table.
const (
	none  = "none"  // the rule's condition is false
	match = "match" // the rule's condition is true
	fail  = "error" // the rule's condition fails to evaluate
)

func condition(state string) string {
	switch state {
	case match:
		return "true"
	case fail:
		return `request.params.missing == "x"` // no such key
	}
	return "false"
}

// TestSemantics covers every combination of deny, approve and allow rule
// outcomes: deny > approve > allow > default deny; an erroring deny or
// approve rule counts as matched, an erroring allow rule does not;
// obligations come from matched allow and approve rules unless a deny
// wins, which keeps only audit detail.
func TestSemantics(t *testing.T) {
	tests := []struct {
		deny, approve, allow string
		want                 Effect
		wantRule             string
		wantMatched          []string
		wantMasks            []string
		wantBodies           bool
	}{
		{none, none, none, Deny, "", nil, nil, false},
		{none, none, match, Allow, "allow", []string{"allow"}, []string{"allow-mask"}, false},
		{none, none, fail, Deny, "", nil, nil, false},
		{none, match, none, Approve, "approve", []string{"approve"}, []string{"approve-mask"}, false},
		{none, match, match, Approve, "approve", []string{"approve", "allow"}, []string{"approve-mask", "allow-mask"}, false},
		{none, match, fail, Approve, "approve", []string{"approve"}, []string{"approve-mask"}, false},
		{none, fail, none, Approve, "approve", []string{"approve"}, []string{"approve-mask"}, false},
		{none, fail, match, Approve, "approve", []string{"approve", "allow"}, []string{"approve-mask", "allow-mask"}, false},
		{none, fail, fail, Approve, "approve", []string{"approve"}, []string{"approve-mask"}, false},
		{match, none, none, Deny, "deny", []string{"deny"}, nil, true},
		{match, none, match, Deny, "deny", []string{"deny", "allow"}, nil, true},
		{match, none, fail, Deny, "deny", []string{"deny"}, nil, true},
		{match, match, none, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{match, match, match, Deny, "deny", []string{"deny", "approve", "allow"}, nil, true},
		{match, match, fail, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{match, fail, none, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{match, fail, match, Deny, "deny", []string{"deny", "approve", "allow"}, nil, true},
		{match, fail, fail, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{fail, none, none, Deny, "deny", []string{"deny"}, nil, true},
		{fail, none, match, Deny, "deny", []string{"deny", "allow"}, nil, true},
		{fail, none, fail, Deny, "deny", []string{"deny"}, nil, true},
		{fail, match, none, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{fail, match, match, Deny, "deny", []string{"deny", "approve", "allow"}, nil, true},
		{fail, match, fail, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{fail, fail, none, Deny, "deny", []string{"deny", "approve"}, nil, true},
		{fail, fail, match, Deny, "deny", []string{"deny", "approve", "allow"}, nil, true},
		{fail, fail, fail, Deny, "deny", []string{"deny", "approve"}, nil, true},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("deny=%s/approve=%s/allow=%s", tt.deny, tt.approve, tt.allow)
		t.Run(name, func(t *testing.T) {
			yml := rulesYAML(
				[4]string{"deny", "deny", condition(tt.deny), "audit: {bodies: true}"},
				[4]string{"approve", "approve", condition(tt.approve), "mask: [{path: approve-mask, strategy: redact}]\napproval: {approvers: [oncall]}"},
				[4]string{"allow", "allow", condition(tt.allow), "mask: [{path: allow-mask, strategy: hash}]"},
				[4]string{"never-deny", "deny", "false", ""},
				[4]string{"never-approve", "approve", "false", ""},
				[4]string{"never-allow", "allow", "false", ""},
			)
			for _, noIndex := range []bool{false, true} {
				p := mustCompile(t, yml, Options{NoIndex: noIndex})
				d := p.Decide(agentInput("s3:GetObject", "arn:aws:s3:::b/k"))
				if d.Effect != tt.want || d.Rule != tt.wantRule {
					t.Fatalf("got %s by %q, want %s by %q\n%s", d.Effect, d.Rule, tt.want, tt.wantRule, d.Explain())
				}
				if d.Default != (tt.wantRule == "") {
					t.Errorf("Default = %v", d.Default)
				}
				if got := matchedNames(d); !slices.Equal(got, tt.wantMatched) {
					t.Errorf("matched = %v, want %v", got, tt.wantMatched)
				}
				if got := maskNames(d); !slices.Equal(got, tt.wantMasks) {
					t.Errorf("masks = %v, want %v", got, tt.wantMasks)
				}
				if d.Obligations.RecordBodies != tt.wantBodies {
					t.Errorf("RecordBodies = %v, want %v", d.Obligations.RecordBodies, tt.wantBodies)
				}
				wantErrs := strings.Count(strings.Join([]string{tt.deny, tt.approve, tt.allow}, " "), fail)
				if len(d.Errors) != wantErrs {
					t.Errorf("errors = %d, want %d", len(d.Errors), wantErrs)
				}
				for _, m := range d.Matched {
					wantErr := m.Effect == Deny && tt.deny == fail || m.Effect == Approve && tt.approve == fail
					if (m.Err != nil) != wantErr {
						t.Errorf("match %s: Err = %v", m.Rule, m.Err)
					}
				}
				if d.Effect == Approve {
					if len(d.Approvals) != 1 || d.Approvals[0].Rule != "approve" || !slices.Equal(d.Approvals[0].Approvers, []string{"oncall"}) {
						t.Errorf("approvals = %+v", d.Approvals)
					}
				} else if d.Approvals != nil {
					t.Errorf("approvals on %s: %+v", d.Effect, d.Approvals)
				}
				if d.Evaluated != 6 || d.Rules != 6 {
					t.Errorf("evaluated %d of %d rules, want 6 of 6", d.Evaluated, d.Rules)
				}
			}
		})
	}
}

// TestPrecedenceWithinEffect: the first matching rule of the winning effect
// decides; obligations are the union over matched allow and approve rules,
// without duplicates, in policy order.
func TestPrecedenceWithinEffect(t *testing.T) {
	p := mustCompile(t, rulesYAML(
		[4]string{"allow-1", "allow", "true", "mask: [aws-secrets, {path: a, strategy: redact}]"},
		[4]string{"approve-1", "approve", "true", "approval: {approvers: [x], minApprovals: 2, mode: queue}\nmask: [aws-secrets]"},
		[4]string{"approve-2", "approve", "true", "approval: {approvers: [y], holdTimeout: 5s}\naudit: {bodies: true}"},
		[4]string{"allow-2", "allow", "true", "mask: [{path: a, strategy: redact}, {path: b, strategy: partial, keep: 2}]"},
	), Options{})
	d := p.Decide(agentInput("s3:GetObject", "arn:aws:s3:::b/k"))
	if d.Effect != Approve || d.Rule != "approve-1" {
		t.Fatalf("got %s", d)
	}
	if got, want := maskNames(d), []string{"aws-secrets", "a", "b"}; !slices.Equal(got, want) {
		t.Errorf("masks = %v, want %v", got, want)
	}
	if !d.Obligations.RecordBodies {
		t.Error("RecordBodies = false")
	}
	if got := d.Obligations.From; !slices.Equal(got, []string{"allow-1", "approve-1", "approve-2", "allow-2"}) {
		t.Errorf("From = %v", got)
	}
	if len(d.Approvals) != 2 {
		t.Fatalf("approvals = %+v", d.Approvals)
	}
	a0, a1 := d.Approvals[0], d.Approvals[1]
	if a0.Rule != "approve-1" || a0.MinApprovals != 2 || a0.Mode != Queue || a0.HoldTimeout != DefaultHoldTimeout || a0.GrantTTL != DefaultGrantTTL || a0.Unavailable != Reject {
		t.Errorf("approvals[0] = %+v", a0)
	}
	if a1.Rule != "approve-2" || a1.MinApprovals != 1 || a1.Mode != Hold || a1.HoldTimeout.Seconds() != 5 {
		t.Errorf("approvals[1] = %+v", a1)
	}
}

// TestFailClosed: errors of every kind fail closed.
func TestFailClosed(t *testing.T) {
	tests := []struct {
		name    string
		effect  Effect
		when    string
		want    Effect
		wantErr string
	}{
		{"allow rule with missing key", Allow, `request.params.bucket == "b"`, Deny, "no such key"},
		{"allow rule with bad dynamic CIDR", Allow, `request.sourceIp.inCidr(principal.claims.net)`, Deny, "inCidr"},
		{"deny rule with missing key", Deny, `principal.claims.tier == "free"`, Deny, "no such key"},
		{"approve rule with missing key", Approve, `request.params.bucket.startsWith("prod-")`, Approve, "no such key"},
		{"allow rule over the cost limit", Allow, `request.resources.all(a, request.resources.all(b, a != b || true))`, Deny, "cost limit"},
		{"deny rule over the cost limit", Deny, `request.resources.exists(a, request.resources.exists(b, a + b == "x"))`, Deny, "cost limit"},
		{"allow rule with bad dynamic window", Allow, `request.time.inWindow(request.userAgent)`, Deny, "inWindow"},
		{"allow rule with bad dynamic zone", Allow, `request.time.inWindow("09:00-17:00", request.userAgent)`, Deny, "time zone"},
		{"allow rule with division by zero", Allow, `1 / size(request.params) > 0`, Deny, "division by zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, rulesYAML(
				[4]string{"base", "allow", "true", ""},
				[4]string{"r", string(tt.effect), tt.when, ""},
			), Options{})
			in := agentInput("s3:GetObject", "arn:aws:s3:::b/k")
			in.Principal.Claims = map[string]any{"net": "not-a-cidr"}
			in.Request.UserAgent = "aws-sdk-go-v2/1.0"
			for i := range 200 {
				in.Request.Resources = append(in.Request.Resources, fmt.Sprintf("arn:aws:s3:::b/%d", i))
			}
			if tt.effect == Allow {
				// Without the base rule, an erroring allow rule must not allow.
				p = mustCompile(t, rulesYAML([4]string{"r", "allow", tt.when, ""}), Options{})
			}
			d := p.Decide(in)
			if d.Effect != tt.want {
				t.Fatalf("got %s, want %s\n%s", d.Effect, tt.want, d.Explain())
			}
			if len(d.Errors) != 1 || d.Errors[0].Rule != "r" || d.Errors[0].Err == nil {
				t.Fatalf("errors = %+v", d.Errors)
			}
			if !strings.Contains(d.Errors[0].Err.Error(), tt.wantErr) {
				t.Errorf("error %q does not mention %q", d.Errors[0].Err, tt.wantErr)
			}
		})
	}
}

// TestNilPolicyDenies: a nil policy denies.
func TestNilPolicyDenies(t *testing.T) {
	var p *Policy
	if d := p.Decide(agentInput("s3:GetObject", "")); d.Effect != Deny || !d.Default {
		t.Fatalf("got %+v", d)
	}
	p = mustCompile(t, rulesYAML([4]string{"all", "allow", "true", ""}), Options{})
	if d := p.Decide(nil); d.Effect != Deny || !d.Default {
		t.Fatalf("nil input: got %+v", d)
	}
}

// TestCostLimitOnUnboundedInput: a rule whose worst case over bounded
// inputs is within the limit runs without cost tracking on bounded inputs,
// and with the limit enforced on larger ones.
func TestCostLimitOnUnboundedInput(t *testing.T) {
	p := mustCompile(t, rulesYAML([4]string{"r", "deny", `request.resources.exists(r, r.startsWith("zzz"))`, ""}), Options{})
	if p.rules[0].fast == nil {
		t.Fatal("the rule is bounded but got no untracked program")
	}
	in := agentInput("s3:GetObject", "arn:aws:s3:::b/k")
	if d := p.Decide(in); d.Effect != Deny || !d.Default || len(d.Errors) != 0 {
		t.Fatalf("bounded input: %s", d.Explain())
	}
	for i := range 20_000 {
		in.Request.Resources = append(in.Request.Resources, fmt.Sprintf("arn:aws:s3:::b/%d", i))
	}
	d := p.Decide(in)
	if d.Effect != Deny || d.Rule != "r" || len(d.Errors) != 1 || !strings.Contains(d.Errors[0].Err.Error(), "cost limit") {
		t.Fatalf("unbounded input: %s", d.Explain())
	}
	// A rule that reads free-form parameters is always tracked.
	p = mustCompile(t, rulesYAML([4]string{"r", "allow", `request.params.exists(k, k == "x")`, ""}), Options{})
	if p.rules[0].fast != nil {
		t.Fatal("a rule over params got an untracked program")
	}
}
