package policy

import (
	"fmt"
	"strings"
	"text/tabwriter"
)

// String renders the decision on one line, for logs and audit records:
//
//	approve by rule "approve-s3-prod" (matched: approve-s3-prod, allow-reads)
func (d Decision) String() string {
	var b strings.Builder
	b.WriteString(string(d.Effect))
	if d.Default {
		b.WriteString(" by default")
	} else {
		fmt.Fprintf(&b, " by rule %q", d.Rule)
	}
	if len(d.Matched) > 0 {
		names := make([]string, len(d.Matched))
		for i, m := range d.Matched {
			names[i] = m.Rule
		}
		fmt.Fprintf(&b, " (matched: %s)", strings.Join(names, ", "))
	}
	if len(d.Errors) > 0 {
		fmt.Fprintf(&b, " (%d evaluation error(s))", len(d.Errors))
	}
	return b.String()
}

// Explain renders the decision for people: effect, deciding rule and
// reason, every matched rule, evaluation errors, obligations, approval
// requirements and, when the decision came from Policy.Explain, the
// outcome of every rule. The format is stable enough for golden tests but
// is meant for reading, not parsing.
func (d Decision) Explain() string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "decision:\t%s\n", d.Effect)
	if d.Default {
		fmt.Fprintf(w, "rule:\t(none: default deny)\n")
	} else {
		fmt.Fprintf(w, "rule:\t%s (%s)\n", d.Rule, d.source(d.Rule))
	}
	fmt.Fprintf(w, "reason:\t%s\n", d.Reason)
	fmt.Fprintf(w, "policy:\trevision %s, %d rules, %d evaluated\n", d.Revision, d.Rules, d.Evaluated)
	w.Flush()
	if len(d.Matched) > 0 {
		b.WriteString("matched:\n")
		w = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, m := range d.Matched {
			note := ""
			switch {
			case m.Err != nil:
				note = "matched because its condition failed (fail closed)"
			case m.Rule == d.Rule:
				note = "deciding"
			case m.Effect != d.Effect:
				note = "overridden by " + string(d.Effect)
			}
			fmt.Fprintf(w, "  %s\t%s\t%s\t%s\n", m.Effect, m.Rule, m.Source, note)
		}
		w.Flush()
	}
	if len(d.Errors) > 0 {
		b.WriteString("errors:\n")
		for _, m := range d.Errors {
			counts := "counts as matched"
			if m.Effect == Allow {
				counts = "counts as not matched"
			}
			fmt.Fprintf(&b, "  %s %s (%s, %s): %v\n", m.Effect, m.Rule, m.Source, counts, m.Err)
		}
	}
	o := d.Obligations
	if len(o.Masks) > 0 || o.RecordBodies {
		b.WriteString("obligations:\n")
		for _, m := range o.Masks {
			fmt.Fprintf(&b, "  mask %s\n", m)
		}
		if o.RecordBodies {
			b.WriteString("  audit: record bodies\n")
		}
		fmt.Fprintf(&b, "  from: %s\n", strings.Join(o.From, ", "))
	}
	if len(d.Approvals) > 0 {
		b.WriteString("approval:\n")
		for _, r := range d.Approvals {
			fmt.Fprintf(&b, "  %s: %s\n", r.Rule, r.Approval)
		}
	}
	if len(d.Trace) > 0 {
		b.WriteString("trace:\n")
		w = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for i, t := range d.Trace {
			res := t.Result
			switch {
			case t.Err != nil:
				res = "error: " + t.Err.Error()
			case t.Result == ResultSkipped:
				res = "skipped by index (needs " + strings.Join(t.Index, " or ") + ")"
			}
			fmt.Fprintf(w, "  %d\t%s\t%s\t%s\t%s\n", i+1, t.Effect, t.Rule, t.Source, res)
		}
		w.Flush()
	}
	// tabwriter pads the last aligned column; drop trailing blanks.
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// source finds where a named rule is defined among the decision's matches.
func (d Decision) source(rule string) string {
	for _, m := range d.Matched {
		if m.Rule == rule {
			return m.Source
		}
	}
	return "?"
}
