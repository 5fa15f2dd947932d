// Command policycheck validates gatehouse policies, runs their test cases
// and explains single decisions.
//
//	policycheck check   [flags] POLICY...
//	policycheck test    [flags] POLICY... -- CASES...
//	policycheck explain [flags] POLICY... -- INPUT
//
// With exactly one policy file the "--" may be left out:
// "policycheck test policy.yaml cases.yaml". POLICY and CASES are YAML
// files; "starter:NAME" names an embedded
// starter policy and "starter:NAME.cases" its cases. INPUT is one input
// (principal, request, mcp) or one case, as YAML or JSON; "-" reads it
// from standard input. Flags:
//
//	-profiles aws-secrets   mask profile names the policy may use (comma-separated)
//	-v                      test: print the explanation of passing cases too
//
// check compiles the policy, which parses every mask path (a mistake is an
// error with its file:line:column), and warns, on standard error, about
// masks the operation catalog shows to be useless: a mask profile with no
// rules for any operation of the services a rule can match (the catalog
// carries no output shapes, so a path that can never match an operation's
// output is not detected). Warnings do not change the exit status.
//
// Exit status: 0 on success, 1 when a check or a case fails, 2 on usage
// errors.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	_ "time/tzdata" // time windows name IANA zones; do not depend on the host's database

	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
	"github.com/gatehouse-dev/gatehouse/mask"
	"github.com/gatehouse-dev/gatehouse/policy"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage:
  policycheck check   [flags] POLICY...
  policycheck test    [flags] POLICY... -- CASES...
  policycheck explain [flags] POLICY... -- INPUT
("--" may be left out when there is exactly one POLICY)
`

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	profiles := fs.String("profiles", strings.Join(policy.DefaultMaskProfiles, ","), "mask profile names the policy may use (comma-separated)")
	verbose := fs.Bool("v", false, "print the explanation of passing cases too")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	files, rest, found := cut(fs.Args(), "--")
	if !found && cmd != "check" && len(files) == 2 {
		// "test policy.yaml cases.yaml" and "explain policy.yaml input.yaml"
		files, rest = files[:1], files[1:]
	}
	opts := policy.Options{MaskProfiles: strings.Split(*profiles, ",")}
	switch cmd {
	case "check":
		if len(files) == 0 || len(rest) > 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		p, code := compile(files, opts, stderr)
		if p != nil {
			for _, w := range maskWarnings(p) {
				fmt.Fprintln(stderr, "warning: "+w)
			}
			fmt.Fprintf(stdout, "ok: %d rules, revision %s\n", p.Len(), p.Revision())
		}
		return code
	case "test":
		if len(files) == 0 || len(rest) == 0 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		p, code := compile(files, opts, stderr)
		if p == nil {
			return code
		}
		cases, err := policy.LoadCases(rest...)
		if err != nil {
			printErr(stderr, err)
			return 1
		}
		results := policy.RunCases(p, cases)
		fmt.Fprint(stdout, policy.Report(results, *verbose))
		failed := 0
		for _, r := range results {
			if !r.Passed() {
				failed++
			}
		}
		fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
		if failed > 0 {
			return 1
		}
		return 0
	case "explain":
		if len(files) == 0 || len(rest) != 1 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		p, code := compile(files, opts, stderr)
		if p == nil {
			return code
		}
		var data []byte
		var err error
		if rest[0] == "-" {
			data, err = io.ReadAll(io.LimitReader(stdin, 1<<20))
		} else {
			data, err = os.ReadFile(rest[0])
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		in, err := policy.ParseInput(rest[0], data)
		if err != nil {
			printErr(stderr, err)
			return 1
		}
		r := in.Request
		fmt.Fprintf(stdout, "input:     principal %s (groups %v, role %q)\n", in.Principal, in.Principal.Groups, in.Role)
		fmt.Fprintf(stdout, "           %s %s on %v at %s\n", r.Service, r.Action, r.Resources, r.Time.Format("2006-01-02T15:04:05Z07:00"))
		fmt.Fprint(stdout, p.Explain(&in).Explain())
		return 0
	}
	fmt.Fprintf(stderr, "policycheck: unknown command %q\n%s", cmd, usage)
	return 2
}

func compile(files []string, opts policy.Options, stderr io.Writer) (*policy.Policy, int) {
	cfg, err := policy.Load(files...)
	if err == nil {
		var p *policy.Policy
		if p, err = policy.Compile(cfg, opts); err == nil {
			return p, 0
		}
	}
	printErr(stderr, err)
	return nil, 1
}

// printErr prints each problem on its own line.
func printErr(w io.Writer, err error) {
	var list policy.ErrorList
	if errors.As(err, &list) {
		for _, e := range list {
			fmt.Fprintln(w, e)
		}
		return
	}
	fmt.Fprintln(w, err)
}

func cut(args []string, sep string) (before, after []string, found bool) {
	if i := slices.Index(args, sep); i >= 0 {
		return args[:i], args[i+1:], true
	}
	return args, nil, false
}

// maskWarnings checks each rule's masks against what the operation catalog
// knows of the operations the rule can match (the services and IAM
// prefixes policy's rule index proved): a built-in mask profile that has
// no rules for any of them masks nothing. Rules that may match any request
// and profiles the mask package does not know are not checked.
func maskWarnings(p *policy.Policy) []string {
	var out []string
	var cat *catalog.Catalog
	for _, u := range p.MaskUses() {
		if u.Services == nil && u.ActionPrefixes == nil {
			continue
		}
		for i, m := range u.Masks {
			if m.Profile == "" || !slices.Contains(mask.Profiles(), m.Profile) {
				continue
			}
			if cat == nil {
				cat = catalog.Default()
			}
			covered, ops := false, 0
			for _, svc := range cat.Services() {
				if !slices.Contains(u.Services, svc.SigningName) && !slices.Contains(u.ActionPrefixes, svc.IAMPrefix) {
					continue
				}
				for _, op := range svc.Operations() {
					ops++
					if mask.ProfileRules(m.Profile, svc.SigningName, op.Name) != nil {
						covered = true
					}
				}
			}
			if !covered {
				scope := append(slices.Clone(u.Services), u.ActionPrefixes...)
				slices.Sort(scope)
				out = append(out, fmt.Sprintf("%s: rule %q: mask[%d]: profile %s has no rules for any of the %d operations of %s that this rule can match: it masks nothing",
					u.Source, u.Rule, i, m.Profile, ops, strings.Join(slices.Compact(scope), ", ")))
			}
		}
	}
	return out
}
