package policy

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Case is one policy test: an input and the decision expected for it.
type Case struct {
	// Name identifies the case in reports.
	Name string
	// Input is what the policy decides on.
	Input Input
	// Want is what the decision must be.
	Want Expect
	// Source is where the case is defined.
	Source Position
}

// Expect is the expected decision of a Case. Effect is always checked;
// every other field is checked only when set.
type Expect struct {
	Effect Effect
	// Rule is the expected deciding rule.
	Rule string
	// Default expects (true) or rules out (false) the default deny.
	Default *bool
	// Matched is the exact list of matched rules, in policy order.
	Matched []string
	// Masks is the exact set of masks: profile names and field paths. An
	// empty non-nil list expects no masks.
	Masks []string
	// RecordBodies is the expected audit-bodies obligation.
	RecordBodies *bool
	// Approvers are the expected approver groups of the deciding approve
	// rule.
	Approvers []string
}

// CaseResult is the outcome of running one Case.
type CaseResult struct {
	Case     Case
	Decision Decision
	// Failures says what differed; empty when the case passed.
	Failures []string
}

// Passed reports whether the decision met every expectation.
func (r CaseResult) Passed() bool { return len(r.Failures) == 0 }

// RunCases decides every case with p (through Explain, so results carry a
// trace) and compares the decisions with the expectations.
func RunCases(p *Policy, cases []Case) []CaseResult {
	out := make([]CaseResult, 0, len(cases))
	for _, c := range cases {
		in := c.Input
		d := p.Explain(&in)
		out = append(out, CaseResult{Case: c, Decision: d, Failures: check(c.Want, d)})
	}
	return out
}

func check(w Expect, d Decision) []string {
	var f []string
	if d.Effect != w.Effect {
		f = append(f, fmt.Sprintf("effect: got %s, want %s", d.Effect, w.Effect))
	}
	if w.Rule != "" && d.Rule != w.Rule {
		f = append(f, fmt.Sprintf("rule: got %q, want %q", d.Rule, w.Rule))
	}
	if w.Default != nil && d.Default != *w.Default {
		f = append(f, fmt.Sprintf("default: got %v, want %v", d.Default, *w.Default))
	}
	if w.Matched != nil {
		got := make([]string, len(d.Matched))
		for i, m := range d.Matched {
			got[i] = m.Rule
		}
		if !slices.Equal(got, w.Matched) {
			f = append(f, fmt.Sprintf("matched: got %v, want %v", got, w.Matched))
		}
	}
	if w.Masks != nil {
		var got []string
		for _, m := range d.Obligations.Masks {
			got = append(got, cmpOr(m.Profile, m.Path))
		}
		g, wm := slices.Clone(got), slices.Clone(w.Masks)
		slices.Sort(g)
		slices.Sort(wm)
		if !slices.Equal(slices.Compact(g), slices.Compact(wm)) {
			f = append(f, fmt.Sprintf("masks: got %v, want %v", got, w.Masks))
		}
	}
	if w.RecordBodies != nil && d.Obligations.RecordBodies != *w.RecordBodies {
		f = append(f, fmt.Sprintf("recordBodies: got %v, want %v", d.Obligations.RecordBodies, *w.RecordBodies))
	}
	if w.Approvers != nil {
		var got []string
		if len(d.Approvals) > 0 {
			got = d.Approvals[0].Approvers
		}
		if !slices.Equal(got, w.Approvers) {
			f = append(f, fmt.Sprintf("approvers: got %v, want %v", got, w.Approvers))
		}
	}
	return f
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Field names in cases files.
var (
	casesFields     = []string{"defaults", "cases"}
	caseFields      = []string{"name", "principal", "request", "mcp", "want"}
	inputFields     = []string{"principal", "request", "mcp"}
	principalFields = []string{"subject", "issuer", "clientId", "email", "groups", "claims", "role"}
	requestFields   = []string{"service", "region", "operation", "action", "readOnly", "credentialIssuing", "returnsSecrets", "resource", "resources", "params", "method", "path", "sourceIp", "userAgent", "time"}
	mcpFields       = []string{"sessionId", "tool", "arguments"}
	wantFields      = []string{"effect", "rule", "default", "matched", "masks", "recordBodies", "approvers"}
)

// ParseCases reads a cases file:
//
//	defaults:                  # optional; every case starts from these
//	  principal: {subject: agent-1, groups: [mcp-agents]}
//	  request: {time: 2026-01-05T10:00:00Z}
//	cases:
//	  - name: agents may read
//	    principal: {subject: agent-7, groups: [mcp-agents], role: readonly}
//	    request:
//	      action: s3:GetObject
//	      readOnly: true
//	      resource: arn:aws:s3:::logs/2026/01/05.gz
//	      params: {bucket: logs}
//	    mcp: {sessionId: s1, tool: read_file, arguments: {path: x}}
//	    want:
//	      effect: allow            # required
//	      rule: allow-read-only    # the rest is optional
//	      matched: [allow-read-only]
//	      masks: [aws-secrets]
//	      default: false
//	      recordBodies: false
//	      approvers: [platform-oncall]
//
// Field names are the CEL names. A case's principal, request and mcp
// replace the defaults field by field. Conveniences: a missing
// request.service is the IAM prefix of request.action, and missing
// request.resources is [request.resource]. JSON is YAML, so a JSON file
// with the same shape works too.
func ParseCases(name string, data []byte) ([]Case, error) {
	var e errs
	cs := parseCases(newSource(name, data), &e)
	if err := e.err(); err != nil {
		return nil, err
	}
	return cs, nil
}

// LoadCases reads and concatenates cases files ("starter:NAME.cases" reads
// the cases of an embedded starter policy).
func LoadCases(paths ...string) ([]Case, error) {
	var e errs
	var out []Case
	for _, p := range paths {
		data, err := readFile(nil, p)
		if err != nil {
			e.add(&Error{Pos: Position{File: p}, Msg: err.Error()})
			continue
		}
		out = append(out, parseCases(newSource(p, data), &e)...)
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseInput reads a single input (principal, request, mcp; the shape of
// a case without name and want), as examples/policycheck explain takes it.
// A full case is accepted too; its name and want are ignored.
func ParseInput(name string, data []byte) (Input, error) {
	var e errs
	src := newSource(name, data)
	d := &ydec{src: src, errs: &e}
	var in Input
	if root := d.parseDocument(); root != nil {
		d.fields(root, "the input", append(slices.Clone(inputFields), "name", "want"), func(key string, _, v *yaml.Node) {
			d.inputField(&in, key, v)
		})
		fillConveniences(&in)
	}
	if err := e.err(); err != nil {
		return Input{}, err
	}
	return in, nil
}

func parseCases(src *source, e *errs) []Case {
	d := &ydec{src: src, errs: e}
	root := d.parseDocument()
	if root == nil {
		return nil
	}
	var defaults Input
	var out []Case
	d.fields(root, "the cases file", casesFields, func(key string, _, v *yaml.Node) {
		switch key {
		case "defaults":
			d.fields(v, "defaults", inputFields, func(key string, _, v *yaml.Node) {
				d.inputField(&defaults, key, v)
			})
		case "cases":
			if v.Kind != yaml.SequenceNode {
				d.fail(v, "cases", "want a list of cases")
				return
			}
			for i, cn := range v.Content {
				cn = resolve(cn)
				c := Case{Name: fmt.Sprintf("cases[%d]", i), Input: copyInput(defaults), Source: src.pos(cn)}
				sawWant := false
				d.fields(cn, "a case", caseFields, func(key string, _, v *yaml.Node) {
					switch key {
					case "name":
						c.Name = d.str(v, "name")
					case "want":
						sawWant = true
						c.Want = d.expect(v)
					default:
						d.inputField(&c.Input, key, v)
					}
				})
				if !sawWant && cn.Kind == yaml.MappingNode {
					d.fail(cn, "want", "case %q has no want", c.Name)
				}
				fillConveniences(&c.Input)
				out = append(out, c)
			}
		}
	})
	return out
}

func copyInput(in Input) Input {
	if in.MCP != nil {
		m := *in.MCP
		in.MCP = &m
	}
	return in
}

func fillConveniences(in *Input) {
	r := &in.Request
	if r.Service == "" && r.Action != "" {
		r.Service = actionPrefix(r.Action)
	}
	if r.Resources == nil && r.Resource != "" {
		r.Resources = []string{r.Resource}
	}
}

func (d *ydec) inputField(in *Input, key string, v *yaml.Node) {
	switch key {
	case "principal":
		p := &in.Principal
		d.fields(v, "principal", principalFields, func(key string, _, v *yaml.Node) {
			f := "principal." + key
			switch key {
			case "subject":
				p.Subject = d.str(v, f)
			case "issuer":
				p.Issuer = d.str(v, f)
			case "clientId":
				p.ClientID = d.str(v, f)
			case "email":
				p.Email = d.str(v, f)
			case "groups":
				p.Groups = d.strings(v, f)
			case "claims":
				p.Claims = d.anyMap(v, f)
			case "role":
				in.Role = d.str(v, f)
			}
		})
	case "request":
		r := &in.Request
		d.fields(v, "request", requestFields, func(key string, _, v *yaml.Node) {
			f := "request." + key
			switch key {
			case "service":
				r.Service = d.str(v, f)
			case "region":
				r.Region = d.str(v, f)
			case "operation":
				r.Operation = d.str(v, f)
			case "action":
				r.Action = d.str(v, f)
			case "readOnly":
				r.ReadOnly = d.boolean(v, f)
			case "credentialIssuing":
				r.CredentialIssuing = d.boolean(v, f)
			case "returnsSecrets":
				r.ReturnsSecrets = d.boolean(v, f)
			case "resource":
				r.Resource = d.str(v, f)
			case "resources":
				r.Resources = d.strings(v, f)
			case "params":
				r.Params = d.anyMap(v, f)
			case "method":
				r.Method = d.str(v, f)
			case "path":
				r.Path = d.str(v, f)
			case "sourceIp":
				r.SourceIP = d.str(v, f)
			case "userAgent":
				r.UserAgent = d.str(v, f)
			case "time":
				r.Time = d.timestamp(v, f)
			}
		})
	case "mcp":
		m := &MCP{}
		if in.MCP != nil {
			*m = *in.MCP
		}
		in.MCP = m
		d.fields(v, "mcp", mcpFields, func(key string, _, v *yaml.Node) {
			f := "mcp." + key
			switch key {
			case "sessionId":
				m.SessionID = d.str(v, f)
			case "tool":
				m.Tool = d.str(v, f)
			case "arguments":
				m.Arguments = d.anyMap(v, f)
			}
		})
	}
}

func (d *ydec) expect(n *yaml.Node) Expect {
	var w Expect
	sawEffect := false
	d.fields(n, "want", wantFields, func(key string, _, v *yaml.Node) {
		f := "want." + key
		switch key {
		case "effect":
			sawEffect = true
			w.Effect = Effect(d.str(v, f))
			if !w.Effect.valid() {
				d.fail(v, f, "effect must be allow, deny or approve, not %q", w.Effect)
			}
		case "rule":
			w.Rule = d.str(v, f)
		case "default":
			b := d.boolean(v, f)
			w.Default = &b
		case "matched":
			w.Matched = d.strings(v, f)
		case "masks":
			w.Masks = d.strings(v, f)
		case "recordBodies":
			b := d.boolean(v, f)
			w.RecordBodies = &b
		case "approvers":
			w.Approvers = d.strings(v, f)
		}
	})
	if !sawEffect && n.Kind == yaml.MappingNode {
		d.fail(n, "want", "want needs an effect")
	}
	return w
}

// Report renders results as "PASS name" / "FAIL name" lines, with each
// failure and the explanation of failed cases indented below.
func Report(results []CaseResult, verbose bool) string {
	var b strings.Builder
	for _, r := range results {
		status := "PASS"
		if !r.Passed() {
			status = "FAIL"
		}
		fmt.Fprintf(&b, "%s %s (%s)\n", status, r.Case.Name, r.Case.Source)
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "    %s\n", f)
		}
		if !r.Passed() || verbose {
			for _, line := range strings.Split(strings.TrimRight(r.Decision.Explain(), "\n"), "\n") {
				fmt.Fprintf(&b, "      | %s\n", line)
			}
		}
	}
	return b.String()
}
