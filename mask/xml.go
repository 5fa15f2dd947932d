package mask

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// xmlPath is a parsed element path. Segments are glob patterns over local
// names, or "**" for any number of elements. The path is matched with a
// set of positions (a bit set) carried from each element to its children.
type xmlPath struct {
	segs    []string
	literal []bool // segs[i] has no wildcard
}

// maxXMLSegs bounds the segments of an XML path (the match state is one
// 64-bit set).
const maxXMLSegs = 62

// parseXMLPath parses an element path; see the package doc.
func parseXMLPath(s string) (xmlPath, error) {
	if s == "" {
		return xmlPath{}, errors.New("empty path")
	}
	if len(s) > MaxPattern {
		return xmlPath{}, fmt.Errorf("path has %d bytes, limit %d", len(s), MaxPattern)
	}
	if !utf8.ValidString(s) {
		return xmlPath{}, errors.New("path is not valid UTF-8")
	}
	var p xmlPath
	switch {
	case strings.HasPrefix(s, "//"):
		s = s[2:]
		p.add("**")
	case strings.HasPrefix(s, "/"):
		s = s[1:]
	default:
		p.add("**")
	}
	if s == "" {
		return xmlPath{}, errors.New("path names no element")
	}
	for i, seg := range strings.Split(s, "/") {
		switch {
		case seg == "" && i == 0:
			return xmlPath{}, errors.New("path starts with three slashes")
		case seg == "":
			p.add("**") // "a//b"
			continue
		case seg == "**":
			p.add("**")
			continue
		}
		if strings.Contains(seg, "**") {
			return xmlPath{}, fmt.Errorf("segment %q: \"**\" must stand alone", seg)
		}
		if k := strings.IndexByte(seg, ':'); k >= 0 {
			seg = seg[k+1:] // namespaces are ignored: match the local name
			if seg == "" || strings.IndexByte(seg, ':') >= 0 {
				return xmlPath{}, fmt.Errorf("segment %q is not a name", s)
			}
		}
		if k := strings.IndexAny(seg, " \t\r\n<>&\"'=[]()@,|\\"); k >= 0 {
			return xmlPath{}, fmt.Errorf("segment %q: %q is not allowed in an element name", seg, seg[k])
		}
		p.add(seg)
	}
	if p.segs[len(p.segs)-1] == "**" {
		return xmlPath{}, errors.New("path must end with an element name or '*'")
	}
	if len(p.segs) > maxXMLSegs {
		return xmlPath{}, fmt.Errorf("path has more than %d segments", maxXMLSegs)
	}
	return p, nil
}

func (p *xmlPath) add(seg string) {
	if seg == "**" && len(p.segs) > 0 && p.segs[len(p.segs)-1] == "**" {
		return
	}
	p.segs = append(p.segs, seg)
	p.literal = append(p.literal, !strings.ContainsAny(seg, "*?"))
}

// closure adds the positions reachable by letting "**" match nothing.
func (p *xmlPath) closure(set uint64) uint64 {
	for i, s := range p.segs {
		if set&(1<<i) != 0 && s == "**" {
			set |= 1 << (i + 1)
		}
	}
	return set
}

func (p *xmlPath) start() uint64 { return p.closure(1) }

// step moves the set of positions over one element named name.
func (p *xmlPath) step(set uint64, name string) uint64 {
	var next uint64
	for i, s := range p.segs {
		if set&(1<<i) == 0 {
			continue
		}
		switch {
		case s == "**":
			next |= 1 << i
		case p.literal[i] && s == name, !p.literal[i] && globMatch(s, name):
			next |= 1 << (i + 1)
		}
	}
	return p.closure(next)
}

func (p *xmlPath) accepts(set uint64) bool { return set&(1<<len(p.segs)) != 0 }

// xframe is an open element.
type xframe struct {
	name         xml.Name
	start        int // offset of '<'
	contentStart int // offset after the start tag
	bound        int // rule masking the text below, or -1
	dets         []int32
	states       int // index of this element's path states in the arena
	mixed        bool
	removeAtEnd  int // Remove detector rule that hit text of this element, or -1
	editMark     int // len(edits) when the element started
}

type xwalker struct {
	m      *Masker
	doc    []byte
	dec    *xml.Decoder
	stack  []xframe
	arena  []uint64 // per element, one state set per XML path
	edits  []edit
	repl   []byte
	counts []int
	text   []byte // text of the innermost element while it has no child
	runs   []xrun
	out    []byte
	hits   []hit
	spans  []span
	hash   hasher
}

// xrun is one text token of the innermost element.
type xrun struct {
	start, end int // in the document
	ts, te     int // in xwalker.text
}

// MaskXML masks an XML document. The document must be well-formed (one
// root element, matching tags, UTF-8, nesting up to MaxDepth), otherwise a
// *SyntaxError is returned and no output. When nothing is masked the input
// slice itself is returned.
func (m *Masker) MaskXML(doc []byte) ([]byte, *Report, error) {
	w := &xwalker{m: m, doc: doc, counts: make([]int, len(m.rules))}
	w.dec = xml.NewDecoder(bytes.NewReader(doc))
	w.dec.Strict = true
	if err := w.walk(); err != nil {
		return nil, nil, err
	}
	out, err := w.apply()
	if err != nil {
		return nil, nil, err
	}
	return out, m.report(XML, w.counts), nil
}

func (w *xwalker) fail(off int64, msg string) error {
	return &SyntaxError{Format: XML, Offset: off, Msg: msg}
}

// token reads the next raw token and the offset it starts at. Errors
// other than io.EOF come back as a *SyntaxError at that offset.
func (w *xwalker) token() (int64, xml.Token, error) {
	off := w.dec.InputOffset()
	tok, err := w.dec.RawToken()
	if err == nil || err == io.EOF {
		return off, tok, err
	}
	var se *xml.SyntaxError
	if errors.As(err, &se) {
		return off, nil, w.fail(off, se.Msg)
	}
	return off, nil, w.fail(off, err.Error())
}

func (w *xwalker) walk() error {
	seenRoot := false
	for {
		off, tok, err := w.token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(w.stack) == 0 {
				if seenRoot {
					return w.fail(off, "more than one root element")
				}
				seenRoot = true
			}
			if len(w.stack) >= MaxDepth {
				return w.fail(off, "nesting too deep")
			}
			if err := w.startElement(t, int(off)); err != nil {
				return err
			}
		case xml.EndElement:
			if len(w.stack) == 0 {
				return w.fail(off, "end tag without start tag")
			}
			f := &w.stack[len(w.stack)-1]
			if f.name != t.Name {
				return w.fail(off, fmt.Sprintf("end tag </%s> does not match <%s>", qname(t.Name), qname(f.name)))
			}
			w.endElement(int(off), int(w.dec.InputOffset()))
		case xml.CharData:
			if len(w.stack) == 0 {
				if len(bytes.TrimLeft(t, " \t\r\n")) > 0 {
					return w.fail(off, "text outside the root element")
				}
				continue
			}
			w.charData(t, int(off), int(w.dec.InputOffset()))
		}
	}
	if len(w.stack) > 0 {
		return w.fail(int64(len(w.doc)), "unclosed element <"+qname(w.stack[len(w.stack)-1].name)+">")
	}
	if !seenRoot {
		return w.fail(0, "no root element")
	}
	return nil
}

func qname(n xml.Name) string {
	if n.Space != "" {
		return n.Space + ":" + n.Local
	}
	return n.Local
}

// interested reports whether text of the innermost element must be kept.
func (w *xwalker) interested(f *xframe) bool {
	return f.bound >= 0 || len(f.dets) > 0 || len(w.m.global) > 0
}

func (w *xwalker) startElement(t xml.StartElement, off int) error {
	var parent *xframe
	base := len(w.arena)
	if n := len(w.stack); n > 0 {
		parent = &w.stack[n-1]
		parent.mixed = true
		// The parent has a child: mask its text before the child.
		w.flushRuns(parent)
	}
	w.runs, w.text = w.runs[:0], w.text[:0]
	f := xframe{name: t.Name, start: off, contentStart: int(w.dec.InputOffset()), bound: -1, removeAtEnd: -1, states: base, editMark: len(w.edits)}
	if parent != nil {
		f.bound, f.dets = parent.bound, parent.dets
	}
	remove, bound := -1, -1
	var added []int32
	for i := range w.m.xpaths {
		xr := &w.m.xpaths[i]
		set := xr.path.start()
		if parent != nil {
			set = w.arena[parent.states+i]
		}
		set = xr.path.step(set, t.Name.Local)
		w.arena = append(w.arena, set)
		if !xr.path.accepts(set) {
			continue
		}
		added = w.m.rules[xr.rule].hit(xr.rule, &bound, &remove, added)
	}
	if remove >= 0 && parent == nil {
		// The root cannot be removed: its text is redacted instead.
		bound, remove = remove, -1
	}
	if remove >= 0 {
		w.arena = w.arena[:base]
		if err := w.skipElement(t.Name); err != nil {
			return err
		}
		w.counts[remove]++
		w.edits = append(w.edits, edit{start: off, end: int(w.dec.InputOffset()), off: len(w.repl)})
		return nil
	}
	if bound >= 0 {
		f.bound = bound
	}
	if len(added) > 0 {
		f.dets = append(append([]int32(nil), f.dets...), added...)
	}
	w.stack = append(w.stack, f)
	return nil
}

// skipElement consumes tokens up to the end of the element just started
// (named name), checking that tags match.
func (w *xwalker) skipElement(name xml.Name) error {
	names := []xml.Name{name}
	for len(names) > 0 {
		off, tok, err := w.token()
		if err == io.EOF {
			return w.fail(int64(len(w.doc)), "unclosed element <"+qname(names[len(names)-1])+">")
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			names = append(names, t.Name)
			if len(w.stack)+len(names) > MaxDepth {
				return w.fail(off, "nesting too deep")
			}
		case xml.EndElement:
			if top := names[len(names)-1]; top != t.Name {
				return w.fail(off, fmt.Sprintf("end tag </%s> does not match <%s>", qname(t.Name), qname(top)))
			}
			names = names[:len(names)-1]
		}
	}
	return nil
}

func (w *xwalker) charData(t xml.CharData, start, end int) {
	f := &w.stack[len(w.stack)-1]
	if !w.interested(f) {
		return
	}
	r := xrun{start: start, end: end, ts: len(w.text)}
	w.text = append(w.text, t...)
	r.te = len(w.text)
	w.runs = append(w.runs, r)
}

// flushRuns masks the text tokens of an element with children that stand
// between two child elements (or a tag of the element itself) as one
// value, comments and CDATA sections included. White space alone is
// formatting and is left alone.
func (w *xwalker) flushRuns(f *xframe) {
	if len(w.runs) > 0 && w.interested(f) && len(bytes.TrimLeft(w.text, " \t\r\n")) > 0 {
		w.maskText(f, w.runs[0].start, w.runs[len(w.runs)-1].end, w.text)
	}
	w.runs, w.text = w.runs[:0], w.text[:0]
}

func (w *xwalker) endElement(endStart, endEnd int) {
	fp := &w.stack[len(w.stack)-1]
	switch {
	case fp.mixed:
		w.flushRuns(fp)
	case w.interested(fp) && len(w.text) > 0:
		w.maskText(fp, fp.contentStart, endStart, w.text)
	}
	f := *fp
	w.stack = w.stack[:len(w.stack)-1]
	w.arena = w.arena[:f.states]
	w.runs, w.text = w.runs[:0], w.text[:0]
	if f.removeAtEnd >= 0 {
		w.edits = w.edits[:f.editMark]
		w.edits = append(w.edits, edit{start: f.start, end: endEnd, off: len(w.repl)})
		w.counts[f.removeAtEnd]++
	}
}

// maskText masks text (decoded) that occupies doc[start:end].
func (w *xwalker) maskText(f *xframe, start, end int, text []byte) {
	s := unsafe.String(unsafe.SliceData(text), len(text))
	if f.bound >= 0 {
		w.out = w.m.replace(w.out[:0], &w.m.rules[f.bound], s, &w.hash)
		w.counts[f.bound]++
		off := len(w.repl)
		w.repl = appendXMLText(w.repl, w.out)
		w.edits = append(w.edits, edit{start: start, end: end, off: off, n: len(w.repl) - off})
		return
	}
	var key []byte
	if f.name.Local != "" {
		key = unsafe.Slice(unsafe.StringData(f.name.Local), len(f.name.Local))
	}
	var remove bool
	w.hits, w.spans, remove = w.m.detect(w.hits, w.spans, s, key, f.dets)
	if len(w.hits) == 0 {
		return
	}
	if remove && len(w.stack) > 1 {
		for _, h := range w.hits {
			if w.m.rules[h.rule].strategy == Remove {
				w.stack[len(w.stack)-1].removeAtEnd = h.rule
				break
			}
		}
		return
	}
	// (On the root element a Remove hit is redacted instead.)
	w.out = w.m.rewrite(w.out[:0], s, w.hits, w.counts, &w.hash)
	off := len(w.repl)
	w.repl = appendXMLText(w.repl, w.out)
	w.edits = append(w.edits, edit{start: start, end: end, off: off, n: len(w.repl) - off})
}

func (w *xwalker) apply() ([]byte, error) {
	if len(w.edits) == 0 {
		return w.doc, nil
	}
	sort.SliceStable(w.edits, func(a, b int) bool { return w.edits[a].start < w.edits[b].start })
	jw := jwalker{doc: w.doc, edits: w.edits, repl: w.repl}
	out, err := jw.apply()
	if err != nil {
		return nil, &SyntaxError{Format: XML, Msg: "internal error: overlapping edits"}
	}
	return out, nil
}

// appendXMLText appends s escaped as XML character data. Invalid UTF-8
// becomes U+FFFD.
func appendXMLText(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '&':
				dst = append(dst, "&amp;"...)
			case '<':
				dst = append(dst, "&lt;"...)
			case '>':
				dst = append(dst, "&gt;"...)
			case '\r':
				dst = append(dst, "&#xD;"...)
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\uFFFD"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}
