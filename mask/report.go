package mask

import (
	"errors"
	"fmt"
)

// Format is the kind of document a Masker worked on.
type Format string

// The formats.
const (
	JSON Format = "json"
	XML  Format = "xml"
)

// Report says what a Masker changed in one document: which rules matched,
// with which strategy, how many times. It never holds the values, so it can
// go to an audit trail as it is.
type Report struct {
	Format  Format        `json:"format"`
	Entries []ReportEntry `json:"entries,omitempty"`
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
		c := &m.rules[i]
		e := ReportEntry{Rule: c.label, Path: c.path, Strategy: c.strategy, Count: n}
		if c.detect != nil {
			e.Detector = c.detect.name()
		}
		r.Entries = append(r.Entries, e)
	}
	return r
}

// ErrTooLarge is matched (errors.Is) by *TooLargeError.
var ErrTooLarge = errors.New("mask: body too large to mask")

// ErrUnsupported is matched (errors.Is) by *UnsupportedError.
var ErrUnsupported = errors.New("mask: body cannot be masked")

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

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// UnsupportedError reports a body that cannot be masked: an unknown content
// type or content encoding. The body was not passed on.
type UnsupportedError struct {
	What string // "content type", "content encoding"
	Got  string
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("mask: unsupported %s %q", e.What, e.Got)
}

// Is makes errors.Is(err, ErrUnsupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrUnsupported }

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
