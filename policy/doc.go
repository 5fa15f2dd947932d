// Package policy decides, for each call an agent makes, whether it is
// allowed, denied or held for a human approval, and what must happen if it
// goes ahead (fields to mask, audit detail). Rules are small CEL
// conditions over who is calling and what is being called, written in
// YAML by a security engineer (or built in Go), type-checked at load and
// compiled once.
//
// The package knows nothing of HTTP or AWS wire formats: its input is
// plain data ([Input]: an [identity.Principal], the gateway role, a
// classified [Request], and an optional [MCP] tool call), so the same
// engine can guard AWS calls in awsproxy and MCP tool calls elsewhere.
//
// # Model
//
//	cfg, err := policy.Load("base.yaml", "team.yaml")    // or policy.Parse, or a Config built in Go
//	p, err := policy.Compile(cfg, policy.Options{})      // every check happens here, errors carry file:line:column
//	d := p.Decide(&policy.Input{...})                    // concurrency-safe, never fails, never reads the clock
//
// A [Policy] is immutable and safe for concurrent use. An [Engine] holds
// the current Policy behind an atomic pointer and replaces it on
// [Engine.Reload] (files read again), [Engine.Replace] (a Config) or
// [Engine.Watch] (polling the files' contents); a policy that fails to
// load or compile never replaces a good one: the error is returned and
// logged and the old policy keeps serving. In-flight decisions finish on
// the policy they started with.
//
// # File format
//
//	default: deny                 # optional; deny is the only default there is
//	rules:
//	  - name: approve-prod-deletes          # required, unique across merged files
//	    description: free text
//	    effect: approve                     # allow | deny | approve
//	    when: |                             # CEL, must be of type bool
//	      request.action.iamLike("s3:Delete*") &&
//	      request.resources.exists(r, r.iamLike("arn:aws:s3:::prod-*"))
//	    reason: deleting production data needs a second pair of eyes
//	    approval:                           # approve rules only; every field optional
//	      approvers: [platform-oncall]      # groups; empty: "unavailable" decides
//	      minApprovals: 1                   # 1..10
//	      mode: hold                        # hold | queue | reject
//	      holdTimeout: 25s                  # 1s..50s (below SDK read timeouts)
//	      grantTTL: 10m                     # 1s..24h
//	      unavailable: reject               # reject | queue
//	    mask:                               # allow and approve rules only
//	      - aws-secrets                     # a profile name, or a field rule:
//	      - {path: SecretString, strategy: partial, keep: 4}   # redact | partial | hash | remove
//	      - {path: aws.secret_access_key, strategy: redact, onUnmaskable: pass}   # withhold (default) | pass
//	      - {profile: aws-secrets, onUnmaskable: withhold}
//	    audit:
//	      bodies: true                      # record request and response bodies
//
// Several files merge in order (rule names must be unique across them;
// "starter:NAME" names an embedded starter policy). Unknown or repeated
// fields, values of the wrong kind, bad durations and a missing rules
// field are errors. Every problem is reported (up to 50 at once) as an
// [ErrorList] of [*Error], each with its file:line:column; for CEL errors
// the position is that of the offending token inside the YAML file, in
// plain, quoted, literal (|) and folded (>) scalars alike.
//
// # CEL environment
//
// Three variables of declared object types (not map<string, dyn>):
//
//	principal  subject, issuer, clientId, email string; groups list<string>;
//	           claims map<string, dyn>; role string (the gateway role)
//	request    service (signing name), region, operation, action (IAM action),
//	           resource (primary ARN), method, path, sourceIp, userAgent string;
//	           readOnly, credentialIssuing, returnsSecrets bool;
//	           resources list<string>; params map<string, dyn>; time timestamp
//	mcp        present bool (false when the call has no MCP context, and then the
//	           other fields are empty); sessionId, tool string; arguments map<string, dyn>
//
// Field typos are type errors at load ("undefined field 'grups'"). Absent
// map keys are evaluation errors; test with has(request.params.Bucket) or
// use optionals: request.params.?Bucket.orValue(""). The standard library
// is there (startsWith, matches, in, exists, all, timestamps, ...), with
// cel-go's strings and sets extensions and optional types, and three
// helpers:
//
//	s.iamLike(pattern), iamLike(s, pattern)   IAM-style wildcard match
//	ip.inCidr("10.0.0.0/8"), ip.inCidr([...]) address in network(s)
//	t.inWindow(window[, zone])                 timestamp in a weekly window
//
// iamLike: '*' matches any run of characters (':' and '/' included), '?'
// one character; everything else, letter case included, matches itself.
// A pattern is "*", an action pattern "service:Action" (service in
// [a-z0-9-], action in letters and digits, a literal action starting with
// an upper-case letter as IAM writes them, so "s3:deleteObject" is refused
// rather than silently never matching), or an ARN pattern with all six
// parts. inCidr: a source address that does not parse is in no network; a
// network with host bits set ("10.0.0.1/8") is refused. inWindow:
// "[DAYS ]HH:MM-HH:MM" with DAYS such as "Mon-Fri", "Sat,Sun" or "*",
// start inclusive, end exclusive, end before start meaning overnight (the
// days name the day the window opens); zone is an IANA name, default UTC
// ("Local" is refused: a policy must not depend on the machine). Binaries
// should import time/tzdata when hosts may lack a zone database.
//
// Literal pattern, network, window and zone arguments are checked at load
// and parsed once; non-literal ones are checked at evaluation, where a bad
// one is an evaluation error (see below).
//
// # Decision semantics
//
// Default deny. Any matching deny rule wins; else any matching approve
// rule requires an approval; else any matching allow rule allows; else the
// default (deny) applies. Policy order only picks the deciding rule among
// matching rules of the winning effect (the first) and orders
// [Decision.Matched]. A condition that fails to evaluate (a missing key,
// a bad dynamic pattern, the cost limit, any other CEL error) counts as a
// match for deny and approve rules and as no match for allow rules: fail
// closed either way. Such errors are recorded in [Decision.Errors] and in
// the explanation.
//
// A [Decision] carries the effect, the deciding rule and its reason, every
// matched rule (overridden ones included), every evaluation error, the
// obligations, the approval requirements and the policy revision.
// [Decision.String] is one line for logs and audit; [Decision.Explain]
// renders it for people; [Policy.Explain] also traces every rule
// (matched, no match, error, or skipped by the index), which
// examples/policycheck explain prints.
//
// # Obligations
//
// The union of the obligations of the matching rules that were not
// overridden. For an allow or an approve outcome: the masks and audit
// detail of every matched allow and approve rule (masks deduplicated, in
// policy order; masking more is the fail-safe direction, so an approve
// outcome keeps the masks of the allow rules that matched too). For a
// deny outcome: only the audit detail of the matched deny rules, since no
// response will be masked. For the default deny: none. Masks are plain
// data ([Mask]: a profile name, checked against [Options.MaskProfiles],
// default {"aws-secrets"}, or a path with a strategy); the mask package
// applies them.
//
// # Mask paths
//
// A mask path has one syntax, that of package mask/maskpath, and applies
// alike to JSON and XML bodies (the gateway picks JSON, XML or text by the
// response's media type, not by the service):
//
//	SecretString               a member or element of that name, at any depth
//	aws.secret_access_key      secret_access_key directly inside aws, at any depth
//	$.Credentials.SecretKey    '$.' anchors at the top of the document
//	Environment.Variables.*    '*': one level, any name; Secret* globs a name
//	**.password                '**': any number of levels
//	a\.b                       '' escapes '.', '*', '?', '' and the reserved $#@![](){}|/,="':
//
// Arrays are transparent (Parameters.Value reaches the Value of every
// element of Parameters); there are no indexes, conditions or attributes.
// Paths in gjson syntax (Parameters.#.Value) or as XML element paths
// (*/Credentials/SecretAccessKey) are refused with a reason. Compile parses
// every path, so a mistake is an error with the file:line:column of the
// offending character, never a surprise at the first call. Package policy
// does not import package mask: it shares only the dependency-free grammar
// package, which mask compiles with, so the two cannot disagree about a
// path.
//
// # When a mask cannot be applied
//
// A mask obligation cannot be applied to a response that is binary or of
// an unknown media type, in an encoding the masker cannot decode, over the
// gateway's mask bound, partial (a ranged GET that is not the whole
// object), or text for a path (text gets the detectors of a profile
// only). Such a response is withheld by default: the caller gets an
// AWS-shaped error and the audit record says why. OnUnmaskable: pass on a
// mask entry opts that entry out: when every obligation that cannot be
// applied says pass, the response goes through without them, and the
// audit record names them and the reason.
//
// # Approvals
//
// When approve wins, [Decision.Approvals] lists the [Requirement] of every
// matched approve rule in policy order, with defaults applied; the first
// is the deciding rule's. A broker should obtain every requirement (each
// from its own approver groups and count); the first requirement's mode,
// hold timeout, grant TTL and unavailable setting govern how the request
// waits. Defaults: minApprovals 1, mode hold, holdTimeout 25s, grantTTL
// 10m, unavailable reject.
//
// # Rule index
//
// Compile analyses each checked condition. When it proves that a rule can
// only be true if request.service equals one of some literals, or the IAM
// prefix of request.action (what precedes its first ':') does, the rule is
// filed under those keys; other rules are always candidates. Recognised
// requirements: request.service == "lit", request.action == "svc:Op",
// request.service in [...] and request.action in [...] over literals,
// request.action.iamLike("svc:...") and iamLike(request.action, "svc:...")
// with a wildcard-free service, request.action.startsWith("svc:"); a
// conjunction needs one of its sides to be recognised, a disjunction both.
// Decide evaluates only the candidates for the request's service and
// action prefix (both are looked up, since signing names and IAM prefixes
// differ: "monitoring" vs "cloudwatch"). Because CEL's && and || absorb
// errors when the other side is false or true, a rule the index rules out
// would have evaluated to false, so decisions are identical with and
// without the index (tested with random policies and by fuzzing); the one
// difference is that a ruled-out rule cannot hit the cost limit.
// [Options.NoIndex] turns the index off.
//
// # Bounds
//
// Each condition is at most [MaxConditionBytes] long. Each evaluation of
// a condition is bounded by cel.CostLimit ([Options.CostLimit], default
// [DefaultCostLimit] = 10,000 cost units, roughly one per operation,
// field access and element visited); exceeding it is an evaluation error.
// The work of one Decide is therefore bounded by the number of candidate
// rules times the limit. Runtime cost tracking is skipped, as an
// optimisation that changes no outcome, for rules whose worst case over
// "bounded" inputs (strings up to 4 KiB, resources and groups up to 256
// entries, no access to params, claims or arguments) is provably within
// the limit, when the input is bounded. Cases files bound free-form values
// at 100,000 and nesting at 32.
//
// # Tests for policies
//
// [ParseCases] and [LoadCases] read cases files (principal, request and
// mcp as CEL names them, plus the expected effect, rule, matched rules,
// masks, audit detail and approvers); [RunCases] decides them and
// [Report] prints PASS/FAIL lines with explanations. Package policytest
// runs them as subtests from go test, and examples/policycheck test runs
// them from the command line, in the spirit of opa test. [Starter] and
// [StarterCases] return the embedded starter policies ("mcp-agents":
// read-only by default, approvals for destructive S3, EC2, IAM and RDS
// actions on production resources, credential-issuing calls denied,
// secrets masked) and their cases.
//
// # Design notes
//
// The variables are declared to the type checker through ext.NativeTypes
// (with ParseStructTags), but at evaluation every variable resolves to one
// per-decision state whose field accessors convert each field to a CEL
// value at most once per decision and cache it; this avoids reflection
// and repeated allocation when several rules read the same fields. The
// states are pooled per Policy and cleared after each decision. With
// runtime cost tracking skipped where it is provably unnecessary (see
// Bounds), a decision that evaluates ten rules makes about six
// allocations. The only default is deny:
// a "default" key exists so that files can state it, not to change it.
package policy
