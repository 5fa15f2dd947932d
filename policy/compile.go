package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"cel.dev/cel-go/cel"
	celast "cel.dev/cel-go/common/ast"
	"cel.dev/cel-go/common/types"

	"github.com/gatehouse-dev/gatehouse/mask/maskpath"
)

// DefaultCostLimit bounds the work of evaluating one rule's condition, in
// cel-go cost units (roughly one per operation, field access and list or
// map element visited). An evaluation that exceeds it stops with an error,
// which counts as a match for deny and approve rules and as no match for
// allow rules.
const DefaultCostLimit = 10_000

// MaxConditionBytes bounds the length of one rule's condition.
const MaxConditionBytes = 8 << 10

// DefaultMaskProfiles are the mask profile names Compile accepts when
// Options.MaskProfiles is nil.
var DefaultMaskProfiles = []string{"aws-secrets"}

// Options tune Compile. The zero value is the usual configuration.
type Options struct {
	// MaskProfiles are the profile names a rule's mask may use; nil means
	// DefaultMaskProfiles. Pass the names the mask package knows.
	MaskProfiles []string
	// CostLimit bounds each condition's evaluation; zero means
	// DefaultCostLimit.
	CostLimit uint64
	// NoIndex turns off the rule index so that Decide evaluates every rule.
	// Decisions are the same either way; it exists to test and measure the
	// index.
	NoIndex bool
}

// Policy is a compiled policy: immutable and safe for concurrent use.
// Build it with Compile; use it directly or through an Engine.
type Policy struct {
	rules     []compiledRule
	all       []int32 // every rule, in order
	always    []int32 // rules the index cannot rule out
	byService map[string][]int32
	byAction  map[string][]int32 // by IAM prefix of request.action
	adapter   types.Adapter
	states    sync.Pool // of *evalState, cleared before reuse
	indexed   bool
	revision  string
}

type compiledRule struct {
	name     string
	effect   Effect
	reason   string
	where    string      // "file:line:col" or "rules[i]"
	prg      cel.Program // enforces the cost limit
	fast     cel.Program // no cost tracking; nil unless bounded inputs provably stay within the limit
	approval Approval
	masks    []Mask
	bodies   bool
	keys     []indexKey // nil: always a candidate
}

// indexKey is a necessary condition for a rule to match: request.service
// equals value (action false), or the IAM prefix of request.action does
// (action true).
type indexKey struct {
	action bool
	value  string
}

func (k indexKey) String() string {
	if k.action {
		return "action " + k.value + ":*"
	}
	return "service " + k.value
}

func ruleNameOK(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '-' && c != '_' && c != '.') {
			return false
		}
	}
	return true
}

// Compile checks every rule and compiles it into a Policy. Problems are
// reported together as an ErrorList (each *Error wraps ErrInvalid) with
// file:line:column for rules read by Parse or Load; CEL errors point at
// the offending token inside the YAML scalar, block scalars included.
//
// Checked: the default; rule names (present, well formed, unique);
// effects; conditions (they parse, type-check against the declared
// variables and are of type bool; literal arguments of iamLike, inCidr and
// inWindow are valid patterns, networks, windows and zones); approval
// blocks (only on approve rules, values in range); masks (not on deny
// rules, profiles known, paths parse in the maskpath syntax with the
// position of the mistake inside the YAML value, strategies, keep and
// onUnmaskable valid).
func Compile(cfg Config, opts Options) (*Policy, error) {
	profiles := opts.MaskProfiles
	if profiles == nil {
		profiles = DefaultMaskProfiles
	}
	limit := opts.CostLimit
	if limit == 0 {
		limit = DefaultCostLimit
	}
	var e errs
	if cfg.Default != "" && cfg.Default != Deny {
		e.add(&Error{Field: "default", Msg: fmt.Sprintf("the only default is deny, not %q", cfg.Default)})
	}
	lit := &literals{windows: map[string]window{}, zones: map[string]*time.Location{}}
	env, err := newEnv(lit)
	if err != nil {
		return nil, fmt.Errorf("policy: CEL environment: %w", err)
	}
	p := &Policy{byService: map[string][]int32{}, byAction: map[string][]int32{}, indexed: !opts.NoIndex, adapter: env.CELTypeAdapter()}
	first := map[string]int{}
	for i, r := range cfg.Rules {
		c := ruleCompiler{e: &e, r: r, i: i, rs: r.src}
		cr := c.compile(env, lit, limit, profiles)
		if r.Name != "" {
			if prev, dup := first[r.Name]; dup {
				where := cfg.Rules[prev].Source.String()
				if where == "" {
					where = fmt.Sprintf("rules[%d]", prev)
				}
				c.fail("name", "duplicate rule name (first defined at %s)", where)
			} else {
				first[r.Name] = i
			}
		}
		p.rules = append(p.rules, cr)
	}
	if err := e.err(); err != nil {
		return nil, err
	}
	p.buildIndex()
	p.revision = revision(cfg)
	return p, nil
}

// revision is a short hash of the policy's content, stable across runs.
func revision(cfg Config) string {
	type rule struct {
		Rule
		Source bool `json:"-"`
	}
	rs := make([]rule, len(cfg.Rules))
	for i, r := range cfg.Rules {
		rs[i].Rule = r
		rs[i].Rule.Source = Position{}
	}
	b, _ := json.Marshal(rs)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:6])
}

// ruleCompiler checks and compiles one rule.
type ruleCompiler struct {
	e  *errs
	r  Rule
	i  int
	rs *ruleSource
}

func (c *ruleCompiler) label() string {
	if c.r.Name != "" {
		return fmt.Sprintf("%q", c.r.Name)
	}
	return fmt.Sprintf("rules[%d]", c.i)
}

func (c *ruleCompiler) fail(field, format string, args ...any) {
	pos := c.r.Source
	if c.rs != nil {
		pos = c.rs.pos(field)
	}
	c.e.add(&Error{Pos: pos, Rule: c.label(), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// failAt reports a problem at a code-point offset inside the condition.
func (c *ruleCompiler) failAt(offset int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if c.rs == nil || c.rs.fields["when"] == nil {
		line, col := lineCol(c.r.When, offset)
		c.e.add(&Error{Pos: c.r.Source, Rule: c.label(), Field: "when", Msg: fmt.Sprintf("%d:%d: %s", line, col, msg)})
		return
	}
	n := c.rs.fields["when"]
	c.e.add(&Error{Pos: c.rs.src.scalarPos(n, byteOffset(c.r.When, offset)), Rule: c.label(), Field: "when", Msg: msg})
}

// failIn reports a problem at a byte offset inside the string value of
// field (a mask path): the position is the offending character in the
// YAML file when the rule was parsed, the field's otherwise.
func (c *ruleCompiler) failIn(field, value string, offset int, format string, args ...any) {
	if c.rs == nil || c.rs.fields[field] == nil {
		c.fail(field, format, args...)
		return
	}
	n := c.rs.fields[field]
	pos := c.rs.src.pos(n)
	if n.Value == value {
		pos = c.rs.src.scalarPos(n, offset)
	}
	c.e.add(&Error{Pos: pos, Rule: c.label(), Field: field, Msg: fmt.Sprintf(format, args...)})
}

// lineCol converts a code-point offset in s to a 1-based line and column.
func lineCol(s string, offset int) (int, int) {
	line, col := 1, 1
	for i, r := range []rune(s) {
		if i >= offset {
			break
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// byteOffset converts a code-point offset in s to a byte offset.
func byteOffset(s string, offset int) int {
	n := 0
	for i := range s {
		if n == offset {
			return i
		}
		n++
	}
	return len(s)
}

// celOffset converts a CEL location (1-based line, 0-based column in code
// points) to a code-point offset in s.
func celOffset(s string, line, col int) int {
	off, l := 0, 1
	for _, r := range s {
		if l == line {
			break
		}
		off++
		if r == '\n' {
			l++
		}
	}
	return off + max(col, 0)
}

func (c *ruleCompiler) compile(env *cel.Env, lit *literals, limit uint64, profiles []string) compiledRule {
	r := c.r
	cr := compiledRule{name: r.Name, effect: r.Effect, reason: r.Reason, where: r.Source.String()}
	if cr.reason == "" {
		cr.reason = fmt.Sprintf("%s by rule %s", r.Effect, r.Name)
	}
	if cr.where == "" {
		cr.where = fmt.Sprintf("rules[%d]", c.i)
	}
	if !ruleNameOK(r.Name) {
		if r.Name == "" {
			c.fail("name", "a rule needs a name")
		} else {
			c.fail("name", "bad rule name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit, at most 128 bytes", r.Name)
		}
	}
	if !r.Effect.valid() {
		c.fail("effect", "effect must be allow, deny or approve, not %q", r.Effect)
	}
	c.compileWhen(env, lit, limit, &cr)
	if r.Approval != nil && r.Effect != Approve && r.Effect.valid() {
		c.fail("approval", "only approve rules take an approval block")
	}
	if r.Effect == Approve {
		a := Approval{}
		if r.Approval != nil {
			a = *r.Approval
		}
		c.checkApproval(a)
		cr.approval = a.withDefaults()
	}
	if len(r.Mask) > 0 && r.Effect == Deny {
		c.fail("mask", "a deny rule's masks never apply: put them on allow or approve rules")
	}
	for i, m := range r.Mask {
		c.checkMask(i, m, profiles)
	}
	cr.masks = slices.Clone(r.Mask)
	if r.Audit != nil {
		cr.bodies = r.Audit.Bodies
	}
	return cr
}

func (c *ruleCompiler) compileWhen(env *cel.Env, lit *literals, limit uint64, cr *compiledRule) {
	when := c.r.When
	switch {
	case strings.TrimSpace(when) == "":
		c.fail("when", "a rule needs a condition (write \"true\" for a rule that always applies)")
		return
	case len(when) > MaxConditionBytes:
		c.fail("when", "the condition is longer than %d bytes", MaxConditionBytes)
		return
	case !utf8.ValidString(when):
		c.fail("when", "the condition is not valid UTF-8")
		return
	}
	ast, iss := env.Compile(when)
	if iss != nil && iss.Err() != nil {
		for _, ce := range iss.Errors() {
			c.failAt(celOffset(when, ce.Location.Line(), ce.Location.Column()), "%s", ce.Message)
		}
		return
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		c.fail("when", "the condition must be of type bool, not %s", ast.OutputType())
		return
	}
	native := ast.NativeRep()
	ok := true
	celast.PostOrderVisit(native.Expr(), celast.NewExprVisitor(func(e celast.Expr) {
		if !c.checkHelperCall(lit, native, e) {
			ok = false
		}
	}))
	if !ok {
		return
	}
	prg, err := env.Program(ast, cel.CostLimit(limit), cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		c.fail("when", "%v", err)
		return
	}
	cr.prg = prg
	if est, err := env.EstimateCost(ast, boundedSizes{}); err == nil && est.Max <= limit {
		if fast, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize)); err == nil {
			cr.fast = fast
		}
	}
	if keys, ok := indexKeys(native.Expr()); ok {
		cr.keys = keys
	}
}

// checkHelperCall validates the literal arguments of a helper call.
func (c *ruleCompiler) checkHelperCall(lit *literals, a *celast.AST, e celast.Expr) bool {
	if e.Kind() != celast.CallKind {
		return true
	}
	call := e.AsCall()
	fn := call.FunctionName()
	if fn != fnIAMLike && fn != fnInCIDR && fn != fnInWindow {
		return true
	}
	args := call.Args()
	if call.IsMemberFunction() {
		args = append([]celast.Expr{call.Target()}, args...)
	}
	ok := true
	check := func(i int, arg celast.Expr) {
		s, isStr := stringLiteral(arg)
		if !isStr {
			return
		}
		if err := lit.checkLiteral(fn, i, s); err != nil {
			off := 0
			if r, found := a.SourceInfo().GetOffsetRange(arg.ID()); found {
				off = int(r.Start)
			}
			c.failAt(off, "%v", err)
			ok = false
		}
	}
	for i, arg := range args {
		if arg.Kind() == celast.ListKind {
			for _, el := range arg.AsList().Elements() {
				check(i, el)
			}
			continue
		}
		check(i, arg)
	}
	return ok
}

func stringLiteral(e celast.Expr) (string, bool) {
	if e.Kind() != celast.LiteralKind {
		return "", false
	}
	s, ok := e.AsLiteral().(types.String)
	return string(s), ok
}

func (c *ruleCompiler) checkApproval(a Approval) {
	seen := map[string]bool{}
	for _, g := range a.Approvers {
		if strings.TrimSpace(g) == "" {
			c.fail("approval.approvers", "an approver group name is empty")
		} else if seen[g] {
			c.fail("approval.approvers", "approver group %q listed twice", g)
		}
		seen[g] = true
	}
	if a.MinApprovals < 0 || a.MinApprovals > MaxMinApprovals {
		c.fail("approval.minApprovals", "minApprovals must be between 1 and %d, not %d", MaxMinApprovals, a.MinApprovals)
	}
	switch a.Mode {
	case "", Hold, Queue, Reject:
	default:
		c.fail("approval.mode", "mode must be hold, queue or reject, not %q", a.Mode)
	}
	switch a.Unavailable {
	case "", Reject, Queue:
	default:
		c.fail("approval.unavailable", "unavailable must be reject or queue, not %q", a.Unavailable)
	}
	if a.HoldTimeout < 0 || a.HoldTimeout > MaxHoldTimeout {
		c.fail("approval.holdTimeout", "holdTimeout must be between 1s and %s (below SDK read timeouts), not %s", MaxHoldTimeout, a.HoldTimeout)
	} else if a.HoldTimeout != 0 && a.HoldTimeout < time.Second {
		c.fail("approval.holdTimeout", "holdTimeout must be at least 1s, not %s", a.HoldTimeout)
	}
	if a.GrantTTL < 0 || a.GrantTTL > MaxGrantTTL {
		c.fail("approval.grantTTL", "grantTTL must be between 1s and %s, not %s", MaxGrantTTL, a.GrantTTL)
	} else if a.GrantTTL != 0 && a.GrantTTL < time.Second {
		c.fail("approval.grantTTL", "grantTTL must be at least 1s, not %s", a.GrantTTL)
	}
}

// MaxMaskKeep bounds Mask.Keep.
const MaxMaskKeep = 16

func (c *ruleCompiler) checkMask(i int, m Mask, profiles []string) {
	field := fmt.Sprintf("mask[%d]", i)
	switch m.OnUnmaskable {
	case "", Withhold, Pass:
	default:
		c.fail(field+".onUnmaskable", "onUnmaskable must be withhold or pass, not %q", m.OnUnmaskable)
	}
	switch {
	case m.Profile != "":
		if m.Path != "" || m.Strategy != "" || m.Keep != 0 {
			c.fail(field, "a mask entry is either a profile or a path with a strategy, not both")
			return
		}
		if !slices.Contains(profiles, m.Profile) {
			c.fail(field+".profile", "unknown mask profile %q (known: %s)", m.Profile, strings.Join(profiles, ", "))
		}
	case m.Path == "":
		c.fail(field, "a mask entry needs a profile or a path")
	default:
		if _, err := maskpath.Parse(m.Path); err != nil {
			var pe *maskpath.Error
			off := 0
			msg := err.Error()
			if errors.As(err, &pe) {
				off, msg = pe.Offset, pe.Msg
			}
			c.failIn(field+".path", m.Path, off, "bad mask path %q: %s", m.Path, msg)
		}
		switch m.Strategy {
		case Redact, Hash, Remove:
			if m.Keep != 0 {
				c.fail(field+".keep", "keep applies only to the partial strategy")
			}
		case Partial:
			if m.Keep < 0 || m.Keep > MaxMaskKeep {
				c.fail(field+".keep", "keep must be between 0 and %d, not %d", MaxMaskKeep, m.Keep)
			}
		case "":
			c.fail(field, "a mask path needs a strategy: redact, partial, hash or remove")
		default:
			c.fail(field+".strategy", "strategy must be redact, partial, hash or remove, not %q", m.Strategy)
		}
	}
}

// buildIndex files every rule under the services and action prefixes its
// condition requires. Each list is the rule's keys' rules merged with the
// rules that are always candidates, in policy order.
func (p *Policy) buildIndex() {
	for i, r := range p.rules {
		p.all = append(p.all, int32(i))
		if r.keys == nil {
			p.always = append(p.always, int32(i))
		}
	}
	for i, r := range p.rules {
		for _, k := range r.keys {
			m := p.byService
			if k.action {
				m = p.byAction
			}
			if l := m[k.value]; len(l) == 0 || l[len(l)-1] != int32(i) {
				m[k.value] = append(l, int32(i))
			}
		}
	}
	for _, m := range []map[string][]int32{p.byService, p.byAction} {
		for k, l := range m {
			m[k] = mergeSorted(l, p.always)
		}
	}
}

func mergeSorted(a, b []int32) []int32 {
	out := make([]int32, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// indexKeys finds keys one of which must hold for e to be true, or false
// when e does not pin the service or the action's prefix. See the package
// documentation, "Rule index".
func indexKeys(e celast.Expr) ([]indexKey, bool) {
	if e.Kind() != celast.CallKind {
		return nil, false
	}
	call := e.AsCall()
	args := call.Args()
	switch fn := call.FunctionName(); {
	case fn == "_&&_" && len(args) == 2:
		l, lok := indexKeys(args[0])
		r, rok := indexKeys(args[1])
		switch {
		case lok && rok:
			if len(r) < len(l) {
				return r, true
			}
			return l, true
		case lok:
			return l, true
		case rok:
			return r, true
		}
	case fn == "_||_" && len(args) == 2:
		l, lok := indexKeys(args[0])
		r, rok := indexKeys(args[1])
		if lok && rok {
			return dedupeKeys(append(slices.Clone(l), r...)), true
		}
	case fn == "_==_" && len(args) == 2:
		for _, pair := range [][2]celast.Expr{{args[0], args[1]}, {args[1], args[0]}} {
			if field, ok := requestField(pair[0]); ok {
				if s, ok := stringLiteral(pair[1]); ok {
					return []indexKey{keyFor(field, s)}, true
				}
			}
		}
	case fn == "@in" && len(args) == 2:
		field, ok := requestField(args[0])
		if !ok || args[1].Kind() != celast.ListKind {
			break
		}
		var keys []indexKey
		for _, el := range args[1].AsList().Elements() {
			s, ok := stringLiteral(el)
			if !ok {
				return nil, false
			}
			keys = append(keys, keyFor(field, s))
		}
		if len(keys) > 0 {
			return dedupeKeys(keys), true
		}
	case fn == fnIAMLike && len(args) == 1 && call.IsMemberFunction():
		return actionPatternKey(call.Target(), args[0])
	case fn == fnIAMLike && len(args) == 2 && !call.IsMemberFunction():
		return actionPatternKey(args[0], args[1])
	case fn == "startsWith" && len(args) == 1 && call.IsMemberFunction():
		if field, ok := requestField(call.Target()); ok && field == "action" {
			if s, ok := stringLiteral(args[0]); ok {
				if svc, _, found := strings.Cut(s, ":"); found {
					return []indexKey{{action: true, value: svc}}, true
				}
			}
		}
	}
	return nil, false
}

func actionPatternKey(target, pattern celast.Expr) ([]indexKey, bool) {
	field, ok := requestField(target)
	if !ok || field != "action" {
		return nil, false
	}
	s, ok := stringLiteral(pattern)
	if !ok {
		return nil, false
	}
	svc, ok := literalServicePrefix(s)
	if !ok {
		return nil, false
	}
	return []indexKey{{action: true, value: svc}}, true
}

// requestField reports whether e is request.service or request.action.
func requestField(e celast.Expr) (string, bool) {
	if e.Kind() != celast.SelectKind {
		return "", false
	}
	sel := e.AsSelect()
	if sel.IsTestOnly() || sel.Operand().Kind() != celast.IdentKind || sel.Operand().AsIdent() != "request" {
		return "", false
	}
	switch f := sel.FieldName(); f {
	case "service", "action":
		return f, true
	}
	return "", false
}

func keyFor(field, lit string) indexKey {
	if field == "action" {
		return indexKey{action: true, value: actionPrefix(lit)}
	}
	return indexKey{value: lit}
}

// actionPrefix is the IAM prefix of an action: what precedes the first
// ':', or all of it when there is no ':'.
func actionPrefix(a string) string {
	if i := strings.IndexByte(a, ':'); i >= 0 {
		return a[:i]
	}
	return a
}

func dedupeKeys(keys []indexKey) []indexKey {
	slices.SortFunc(keys, func(a, b indexKey) int {
		if a.action != b.action {
			if a.action {
				return 1
			}
			return -1
		}
		return strings.Compare(a.value, b.value)
	})
	return slices.Compact(keys)
}

// MaskUse is a rule that carries masks, with what Compile proved about the
// requests the rule can match (see "Rule index" in the package doc). Tools
// such as examples/policycheck use it to check masks against the
// operations a rule can reach.
type MaskUse struct {
	Rule   string // the rule's name
	Source string // "file:line:column", or "rules[i]" for rules built in Go
	Masks  []Mask
	// Services and ActionPrefixes bound the requests the rule can match:
	// request.service is one of Services or the IAM prefix of
	// request.action is one of ActionPrefixes. Both are nil when the
	// condition does not pin either, and the rule may match any request.
	Services, ActionPrefixes []string
}

// MaskUses lists the allow and approve rules that carry masks, in policy
// order.
func (p *Policy) MaskUses() []MaskUse {
	if p == nil {
		return nil
	}
	var out []MaskUse
	for _, r := range p.rules {
		if len(r.masks) == 0 || r.effect == Deny {
			continue
		}
		u := MaskUse{Rule: r.name, Source: r.where, Masks: slices.Clone(r.masks)}
		for _, k := range r.keys {
			if k.action {
				u.ActionPrefixes = append(u.ActionPrefixes, k.value)
			} else {
				u.Services = append(u.Services, k.value)
			}
		}
		out = append(out, u)
	}
	return out
}
