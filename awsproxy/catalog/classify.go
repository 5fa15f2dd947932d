package catalog

import (
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// Bounds of the work Classify does for one request. Past a bound the
// classification is still returned, with what was found so far and
// Truncated set.
const (
	// MaxBody is the number of body bytes Classify reads. A longer body is
	// scanned up to this length.
	MaxBody = 64 << 10
	// MaxParams is the largest number of entries in Params.
	MaxParams = 32
	// MaxParamValue is the longest Params value in bytes; longer values
	// are cut at a UTF-8 boundary.
	MaxParamValue = 256
	// MaxListValues is the number of elements of a list parameter (or keys
	// of a map parameter) that are kept.
	MaxListValues = 16
	// MaxResources is the largest number of ARNs in Resources.
	MaxResources = 32
	// maxFormPairs bounds the pairs read from a form body or query string.
	maxFormPairs = 1000
	// maxPathSegments bounds the path segments matched against URI
	// templates; deeper paths only match greedy labels.
	maxPathSegments = 64
)

// UnknownOperation is the operation part of Classification.Action when
// the service is known but the operation is not ("dynamodb:Unknown"). No
// IAM action has this name, so a policy can single such calls out.
const UnknownOperation = "Unknown"

// Request is what Classify looks at: the parts of an HTTP request that
// identify an AWS operation. The zero value of each field means "absent".
// Classify does not modify the Request or anything it refers to.
type Request struct {
	// SigningName and Region come from the SigV4 credential scope.
	SigningName, Region string
	// Account is the AWS account id used in ARNs, from configuration or
	// from the role the call will be made with. Empty leaves the account
	// field of ARNs empty.
	Account string
	// Method is the HTTP method.
	Method string
	// RawPath is the request path as sent, still percent-encoded
	// (url.URL.EscapedPath). Empty means "/".
	RawPath string
	// Query is the parsed query string.
	Query url.Values
	// Header holds the request headers with canonical keys, as net/http
	// delivers them.
	Header http.Header
	// Bucket is the S3 bucket of a virtual-hosted request
	// (bucket.s3.example), already extracted from the host name; it is
	// treated as the first path segment. Empty for path-style requests.
	Bucket string
	// Body is the request body when the caller buffered it, nil when it
	// streams. Only the first MaxBody bytes are read. JSON and query
	// protocols need it; REST operations are recognised without it.
	Body []byte
}

// Classification is what the catalog says about one request. The zero
// value describes a request for an unknown service.
type Classification struct {
	// Service is the service the request is for, chosen among the
	// services sharing the signing name; nil if the signing name is
	// unknown. Route with its EndpointPrefix. When the operation is
	// unknown it is the service the request most likely addresses.
	Service *Service
	// Operation is the API operation name; empty if unknown.
	Operation string
	// Action is the IAM action ("s3:GetObject"). For a known service and
	// an unknown operation it is "<IAMPrefix>:Unknown"; for an unknown
	// service it is empty.
	Action string
	// ReadOnly, CredentialIssuing and ReturnsSecrets are the operation's
	// flags; all false for unknown operations.
	ReadOnly, CredentialIssuing, ReturnsSecrets bool
	// Resources are the ARNs the request touches, as far as they can be
	// derived from the request (see the package documentation); nil if
	// none.
	Resources []string
	// Params are the request's input parameters by model member name
	// (Params["TableName"]): URI labels, query parameters, headers and the
	// top-level scalar members of JSON and form bodies. List values are
	// joined with ","; map-valued members list their keys. Sensitive
	// members are left out. Nil if none.
	Params map[string]string
	// Truncated reports that a bound (MaxBody, MaxParams, MaxParamValue,
	// MaxListValues, MaxResources) cut what was extracted.
	Truncated bool
}

// Known reports whether the operation was recognised.
func (c Classification) Known() bool { return c.Operation != "" }

// Classify recognises the operation of a request. It never fails: a
// request it cannot place classifies as an unknown operation of the most
// likely service (or of no service). It reads at most MaxBody bytes of
// r.Body, compiles nothing, and its cost does not depend on the number of
// services. It is safe for concurrent use.
func (c *Catalog) Classify(r *Request) Classification {
	g := c.groups[r.SigningName]
	if g == nil {
		return Classification{}
	}
	var (
		rest restMatch
		form *formBody
	)
	op, svc := g.find(r, &rest, &form)
	if op != nil {
		svc = op.svc
	}
	if svc == nil {
		svc = g.guess(r)
	}
	out := Classification{Service: svc}
	if op == nil {
		out.Action = svc.unknown
		return out
	}
	out.Operation = op.Name
	out.Action = op.Action
	out.ReadOnly, out.CredentialIssuing, out.ReturnsSecrets = op.ReadOnly, op.CredentialIssuing, op.ReturnsSecrets

	// The parameter buffers live on the stack; only a request with more
	// values spills to the heap.
	var (
		kvBuf  [8]kv
		cntBuf [8]nameCount
	)
	p := params{kvs: kvBuf[:0], counts: cntBuf[:0]}
	p.collect(r, op, &rest, form)
	refine(r, op, &p, &out)
	out.Resources = resources(r, op, &p)
	if len(out.Resources) > MaxResources {
		out.Resources = out.Resources[:MaxResources]
		p.truncated = true
	}
	out.Params = p.toMap()
	out.Truncated = p.truncated
	return out
}

// find recognises the operation by the protocol markers the request
// carries, in order: X-Amz-Target (JSON), Smithy-Protocol: rpc-v2-cbor,
// Action (query, EC2, query-compatible JSON), then the URI templates
// (REST). A marker with several different values is ambiguous: the
// request then classifies as unknown rather than as one of them.
func (g *group) find(r *Request, rest *restMatch, form **formBody) (*Operation, *Service) {
	if vs := r.Header["X-Amz-Target"]; len(vs) > 0 {
		t, ok := single(vs)
		if !ok {
			return nil, g.guess(r)
		}
		op, svc := g.byTarget(t)
		if op != nil || svc != nil {
			return op, svc
		}
		if g.targets != nil {
			return nil, nil
		}
	}
	if strings.EqualFold(firstHeader(r.Header, "Smithy-Protocol"), "rpc-v2-cbor") {
		if op, svc := g.byRPCPath(r.RawPath); op != nil {
			return op, svc
		}
	}
	if len(g.actions) > 0 {
		action, ok := single(r.Query["Action"])
		if !ok {
			return nil, g.guess(r)
		}
		version, _ := single(r.Query["Version"])
		if isForm(r) {
			*form = parseForm(r.Body)
			fa, ok := single((*form).values("Action"))
			if !ok || (action != "" && fa != "" && fa != action) {
				return nil, g.guess(r)
			}
			if action == "" {
				action = fa
				version, _ = single((*form).values("Version"))
			}
		}
		if action != "" {
			return g.byAction(action, version)
		}
	}
	if g.rest != nil {
		if op := g.matchREST(r, rest); op != nil {
			return op, op.svc
		}
	}
	return nil, nil
}

// single returns the value of a possibly repeated field, and false if the
// repetitions disagree.
func single(vs []string) (string, bool) {
	if len(vs) == 0 {
		return "", true
	}
	for _, v := range vs[1:] {
		if v != vs[0] {
			return "", false
		}
	}
	return vs[0], true
}

func firstHeader(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// isForm reports whether the body is a form: declared as one, or
// undeclared (the query protocol's default).
func isForm(r *Request) bool {
	return len(r.Body) > 0 && (firstHeader(r.Header, "Content-Type") == "" || formType(r))
}

// formType reports whether the request declares a form body.
func formType(r *Request) bool {
	ct := firstHeader(r.Header, "Content-Type")
	return len(ct) >= 33 && strings.EqualFold(ct[:33], "application/x-www-form-urlencoded")
}

// kv is one extracted parameter value; list members, map keys and
// repeated keys produce one kv per value.
type kv struct{ name, value string }

// params accumulates a request's parameters, bounded: at most MaxParams
// names and MaxListValues values per name.
type params struct {
	kvs       []kv
	counts    []nameCount
	truncated bool
}

type nameCount struct {
	name string
	n    int
}

// add records one value of a member.
func (p *params) add(name, value string) {
	i := 0
	for i < len(p.counts) && p.counts[i].name != name {
		i++
	}
	switch {
	case i == len(p.counts) && len(p.counts) >= MaxParams:
		p.truncated = true
		return
	case i == len(p.counts):
		if n := len(p.counts); n < cap(p.counts) {
			p.counts = p.counts[:n+1]
			p.counts[n] = nameCount{name, 0}
		} else {
			grown := make([]nameCount, n, 2*n)
			copy(grown, p.counts)
			p.counts = append(grown, nameCount{name, 0})
		}
	case p.counts[i].n >= MaxListValues:
		p.truncated = true
		return
	}
	p.counts[i].n++
	if len(value) > MaxParamValue {
		value = cut(value, MaxParamValue)
		p.truncated = true
	}
	// Reslicing in place (rather than append) keeps the caller's stack
	// buffer on the stack.
	if n := len(p.kvs); n < cap(p.kvs) {
		p.kvs = p.kvs[:n+1]
		p.kvs[n] = kv{name, value}
	} else {
		grown := make([]kv, n, 2*n)
		copy(grown, p.kvs)
		p.kvs = append(grown, kv{name, value})
	}
}

// full reports whether another value of name would be dropped.
func (p *params) full(name string) bool {
	for _, c := range p.counts {
		if c.name == name {
			return c.n >= MaxListValues
		}
	}
	return len(p.counts) >= MaxParams
}

// get returns the first value of a parameter.
func (p *params) get(name string) string {
	for _, e := range p.kvs {
		if e.name == name {
			return e.value
		}
	}
	return ""
}

// all returns every value of a parameter.
func (p *params) all(name string) []string {
	var out []string
	for _, e := range p.kvs {
		if e.name == name {
			out = append(out, e.value)
		}
	}
	return out
}

func (p *params) toMap() map[string]string {
	if len(p.kvs) == 0 {
		return nil
	}
	m := make(map[string]string, len(p.counts))
	for _, c := range p.counts {
		if c.n == 1 {
			m[c.name] = p.get(c.name)
			continue
		}
		var b strings.Builder
		for _, e := range p.kvs {
			if e.name == c.name {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				b.WriteString(e.value)
			}
		}
		m[c.name] = b.String()
	}
	return m
}

// cut shortens s to at most n bytes at a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// maxHits bounds the query parameters and headers of one request that
// are matched against an operation's members.
const maxHits = 64

// usable reports whether a member's value may appear in Params.
func usable(m *Member) bool {
	return !m.Sensitive && (m.kind == kindScalar || m.kind == kindList)
}

// collect extracts the parameters of a recognised operation from every
// place the model says they live: URI labels in template order, then the
// query parameters and headers the request carries (looked up by wire
// name, applied in member order so the result does not depend on map
// order), then the body.
func (p *params) collect(r *Request, op *Operation, rest *restMatch, form *formBody) {
	if rest.best != nil && rest.best.op == op {
		for i, l := range rest.best.labels {
			if m := op.member('u', l); m != nil && usable(m) {
				p.add(m.Name, rest.value(i))
			}
		}
	}
	if op.restParams {
		var hits [maxHits]int32
		n := 0
		for k := range r.Query {
			if op.wireMask&wireBit(k) == 0 {
				continue
			}
			if i := op.memberIndex('q', k); i >= 0 && usable(&op.Inputs[i]) {
				if n == maxHits {
					p.truncated = true
					break
				}
				hits[n] = int32(i)
				n++
			}
		}
		for k := range r.Header {
			if op.wireMask&wireBit(k) == 0 {
				continue
			}
			if i := op.memberIndex('h', k); i >= 0 && usable(&op.Inputs[i]) {
				if n == maxHits {
					p.truncated = true
					break
				}
				hits[n] = int32(i)
				n++
			}
		}
		for i := 1; i < n; i++ {
			for j := i; j > 0 && hits[j] < hits[j-1]; j-- {
				hits[j], hits[j-1] = hits[j-1], hits[j]
			}
		}
		for _, i := range hits[:n] {
			m := &op.Inputs[i]
			if m.Location == LocationQuery {
				p.addValues(m, r.Query[m.Wire])
			} else {
				p.addValues(m, r.Header[m.Wire])
			}
		}
	}
	query := op.svc.Protocol == ProtocolQuery || op.svc.Protocol == ProtocolEC2
	switch {
	case form != nil && (query || op.svc.QueryCompatible):
		p.fromForm(op, form)
	case len(r.Body) > 0 && (query && isForm(r) || op.svc.QueryCompatible && formType(r)):
		p.fromForm(op, parseForm(r.Body))
	case len(r.Body) > 0 && op.svc.Protocol == ProtocolJSON:
		p.fromJSON(op, r.Body)
	case len(r.Body) > 0 && op.svc.Protocol == ProtocolRESTJSON:
		if !op.hasPayload() && op.Method != "GET" && op.Method != "HEAD" {
			p.fromJSON(op, r.Body)
		}
	case (query || op.svc.QueryCompatible) && r.Query.Get("Action") != "":
		p.fromForm(op, queryForm(r.Query))
	}
}

// addValues adds every value of a query parameter or header; a repeated
// scalar keeps all its values, so an ambiguous request shows them all.
func (p *params) addValues(m *Member, vs []string) {
	for _, v := range vs {
		if p.full(m.Name) {
			p.truncated = true
			return
		}
		p.add(m.Name, v)
	}
}

func (o *Operation) hasPayload() bool {
	for i := range o.Inputs {
		if o.Inputs[i].Location == LocationPayload {
			return true
		}
	}
	return false
}
