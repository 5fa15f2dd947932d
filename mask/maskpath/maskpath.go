// Package maskpath is the one path syntax of mask rules written in policy
// files: a path names a value by the member names (JSON) or element names
// (XML) that lead to it, and the same path applies to a JSON body and to
// an XML body, whatever service or operation produced it.
//
// # Syntax
//
// A path is a list of segments separated by '.':
//
//	SecretString                  a member or element named SecretString, at any depth
//	aws.secret_access_key         secret_access_key directly inside aws, at any depth
//	$.Credentials.SecretKey       '$.' anchors the path at the document's top
//	Environment.Variables.*       '*' alone: one member or element of any name
//	**.password                   '**': zero or more levels (here the same as "password")
//	Credentials.Secret*           '*' and '?' inside a name are wildcards
//	a\.b                          '\' escapes a reserved character
//
// Without '$.' a path matches wherever its segments nest in that order,
// at any depth: it behaves as if it started with '**'. With '$.' the first
// segment names a member of the top-level JSON value, or a child element
// of the XML root element (the root element stands for the top-level
// value, whatever it is called). Arrays are transparent: a segment that
// meets a JSON array applies to each element, as repeated XML elements
// are each matched. A path selects every value it reaches; the mask
// package masks every string inside a selected object, array or element.
//
// Reserved characters, which a name can only contain escaped ('\.'),
// are the separator '.', the wildcards '*' and '?', '\' itself, and
//
//	$ # @ ! [ ] ( ) { } | / , = " ' : and white space
//
// so that a path written in another syntax (gjson '#' and queries, XPath
// '/' and '@', JSONPath '$..' and '[0]', XML prefixes) is refused at load
// with a reason instead of matching nothing. Escaping any other character
// is an error too, so every path has one spelling. Array indexes,
// conditions and attributes are not part of the syntax. A path is at most
// MaxLen bytes of valid UTF-8 with at most MaxSegments segments, it must
// not end with '**', and '**' must stand alone in its segment.
//
// # Why a package of its own
//
// Policies are checked when they load: a bad mask path is an error with
// file:line:column, never a surprise at the first call. The policy
// package cannot import package mask (policy, mask and audit do not
// import each other, so that each stays usable alone and policy keeps no
// dependency on how bodies are parsed), and mask must compile exactly the
// paths policy accepted. This package holds only the grammar: it imports
// nothing but the standard library, so policy validates with it, mask
// compiles with it, and the two cannot disagree.
package maskpath

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds on a path.
const (
	MaxLen      = 1024 // bytes
	MaxSegments = 32
)

// Kind is the kind of a Segment.
type Kind uint8

// The segment kinds.
const (
	// Name matches a member or element with exactly this name.
	Name Kind = iota
	// Glob matches names against a pattern with '*' and '?' wildcards
	// ("*" alone matches any name).
	Glob
	// Deep ("**") matches zero or more levels.
	Deep
)

// Segment is one step of a Path.
type Segment struct {
	Kind Kind
	// Text is the name (unescaped) for Name, the pattern for Glob (see
	// MatchGlob: '\' escapes a literal '*', '?' or '\'), "**" for Deep.
	Text string
}

// Match reports whether the segment matches one name. Deep matches any
// name.
func (s Segment) Match(name string) bool {
	switch s.Kind {
	case Name:
		return s.Text == name
	case Glob:
		return MatchGlob(s.Text, name)
	}
	return true
}

// Path is a parsed path. The zero Path is not valid.
type Path struct {
	// Anchored is true for paths written with '$.'.
	Anchored bool
	// Segments are the steps in order, never empty, never ending with Deep,
	// and never with two Deep segments in a row.
	Segments []Segment
}

// Error is a path that does not parse. Offset is the byte offset in the
// path where the problem is.
type Error struct {
	Path   string
	Offset int
	Msg    string
}

func (e *Error) Error() string {
	return fmt.Sprintf("maskpath: %q at offset %d: %s", e.Path, e.Offset, e.Msg)
}

// reserved are the characters a name holds only escaped (white space and
// control characters are reserved too).
const reserved = ".*?\\$#@![](){}|/,=\"':"

func isReserved(r rune) bool {
	return r < utf8.RuneSelf && strings.IndexByte(reserved, byte(r)) >= 0 || unicode.IsSpace(r)
}

// hint explains a reserved character met where a name was expected.
func hint(r rune) string {
	switch r {
	case '#':
		return "'#' is gjson syntax: arrays are transparent, so name the member inside the array directly (Parameters.Value)"
	case '[', ']':
		return "indexes and filters are not part of the syntax: arrays are transparent, so name the member inside the array directly"
	case '(', ')', '=', '"', '\'', '!':
		return "conditions are not part of the syntax"
	case '/':
		return "segments are separated by '.', not '/'"
	case '@':
		return "attributes and modifiers are not part of the syntax"
	case '$':
		return "'$' may only start the path, as '$.'"
	case ':':
		return "namespace prefixes are not part of the syntax: write the local name"
	case '{', '}', ',', '|':
		return "multipaths and pipes are not part of the syntax: write one mask entry per path"
	}
	if unicode.IsSpace(r) {
		return "white space must be escaped with '\\'"
	}
	return fmt.Sprintf("%q must be escaped with '\\'", r)
}

// Parse parses a path; see the package doc. Errors are *Error.
func Parse(s string) (Path, error) {
	fail := func(off int, format string, args ...any) (Path, error) {
		return Path{}, &Error{Path: s, Offset: off, Msg: fmt.Sprintf(format, args...)}
	}
	if s == "" {
		return fail(0, "empty path")
	}
	if len(s) > MaxLen {
		return fail(MaxLen, "path has %d bytes, limit %d", len(s), MaxLen)
	}
	if !utf8.ValidString(s) {
		for i, r := range s {
			if r == utf8.RuneError {
				return fail(i, "path is not valid UTF-8")
			}
		}
	}
	var p Path
	i := 0
	if strings.HasPrefix(s, "$") {
		if !strings.HasPrefix(s, "$.") {
			return fail(1, "'$' must be followed by '.'")
		}
		p.Anchored = true
		i = 2
	}
	for {
		start := i
		if i == len(s) {
			if i == 0 || s[i-1] == '.' {
				return fail(i, "path ends with '.'")
			}
			break
		}
		if s[i] == '.' {
			return fail(i, "empty segment")
		}
		var name, pat strings.Builder // unescaped name; glob pattern
		glob := false
		dbl, prevStar := -1, false // offset of an unescaped "**"
		for i < len(s) && s[i] != '.' {
			r, size := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == '\\':
				if i+1 == len(s) {
					return fail(i, "path ends with '\\'")
				}
				e, esize := utf8.DecodeRuneInString(s[i+1:])
				if e < 0x20 || unicode.IsControl(e) {
					return fail(i+1, "control character %q", e)
				}
				if !isReserved(e) {
					return fail(i, "'\\' escapes only reserved characters, not %q", e)
				}
				name.WriteRune(e)
				if e == '*' || e == '?' || e == '\\' {
					pat.WriteByte('\\')
				}
				pat.WriteRune(e)
				i += 1 + esize
				prevStar = false
				continue
			case r == '*' || r == '?':
				glob = true
				if r == '*' && prevStar && dbl < 0 {
					dbl = i - 1
				}
				name.WriteRune(r)
				pat.WriteRune(r)
			case r < 0x20 || r == 0x7f || unicode.IsControl(r):
				return fail(i, "control character %q", r)
			case isReserved(r):
				return fail(i, "%s", hint(r))
			default:
				name.WriteRune(r)
				pat.WriteRune(r)
			}
			prevStar = r == '*'
			i += size
		}
		seg := s[start:i]
		switch {
		case seg == "**":
			if n := len(p.Segments); n == 0 || p.Segments[n-1].Kind != Deep {
				p.Segments = append(p.Segments, Segment{Kind: Deep, Text: "**"})
			}
		case dbl >= 0:
			return fail(dbl, "'**' must stand alone in its segment")
		case glob:
			p.Segments = append(p.Segments, Segment{Kind: Glob, Text: pat.String()})
		default:
			p.Segments = append(p.Segments, Segment{Kind: Name, Text: name.String()})
		}
		if len(p.Segments) > MaxSegments {
			return fail(start, "more than %d segments", MaxSegments)
		}
		if i == len(s) {
			break
		}
		i++ // the '.'
	}
	if len(p.Segments) == 0 {
		return fail(len(s), "path names nothing")
	}
	if p.Segments[len(p.Segments)-1].Kind == Deep {
		return fail(len(s)-2, "path must not end with '**': name what to mask")
	}
	return p, nil
}

// String returns the path in canonical form (what Parse accepted, with
// repeated '**' segments folded).
func (p Path) String() string {
	var b strings.Builder
	if p.Anchored {
		b.WriteString("$.")
	}
	for i, s := range p.Segments {
		if i > 0 {
			b.WriteByte('.')
		}
		switch s.Kind {
		case Deep:
			b.WriteString("**")
		case Glob:
			escaped := false
			for _, r := range s.Text {
				switch {
				case escaped:
					escaped = false
				case r == '\\':
					escaped = true
				case r != '*' && r != '?' && isReserved(r):
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
		default:
			for _, r := range s.Text {
				if isReserved(r) {
					b.WriteByte('\\')
				}
				b.WriteRune(r)
			}
		}
	}
	return b.String()
}

// MatchGlob reports whether name matches pattern, where '*' matches any
// run of characters, '?' any one character and '\' makes the next
// character literal.
func MatchGlob(pattern, name string) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(name) {
		if p < len(pattern) {
			switch pattern[p] {
			case '*':
				starP, starI = p, i
				p++
				continue
			case '?':
				_, n := utf8.DecodeRuneInString(name[i:])
				p++
				i += n
				continue
			case '\\':
				if p+1 < len(pattern) && pattern[p+1] == name[i] {
					p += 2
					i++
					continue
				}
			default:
				if pattern[p] == name[i] {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(name[starI:])
		starI += n
		p, i = starP+1, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}
