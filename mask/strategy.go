package mask

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"sort"
	"unicode/utf8"
	"unsafe"
)

// hasher holds one keyed HMAC for the length of one document, so that
// hashing many values costs no allocations.
type hasher struct {
	mac hash.Hash
	buf [sha256.Size]byte
}

func (h *hasher) sum(dst []byte, key []byte, v string) []byte {
	if h.mac == nil {
		h.mac = hmac.New(sha256.New, key)
	} else {
		h.mac.Reset()
	}
	h.mac.Write(unsafe.Slice(unsafe.StringData(v), len(v)))
	dst = append(dst, HashPrefix...)
	return hex.AppendEncode(dst, h.mac.Sum(h.buf[:0])[:8])
}

// replace appends to dst the text that stands for v under rule r (never
// called for Remove, which deletes instead).
func (m *Masker) replace(dst []byte, r *rule, v string, h *hasher) []byte {
	switch r.strategy {
	case Partial:
		dst = append(dst, Marker...)
		if utf8.RuneCountInString(v) > 2*r.keep {
			k := len(v)
			for n := 0; n < r.keep; n++ {
				_, size := utf8.DecodeLastRuneInString(v[:k])
				k -= size
			}
			dst = append(dst, v[k:]...)
		}
		return dst
	case Hash:
		return h.sum(dst, m.hashKey, v)
	default:
		return append(dst, Marker...)
	}
}

// hit is a detector match in a string, tagged with its rule.
type hit struct {
	start, end int
	rule       int
}

// detect runs the scoped detector rules and the Masker's path-less
// detector rules over s. It returns the hits sorted and merged (an
// overlap keeps the earlier hit's rule) and whether a Remove rule hit.
func (m *Masker) detect(hits []hit, spans []span, s string, key []byte, scoped []int32) ([]hit, []span, bool) {
	hits = hits[:0]
	run := func(ri int) {
		spans = m.rules[ri].detect.find(spans[:0], s, key)
		for _, sp := range spans {
			hits = append(hits, hit{sp.start, sp.end, ri})
		}
	}
	for _, ri := range scoped {
		run(int(ri))
	}
	for _, ri := range m.global {
		run(ri)
	}
	if len(hits) == 0 {
		return hits, spans, false
	}
	sort.Slice(hits, func(a, b int) bool {
		if hits[a].start != hits[b].start {
			return hits[a].start < hits[b].start
		}
		return hits[a].rule < hits[b].rule
	})
	out := hits[:1]
	for _, h := range hits[1:] {
		last := &out[len(out)-1]
		if h.start < last.end {
			if h.end > last.end {
				last.end = h.end
			}
			continue
		}
		out = append(out, h)
	}
	remove := false
	for _, h := range out {
		if m.rules[h.rule].strategy == Remove {
			remove = true
		}
	}
	return out, spans, remove
}

// rewrite appends s with every hit replaced by its rule's strategy and
// counts the hits.
func (m *Masker) rewrite(dst []byte, s string, hits []hit, counts []int, h *hasher) []byte {
	prev := 0
	for _, x := range hits {
		dst = append(dst, s[prev:x.start]...)
		dst = m.replace(dst, &m.rules[x.rule], s[x.start:x.end], h)
		counts[x.rule]++
		prev = x.end
	}
	return append(dst, s[prev:]...)
}
