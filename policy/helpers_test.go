package policy

import (
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // time windows in tests name IANA zones
)

// mustCompile parses and compiles a policy written in YAML.
func mustCompile(t testing.TB, yml string, opts Options) *Policy {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yml))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	p, err := Compile(cfg, opts)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// rules builds a policy file from (name, effect, when) triples and extra
// YAML per rule.
func rulesYAML(rules ...[4]string) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for _, r := range rules {
		b.WriteString("  - name: " + r[0] + "\n    effect: " + r[1] + "\n    when: '" + r[2] + "'\n")
		if r[3] != "" {
			for _, line := range strings.Split(r[3], "\n") {
				b.WriteString("    " + line + "\n")
			}
		}
	}
	return b.String()
}

var monday10 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC) // a Monday

func agentInput(action, resource string) *Input {
	svc, _, _ := strings.Cut(action, ":")
	return &Input{
		Principal: principal("agent-1", "mcp-agents"),
		Request:   Request{Service: svc, Action: action, Resource: resource, Resources: []string{resource}, Time: monday10, SourceIP: "10.1.2.3"},
	}
}

func matchedNames(d Decision) []string {
	var out []string
	for _, m := range d.Matched {
		out = append(out, m.Rule)
	}
	return out
}

func maskNames(d Decision) []string {
	var out []string
	for _, m := range d.Obligations.Masks {
		out = append(out, cmpOr(m.Profile, m.Path))
	}
	return out
}
