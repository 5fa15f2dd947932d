package mask

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// media is what a Content-Type says about how a body can be read.
type media uint8

const (
	mediaOther media = iota // binary or unknown: cannot be masked
	mediaJSON
	mediaXML
	mediaText
	mediaSniff // no type, or application/octet-stream: look at the bytes
)

// textApplications are application/* types whose bodies are text.
var textApplications = map[string]bool{
	"javascript": true, "x-javascript": true, "ecmascript": true,
	"x-sh": true, "x-shellscript": true, "x-csh": true,
	"yaml": true, "x-yaml": true, "toml": true, "x-toml": true,
	"sql": true, "csv": true, "x-www-form-urlencoded": true,
	"x-ndjson": true, "ndjson": true, "jsonl": true, "x-jsonlines": true, "json-seq": true,
	"x-python": true, "x-perl": true, "x-ruby": true, "x-php": true, "x-httpd-php": true,
	"graphql": true, "x-tex": true, "x-latex": true, "x-pem-file": true, "x-x509-ca-cert": true,
	"x-env": true, "x-ini": true, "x-properties": true, "x-terraform": true, "hcl": true,
}

// sniffTypes are the types that say nothing about the content.
var sniffTypes = map[string]bool{
	"application/octet-stream": true, "binary/octet-stream": true, "application/unknown": true,
}

// mediaOf classifies a Content-Type and returns its media type and
// charset parameter, lower-cased.
func mediaOf(contentType string) (media, string, string) {
	ct := strings.TrimSpace(contentType)
	if ct == "" {
		return mediaSniff, "", ""
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		if mt == "" {
			mt, _, _ = strings.Cut(ct, ";")
			mt = strings.ToLower(strings.TrimSpace(mt))
		}
		params = nil
	}
	charset := strings.ToLower(params["charset"])
	typ, sub, ok := strings.Cut(mt, "/")
	switch {
	case !ok || typ == "" || sub == "":
		return mediaOther, mt, charset
	case sub == "json" || strings.HasSuffix(sub, "+json") || strings.HasPrefix(sub, "x-amz-json"):
		return mediaJSON, mt, charset
	case sub == "xml" || strings.HasSuffix(sub, "+xml"):
		return mediaXML, mt, charset
	case sniffTypes[mt]:
		return mediaSniff, mt, charset
	case typ == "text", typ == "application" && (textApplications[sub] || strings.HasSuffix(sub, "+yaml")):
		return mediaText, mt, charset
	}
	return mediaOther, mt, charset
}

// asciiCharset reports whether a charset keeps ASCII as ASCII, so that
// detectors see every ASCII secret in the bytes.
func asciiCharset(cs string) bool {
	switch cs {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "latin1", "latin-1":
		return true
	}
	return strings.HasPrefix(cs, "iso-8859-") || strings.HasPrefix(cs, "windows-125")
}

// isText reports whether a body can be read as text: valid UTF-8 without
// NUL bytes. UTF-16 and UTF-32 text, compressed data and other binary
// content fail, so that no encoding can hide a secret from the detectors.
func isText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// MaskText masks a text body with the Masker's detector rules (Detect or
// Pattern without a path), reading the body as one string. Rules with a
// path do not apply to text and are ignored here ([Masker.Mask] refuses a
// text body when such a rule exists). Redact, Partial and Hash replace
// what a detector recognised; Remove deletes it. When nothing is masked
// the input slice itself is returned.
func (m *Masker) MaskText(body []byte) ([]byte, *Report) {
	counts := make([]int, len(m.rules))
	if len(m.global) == 0 {
		return body, m.report(Text, counts)
	}
	s := unsafe.String(unsafe.SliceData(body), len(body))
	hits, _, _ := m.detect(nil, nil, s, nil, nil)
	if len(hits) == 0 {
		return body, m.report(Text, counts)
	}
	var h hasher
	out := make([]byte, 0, len(body))
	prev := 0
	for _, x := range hits {
		out = append(out, s[prev:x.start]...)
		if r := &m.rules[x.rule]; r.strategy != Remove {
			out = m.replace(out, r, s[x.start:x.end], &h)
		}
		counts[x.rule]++
		prev = x.end
	}
	return append(out, s[prev:]...), m.report(Text, counts)
}

// maskText masks a body read as text, what naming how it was recognised
// (for errors). Rules with a path cannot apply to text: the body is
// refused unless every one of them skips.
func (m *Masker) maskText(body []byte, what string) ([]byte, *Report, error) {
	var blocking []string
	var skipped []ReportEntry
	for i, r := range m.rules {
		switch {
		case !r.hasPath:
		case r.skip:
			skipped = append(skipped, m.entry(i, 0))
		default:
			blocking = append(blocking, r.label)
		}
	}
	if len(blocking) > 0 {
		return nil, nil, &UnsupportedError{What: "text", Got: what, Rules: blocking}
	}
	out, rep := m.MaskText(body)
	if len(skipped) > 0 {
		rep.Skipped = skipped
		rep.SkipReason = "a text body (" + what + ") cannot be masked by path"
	}
	return out, rep, nil
}

// unmaskable answers a body none of the rules can be applied to: when
// every rule skips, the body is returned unchanged with a report naming
// them and why; otherwise err, and nothing of the body.
func (m *Masker) unmaskable(body []byte, format Format, err error) ([]byte, *Report, error) {
	rep, err := m.skipAll(format, err)
	if err != nil {
		return nil, nil, err
	}
	return body, rep, nil
}

// skipAll returns the report of a body passed unmasked because every rule
// skips, or err when one does not.
func (m *Masker) skipAll(format Format, err error) (*Report, error) {
	if len(m.rules) == 0 {
		return &Report{Format: format}, nil // nothing to apply
	}
	if !m.allSkip {
		return nil, err
	}
	rep := &Report{Format: format, SkipReason: err.Error()}
	for i := range m.rules {
		rep.Skipped = append(rep.Skipped, m.entry(i, 0))
	}
	return rep, nil
}
