package mask

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/tidwall/gjson"

	"github.com/gatehouse-dev/gatehouse/mask/maskpath"
)

// A jsonPath is a parsed gjson path: a list of components matched one
// nesting level at a time.
type jsonPath []jsonComp

type compKind uint8

const (
	compKey      compKind = iota // literal key; all digits also selects that array index
	compGlob                     // key with * or ? wildcards (objects only)
	compAll                      // "#": every array element
	compFirst                    // "#(cond)": first array element where cond holds
	compQueryAll                 // "#(cond)#": every array element where cond holds
	compDeep                     // "**" of a maskpath path: zero or more members
)

type jsonComp struct {
	kind  compKind
	key   string // literal key (unescaped), or glob pattern (escapes kept)
	index int    // array index for an all-digit key, else -1
	cond  *condition
}

// parseJSONPath parses the supported subset of gjson path syntax; see the
// package doc. Everything outside the subset is refused with a reason.
func parseJSONPath(s string) (jsonPath, error) {
	if s == "" {
		return nil, errors.New("empty path")
	}
	if len(s) > MaxPattern {
		return nil, fmt.Errorf("path has %d bytes, limit %d", len(s), MaxPattern)
	}
	if !utf8.ValidString(s) {
		return nil, errors.New("path is not valid UTF-8")
	}
	var p jsonPath
	i := 0
	for {
		if i >= len(s) || s[i] == '.' {
			return nil, fmt.Errorf("empty component at offset %d", i)
		}
		var c jsonComp
		var err error
		c, i, err = parseComp(s, i)
		if err != nil {
			return nil, err
		}
		p = append(p, c)
		if i == len(s) {
			break
		}
		i++ // the '.'
		if i == len(s) {
			return nil, fmt.Errorf("path ends with '.'")
		}
	}
	return p, nil
}

// parseComp parses one component starting at s[i] and returns the index
// of the '.' that ends it, or len(s).
func parseComp(s string, i int) (jsonComp, int, error) {
	switch s[i] {
	case '#':
		if i+1 == len(s) {
			return jsonComp{}, 0, errors.New("a trailing '#' counts elements in gjson; to mask every element, name the array itself")
		}
		switch s[i+1] {
		case '.':
			return jsonComp{kind: compAll, index: -1}, i + 1, nil
		case '(':
			end, err := closeParen(s, i+2)
			if err != nil {
				return jsonComp{}, 0, err
			}
			cond, err := parseCondition(s[i+2 : end])
			if err != nil {
				return jsonComp{}, 0, fmt.Errorf("query at offset %d: %w", i, err)
			}
			c := jsonComp{kind: compFirst, index: -1, cond: cond}
			j := end + 1
			if j < len(s) && s[j] == '#' {
				c.kind = compQueryAll
				j++
			}
			if j < len(s) && s[j] != '.' {
				return jsonComp{}, 0, fmt.Errorf("unexpected %q after query at offset %d", s[j], j)
			}
			return c, j, nil
		default:
			return jsonComp{}, 0, fmt.Errorf("'#' at offset %d must be followed by '.' or '('", i)
		}
	case '@':
		return jsonComp{}, 0, fmt.Errorf("modifiers (%q) are not supported", s[i:])
	case '[', '{':
		return jsonComp{}, 0, errors.New("multipaths are not supported")
	case '!':
		return jsonComp{}, 0, errors.New("literals are not supported")
	}
	var key strings.Builder
	glob := false
	j := i
	for ; j < len(s) && s[j] != '.'; j++ {
		switch s[j] {
		case '\\':
			j++
			if j == len(s) {
				return jsonComp{}, 0, errors.New("path ends with an escape")
			}
			// An escaped wildcard stays escaped in a glob pattern; the
			// literal key is built unescaped below when there is no glob.
		case '*', '?':
			glob = true
		case '|':
			return jsonComp{}, 0, errors.New("pipes are not supported")
		}
	}
	raw := s[i:j]
	if glob {
		return jsonComp{kind: compGlob, key: raw, index: -1}, j, nil
	}
	for k := 0; k < len(raw); k++ {
		if raw[k] == '\\' {
			k++
		}
		key.WriteByte(raw[k])
	}
	c := jsonComp{kind: compKey, key: key.String(), index: -1}
	if isIndex(raw) {
		if n, err := strconv.Atoi(raw); err == nil {
			c.index = n
		}
	}
	return c, j, nil
}

// isIndex reports whether s is an array index: all digits (leading zeros
// allowed, as in gjson).
func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// closeParen finds the ')' closing a query whose text starts at s[i],
// skipping quoted strings.
func closeParen(s string, i int) (int, error) {
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '"':
			for j++; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			if j >= len(s) {
				return 0, errors.New("unterminated string in query")
			}
		case '\\':
			j++
		case '(':
			return 0, errors.New("nested queries are not supported")
		case ')':
			return j, nil
		}
	}
	return 0, errors.New("query has no closing ')'")
}

// condition is a gjson query condition: path op value.
type condition struct {
	path string // gjson path relative to the element; empty means the element
	op   string
	kind gjson.Type // String, Number, True, False or Null
	str  string
	num  float64
}

// parseCondition parses `path op value` with op one of == != < <= > >= %
// !% and value a JSON string, number, true, false or null.
func parseCondition(s string) (*condition, error) {
	if len(s) > MaxPattern {
		return nil, fmt.Errorf("condition has %d bytes, limit %d", len(s), MaxPattern)
	}
	j := 0
	for ; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if strings.IndexByte("=!<>%", s[j]) >= 0 {
			break
		}
	}
	if j >= len(s) {
		return nil, fmt.Errorf("condition %q has no operator (== != < <= > >= %% !%%)", s)
	}
	c := &condition{path: strings.TrimSpace(s[:j])}
	if c.path != "" {
		p, err := parseJSONPath(c.path)
		if err != nil {
			return nil, fmt.Errorf("condition path: %w", err)
		}
		for _, comp := range p {
			if comp.kind != compKey && comp.kind != compGlob {
				return nil, errors.New("condition path may not contain '#'")
			}
		}
	}
	rest := s[j:]
	for _, op := range []string{"==", "!=", "<=", ">=", "!%", "<", ">", "%"} {
		if strings.HasPrefix(rest, op) {
			c.op = op
			rest = rest[len(op):]
			break
		}
	}
	if c.op == "" {
		return nil, fmt.Errorf("unknown operator in %q", s)
	}
	v := strings.TrimSpace(rest)
	if v == "" {
		return nil, errors.New("condition has no value")
	}
	if !gjson.Valid(v) || (v[0] == '[' || v[0] == '{') {
		return nil, fmt.Errorf("value %q is not a JSON string, number, true, false or null", v)
	}
	r := gjson.Parse(v)
	c.kind, c.str, c.num = r.Type, r.Str, r.Num
	if c.kind != gjson.String && (c.op == "%" || c.op == "!%") {
		return nil, fmt.Errorf("operator %s needs a string value", c.op)
	}
	if (c.kind == gjson.True || c.kind == gjson.False || c.kind == gjson.Null) && c.op != "==" && c.op != "!=" {
		return nil, fmt.Errorf("operator %s needs a string or number value", c.op)
	}
	return c, nil
}

// eval evaluates the condition against a JSON value (an array element, or
// the whole document for Rule.When). A missing value never matches; a
// value of another type matches only != and !%.
//
// raw is only read during the call (gjson is given a string view of it,
// so nothing is copied).
func (c *condition) eval(raw []byte) bool {
	doc := unsafe.String(unsafe.SliceData(raw), len(raw))
	var v gjson.Result
	if c.path == "" {
		v = gjson.Parse(doc)
	} else {
		v = gjson.Get(doc, c.path)
	}
	if !v.Exists() {
		return false
	}
	negated := c.op == "!=" || c.op == "!%"
	if v.Type != c.kind {
		return negated
	}
	switch c.kind {
	case gjson.String:
		s := v.Str
		switch c.op {
		case "==":
			return s == c.str
		case "!=":
			return s != c.str
		case "<":
			return s < c.str
		case "<=":
			return s <= c.str
		case ">":
			return s > c.str
		case ">=":
			return s >= c.str
		case "%":
			return globMatch(c.str, s)
		case "!%":
			return !globMatch(c.str, s)
		}
	case gjson.Number:
		n := v.Num
		switch c.op {
		case "==":
			return n == c.num
		case "!=":
			return n != c.num
		case "<":
			return n < c.num
		case "<=":
			return n <= c.num
		case ">":
			return n > c.num
		case ">=":
			return n >= c.num
		}
	default:
		return c.op == "=="
	}
	return false
}

// globMatch reports whether s matches pattern, where '*' matches any run
// of characters, '?' any one character and '\' escapes the next one.
func globMatch(pattern, s string) bool { return maskpath.MatchGlob(pattern, s) }
