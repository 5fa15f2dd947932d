package policy_test

import (
	"testing"

	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/policytest"
)

// TestStarterCases runs every embedded starter policy against its cases,
// with and without the rule index.
func TestStarterCases(t *testing.T) {
	if len(policy.Starters()) == 0 {
		t.Fatal("no starter policies embedded")
	}
	for _, name := range policy.Starters() {
		for _, noIndex := range []bool{false, true} {
			t.Run(name, func(t *testing.T) {
				policytest.RunFiles(t, policy.Options{NoIndex: noIndex},
					[]string{policy.StarterPrefix + name}, []string{policy.StarterPrefix + name + ".cases"})
			})
		}
	}
}
