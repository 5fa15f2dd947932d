package policy

import (
	"testing"
	"time"
)

func TestDecisionDigest(t *testing.T) {
	base := func() Decision {
		return Decision{
			Effect: Approve, Rule: "approve-deletes", Reason: "deletes need a human", Revision: "r1",
			Approvals:   []Requirement{{Rule: "approve-deletes", Approval: Approval{Approvers: []string{"ops"}, MinApprovals: 1, Mode: Queue, GrantTTL: time.Hour}}},
			Obligations: Obligations{Masks: []Mask{{Profile: "aws-secrets"}}, From: []string{"approve-deletes"}},
		}
	}
	b := base()
	want := b.Digest()
	if len(want) != 64 {
		t.Fatalf("digest %q is not 64 hex digits", want)
	}
	same := []struct {
		name string
		edit func(*Decision)
	}{
		{"another revision", func(d *Decision) { d.Revision = "r2" }},
		{"another reason", func(d *Decision) { d.Reason = "reworded" }},
		{"other rules contributed nothing", func(d *Decision) { d.Obligations.From = append(d.Obligations.From, "allow-reads") }},
		{"counters", func(d *Decision) { d.Rules, d.Evaluated = 10, 3 }},
	}
	for _, tt := range same {
		d := base()
		tt.edit(&d)
		if got := d.Digest(); got != want {
			t.Errorf("%s: digest changed", tt.name)
		}
	}
	differ := []struct {
		name string
		edit func(*Decision)
	}{
		{"effect", func(d *Decision) { d.Effect = Allow }},
		{"deciding rule", func(d *Decision) { d.Rule = "other" }},
		{"approvers", func(d *Decision) { d.Approvals[0].Approvers = []string{"security"} }},
		{"min approvals", func(d *Decision) { d.Approvals[0].MinApprovals = 2 }},
		{"mode", func(d *Decision) { d.Approvals[0].Mode = Hold }},
		{"grant ttl", func(d *Decision) { d.Approvals[0].GrantTTL = time.Minute }},
		{"another requirement", func(d *Decision) {
			d.Approvals = append(d.Approvals, Requirement{Rule: "r2", Approval: Approval{Approvers: []string{"ops"}}})
		}},
		{"masks", func(d *Decision) { d.Obligations.Masks = nil }},
		{"record bodies", func(d *Decision) { d.Obligations.RecordBodies = true }},
	}
	for _, tt := range differ {
		d := base()
		tt.edit(&d)
		if got := d.Digest(); got == want {
			t.Errorf("%s: digest did not change", tt.name)
		}
	}
}
