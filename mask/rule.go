package mask

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/gatehouse-dev/gatehouse/mask/maskpath"
)

// Strategy says what happens to a value a rule selects.
type Strategy string

// The strategies. The zero Strategy means Redact.
const (
	// Redact replaces the value with Marker.
	Redact Strategy = "redact"
	// Partial replaces all but the last Rule.Keep characters with Marker.
	Partial Strategy = "partial"
	// Hash replaces the value with HashPrefix and the first 16 hex digits
	// of HMAC-SHA256(Config.HashKey, value): equal values give equal tokens,
	// so masked values can still be correlated.
	Hash Strategy = "hash"
	// Remove deletes the JSON object member or array element, or the XML
	// element, that holds the value.
	Remove Strategy = "remove"
)

const (
	// Marker is what Redact writes, and what Partial writes before the
	// characters it keeps.
	Marker = "****"
	// HashPrefix starts every value written by Hash.
	HashPrefix = "hmac-sha256:"

	// DefaultMaxBody bounds the body MaskResponse holds in memory, before
	// and after decompression, when Config.MaxBody is zero.
	DefaultMaxBody = 10 << 20
	// DefaultKeep is the number of characters Partial keeps when
	// Rule.Keep is zero.
	DefaultKeep = 4
	// MaxKeep bounds Rule.Keep.
	MaxKeep = 64
	// MinHashKey is the shortest Config.HashKey accepted.
	MinHashKey = 16
	// MaxPattern bounds the length of a Rule.Pattern and of a path.
	MaxPattern = 1024
	// MaxDepth bounds the nesting of a JSON or XML document; deeper
	// documents are refused with a *SyntaxError.
	MaxDepth = 1000
)

// Rule selects values and says how to mask them. It is plain data: rules
// can come from configuration files or policy obligations and are checked
// by New.
//
// A rule selects by path (JSON, XML or both), by content (Detect or
// Pattern), or both: a rule with a path and a detector runs the detector
// only on the values under the path. A rule with only a path masks the
// whole value; a detector masks only the part of a string it recognises.
type Rule struct {
	// Name labels the rule in reports and errors. Optional.
	Name string
	// Path is a path in the syntax of package maskpath, the one policy
	// files use, such as "aws.secret_access_key": it applies to JSON and
	// XML documents alike. Set Path or JSON and XML, not both.
	Path string
	// JSON is a path in gjson syntax (see the package doc), such as
	// "Parameters.#.Value". It applies to JSON documents only.
	JSON string
	// When, with JSON, makes the rule apply only to documents where the
	// condition holds: a gjson query condition evaluated at the document
	// root, such as `Parameter.Type=="SecureString"`.
	When string
	// XML is an element path (see the package doc), such as
	// "*/Credentials/SecretAccessKey". It applies to XML documents only.
	XML string
	// Detect names a built-in content detector (the Detect* constants).
	Detect Detector
	// Pattern is a user regular expression (Go syntax, at most MaxPattern
	// bytes) run as a detector. If it has a capturing group, only the
	// first group's text is masked; otherwise the whole match.
	Pattern string
	// Strategy is what to do with what the rule selects; zero means Redact.
	Strategy Strategy
	// Keep is the number of trailing characters Partial keeps (zero means
	// DefaultKeep, at most MaxKeep). Values of at most 2*Keep characters are
	// hidden entirely. Keep must be zero for other strategies.
	Keep int
	// SkipUnmaskable lets a body this rule cannot be applied to pass
	// without it: a text body for a rule with a path, and for every rule
	// a body that is binary, of an unknown media type, in an encoding the
	// Masker cannot decode, over MaxBody or partial (see the package doc).
	// By default such a body is refused (an error matching ErrUnmaskable)
	// and nothing of it is returned. A skipped rule is listed in
	// Report.Skipped with the reason. Set it only for rules whose values
	// may reach the caller unmasked when the body cannot be read.
	SkipUnmaskable bool
}

// Config configures a Masker.
type Config struct {
	// Rules are applied together in one pass over each document.
	Rules []Rule
	// HashKey keys the Hash strategy (at least MinHashKey bytes). A rule
	// with Strategy Hash is refused when it is empty. Maskers that must
	// produce matching tokens share the key.
	HashKey []byte
	// MaxBody bounds the body MaskResponse buffers, before and after
	// decompression. Zero means DefaultMaxBody.
	MaxBody int64
}

// Masker applies compiled rules to documents. It is immutable and safe
// for concurrent use; build it once with New and reuse it.
type Masker struct {
	rules   []rule
	jpaths  []jsonRule // rules with a JSON path
	xpaths  []xmlRule  // rules with an XML path
	global  []int      // detector rules without any path
	hashKey []byte
	maxBody int64
	jpool   *sync.Pool // *jwalker scratch buffers, reused across calls
	allSkip bool       // every rule has SkipUnmaskable
}

// rule is a checked Rule.
type rule struct {
	label    string // for reports: Name, or the path or detector
	path     string // JSON or XML path as written, for reports
	detect   detector
	strategy Strategy
	keep     int
	when     *condition
	hasPath  bool // selects by path (Path, JSON or XML): cannot apply to text
	skip     bool // SkipUnmaskable
}

// hit records that rule i matches a node: a detector rule is added to
// dets (run below the node), a Remove rule competes for remove and any
// other rule for bound, the lowest index (the first rule listed) winning.
func (r *rule) hit(i int, bound, remove *int, dets []int32) []int32 {
	switch {
	case r.detect != nil:
		return append(dets, int32(i))
	case r.strategy == Remove:
		if *remove < 0 || i < *remove {
			*remove = i
		}
	default:
		if *bound < 0 || i < *bound {
			*bound = i
		}
	}
	return dets
}

type jsonRule struct {
	rule int
	path jsonPath
	flat bool // a maskpath path: arrays are transparent
}

type xmlRule struct {
	rule int
	path xmlPath
}

// ConfigError reports a bad Config: which rule, which field, and why.
type ConfigError struct {
	Rule  int    // index in Config.Rules, -1 for fields of Config
	Name  string // the rule's Name, if any
	Field string // "Path", "JSON", "XML", "Pattern", "HashKey", ...
	Err   error
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("mask: ")
	if e.Rule >= 0 {
		fmt.Fprintf(&b, "rule %d", e.Rule)
		if e.Name != "" {
			fmt.Fprintf(&b, " (%q)", e.Name)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Field)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// New checks every rule (paths, conditions, patterns, strategies, keys)
// and compiles them into a Masker. The first bad entry is reported as a
// *ConfigError naming the rule and field.
func New(cfg Config) (*Masker, error) {
	m := &Masker{maxBody: cfg.MaxBody, jpool: new(sync.Pool)}
	if cfg.MaxBody < 0 {
		return nil, &ConfigError{Rule: -1, Field: "MaxBody", Err: fmt.Errorf("negative bound %d", cfg.MaxBody)}
	}
	if m.maxBody == 0 {
		m.maxBody = DefaultMaxBody
	}
	if len(cfg.HashKey) > 0 {
		if len(cfg.HashKey) < MinHashKey {
			return nil, &ConfigError{Rule: -1, Field: "HashKey", Err: fmt.Errorf("key has %d bytes, want at least %d", len(cfg.HashKey), MinHashKey)}
		}
		m.hashKey = append([]byte(nil), cfg.HashKey...)
	}
	for i, r := range cfg.Rules {
		bad := func(field string, err error) error {
			return &ConfigError{Rule: i, Name: r.Name, Field: field, Err: err}
		}
		c := rule{strategy: r.Strategy, keep: r.Keep}
		switch r.Strategy {
		case "":
			c.strategy = Redact
		case Redact, Remove:
		case Partial:
			if c.keep == 0 {
				c.keep = DefaultKeep
			}
			if c.keep < 0 || c.keep > MaxKeep {
				return nil, bad("Keep", fmt.Errorf("%d is outside 1..%d", r.Keep, MaxKeep))
			}
		case Hash:
			if m.hashKey == nil {
				return nil, bad("Strategy", fmt.Errorf("hash needs Config.HashKey"))
			}
		default:
			return nil, bad("Strategy", fmt.Errorf("unknown strategy %q (want redact, partial, hash or remove)", r.Strategy))
		}
		if r.Keep != 0 && c.strategy != Partial {
			return nil, bad("Keep", fmt.Errorf("only partial keeps characters"))
		}
		if r.Path == "" && r.JSON == "" && r.XML == "" && r.Detect == "" && r.Pattern == "" {
			return nil, bad("Path", fmt.Errorf("rule selects nothing: set Path, JSON, XML, Detect or Pattern"))
		}
		if r.Path != "" && (r.JSON != "" || r.XML != "") {
			return nil, bad("Path", fmt.Errorf("set Path or JSON and XML, not both"))
		}
		switch {
		case r.Detect != "" && r.Pattern != "":
			return nil, bad("Pattern", fmt.Errorf("set Detect or Pattern, not both"))
		case r.Detect != "":
			d, err := builtinDetector(r.Detect)
			if err != nil {
				return nil, bad("Detect", err)
			}
			c.detect = d
		case r.Pattern != "":
			if len(r.Pattern) > MaxPattern {
				return nil, bad("Pattern", fmt.Errorf("pattern has %d bytes, limit %d", len(r.Pattern), MaxPattern))
			}
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				return nil, bad("Pattern", err)
			}
			if re.MatchString("") {
				return nil, bad("Pattern", fmt.Errorf("pattern matches the empty string"))
			}
			c.detect = regexDetector{re}
		}
		if r.When != "" {
			if r.JSON == "" {
				return nil, bad("When", fmt.Errorf("a condition needs a JSON path"))
			}
			cond, err := parseCondition(r.When)
			if err != nil {
				return nil, bad("When", err)
			}
			c.when = cond
		}
		if r.Path != "" {
			p, err := maskpath.Parse(r.Path)
			if err != nil {
				return nil, bad("Path", err)
			}
			jp, xp, err := compilePath(p)
			if err != nil {
				return nil, bad("Path", err)
			}
			m.jpaths = append(m.jpaths, jsonRule{rule: i, path: jp, flat: true})
			m.xpaths = append(m.xpaths, xmlRule{rule: i, path: xp})
		}
		if r.JSON != "" {
			p, err := parseJSONPath(r.JSON)
			if err != nil {
				return nil, bad("JSON", err)
			}
			m.jpaths = append(m.jpaths, jsonRule{rule: i, path: p})
		}
		if r.XML != "" {
			p, err := parseXMLPath(r.XML)
			if err != nil {
				return nil, bad("XML", err)
			}
			m.xpaths = append(m.xpaths, xmlRule{rule: i, path: p})
		}
		c.hasPath = r.Path != "" || r.JSON != "" || r.XML != ""
		c.skip = r.SkipUnmaskable
		if !c.hasPath {
			m.global = append(m.global, i)
		}
		c.label = r.Name
		c.path = r.Path + r.JSON
		if r.XML != "" {
			if c.path != "" {
				c.path += " | "
			}
			c.path += r.XML
		}
		if c.label == "" {
			switch {
			case c.path != "":
				c.label = c.path
			case r.Detect != "":
				c.label = string(r.Detect)
			default:
				c.label = "pattern"
			}
		}
		m.rules = append(m.rules, c)
	}
	m.allSkip = true
	for _, r := range m.rules {
		m.allSkip = m.allSkip && r.skip
	}
	return m, nil
}

// MaxBody returns the bound MaskResponse applies to bodies.
func (m *Masker) MaxBody() int64 { return m.maxBody }
