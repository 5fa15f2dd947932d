package policy

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// TestExplainGolden explains each testdata/explain/*.input.{yaml,json}
// against the mcp-agents starter merged with testdata/explain/extra.yaml
// and compares with the .golden file next to it (go test -update
// rewrites them).
func TestExplainGolden(t *testing.T) {
	cfg, err := Load("starter:mcp-agents", "testdata/explain/extra.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	inputs, _ := filepath.Glob("testdata/explain/*.input.*")
	if len(inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, path := range inputs {
		name, _, _ := strings.Cut(filepath.Base(path), ".input.")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			in, err := ParseInput(path, data)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Explain(&in)
			got := d.String() + "\n" + d.Explain()
			golden := filepath.Join("testdata/explain", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("explanation differs from %s (go test -update rewrites it):\n--- got\n%s--- want\n%s", golden, got, want)
			}
			// The trace never changes the decision.
			if plain := p.Decide(&in); decisionKey(plain) != decisionKey(d) {
				t.Errorf("Decide and Explain disagree:\n%s\n%s", decisionKey(plain), decisionKey(d))
			}
		})
	}
}
