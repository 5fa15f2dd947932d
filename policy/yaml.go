package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// source is one YAML file being read: its name, its bytes and the offsets
// of its lines, so positions inside scalars can be computed.
type source struct {
	name  string
	data  []byte
	lines []int // byte offset of the start of each line
}

func newSource(name string, data []byte) *source {
	s := &source{name: name, data: data, lines: []int{0}}
	for i, c := range data {
		if c == '\n' {
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// pos is the position of node n.
func (s *source) pos(n *yaml.Node) Position {
	if n == nil {
		return Position{File: s.name}
	}
	return Position{File: s.name, Line: n.Line, Column: n.Column}
}

// offset converts a 1-based line and column (in characters) to a byte
// offset, or -1.
func (s *source) offset(line, col int) int {
	if line < 1 || line > len(s.lines) {
		return -1
	}
	off := s.lines[line-1]
	for c := 1; c < col && off < len(s.data) && s.data[off] != '\n'; c++ {
		_, size := utf8.DecodeRune(s.data[off:])
		off += size
	}
	return off
}

// position converts a byte offset to a Position.
func (s *source) position(off int) Position {
	i, found := slices.BinarySearch(s.lines, off)
	if !found {
		i--
	}
	if i < 0 {
		i = 0
	}
	col := utf8.RuneCount(s.data[s.lines[i]:min(off, len(s.data))]) + 1
	return Position{File: s.name, Line: i + 1, Column: col}
}

// scalarPos maps a byte offset inside the value of scalar node n to its
// position in the file. It walks the value and the file side by side from
// where the scalar's content starts: equal bytes advance both, white space
// and line breaks that folding, indentation or quoting add or remove are
// skipped on either side, and any other difference (an escape sequence)
// advances the file. This is exact for plain, literal and folded scalars
// and for quoted scalars without escapes, and close otherwise.
func (s *source) scalarPos(n *yaml.Node, target int) Position {
	start := s.offset(n.Line, n.Column)
	if start < 0 {
		return s.pos(n)
	}
	j := start
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// Content starts on the line after the indicator.
		if k := bytes.IndexByte(s.data[j:], '\n'); k >= 0 {
			j += k + 1
		} else {
			return s.pos(n)
		}
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		j++
	}
	v := n.Value
	target = min(target, len(v))
	i := 0
	for i < target && j < len(s.data) {
		switch {
		case v[i] == s.data[j]:
			i++
			j++
		case isSpace(s.data[j]):
			j++
		case isSpace(v[i]):
			i++
		default:
			j++
		}
	}
	if i < len(v) && !isSpace(v[i]) {
		for j < len(s.data) && isSpace(s.data[j]) {
			j++
		}
	}
	return s.position(j)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// ydec reads YAML nodes strictly: every mapping key must be known, every
// value must have the expected kind, and every problem is reported with
// its position.
type ydec struct {
	src   *source
	errs  *errs
	rule  string // rule name for errors, if any
	nodes int    // free-form values read so far, bounded by maxValueNodes
}

// maxValueNodes bounds the free-form values (params, claims, arguments)
// one file may expand to, so that aliases cannot blow up memory.
const maxValueNodes = 100_000

func (d *ydec) fail(n *yaml.Node, field, format string, args ...any) {
	d.errs.add(&Error{Pos: d.src.pos(n), Rule: d.rule, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// parseDocument parses data as exactly one YAML document and returns its
// root node (nil with an error recorded when that fails).
func (d *ydec) parseDocument() *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(d.src.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs.add(&Error{Pos: Position{File: d.src.name}, Msg: "the file is empty"})
		} else {
			d.errs.add(&Error{Pos: yamlErrorPos(d.src.name, err), Msg: yamlErrorMsg(err)})
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errs.add(&Error{Pos: d.src.pos(&extra), Msg: "more than one YAML document in the file"})
		return nil
	} else if !errors.Is(err, io.EOF) {
		d.errs.add(&Error{Pos: yamlErrorPos(d.src.name, err), Msg: yamlErrorMsg(err)})
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		d.errs.add(&Error{Pos: Position{File: d.src.name}, Msg: "the file is empty"})
		return nil
	}
	return doc.Content[0]
}

// yamlErrorPos digs "line N" out of a yaml.v3 syntax error.
func yamlErrorPos(file string, err error) Position {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "line "); ok {
		end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
		if end < 0 {
			end = len(rest)
		}
		if n, err := strconv.Atoi(rest[:end]); err == nil {
			return Position{File: file, Line: n}
		}
	}
	return Position{File: file}
}

func yamlErrorMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if _, rest, ok := strings.Cut(msg, "line "); ok {
		if _, after, ok := strings.Cut(rest, ": "); ok {
			return "YAML: " + after
		}
	}
	return "YAML: " + msg
}

// resolve follows aliases (bounded, so a cycle cannot loop).
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// fields walks a mapping, calling set for each known key and reporting
// unknown and repeated keys. what names the mapping in errors.
func (d *ydec) fields(n *yaml.Node, what string, known []string, set func(key string, k, v *yaml.Node)) {
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		d.fail(n, "", "%s must be a mapping", what)
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || v == nil {
			continue
		}
		key := k.Value
		if k.Kind != yaml.ScalarNode || !slices.Contains(known, key) {
			d.fail(k, "", "unknown field %q in %s (known fields: %s)", key, what, strings.Join(known, ", "))
			continue
		}
		if seen[key] {
			d.fail(k, "", "field %q repeated in %s", key, what)
			continue
		}
		seen[key] = true
		set(key, k, v)
	}
}

func (d *ydec) str(n *yaml.Node, field string) string {
	if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		d.fail(n, field, "want a string")
		return ""
	}
	return n.Value
}

func (d *ydec) boolean(n *yaml.Node, field string) bool {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.fail(n, field, "want true or false")
		return false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.fail(n, field, "want true or false")
	}
	return b
}

func (d *ydec) integer(n *yaml.Node, field string) int {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.fail(n, field, "want an integer")
		return 0
	}
	var i int
	if err := n.Decode(&i); err != nil {
		d.fail(n, field, "want an integer")
	}
	return i
}

func (d *ydec) duration(n *yaml.Node, field string) time.Duration {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		d.fail(n, field, "want a duration such as 25s or 10m")
		return 0
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		d.fail(n, field, "want a duration such as 25s or 10m: %q", n.Value)
		return 0
	}
	if v <= 0 {
		d.fail(n, field, "the duration must be positive")
	}
	return v
}

func (d *ydec) strings(n *yaml.Node, field string) []string {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, field, "want a list of strings")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for _, c := range n.Content {
		c = resolve(c)
		out = append(out, d.str(c, field))
	}
	return out
}

// timestamp reads an RFC 3339 time.
func (d *ydec) timestamp(n *yaml.Node, field string) time.Time {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, field, "want an RFC 3339 time such as 2026-01-05T10:00:00Z")
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		d.fail(n, field, "want an RFC 3339 time such as 2026-01-05T10:00:00Z: %q", n.Value)
	}
	return t
}

// anyMap reads a free-form mapping (params, claims, arguments) into
// map[string]any, as encoding/json would: numbers become int64 or float64.
func (d *ydec) anyMap(n *yaml.Node, field string) map[string]any {
	if n.Kind != yaml.MappingNode {
		d.fail(n, field, "want a mapping")
		return nil
	}
	v, ok := d.anyValue(n, field, 0).(map[string]any)
	if !ok {
		return nil
	}
	return v
}

func (d *ydec) anyValue(n *yaml.Node, field string, depth int) any {
	n = resolve(n)
	if n == nil {
		return nil
	}
	if depth > 32 {
		d.fail(n, field, "nested too deeply")
		return nil
	}
	if d.nodes++; d.nodes > maxValueNodes {
		if d.nodes == maxValueNodes+1 {
			d.fail(n, field, "more than %d values in the file (alias expansion?)", maxValueNodes)
		}
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := resolve(n.Content[i])
			if k == nil || k.Kind != yaml.ScalarNode {
				d.fail(n.Content[i], field, "map keys must be strings")
				continue
			}
			m[k.Value] = d.anyValue(n.Content[i+1], field, depth+1)
		}
		return m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			l = append(l, d.anyValue(c, field, depth+1))
		}
		return l
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil
		case "!!bool":
			var b bool
			_ = n.Decode(&b)
			return b
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil {
				d.fail(n, field, "integer out of range: %s", n.Value)
			}
			return i
		case "!!float":
			var f float64
			_ = n.Decode(&f)
			return f
		}
		return n.Value
	}
	d.fail(n, field, "unsupported YAML value")
	return nil
}
