package mask

import (
	"errors"
	"fmt"
)

// Format is the kind of document a Masker worked on.
type Format string

// The formats. Text is any body read as UTF-8 text that is neither JSON
// nor XML: only detectors apply to it.
const (
	JSON Format = "json"
	XML  Format = "xml"
	Text Format = "text"
)

// Report says what a Masker changed in one document: which rules matched,
// with which strategy, how many times. It never holds the values, so it can
// go to an audit trail as it is.
type Report struct {
	Format  Format        `json:"format"`
	Entries []ReportEntry `json:"entries,omitempty"`
	// Skipped lists the rules that could not be applied to the body and
	// were skipped because they set Rule.SkipUnmaskable (Count is zero);
	// SkipReason says why they could not be applied. What they would have
	// selected went to the caller unmasked.
	Skipped    []ReportEntry `json:"skipped,omitempty"`
	SkipReason string        `json:"skip_reason,omitempty"`
}

// ReportEntry counts the values one rule masked.
type ReportEntry struct {
	Rule     string   `json:"rule"`               // the rule's Name, or its path or detector
	Path     string   `json:"path,omitempty"`     // the rule's JSON or XML path, as written
	Detector string   `json:"detector,omitempty"` // detector name, "pattern" for Rule.Pattern
	Strategy Strategy `json:"strategy"`
	Count    int      `json:"count"` // values (or, for detectors, matches) masked
}

// Masked reports whether anything was masked.
func (r *Report) Masked() bool { return r != nil && len(r.Entries) > 0 }

// Total is the number of values masked across all entries.
func (r *Report) Total() int {
	if r == nil {
		return 0
	}
	n := 0
	for _, e := range r.Entries {
		n += e.Count
	}
	return n
}

// report builds a Report from per-rule counts.
func (m *Masker) report(f Format, counts []int) *Report {
	r := &Report{Format: f}
	for i, n := range counts {
		if n == 0 {
			continue
		}
		r.Entries = append(r.Entries, m.entry(i, n))
	}
	return r
}

// entry describes rule i in a report.
func (m *Masker) entry(i, count int) ReportEntry {
	c := &m.rules[i]
	e := ReportEntry{Rule: c.label, Path: c.path, Strategy: c.strategy, Count: count}
	if c.detect != nil {
		e.Detector = c.detect.name()
	}
	return e
}

// ErrUnmaskable is matched (errors.Is) by every error that says a body
// could not be masked and was not passed on: *TooLargeError,
// *UnsupportedError and *SyntaxError. A caller answers with an error of
// its own (a gateway: an error that tells the client not to retry).
var ErrUnmaskable = errors.New("mask: body cannot be masked")

// ErrTooLarge is matched (errors.Is) by *TooLargeError.
var ErrTooLarge = errors.New("mask: body too large to mask")

// ErrUnsupported is matched (errors.Is) by *UnsupportedError.
var ErrUnsupported = errors.New("mask: body of a kind that cannot be masked")

// TooLargeError reports a body over the Masker's bound. The body was not
// passed on: answer the caller with an error.
type TooLargeError struct {
	Limit int64 // the bound, in bytes
	Size  int64 // the declared size, or -1 when the bound was hit while reading
}

func (e *TooLargeError) Error() string {
	if e.Size >= 0 {
		return fmt.Sprintf("mask: body of %d bytes is over the %d-byte masking limit", e.Size, e.Limit)
	}
	return fmt.Sprintf("mask: body is over the %d-byte masking limit", e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) and errors.Is(err, ErrUnmaskable)
// true.
func (e *TooLargeError) Is(target error) bool {
	return target == ErrTooLarge || target == ErrUnmaskable
}

// UnsupportedError reports a body that cannot be masked: a binary body or
// one of an unknown media type, an undecodable content encoding or
// charset, a partial body, or a text body for rules that select by path.
// The body was not passed on.
type UnsupportedError struct {
	What string // "content type", "content encoding", "charset", "partial content", "text"
	Got  string // the header value or a description of the body
	// Rules are the labels of the rules that could not be applied (for
	// "text": the rules with a path).
	Rules []string
}

func (e *UnsupportedError) Error() string {
	if e.What == "text" {
		return fmt.Sprintf("mask: a text body (%s) cannot be masked by path: rules %q", e.Got, e.Rules)
	}
	return fmt.Sprintf("mask: unsupported %s %q", e.What, e.Got)
}

// Is makes errors.Is(err, ErrUnsupported) and errors.Is(err,
// ErrUnmaskable) true.
func (e *UnsupportedError) Is(target error) bool {
	return target == ErrUnsupported || target == ErrUnmaskable
}

// SyntaxError reports a document that is not well-formed JSON or XML (or is
// nested deeper than MaxDepth). Masking fails closed: nothing of the
// document is returned.
type SyntaxError struct {
	Format Format
	Offset int64 // byte offset of the problem in the (decoded) document
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("mask: invalid %s at offset %d: %s", e.Format, e.Offset, e.Msg)
}

// Is makes errors.Is(err, ErrUnmaskable) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrUnmaskable }
