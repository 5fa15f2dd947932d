package catalog

import (
	"fmt"
	"net/textproto"
	"net/url"
	"strings"
)

// REST operations are recognised by method and URI template. The
// templates of a signing-name group are compiled at load into one trie per
// method whose edges are path segments: literal segments, single labels
// ({Name}) and greedy labels ({Key+}, which take one or more segments and
// may be followed by literal segments). Matching walks the trie once,
// visiting each node at most once, and keeps the most specific match:
//
//  1. path segments, compared left to right: literal > label > greedy >
//     a tolerated trailing slash;
//  2. more query literals from the template (?tagging, ?list-type=2);
//  3. more required query parameters and headers present (uploadId makes
//     GET /{Bucket}/{Key+} ListParts rather than GetObject);
//  4. the operation named by the SDK's x-id query parameter;
//  5. not deprecated; the preferred service of the signing name;
//     the operation name.
//
// A template whose required query parameters or headers are missing only
// matches when nothing else does.

// Limits of the URI templates, checked at load; they size the match state.
const (
	maxTemplateSegments = 24
	maxLabels           = 16
)

type segKind uint8

const (
	segNone      segKind = iota
	segTolerated         // a trailing slash present on one side only
	segEnd               // the end of the template (ranks below any segment)
	segGreedy
	segLabel
	segLiteral
)

type node struct {
	lits   map[string]*node
	label  *node
	greedy []*route // greedy label at this depth, with optional suffix
	routes []*route // templates ending here
	slash  []*route // templates ending here with a trailing slash
}

type tmplSeg struct {
	lit   string // literal text; "" with label set means a label
	label string // label name (wire name of the uri member)
}

type queryLit struct {
	key, value string
	hasValue   bool
}

type route struct {
	op     *Operation
	kinds  []segKind
	labels []string // label names in path order (greedy included)
	suffix []tmplSeg
	lits   []queryLit
	reqQ   []string // required query keys
	reqH   []string // required headers (canonical)
}

func (g *group) addRoute(op *Operation) error {
	path, query, _ := strings.Cut(op.RequestURI, "?")
	rt := &route{op: op}
	if query != "" {
		for part := range strings.SplitSeq(query, "&") {
			k, v, has := strings.Cut(part, "=")
			rt.lits = append(rt.lits, queryLit{k, v, has})
		}
	}
	for i := range op.Inputs {
		m := &op.Inputs[i]
		if !m.Required {
			continue
		}
		switch m.Location {
		case LocationQuery:
			rt.reqQ = append(rt.reqQ, m.Wire)
		case LocationHeader:
			rt.reqH = append(rt.reqH, textproto.CanonicalMIMEHeaderKey(m.Wire))
		}
	}
	root := g.rest[op.Method]
	if root == nil {
		root = &node{}
		g.rest[op.Method] = root
	}
	segs := splitTemplate(path)
	if len(segs) > maxTemplateSegments || strings.Count(path, "{") > maxLabels {
		return fmt.Errorf("catalog: %s.%s: request URI template too long", op.svc.Name, op.Name)
	}
	n := root
	for i, s := range segs {
		switch {
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "+}"):
			rt.kinds = append(rt.kinds, segGreedy)
			rt.labels = append(rt.labels, s[1:len(s)-2])
			for _, rest := range segs[i+1:] {
				if strings.HasPrefix(rest, "{") {
					if strings.HasSuffix(rest, "+}") {
						return fmt.Errorf("catalog: %s.%s: two greedy labels", op.svc.Name, op.Name)
					}
					rt.suffix = append(rt.suffix, tmplSeg{label: rest[1 : len(rest)-1]})
					rt.kinds = append(rt.kinds, segLabel)
					rt.labels = append(rt.labels, rest[1:len(rest)-1])
				} else {
					rt.suffix = append(rt.suffix, tmplSeg{lit: rest})
					rt.kinds = append(rt.kinds, segLiteral)
				}
			}
			n.greedy = append(n.greedy, rt)
			return nil
		case strings.HasPrefix(s, "{"):
			rt.kinds = append(rt.kinds, segLabel)
			rt.labels = append(rt.labels, s[1:len(s)-1])
			if n.label == nil {
				n.label = &node{}
			}
			n = n.label
		case s == "" && i == len(segs)-1:
			// trailing slash
			n.slash = append(n.slash, rt)
			rt.kinds = append(rt.kinds, segLiteral)
			return nil
		default:
			rt.kinds = append(rt.kinds, segLiteral)
			if n.lits == nil {
				n.lits = map[string]*node{}
			}
			c := n.lits[s]
			if c == nil {
				c = &node{}
				n.lits[s] = c
			}
			n = c
		}
	}
	n.routes = append(n.routes, rt)
	return nil
}

// splitTemplate splits a path template into segments: "/" -> [],
// "/a/{b}/" -> [a {b} ""].
func splitTemplate(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// span is a byte range of the request path.
type span struct{ start, end int32 }

// restMatch is the state of one REST match: the request path split into
// segments, and the best route with its label values.
type restMatch struct {
	path  string
	nsegs int
	segs  [maxPathSegments]span

	caps [maxLabels]span // label captures of the route being tried

	best      *route
	bestCaps  [maxLabels]span
	bestKinds [maxTemplateSegments + 2]segKind
	bestNK    int
	bestScore score
	bestOK    bool // required members present

	kinds [maxTemplateSegments + 2]segKind
	r     *Request
	xid   string // the SDK's x-id hint

	// A copy of a small query string's keys and first values: most
	// requests have a handful, and comparing them beats hashing.
	nq int // -1: too many, use the map
	qk [8]string
	qv [8]string
}

// query returns the first value of a query parameter and whether it is
// present.
func (m *restMatch) query(key string) (string, bool) {
	if m.nq < 0 {
		vs, ok := m.r.Query[key]
		if !ok || len(vs) == 0 {
			return "", ok
		}
		return vs[0], true
	}
	for i := 0; i < m.nq; i++ {
		if m.qk[i] == key {
			return m.qv[i], true
		}
	}
	return "", false
}

type score struct{ lits, req, xid int }

// value returns the unescaped value of the best route's i-th label.
func (m *restMatch) value(i int) string {
	sp := m.bestCaps[i]
	raw := m.path[sp.start:sp.end]
	if strings.IndexByte(raw, '%') < 0 {
		return raw
	}
	if v, err := url.PathUnescape(raw); err == nil {
		return v
	}
	return raw
}

// matchREST finds the most specific REST operation for the request.
func (g *group) matchREST(r *Request, m *restMatch) *Operation {
	root := g.rest[r.Method]
	if root == nil {
		return nil
	}
	path := r.RawPath
	if path == "" {
		path = "/"
	}
	if r.Bucket != "" && g.name == "s3" {
		if path == "/" {
			path = "/" + r.Bucket
		} else {
			path = "/" + r.Bucket + path
		}
	}
	m.r = r
	m.path = path
	if len(r.Query) > len(m.qk) {
		m.nq = -1
	} else {
		for k, vs := range r.Query {
			m.qk[m.nq] = k
			if len(vs) > 0 {
				m.qv[m.nq] = vs[0]
			}
			m.nq++
		}
	}
	m.xid, _ = m.query("x-id")
	m.split()
	m.walk(root, 0, 0, 0)
	if m.best == nil {
		return nil
	}
	return m.best.op
}

// split cuts the path into segments, bounded by maxPathSegments (the last
// one keeps the remainder).
func (m *restMatch) split() {
	p := m.path
	start := 0
	if strings.HasPrefix(p, "/") {
		start = 1
	}
	m.nsegs = 0
	if start >= len(p) {
		return
	}
	for {
		i := strings.IndexByte(p[start:], '/')
		if i < 0 || m.nsegs == maxPathSegments-1 {
			m.segs[m.nsegs] = span{int32(start), int32(len(p))}
			m.nsegs++
			return
		}
		m.segs[m.nsegs] = span{int32(start), int32(start + i)}
		m.nsegs++
		start += i + 1
	}
}

func (m *restMatch) seg(i int) string { return m.path[m.segs[i].start:m.segs[i].end] }

// walk visits the trie: n is the node reached after i request segments,
// with nk kinds and nc captures so far. Each node is reached by one path
// only, so the walk visits every node at most once.
func (m *restMatch) walk(n *node, i, nk, nc int) {
	segs := m.nsegs
	if i == segs {
		m.finish(n.routes, nk, nc, segNone)
		m.finish(n.slash, nk, nc, segTolerated)
	} else if i == segs-1 && m.seg(i) == "" {
		m.finish(n.slash, nk, nc, segLiteral)
		m.finish(n.routes, nk, nc, segTolerated)
	}
	if i < segs {
		s := m.seg(i)
		if n.lits != nil {
			c := n.lits[s]
			if c == nil && strings.IndexByte(s, '%') >= 0 {
				if u, err := url.PathUnescape(s); err == nil {
					c = n.lits[u]
				}
			}
			if c != nil {
				m.kinds[nk] = segLiteral
				m.walk(c, i+1, nk+1, nc)
			}
		}
		if n.label != nil && s != "" {
			m.kinds[nk] = segLabel
			m.caps[nc] = m.segs[i]
			m.walk(n.label, i+1, nk+1, nc+1)
		}
		for _, rt := range n.greedy {
			m.greedy(rt, i, nk, nc)
		}
	}
}

// greedy tries a route whose greedy label starts at segment i.
func (m *restMatch) greedy(rt *route, i, nk, nc int) {
	k := len(rt.suffix)
	last := m.nsegs - k // first segment of the suffix
	if last <= i {
		return
	}
	for j, t := range rt.suffix {
		s := m.seg(last + j)
		switch {
		case t.label != "":
			if s == "" {
				return
			}
		case s != t.lit:
			return
		}
	}
	sp := span{m.segs[i].start, m.segs[last-1].end}
	if sp.end <= sp.start {
		return
	}
	m.caps[nc] = sp
	for j := range rt.suffix {
		m.caps[nc+1+j] = m.segs[last+j]
	}
	copy(m.kinds[nk:], rt.kinds[len(rt.kinds)-k-1:])
	m.kinds[nk+k+1] = segEnd
	m.consider(rt, nk+k+2, nc+k+1)
}

func (m *restMatch) finish(routes []*route, nk, nc int, extra segKind) {
	for _, rt := range routes {
		n := nk
		if extra != segNone {
			m.kinds[n] = extra
			n++
		}
		m.kinds[n] = segEnd
		m.consider(rt, n+1, nc)
	}
}

// consider compares a matching route with the best so far.
func (m *restMatch) consider(rt *route, nk, nc int) {
	if len(rt.lits) > len(m.r.Query) {
		return
	}
	var sc score
	for _, l := range rt.lits {
		v, ok := m.query(l.key)
		if !ok || (l.hasValue && v != l.value) {
			return
		}
		sc.lits++
	}
	ok := true
	for _, k := range rt.reqQ {
		if _, has := m.query(k); has {
			sc.req++
		} else {
			ok = false
		}
	}
	for _, h := range rt.reqH {
		if len(m.r.Header[h]) > 0 {
			sc.req++
		} else {
			ok = false
		}
	}
	if m.xid != "" && m.xid == rt.op.Name {
		sc.xid = 1
	}
	if m.best != nil && !m.better(rt, nk, sc, ok) {
		return
	}
	m.best, m.bestScore, m.bestOK, m.bestNK = rt, sc, ok, nk
	copy(m.bestKinds[:nk], m.kinds[:nk])
	copy(m.bestCaps[:nc], m.caps[:nc])
}

// better reports whether the candidate beats the best so far.
func (m *restMatch) better(rt *route, nk int, sc score, ok bool) bool {
	if ok != m.bestOK {
		return ok
	}
	n := max(nk, m.bestNK)
	for i := 0; i < n; i++ {
		a, b := segNone, segNone
		if i < nk {
			a = m.kinds[i]
		}
		if i < m.bestNK {
			b = m.bestKinds[i]
		}
		if a != b {
			return a > b
		}
	}
	best := m.best
	switch {
	case sc.lits != m.bestScore.lits:
		return sc.lits > m.bestScore.lits
	case sc.req != m.bestScore.req:
		return sc.req > m.bestScore.req
	case sc.xid != m.bestScore.xid:
		return sc.xid > m.bestScore.xid
	case rt.op.Deprecated != best.op.Deprecated:
		return !rt.op.Deprecated
	case rt.op.svc.prio != best.op.svc.prio:
		return rt.op.svc.prio < best.op.svc.prio
	}
	return rt.op.Name < best.op.Name
}
