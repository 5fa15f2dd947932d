package policy

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strings"
)

//go:embed starter/*.yaml
var starterFS embed.FS

// StarterPrefix marks a policy file name that refers to an embedded
// starter policy: "starter:mcp-agents".
const StarterPrefix = "starter:"

// Starters lists the embedded starter policies by name.
func Starters() []string {
	var names []string
	entries, _ := fs.ReadDir(starterFS, "starter")
	for _, e := range entries {
		n := e.Name()
		if strings.HasSuffix(n, ".yaml") && !strings.HasSuffix(n, ".cases.yaml") {
			names = append(names, strings.TrimSuffix(n, ".yaml"))
		}
	}
	return names
}

// Starter returns the embedded starter policy called name (for example
// "mcp-agents", a read-only-by-default policy for AI agents' MCP servers)
// as a Config ready for Compile, or for merging with your own rules.
func Starter(name string) (Config, error) {
	return Load(StarterPrefix + name)
}

// StarterCases returns the test cases shipped with a starter policy.
func StarterCases(name string) ([]Case, error) {
	return LoadCases(StarterPrefix + name + ".cases")
}

// starterFile resolves "starter:NAME" to the embedded file's contents.
func starterFile(name string) ([]byte, bool) {
	n, ok := strings.CutPrefix(name, StarterPrefix)
	if !ok {
		return nil, false
	}
	if n == "" || strings.ContainsAny(n, "/\\") {
		return nil, false
	}
	data, err := starterFS.ReadFile(path.Join("starter", n+".yaml"))
	if err != nil {
		return nil, false
	}
	return data, true
}

// unknownStarter formats the error for a missing starter policy.
func unknownStarter(name string) error {
	return fmt.Errorf("unknown starter policy %q (have %s)", strings.TrimPrefix(name, StarterPrefix), strings.Join(Starters(), ", "))
}
