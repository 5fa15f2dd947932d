package policy

import (
	"fmt"
	"slices"

	"cel.dev/cel-go/common/types"
)

// Decision is the outcome of one evaluation: the effect, why, and what the
// rest of the pipeline must do.
type Decision struct {
	// Effect is allow, deny or approve.
	Effect Effect
	// Rule is the deciding rule: the first matching rule (in policy order)
	// of the winning effect; "" when no rule matched (Default).
	Rule string
	// Reason explains the decision in one sentence for callers and audit.
	Reason string
	// Default reports that no deny, approve or allow rule matched, so the
	// default (deny) applied.
	Default bool
	// Matched lists every rule that matched, in policy order, including
	// overridden ones and deny or approve rules that matched because their
	// condition failed to evaluate (Match.Err set).
	Matched []Match
	// Errors lists every rule whose condition failed to evaluate, whatever
	// its effect: deny and approve rules among them are also in Matched,
	// allow rules are not.
	Errors []Match
	// Obligations are what the pipeline must do if the request goes ahead.
	Obligations Obligations
	// Approvals holds, when Effect is Approve, the requirement of every
	// matching approve rule in policy order; the first is the deciding
	// rule's. A broker should satisfy each of them; the first one's mode,
	// timeouts and unavailable setting govern how the request waits.
	Approvals []Requirement
	// Revision identifies the policy that decided (a hash of its rules).
	Revision string
	// Rules is the number of rules in the policy, Evaluated the number of
	// conditions evaluated (the others were ruled out by the index).
	Rules, Evaluated int
	// Trace records the outcome of every rule, in policy order. Only
	// Policy.Explain fills it.
	Trace []Outcome
}

// Match names a rule in a Decision.
type Match struct {
	Rule   string
	Effect Effect
	// Reason is the rule's reason, or "<effect> by rule <name>" when it
	// has none.
	Reason string
	// Source is where the rule is defined ("file:line:column", or
	// "rules[i]" for rules built in Go without a Source).
	Source string
	// Err is the evaluation error, if the condition failed to evaluate.
	Err error
}

// Requirement is the approval one approve rule asks for.
type Requirement struct {
	Rule string
	Approval
}

// Obligations are the duties attached to a decision: the union of those
// of the matching rules that were not overridden. For an allow or approve
// outcome that is every matched allow and approve rule (masking more is
// the safe direction); for a deny outcome only the audit detail of the
// matched deny rules; for the default deny nothing.
type Obligations struct {
	// Masks to apply to the response, without duplicates, in policy order.
	Masks []Mask
	// RecordBodies asks the audit trail to record bodies.
	RecordBodies bool
	// From names the rules whose obligations were taken.
	From []string
}

// Outcome is what happened to one rule during Explain.
type Outcome struct {
	Rule   string
	Effect Effect
	Source string
	// Result is one of "matched", "no match", "error" or "skipped".
	Result string
	// Err is the evaluation error when Result is "error".
	Err error
	// Index, for skipped rules, names the service or action prefixes the
	// rule needs.
	Index []string
}

// Outcome results.
const (
	ResultMatched = "matched"
	ResultNoMatch = "no match"
	ResultError   = "error"
	ResultSkipped = "skipped"
)

// Decide evaluates the policy for in. It never fails: an evaluation error
// in a rule counts as a match for deny and approve rules and as no match
// for allow rules, and a nil Policy or a nil Input denies. Decide does not
// read the clock (time windows use in.Request.Time), does not keep in, and
// is safe for concurrent use.
func (p *Policy) Decide(in *Input) Decision {
	return p.decide(in, false)
}

// Explain is Decide with a Trace of every rule's outcome, for people and
// tools (examples/policycheck explain). It gives the same decision.
func (p *Policy) Explain(in *Input) Decision {
	return p.decide(in, true)
}

// Revision identifies the policy's content (a hash of its rules).
func (p *Policy) Revision() string {
	if p == nil {
		return ""
	}
	return p.revision
}

// Len returns the number of rules.
func (p *Policy) Len() int {
	if p == nil {
		return 0
	}
	return len(p.rules)
}

// candidates returns the rules to evaluate for r as up to two sorted lists
// whose union (without duplicates) is the candidate set.
func (p *Policy) candidates(r *Request) (a, b []int32) {
	if !p.indexed {
		return p.all, nil
	}
	s, sok := p.byService[r.Service]
	ac, aok := p.byAction[actionPrefix(r.Action)]
	switch {
	case sok && aok:
		return s, ac
	case sok:
		return s, nil
	case aok:
		return ac, nil
	}
	return p.always, nil
}

func (p *Policy) decide(in *Input, trace bool) Decision {
	if p == nil {
		return Decision{Effect: Deny, Default: true, Reason: "no policy is loaded (deny)"}
	}
	if in == nil {
		return Decision{Effect: Deny, Default: true, Reason: "no input (deny)", Revision: p.revision, Rules: len(p.rules)}
	}
	d := Decision{Revision: p.revision, Rules: len(p.rules)}
	if trace {
		d.Trace = make([]Outcome, len(p.rules))
		for i := range p.rules {
			r := &p.rules[i]
			o := Outcome{Rule: r.name, Effect: r.effect, Source: r.where, Result: ResultSkipped}
			for _, k := range r.keys {
				o.Index = append(o.Index, k.String())
			}
			d.Trace[i] = o
		}
	}
	act, _ := p.states.Get().(*evalState)
	if act == nil {
		act = &evalState{adapter: p.adapter}
	}
	act.in = in
	defer func() {
		*act = evalState{adapter: p.adapter}
		p.states.Put(act)
	}()
	fast := bounded(in)
	// Matches are gathered on the stack and copied into d.Matched once.
	type hit struct {
		idx int32
		err error
	}
	var buf [16]hit
	hits := buf[:0]
	deciding := [3]int{-1, -1, -1} // first matched deny, approve, allow
	a, b := p.candidates(&in.Request)
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var idx int32
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			idx, i = a[i], i+1
		case i == len(a) || b[j] < a[i]:
			idx, j = b[j], j+1
		default:
			idx, i, j = a[i], i+1, j+1
		}
		r := &p.rules[idx]
		d.Evaluated++
		prg := r.prg
		if fast && r.fast != nil {
			prg = r.fast
		}
		out, _, err := prg.Eval(act)
		matched := err == nil && out == types.True
		if err == nil && !matched {
			if _, isBool := out.(types.Bool); !isBool {
				err = fmt.Errorf("condition evaluated to %v, not a bool", out)
			}
		}
		if err != nil {
			d.Errors = append(d.Errors, Match{Rule: r.name, Effect: r.effect, Reason: r.reason, Source: r.where, Err: err})
			matched = r.effect != Allow
		}
		if trace {
			switch {
			case err != nil:
				d.Trace[idx].Result, d.Trace[idx].Err = ResultError, err
			case matched:
				d.Trace[idx].Result = ResultMatched
			default:
				d.Trace[idx].Result = ResultNoMatch
			}
			d.Trace[idx].Index = nil
		}
		if !matched {
			continue
		}
		hits = append(hits, hit{idx, err})
		k := effectRank(r.effect)
		if deciding[k] < 0 {
			deciding[k] = int(idx)
		}
	}
	idxs := make([]int32, len(hits)) // stays on the stack when small
	if len(hits) > 0 {
		d.Matched = make([]Match, len(hits))
		for k, h := range hits {
			r := &p.rules[h.idx]
			idxs[k] = h.idx
			d.Matched[k] = Match{Rule: r.name, Effect: r.effect, Reason: r.reason, Source: r.where, Err: h.err}
		}
	}
	switch {
	case deciding[0] >= 0:
		d.Effect = Deny
		p.conclude(&d, deciding[0])
		for _, idx := range idxs {
			if r := &p.rules[idx]; r.effect == Deny && r.bodies {
				d.Obligations.RecordBodies = true
				d.Obligations.From = append(d.Obligations.From, r.name)
			}
		}
	case deciding[1] >= 0:
		d.Effect = Approve
		p.conclude(&d, deciding[1])
		p.grantObligations(&d, idxs)
		for _, idx := range idxs {
			if r := &p.rules[idx]; r.effect == Approve {
				d.Approvals = append(d.Approvals, Requirement{Rule: r.name, Approval: r.approval})
			}
		}
	case deciding[2] >= 0:
		d.Effect = Allow
		p.conclude(&d, deciding[2])
		p.grantObligations(&d, idxs)
	default:
		d.Effect, d.Default = Deny, true
		d.Reason = "no rule allows this request (default deny)"
		if n := len(d.Errors); n > 0 {
			d.Reason += fmt.Sprintf("; %d allow rule(s) failed to evaluate", n)
		}
	}
	return d
}

// effectRank orders effects by precedence: deny, approve, allow.
func effectRank(e Effect) int {
	switch e {
	case Deny:
		return 0
	case Approve:
		return 1
	}
	return 2
}

func (p *Policy) conclude(d *Decision, idx int) {
	r := &p.rules[idx]
	d.Rule = r.name
	var err error
	for _, m := range d.Matched {
		if m.Rule == r.name {
			err = m.Err
		}
	}
	switch {
	case err != nil:
		d.Reason = fmt.Sprintf("rule %s could not be evaluated and fails closed: %v", r.name, err)
	default:
		d.Reason = r.reason
	}
}

// grantObligations collects the obligations of every matched allow and
// approve rule (idxs are the matched rules, in policy order).
func (p *Policy) grantObligations(d *Decision, idxs []int32) {
	o := &d.Obligations
	rules, masks := 0, 0
	for _, idx := range idxs {
		if r := &p.rules[idx]; r.effect != Deny && (len(r.masks) > 0 || r.bodies) {
			rules, masks = rules+1, masks+len(r.masks)
		}
	}
	if rules == 0 {
		return
	}
	o.From = make([]string, 0, rules)
	o.Masks = make([]Mask, 0, masks)
	for _, idx := range idxs {
		r := &p.rules[idx]
		if r.effect == Deny || len(r.masks) == 0 && !r.bodies {
			continue
		}
		o.From = append(o.From, r.name)
		o.RecordBodies = o.RecordBodies || r.bodies
		for _, mk := range r.masks {
			if !slices.Contains(o.Masks, mk) {
				o.Masks = append(o.Masks, mk)
			}
		}
	}
}
