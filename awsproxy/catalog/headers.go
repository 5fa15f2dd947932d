package catalog

import (
	"slices"
	"strings"
)

// InputHeaders is the set of request headers that a service's operations
// read as input members, from the models: single headers ("x-amz-acl",
// "x-amz-bypass-governance-retention", "Content-Type") and header prefixes
// ("x-amz-meta-"). A header in the set can change what AWS does with a
// request; one outside it cannot, as far as the models tell.
//
// The set is the union over every operation of the service, not only the
// classified one: a header that one operation reads stays bound even when
// a request is classified as another (or as unknown). It is immutable and
// safe for concurrent use.
type InputHeaders struct {
	names     map[string]bool // lower-case name -> sensitive
	prefixes  []string        // lower case, sorted
	sensitive []bool          // parallel to prefixes
}

// InputHeaders returns the service's input header set, built on first use.
func (s *Service) InputHeaders() *InputHeaders {
	s.headersOnce.Do(func() {
		h := &InputHeaders{names: map[string]bool{}}
		for _, op := range s.ops {
			for _, m := range op.Inputs {
				w := strings.ToLower(m.Wire)
				switch m.Location {
				case LocationHeader:
					h.names[w] = h.names[w] || m.Sensitive
				case LocationHeaders:
					if i, ok := slices.BinarySearch(h.prefixes, w); ok {
						h.sensitive[i] = h.sensitive[i] || m.Sensitive
					} else {
						h.prefixes = slices.Insert(h.prefixes, i, w)
						h.sensitive = slices.Insert(h.sensitive, i, m.Sensitive)
					}
				}
			}
		}
		s.headers = h
	})
	return s.headers
}

// Lookup reports whether the header (any case) is in the set, and whether
// the models mark it sensitive (an SSE-C key, say), so that its value
// should be shown only as a digest.
func (h *InputHeaders) Lookup(name string) (in, sensitive bool) {
	n := strings.ToLower(name)
	if s, ok := h.names[n]; ok {
		return true, s
	}
	for i, p := range h.prefixes {
		if strings.HasPrefix(n, p) {
			return true, h.sensitive[i]
		}
	}
	return false, false
}

// Len is the number of single headers and prefixes in the set.
func (h *InputHeaders) Len() int { return len(h.names) + len(h.prefixes) }
