package catalog

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// synth builds the request a client would send for op, with every label
// and required query parameter and header filled in.
func synth(op *Operation) *Request {
	s := op.Service()
	r := &Request{
		SigningName: s.SigningName, Region: "us-east-1", Account: "123456789012",
		Method: op.Method, Query: url.Values{}, Header: http.Header{},
	}
	switch s.Protocol {
	case ProtocolJSON:
		r.RawPath = "/"
		r.Header.Set("X-Amz-Target", s.TargetPrefix+"."+op.Name)
		r.Header.Set("Content-Type", "application/x-amz-json-"+s.JSONVersion)
		r.Body = []byte("{}")
		return r
	case ProtocolQuery, ProtocolEC2:
		r.RawPath = "/"
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Body = []byte("Action=" + op.Name + "&Version=" + s.APIVersion)
		return r
	}
	path, query, _ := strings.Cut(op.RequestURI, "?")
	var b strings.Builder
	for i, seg := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		if i > 0 || path != "/" {
			b.WriteByte('/')
		}
		switch {
		case strings.HasSuffix(seg, "+}"):
			b.WriteString("lbl-" + strings.ToLower(seg[1:len(seg)-2]) + "/sub")
		case strings.HasPrefix(seg, "{"):
			b.WriteString("lbl-" + strings.ToLower(seg[1:len(seg)-1]))
		default:
			b.WriteString(seg)
		}
	}
	r.RawPath = b.String()
	if r.RawPath == "" {
		r.RawPath = "/"
	}
	if query != "" {
		for part := range strings.SplitSeq(query, "&") {
			k, v, _ := strings.Cut(part, "=")
			r.Query.Set(k, v)
		}
	}
	for _, m := range op.Inputs {
		if !m.Required {
			continue
		}
		switch m.Location {
		case LocationQuery:
			r.Query.Set(m.Wire, "q")
		case LocationHeader:
			r.Header.Set(m.Wire, "h")
		}
	}
	return r
}

// signature is what distinguishes operations on the wire; operations with
// equal signatures cannot be told apart and the catalog picks one.
func signature(op *Operation) string {
	s := op.Service()
	switch s.Protocol {
	case ProtocolJSON:
		return s.SigningName + " target " + s.TargetPrefix + "." + op.Name
	case ProtocolQuery, ProtocolEC2:
		return s.SigningName + " action " + op.Name
	}
	path, query, _ := strings.Cut(op.RequestURI, "?")
	var segs []string
	for _, seg := range strings.Split(path, "/") {
		switch {
		case strings.HasSuffix(seg, "+}"):
			seg = "{+}"
		case strings.HasPrefix(seg, "{"):
			seg = "{}"
		}
		segs = append(segs, seg)
	}
	var req []string
	for _, m := range op.Inputs {
		if m.Required && (m.Location == LocationQuery || m.Location == LocationHeader) {
			req = append(req, m.Location+":"+strings.ToLower(m.Wire))
		}
	}
	return s.SigningName + " " + op.Method + " " + strings.Join(segs, "/") + "?" + query + " " + strings.Join(req, ",")
}

// TestRoundTrip classifies a synthesized request for every operation of
// every service and expects the operation back, unless another operation
// has the same wire signature (then the preferred one must win
// consistently).
func TestRoundTrip(t *testing.T) {
	c := Default()
	bySig := map[string][]*Operation{}
	for _, s := range c.Services() {
		for _, op := range s.Operations() {
			bySig[signature(op)] = append(bySig[signature(op)], op)
		}
	}
	total, twins := 0, 0
	for _, s := range c.Services() {
		for _, op := range s.Operations() {
			total++
			got := c.Classify(synth(op))
			if got.Service == op.Service() && got.Operation == op.Name {
				continue
			}
			same := bySig[signature(op)]
			twin := false
			for _, o := range same {
				if o != op && got.Service == o.Service() && got.Operation == o.Name {
					twin = true
				}
			}
			if twin {
				twins++
				continue
			}
			gs := "<nil>"
			if got.Service != nil {
				gs = got.Service.Name
			}
			t.Errorf("%s.%s (%s %s): classified as %s.%s", s.Name, op.Name, op.Method, op.RequestURI, gs, got.Operation)
		}
	}
	t.Logf("%d operations round-tripped, %d resolved to a wire-identical twin", total, twins)
}
