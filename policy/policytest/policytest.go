// Package policytest runs policy test cases (see policy.ParseCases) from
// go test, in the spirit of opa test: one subtest per case, failures
// reported with the decision's explanation.
//
//	func TestPolicy(t *testing.T) {
//		policytest.RunFiles(t, policy.Options{}, []string{"policy.yaml"}, []string{"policy.cases.yaml"})
//	}
package policytest

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/policy"
)

// Run decides every case with p, each in its own subtest named after the
// case, and fails the subtests whose decision does not meet the case's
// expectations.
func Run(t *testing.T, p *policy.Policy, cases []policy.Case) {
	t.Helper()
	if len(cases) == 0 {
		t.Fatal("policytest: no cases")
	}
	for _, r := range policy.RunCases(p, cases) {
		t.Run(r.Case.Name, func(t *testing.T) {
			if r.Passed() {
				return
			}
			t.Errorf("%s: %s\n%s", r.Case.Source, strings.Join(r.Failures, "; "), r.Decision.Explain())
		})
	}
}

// RunFiles loads and compiles the policy files, loads the cases files and
// runs the cases. Load and compile errors fail t at once.
func RunFiles(t *testing.T, opts policy.Options, policyFiles, caseFiles []string) {
	t.Helper()
	cfg, err := policy.Load(policyFiles...)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Compile(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	cases, err := policy.LoadCases(caseFiles...)
	if err != nil {
		t.Fatal(err)
	}
	Run(t, p, cases)
}
