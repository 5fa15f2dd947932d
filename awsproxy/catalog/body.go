package catalog

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// JSON bodies are read by a small scanner that only descends where asked:
// the top-level object for parameters, a few fixed paths for resources
// (DynamoDB's RequestItems and TransactItems). It reads at most MaxBody
// bytes, never recurses on the input's nesting (skipping a nested value
// counts brackets), and gives up quietly on malformed input.

type jscan struct {
	b []byte
	i int
}

func newScan(body []byte) *jscan {
	if len(body) > MaxBody {
		body = body[:MaxBody]
	}
	return &jscan{b: body}
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// str reads a string token and returns its unescaped value.
func (s *jscan) str() (string, bool) {
	if s.peek() != '"' {
		return "", false
	}
	s.i++
	start := s.i
	escaped := false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			raw := s.b[start:s.i]
			s.i++
			if !escaped {
				return string(raw), true
			}
			return unescapeJSON(raw)
		case c == '\\':
			escaped = true
			s.i += 2
		case c < 0x20:
			return "", false
		default:
			s.i++
		}
	}
	return "", false
}

func unescapeJSON(raw []byte) (string, bool) {
	var b strings.Builder
	b.Grow(len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(raw) {
			return "", false
		}
		switch raw[i] {
		case '"', '\\', '/':
			b.WriteByte(raw[i])
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n := hex4(raw[i+1:])
			if n == 0 {
				return "", false
			}
			i += n
			if utf16.IsSurrogate(r) {
				if i+2 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					if r2, n2 := hex4(raw[i+3:]); n2 > 0 {
						if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
							r = d
							i += 2 + n2
						}
					}
				}
			}
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	return b.String(), true
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, 0
	}
	v, err := strconv.ParseUint(string(b[:4]), 16, 32)
	if err != nil {
		return 0, 0
	}
	return rune(v), 4
}

// scalar reads a string, number, true or false; null and other values
// report false (and a nested value is skipped).
func (s *jscan) scalar() (string, bool) {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '-' || '0' <= c && c <= '9' || c == 't' || c == 'f':
		start := s.i
		for s.i < len(s.b) && strings.IndexByte(",}] \t\r\n", s.b[s.i]) < 0 {
			s.i++
		}
		return string(s.b[start:s.i]), true
	}
	s.skip()
	return "", false
}

// skip passes over one value of any kind. Nesting is followed with a
// counter, not recursion.
func (s *jscan) skip() bool {
	depth := 0
	for {
		switch c := s.peek(); c {
		case 0:
			return false
		case '"':
			if _, ok := s.str(); !ok {
				return false
			}
		case '{', '[':
			depth++
			s.i++
		case '}', ']':
			depth--
			s.i++
			if depth < 0 {
				return false
			}
		case ',', ':':
			if depth == 0 {
				return false
			}
			s.i++
		default:
			for s.i < len(s.b) && strings.IndexByte(",}]:\" \t\r\n{[", s.b[s.i]) < 0 {
				s.i++
			}
		}
		if depth == 0 {
			return true
		}
	}
}

// object calls fn for each member of the object at the cursor; fn must
// consume the value (or leave it to be skipped by returning false).
func (s *jscan) object(fn func(key string) bool) bool {
	if s.peek() != '{' {
		return false
	}
	s.i++
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		key, ok := s.str()
		if !ok || s.peek() != ':' {
			return false
		}
		s.i++
		if !fn(key) && !s.skip() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// array calls fn for each element of the array at the cursor, like object.
func (s *jscan) array(fn func() bool) bool {
	if s.peek() != '[' {
		return false
	}
	s.i++
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		if !fn() && !s.skip() {
			return false
		}
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

// fromJSON extracts the top-level body members of op from a JSON body.
func (p *params) fromJSON(op *Operation, body []byte) {
	if len(body) > MaxBody {
		p.truncated = true
	}
	s := newScan(body)
	s.object(func(key string) bool {
		m := op.member('b', key)
		if m == nil || m.Sensitive {
			return false
		}
		switch m.kind {
		case kindScalar:
			if v, ok := s.scalar(); ok {
				p.add(m.Name, v)
			}
			return true
		case kindList:
			return s.array(func() bool {
				if v, ok := s.scalar(); ok {
					if p.full(m.Name) {
						p.truncated = true
					} else {
						p.add(m.Name, v)
					}
				}
				return true
			})
		case kindMap:
			return s.object(func(k string) bool {
				if p.full(m.Name) {
					p.truncated = true
				} else {
					p.add(m.Name, k)
				}
				return false
			})
		}
		return false
	})
}

// jsonStrings collects the string values at a path of a JSON body: each
// element is a member name, "[]" (every array element), "*" (every
// member value) or, last, "{}" (the keys of an object). At most
// MaxResources values are returned.
func jsonStrings(body []byte, path ...string) []string {
	var out []string
	s := newScan(body)
	var walk func(depth int) bool
	walk = func(depth int) bool {
		if len(out) >= MaxResources {
			return false
		}
		if depth == len(path) {
			if v, ok := s.scalar(); ok {
				out = append(out, v)
			}
			return true
		}
		switch step := path[depth]; step {
		case "[]":
			return s.array(func() bool { return walk(depth + 1) })
		case "*":
			return s.object(func(string) bool { return walk(depth + 1) })
		case "{}":
			return s.object(func(k string) bool {
				if len(out) < MaxResources {
					out = append(out, k)
				}
				return false
			})
		default:
			return s.object(func(k string) bool {
				if k == step {
					return walk(depth + 1)
				}
				return false
			})
		}
	}
	walk(0)
	return out
}

// formBody is a parsed application/x-www-form-urlencoded body (or query
// string) with its pairs in order.
type formBody struct {
	pairs     []kv
	truncated bool
}

func (f *formBody) get(key string) string {
	if f == nil {
		return ""
	}
	for _, p := range f.pairs {
		if p.name == key {
			return p.value
		}
	}
	return ""
}

// values returns every value of key.
func (f *formBody) values(key string) []string {
	var out []string
	for _, p := range f.pairs {
		if p.name == key {
			out = append(out, p.value)
		}
	}
	return out
}

// parseForm parses at most MaxBody bytes and maxFormPairs pairs of a form
// body. Pairs that do not decode are dropped.
func parseForm(body []byte) *formBody {
	f := &formBody{}
	if len(body) > MaxBody {
		body = body[:MaxBody]
		f.truncated = true
	}
	s := string(body)
	for s != "" {
		if len(f.pairs) == maxFormPairs {
			f.truncated = true
			break
		}
		var part string
		part, s, _ = strings.Cut(s, "&")
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			continue
		}
		f.pairs = append(f.pairs, kv{dk, dv})
	}
	return f
}

// queryForm turns a parsed query string into a formBody, keys sorted so
// that the result does not depend on map order.
func queryForm(q map[string][]string) *formBody {
	f := &formBody{}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range q[k] {
			if len(f.pairs) == maxFormPairs {
				f.truncated = true
				return f
			}
			f.pairs = append(f.pairs, kv{k, v})
		}
	}
	return f
}

// fromForm extracts the top-level members of a query-protocol operation:
// Name=value for scalars, Name.member.N / Name.N (and EC2's Name.N) for
// lists of scalars.
func (p *params) fromForm(op *Operation, f *formBody) {
	if f.truncated {
		p.truncated = true
	}
	for _, pr := range f.pairs {
		head, tail, dotted := strings.Cut(pr.name, ".")
		if !dotted && (head == "Action" || head == "Version") {
			continue
		}
		m := op.member('b', head)
		if m == nil || m.Sensitive {
			continue
		}
		switch {
		case !dotted && m.kind == kindScalar:
		case dotted && m.kind == kindList && listIndex(tail):
		default:
			continue
		}
		if p.full(m.Name) {
			p.truncated = true
			continue
		}
		p.add(m.Name, pr.value)
	}
}

// listIndex accepts "N", "member.N" and "<name>.N" list element suffixes.
func listIndex(tail string) bool {
	if i := strings.IndexByte(tail, '.'); i >= 0 {
		tail = tail[i+1:]
	}
	if tail == "" || len(tail) > 4 {
		return false
	}
	for i := 0; i < len(tail); i++ {
		if tail[i] < '0' || tail[i] > '9' {
			return false
		}
	}
	return true
}
