package policy

import (
	"errors"
	"fmt"
	"strings"
)

// iamLike reports whether s matches the IAM-style pattern: '*' matches any
// run of characters (including none, and including ':' and '/'), '?'
// matches exactly one character, every other character matches itself.
// Matching is case-sensitive. It runs in O(len(s)*len(pattern)) at worst
// and allocates nothing.
func iamLike(s, pattern string) bool {
	si, pi := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			if pattern[pi] == '?' {
				// '?' matches one character, not one byte.
				si += runeLen(s[si])
			} else {
				si++
			}
			pi++
		case star >= 0:
			pi = star + 1
			mark += runeLen(s[mark])
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// runeLen is the length of the UTF-8 sequence that starts with byte b (1
// for invalid leading bytes, so progress is always made).
func runeLen(b byte) int {
	switch {
	case b < 0xC0:
		return 1
	case b < 0xE0:
		return 2
	case b < 0xF0:
		return 3
	default:
		return 4
	}
}

var errPattern = errors.New("bad wildcard pattern")

// checkIAMPattern validates a pattern given to iamLike. A pattern is one
// of:
//
//   - "*", which matches anything;
//   - an IAM action pattern "<service>:<Action>": the service is lower-case
//     letters, digits and '-', the action letters and digits, and either may
//     hold '*' and '?'. A literal action must start with an upper-case
//     letter, as IAM writes them ("s3:GetObject"): matching is
//     case-sensitive, so "s3:getObject" would never match and is refused;
//   - an ARN pattern "arn:<partition>:<service>:<region>:<account>:<resource>"
//     (the resource part may contain ':' and '/'), with no white space.
func checkIAMPattern(p string) error {
	if p == "*" {
		return nil
	}
	if p == "" {
		return fmt.Errorf("%w: empty pattern (write \"*\" to match anything)", errPattern)
	}
	for _, r := range p {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: %q contains white space or a control character", errPattern, p)
		}
	}
	if strings.HasPrefix(p, "arn:") {
		if strings.Count(p, ":") < 5 {
			return fmt.Errorf("%w: ARN pattern %q needs six parts: arn:partition:service:region:account:resource", errPattern, p)
		}
		parts := strings.SplitN(p, ":", 6)
		if parts[1] == "" || parts[2] == "" {
			return fmt.Errorf("%w: ARN pattern %q has an empty partition or service (use *)", errPattern, p)
		}
		if parts[5] == "" {
			return fmt.Errorf("%w: ARN pattern %q has an empty resource (use *)", errPattern, p)
		}
		return nil
	}
	svc, act, ok := strings.Cut(p, ":")
	if !ok {
		return fmt.Errorf("%w: %q is neither an IAM action (service:Action), an ARN (arn:...) nor *", errPattern, p)
	}
	if svc == "" || act == "" {
		return fmt.Errorf("%w: action pattern %q has an empty service or action (use *)", errPattern, p)
	}
	for _, c := range svc {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '*' || c == '?') {
			return fmt.Errorf("%w: action pattern %q: service prefix %q may hold only a-z, 0-9, '-', '*' and '?'", errPattern, p, svc)
		}
	}
	for _, c := range act {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '*' || c == '?') {
			return fmt.Errorf("%w: action pattern %q: action %q may hold only letters, digits, '*' and '?'", errPattern, p, act)
		}
	}
	if c := act[0]; c >= 'a' && c <= 'z' {
		return fmt.Errorf("%w: action pattern %q: IAM actions start with an upper-case letter and matching is case-sensitive", errPattern, p)
	}
	return nil
}

// literalServicePrefix returns the service prefix an action pattern
// requires ("s3" for "s3:Delete*"), or false when the pattern does not pin
// one (a wildcard in the prefix, an ARN pattern, "*").
func literalServicePrefix(p string) (string, bool) {
	if strings.HasPrefix(p, "arn:") {
		return "", false
	}
	svc, _, ok := strings.Cut(p, ":")
	if !ok || svc == "" || strings.ContainsAny(svc, "*?") {
		return "", false
	}
	return svc, true
}
