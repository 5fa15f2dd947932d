package mask

import (
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// MaskJSON masks a JSON document. It validates the whole document (RFC
// 8259 grammar, nesting up to MaxDepth) in the same single pass that
// matches paths and runs detectors; an invalid document yields a
// *SyntaxError and no output. When nothing is masked the input slice itself
// is returned.
func (m *Masker) MaskJSON(doc []byte) ([]byte, *Report, error) {
	w, _ := m.jpool.Get().(*jwalker)
	if w == nil {
		w = new(jwalker)
	}
	defer m.putJSON(w)
	*w = jwalker{m: m, doc: doc, counts: make([]int, len(m.rules)),
		arena: w.arena[:0], edits: w.edits[:0], repl: w.repl[:0], text: w.text[:0], out: w.out[:0], hits: w.hits[:0], spans: w.spans[:0], hash: w.hash}
	for i := range m.jpaths {
		jr := &m.jpaths[i]
		if c := m.rules[jr.rule].when; c != nil && !c.eval(doc) {
			continue
		}
		w.arena = append(w.arena, jstate{path: int32(i)})
	}
	w.ws()
	if w.i == len(doc) {
		return nil, nil, w.fail("empty document")
	}
	start := w.i
	rm, err := w.value(0, len(w.arena), -1, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if rm {
		// The root cannot be removed: redact it instead.
		w.addEdit(start, w.i, append(w.repl, `"`+Marker+`"`...))
	}
	w.ws()
	if w.i != len(doc) {
		return nil, nil, w.fail("data after the top-level value")
	}
	out, err := w.apply()
	if err != nil {
		return nil, nil, err
	}
	return out, m.report(JSON, w.counts), nil
}

// putJSON returns a walker's buffers to the pool, unless they grew past
// what is worth keeping.
func (m *Masker) putJSON(w *jwalker) {
	if cap(w.repl) > 4<<20 || cap(w.edits) > 1<<18 {
		return
	}
	w.m, w.doc, w.counts = nil, nil, nil
	m.jpool.Put(w)
}

// jstate is a path partly matched: path indexes Masker.jpaths, pos the
// next component to match.
type jstate struct {
	path int32
	pos  int32
}

// edit replaces doc[start:end] with repl[off:off+n].
type edit struct {
	start, end int
	off, n     int
}

type jwalker struct {
	m      *Masker
	doc    []byte
	i      int
	depth  int
	arena  []jstate // states, used as a stack
	dets   []int32  // scoped detector rules, used as a stack
	edits  []edit
	repl   []byte // replacement bytes of all edits
	counts []int
	text   []byte // decoded string scratch
	out    []byte // masked string scratch
	hits   []hit
	spans  []span
	hash   hasher
}

func (w *jwalker) fail(msg string) error {
	return &SyntaxError{Format: JSON, Offset: int64(w.i), Msg: msg}
}

// addEdit records that doc[start:end] becomes the bytes that buf added
// past the end of w.repl (buf must be w.repl with bytes appended).
func (w *jwalker) addEdit(start, end int, buf []byte) {
	off := len(w.repl)
	w.edits = append(w.edits, edit{start: start, end: end, off: off, n: len(buf) - off})
	w.repl = buf
}

func (w *jwalker) ws() {
	for w.i < len(w.doc) {
		switch w.doc[w.i] {
		case ' ', '\t', '\n', '\r':
			w.i++
		default:
			return
		}
	}
}

// plain reports whether there is nothing to do below the current value.
func (w *jwalker) plain(slo, shi int, bound int, dets []int32) bool {
	return slo == shi && bound < 0 && len(dets) == 0 && len(w.m.global) == 0
}

// value walks the value at w.i. States arena[slo:shi] reach this value
// with components left to match; bound is the rule (or -1) masking every
// string below; dets are scoped detector rules for strings below; key is
// the raw name of the nearest enclosing member. It reports whether the
// value must be removed (a Remove detector hit on a string).
func (w *jwalker) value(slo, shi int, bound int, dets []int32, key []byte) (bool, error) {
	if w.i >= len(w.doc) {
		return false, w.fail("unexpected end of document")
	}
	if w.plain(slo, shi, bound, dets) {
		return false, w.skip()
	}
	switch c := w.doc[w.i]; c {
	case '{':
		return false, w.object(slo, shi, bound, dets)
	case '[':
		return false, w.array(slo, shi, bound, dets, key)
	case '"':
		return w.str(bound, dets, key)
	default:
		return false, w.scalar()
	}
}

// match computes the states that follow from arena[slo:shi] on a member
// key (isIndex false) or on array index idx (with raw, the element, for
// queries). It pushes the continuing states on the arena and returns what
// the completed paths ask for this value.
func (w *jwalker) match(slo, shi int, key []byte, idx int, raw []byte, found []bool) (bound int, remove int, dets []int32) {
	bound, remove = -1, -1
	dets = nil
	var k string
	if idx < 0 {
		k = keyString(key)
	}
	for s := slo; s < shi; s++ {
		st := w.arena[s]
		jr := &w.m.jpaths[st.path]
		if idx >= 0 && jr.flat {
			// Arrays are transparent to maskpath paths: each element
			// goes on from where the array stood.
			w.arena = append(w.arena, st)
			continue
		}
		pos := st.pos
		c := &jr.path[pos]
		if c.kind == compDeep {
			// "**" matches this member and possibly more below it; the
			// component after it (never another "**", never missing) may
			// match this member too.
			w.arena = append(w.arena, st)
			pos++
			c = &jr.path[pos]
		}
		ok := false
		if idx < 0 {
			switch c.kind {
			case compKey:
				ok = k == c.key
			case compGlob:
				ok = globMatch(c.key, k)
			}
		} else {
			switch c.kind {
			case compKey:
				ok = c.index == idx
			case compAll:
				ok = true
			case compFirst:
				if !found[s-slo] && c.cond.eval(raw) {
					ok, found[s-slo] = true, true
				}
			case compQueryAll:
				ok = c.cond.eval(raw)
			}
		}
		if !ok {
			continue
		}
		if int(pos)+1 < len(jr.path) {
			w.arena = append(w.arena, jstate{st.path, pos + 1})
			continue
		}
		dets = w.m.rules[jr.rule].hit(jr.rule, &bound, &remove, dets)
	}
	return bound, remove, dets
}

// pushDets returns the scoped detectors for a child: the parent's plus
// the newly matched ones.
func (w *jwalker) pushDets(parent, added []int32) []int32 {
	if len(added) == 0 {
		return parent
	}
	d := make([]int32, 0, len(parent)+len(added))
	return append(append(d, parent...), added...)
}

// removal tracks which members of a container are removed so that the
// commas stay right: while no member has been kept, a removed member takes
// the separator after it; afterwards it takes the separator before it.
type removal struct {
	kept    bool
	pending int // start of a removed leading member, or -1
	prevEnd int // end of the previous member's value
}

func (r *removal) begin(w *jwalker, start int) {
	if r.pending >= 0 {
		w.addEdit(r.pending, start, w.repl)
		r.pending = -1
	}
}

func (r *removal) end(w *jwalker, start, end int, removed bool) {
	switch {
	case !removed:
		r.kept = true
	case r.kept:
		w.addEdit(r.prevEnd, end, w.repl)
	default:
		r.pending = start
	}
	r.prevEnd = end
}

func (r *removal) close(w *jwalker) {
	if r.pending >= 0 {
		w.addEdit(r.pending, r.prevEnd, w.repl)
	}
}

func (w *jwalker) object(slo, shi int, bound int, dets []int32) error {
	w.depth++
	if w.depth > MaxDepth {
		return w.fail("nesting too deep")
	}
	w.i++ // '{'
	w.ws()
	if w.i < len(w.doc) && w.doc[w.i] == '}' {
		w.i++
		w.depth--
		return nil
	}
	rm := removal{pending: -1}
	for {
		if w.i >= len(w.doc) || w.doc[w.i] != '"' {
			return w.fail("expected a member name")
		}
		start := w.i
		rm.begin(w, start)
		ks, ke, err := w.scanString()
		if err != nil {
			return err
		}
		key := w.doc[ks:ke]
		w.ws()
		if w.i >= len(w.doc) || w.doc[w.i] != ':' {
			return w.fail("expected ':'")
		}
		w.i++
		w.ws()
		top := len(w.arena)
		b, r, added := w.match(slo, shi, key, -1, nil, nil)
		if b < 0 {
			b = bound
		}
		if done, err := w.member(&rm, start, top, b, r, w.pushDets(dets, added), key, '}'); done || err != nil {
			return err
		}
	}
}

func (w *jwalker) array(slo, shi int, bound int, dets []int32, key []byte) error {
	w.depth++
	if w.depth > MaxDepth {
		return w.fail("nesting too deep")
	}
	w.i++ // '['
	w.ws()
	if w.i < len(w.doc) && w.doc[w.i] == ']' {
		w.i++
		w.depth--
		return nil
	}
	// Queries read each element before it is walked. A condition on a
	// member path is evaluated by gjson from the element's first byte (it
	// reads no further than that element); a condition on the element
	// itself needs the element's bounds, found by a validating skip.
	var found []bool
	needRaw := false
	for s := slo; s < shi; s++ {
		st := w.arena[s]
		c := &w.m.jpaths[st.path].path[st.pos]
		if c.kind == compFirst || c.kind == compQueryAll {
			if found == nil {
				found = make([]bool, shi-slo)
			}
			if c.cond.path == "" {
				needRaw = true
			}
		}
	}
	rm := removal{pending: -1}
	for idx := 0; ; idx++ {
		start := w.i
		rm.begin(w, start)
		var raw []byte
		switch {
		case needRaw:
			if err := w.skip(); err != nil {
				return err
			}
			raw = w.doc[start:w.i]
			w.i = start
		case found != nil:
			raw = w.doc[start:]
		}
		top := len(w.arena)
		b, r, added := w.match(slo, shi, nil, idx, raw, found)
		if b < 0 {
			b = bound
		}
		if done, err := w.member(&rm, start, top, b, r, w.pushDets(dets, added), key, ']'); done || err != nil {
			return err
		}
	}
}

// member walks the value of an object member or an array element that
// starts at start (its match gave bound b and removal rule r), records
// whether it was removed, and consumes the ',' after it or the closing
// delimiter; done reports the end of the object or array.
func (w *jwalker) member(rm *removal, start, top, b, r int, dets []int32, key []byte, closing byte) (done bool, err error) {
	removed := false
	if r >= 0 {
		if err := w.skip(); err != nil {
			return false, err
		}
		w.counts[r]++
		removed = true
	} else if removed, err = w.value(top, len(w.arena), b, dets, key); err != nil {
		return false, err
	}
	w.arena = w.arena[:top]
	rm.end(w, start, w.i, removed)
	w.ws()
	what := "object"
	if closing == ']' {
		what = "array"
	}
	if w.i >= len(w.doc) {
		return false, w.fail("unexpected end of " + what)
	}
	switch w.doc[w.i] {
	case ',':
		w.i++
		w.ws()
		return false, nil
	case closing:
		w.i++
		rm.close(w)
		w.depth--
		return true, nil
	}
	return false, w.fail("expected ',' or '" + string(closing) + "'")
}

// str masks the string at w.i as bound and the detectors ask.
func (w *jwalker) str(bound int, dets []int32, key []byte) (bool, error) {
	start := w.i
	cs, ce, err := w.scanString()
	if err != nil {
		return false, err
	}
	raw := w.doc[cs:ce]
	if bound >= 0 && w.m.rules[bound].strategy == Redact {
		w.addEdit(start, w.i, append(w.repl, `"`+Marker+`"`...))
		w.counts[bound]++
		return false, nil
	}
	text := raw
	for _, c := range raw {
		if c == '\\' {
			w.text = decodeJSONString(w.text[:0], raw)
			text = w.text
			break
		}
	}
	s := unsafe.String(unsafe.SliceData(text), len(text))
	if bound >= 0 {
		w.out = w.m.replace(w.out[:0], &w.m.rules[bound], s, &w.hash)
		w.addEdit(start, w.i, appendJSONString(w.repl, w.out))
		w.counts[bound]++
		return false, nil
	}
	var remove bool
	w.hits, w.spans, remove = w.m.detect(w.hits, w.spans, s, key, dets)
	if len(w.hits) == 0 {
		return false, nil
	}
	if remove {
		for _, h := range w.hits {
			if w.m.rules[h.rule].strategy == Remove {
				w.counts[h.rule]++
				break
			}
		}
		return true, nil
	}
	w.out = w.m.rewrite(w.out[:0], s, w.hits, w.counts, &w.hash)
	w.addEdit(start, w.i, appendJSONString(w.repl, w.out))
	return false, nil
}

// strStop marks bytes that end the fast scan of a string's contents.
var strStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// scanString validates the string starting at w.i (a '"') and moves past
// it, returning the bounds of its raw contents.
func (w *jwalker) scanString() (int, int, error) {
	d := w.doc
	i := w.i + 1
	start := i
	for {
		for i < len(d) && !strStop[d[i]] {
			i++
		}
		if i >= len(d) {
			w.i = i
			return 0, 0, w.fail("unterminated string")
		}
		switch c := d[i]; {
		case c == '"':
			w.i = i + 1
			return start, i, nil
		case c == '\\':
			if i+1 >= len(d) {
				w.i = i
				return 0, 0, w.fail("unterminated string")
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					w.i = i
					return 0, 0, w.fail("bad \\u escape")
				}
				i += 6
			default:
				w.i = i
				return 0, 0, w.fail("bad escape")
			}
		default:
			w.i = i
			return 0, 0, w.fail("control character in string")
		}
	}
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// scalar validates a number, true, false or null.
func (w *jwalker) scalar() error {
	d := w.doc
	switch d[w.i] {
	case 't':
		return w.literal("true")
	case 'f':
		return w.literal("false")
	case 'n':
		return w.literal("null")
	}
	i := w.i
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		w.i = i
		return w.fail("invalid value")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			w.i = i
			return w.fail("invalid number")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			w.i = i
			return w.fail("invalid number")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	w.i = i
	return nil
}

func (w *jwalker) literal(lit string) error {
	if len(w.doc)-w.i < len(lit) || string(w.doc[w.i:w.i+len(lit)]) != lit {
		return w.fail("invalid value")
	}
	w.i += len(lit)
	return nil
}

// skip validates the value at w.i and moves past it, masking nothing.
func (w *jwalker) skip() error {
	if w.i >= len(w.doc) {
		return w.fail("unexpected end of document")
	}
	switch w.doc[w.i] {
	case '"':
		_, _, err := w.scanString()
		return err
	case '{', '[':
	default:
		return w.scalar()
	}
	open := w.doc[w.i]
	w.depth++
	if w.depth > MaxDepth {
		return w.fail("nesting too deep")
	}
	w.i++
	w.ws()
	closer := byte('}')
	if open == '[' {
		closer = ']'
	}
	if w.i < len(w.doc) && w.doc[w.i] == closer {
		w.i++
		w.depth--
		return nil
	}
	for {
		if open == '{' {
			if w.i >= len(w.doc) || w.doc[w.i] != '"' {
				return w.fail("expected a member name")
			}
			if _, _, err := w.scanString(); err != nil {
				return err
			}
			w.ws()
			if w.i >= len(w.doc) || w.doc[w.i] != ':' {
				return w.fail("expected ':'")
			}
			w.i++
			w.ws()
		}
		if err := w.skip(); err != nil {
			return err
		}
		w.ws()
		if w.i >= len(w.doc) {
			return w.fail("unexpected end of document")
		}
		switch w.doc[w.i] {
		case ',':
			w.i++
			w.ws()
		case closer:
			w.i++
			w.depth--
			return nil
		default:
			return w.fail("expected ',' or '" + string(closer) + "'")
		}
	}
}

// apply builds the output from the document and the edits, which the walk
// produced in order and without overlap (checked: a violation fails
// closed rather than emit a half-masked document).
func (w *jwalker) apply() ([]byte, error) {
	if len(w.edits) == 0 {
		return w.doc, nil
	}
	size := len(w.doc)
	prev := 0
	for _, e := range w.edits {
		if e.start < prev || e.end < e.start {
			return nil, &SyntaxError{Format: JSON, Offset: int64(e.start), Msg: "internal error: overlapping edits"}
		}
		size += e.n - (e.end - e.start)
		prev = e.end
	}
	out := make([]byte, 0, size)
	prev = 0
	for _, e := range w.edits {
		out = append(out, w.doc[prev:e.start]...)
		out = append(out, w.repl[e.off:e.off+e.n]...)
		prev = e.end
	}
	return append(out, w.doc[prev:]...), nil
}

// keyString returns the unescaped member name.
func keyString(raw []byte) string {
	for _, c := range raw {
		if c == '\\' {
			return string(decodeJSONString(nil, raw))
		}
	}
	return unsafe.String(unsafe.SliceData(raw), len(raw))
}

// decodeJSONString appends the unescaped form of valid raw string
// contents. Lone surrogates become U+FFFD.
func decodeJSONString(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			dst = append(dst, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hex4(raw[i+3 : i+7])
				}
				if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
					i += 6
					r = d
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, raw[i])
		}
	}
	return dst
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendJSONString appends s as a quoted JSON string. Invalid UTF-8
// becomes U+FFFD.
func appendJSONString(dst, s []byte) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&15])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
