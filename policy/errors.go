package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every error Parse, Load and Compile report for
// a bad policy or cases file.
var ErrInvalid = errors.New("policy: invalid policy")

// Error is one problem found while loading or compiling a policy or a
// cases file, located as precisely as possible.
type Error struct {
	// Pos is where the problem is; for CEL errors it points inside the
	// condition as it stands in the YAML file. Zero for rules built in Go
	// without a Source.
	Pos Position
	// Rule names the rule, or is "" for problems outside rules. For rules
	// without a name it is "rules[i]".
	Rule string
	// Field names the rule field ("when", "approval.holdTimeout",
	// "mask[1].strategy"), or is "".
	Field string
	// Msg says what is wrong.
	Msg string
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, "rule %s: ", e.Rule)
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns ErrInvalid.
func (e *Error) Unwrap() error { return ErrInvalid }

// ErrorList is every problem found in one Parse, Load or Compile call,
// ordered by position. errors.As finds its first *Error.
type ErrorList []*Error

// maxErrors bounds how many problems one call reports.
const maxErrors = 50

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the individual errors.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// errs collects problems.
type errs struct{ list ErrorList }

func (c *errs) add(e *Error) {
	if len(c.list) < maxErrors {
		c.list = append(c.list, e)
	}
}

func (c *errs) err() error {
	if len(c.list) == 0 {
		return nil
	}
	slices.SortStableFunc(c.list, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Pos.File, b.Pos.File), cmp.Compare(a.Pos.Line, b.Pos.Line), cmp.Compare(a.Pos.Column, b.Pos.Column))
	})
	return c.list
}
