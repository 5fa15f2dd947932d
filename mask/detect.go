package mask

import (
	"fmt"
	"math"
	"regexp"
	"strings"
)

// Detector names a built-in content detector. Detectors look at the text of
// string values (JSON strings after unescaping, XML text after entity
// decoding) and mask only the part they recognise.
type Detector string

// The built-in detectors.
const (
	// DetectAWSAccessKeyID finds AKIA… and ASIA… followed by 16 upper-case
	// letters or digits, not inside a longer word.
	DetectAWSAccessKeyID Detector = "aws-access-key-id"
	// DetectAWSSecretKey finds 40-character runs of [A-Za-z0-9/+] (not
	// inside a longer run) that either sit in a value whose key or element
	// name contains "secret", or follow a label containing "secret" (such as
	// "aws_secret_access_key = " or "SecretAccessKey:"), or are the whole
	// value (spaces aside) with upper case, lower case and digits and a
	// Shannon entropy of at least 4.2 bits per character. Other 40-character
	// runs are left alone: hex digests and most identifiers stay readable.
	DetectAWSSecretKey Detector = "aws-secret-access-key"
	// DetectAWSSessionToken finds STS session tokens: base64 runs of at least
	// 100 characters that start like AWS tokens do ("IQoJb3JpZ2luX2Vj",
	// "FwoGZXIvYXdz", "FQoGZXIvYXdz"), or any such run in a value whose key
	// or element name contains "sessiontoken", "session_token" or
	// "securitytoken".
	DetectAWSSessionToken Detector = "aws-session-token"
	// DetectPrivateKey finds PEM private keys, from "-----BEGIN … PRIVATE
	// KEY-----" through the matching END line (or to the end of the value
	// when it is missing), PGP private key blocks included.
	DetectPrivateKey Detector = "private-key"
	// DetectJWT finds JSON Web Tokens: two base64url segments that both
	// start with "eyJ" (an encoded '{"'), a dot between, and an optional
	// signature segment.
	DetectJWT Detector = "jwt"
	// DetectPassword finds passwords in connection strings and settings:
	// the password of scheme://user:password@host, the value of
	// password=, passwd=, pwd= and pass= pairs, and of "password": "…"
	// pairs in JSON text held in a string (such as a SecretString).
	DetectPassword Detector = "password"
	// DetectAll runs every detector above.
	DetectAll Detector = "all"
)

// Detectors lists the built-in detectors, DetectAll excluded.
func Detectors() []Detector {
	return []Detector{DetectAWSAccessKeyID, DetectAWSSecretKey, DetectAWSSessionToken, DetectPrivateKey, DetectJWT, DetectPassword}
}

// detector finds spans of s to mask. key is the name of the enclosing JSON
// member or XML element, raw (it may hold JSON escapes).
type detector interface {
	name() string
	find(dst []span, s string, key []byte) []span
}

// span is a half-open byte range of a string.
type span struct{ start, end int }

func builtinDetector(d Detector) (detector, error) {
	switch d {
	case DetectAWSAccessKeyID:
		return funcDetector{string(d), findAccessKeyIDs}, nil
	case DetectAWSSecretKey:
		return funcDetector{string(d), findSecretKeys}, nil
	case DetectAWSSessionToken:
		return funcDetector{string(d), findSessionTokens}, nil
	case DetectPrivateKey:
		return funcDetector{string(d), findPrivateKeys}, nil
	case DetectJWT:
		return funcDetector{string(d), findJWTs}, nil
	case DetectPassword:
		return newPasswordDetector(), nil
	case DetectAll:
		var all multiDetector
		for _, x := range Detectors() {
			dd, _ := builtinDetector(x)
			all = append(all, dd)
		}
		return all, nil
	}
	return nil, fmt.Errorf("unknown detector %q (want one of %v or %q)", d, Detectors(), DetectAll)
}

type funcDetector struct {
	n string
	f func(dst []span, s string, key []byte) []span
}

func (d funcDetector) name() string                                 { return d.n }
func (d funcDetector) find(dst []span, s string, key []byte) []span { return d.f(dst, s, key) }

type multiDetector []detector

func (multiDetector) name() string { return string(DetectAll) }
func (d multiDetector) find(dst []span, s string, key []byte) []span {
	for _, x := range d {
		dst = x.find(dst, s, key)
	}
	return dst
}

// regexDetector runs a user pattern: the first capturing group when the
// pattern has one, else the whole match. Empty matches are ignored.
type regexDetector struct{ re *regexp.Regexp }

func (regexDetector) name() string { return "pattern" }
func (d regexDetector) find(dst []span, s string, _ []byte) []span {
	for _, m := range d.re.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[0], m[1]
		if len(m) >= 4 && m[2] >= 0 {
			a, b = m[2], m[3]
		}
		if b > a {
			dst = append(dst, span{a, b})
		}
	}
	return dst
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isB64(c byte) bool { return isAlnum(c) || c == '/' || c == '+' }

func isB64URL(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// containsFold reports whether s contains the lower-case ASCII word sub,
// ignoring ASCII case.
func containsFold[T string | []byte](s T, sub string) bool {
	n := len(sub)
outer:
	for i := 0; i+n <= len(s); i++ {
		for j := 0; j < n; j++ {
			c := s[i+j]
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != sub[j] {
				continue outer
			}
		}
		return true
	}
	return false
}

func findAccessKeyIDs(dst []span, s string, _ []byte) []span {
	for i := 0; i+20 <= len(s); {
		j := strings.IndexByte(s[i:], 'A')
		if j < 0 {
			break
		}
		i += j
		if i+20 > len(s) {
			break
		}
		if (s[i+1:i+4] == "KIA" || s[i+1:i+4] == "SIA") && (i == 0 || !isAlnum(s[i-1])) {
			ok := true
			for k := i + 4; k < i+20; k++ {
				if c := s[k]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
					ok = false
					break
				}
			}
			if ok && (i+20 == len(s) || !isAlnum(s[i+20])) {
				dst = append(dst, span{i, i + 20})
				i += 20
				continue
			}
		}
		i++
	}
	return dst
}

func findSecretKeys(dst []span, s string, key []byte) []span {
	if len(s) < 40 {
		return dst
	}
	secretKey := containsFold(key, "secret")
	for i := 0; i < len(s); {
		if !isB64(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isB64(s[j]) {
			j++
		}
		if j-i == 40 && (j == len(s) || s[j] != '=') {
			tok := s[i:j]
			if secretKey || secretLabelBefore(s[:i]) || (strings.TrimSpace(s) == tok && looksRandom(tok)) {
				dst = append(dst, span{i, j})
			}
		}
		i = j
	}
	return dst
}

// secretLabelBefore reports whether the text before a token ends with a
// word containing "secret" and at most five separator characters.
func secretLabelBefore(pre string) bool {
	k := len(pre)
	for n := 0; k > 0 && n < 5 && strings.IndexByte(" \t:=\"'", pre[k-1]) >= 0; n++ {
		k--
	}
	w := k
	for w > 0 && (isAlnum(pre[w-1]) || pre[w-1] == '_' || pre[w-1] == '-') {
		w--
	}
	return k < len(pre) && containsFold(pre[w:k], "secret")
}

// looksRandom holds for tokens with upper case, lower case and digits and
// a Shannon entropy of at least 4.2 bits per character.
func looksRandom(tok string) bool {
	var upper, lower, digit bool
	var freq [256]int
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		freq[c]++
		switch {
		case c >= 'A' && c <= 'Z':
			upper = true
		case c >= 'a' && c <= 'z':
			lower = true
		case c >= '0' && c <= '9':
			digit = true
		}
	}
	if !upper || !lower || !digit {
		return false
	}
	h := 0.0
	n := float64(len(tok))
	for _, f := range freq {
		if f > 0 {
			p := float64(f) / n
			h -= p * math.Log2(p)
		}
	}
	return h >= 4.2
}

var sessionTokenPrefixes = [...]string{"IQoJb3JpZ2luX2Vj", "FwoGZXIvYXdz", "FQoGZXIvYXdz"}

func findSessionTokens(dst []span, s string, key []byte) []span {
	if len(s) < 100 {
		return dst
	}
	named := containsFold(key, "sessiontoken") || containsFold(key, "session_token") || containsFold(key, "securitytoken")
	for i := 0; i < len(s); {
		if !isB64(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && (isB64(s[j]) || s[j] == '=') {
			j++
		}
		if j-i >= 100 && (named || hasTokenPrefix(s[i:j])) {
			dst = append(dst, span{i, j})
		}
		i = j
	}
	return dst
}

func hasTokenPrefix(s string) bool {
	for _, p := range sessionTokenPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func findPrivateKeys(dst []span, s string, _ []byte) []span {
	for i := 0; ; {
		j := strings.Index(s[i:], "-----BEGIN ")
		if j < 0 {
			return dst
		}
		start := i + j
		hdrEnd := strings.Index(s[start+11:], "-----")
		if hdrEnd < 0 {
			return dst
		}
		label := s[start+11 : start+11+hdrEnd]
		i = start + 11 + hdrEnd + 5
		if !strings.Contains(label, "PRIVATE KEY") || strings.ContainsAny(label, "\r\n") {
			continue
		}
		end := len(s)
		if k := strings.Index(s[i:], "-----END "); k >= 0 {
			end = i + k + 9
			if e := strings.Index(s[end:], "-----"); e >= 0 && !strings.ContainsAny(s[end:end+e], "\r\n") {
				end += e + 5
			}
		}
		dst = append(dst, span{start, end})
		i = end
		if i >= len(s) {
			return dst
		}
	}
}

func findJWTs(dst []span, s string, _ []byte) []span {
	for i := 0; ; {
		j := strings.Index(s[i:], "eyJ")
		if j < 0 {
			return dst
		}
		start := i + j
		i = start + 3
		if start > 0 && (isB64URL(s[start-1]) || s[start-1] == '.') {
			continue
		}
		k := start
		for k < len(s) && isB64URL(s[k]) {
			k++
		}
		if k-start < 10 || k+4 > len(s) || s[k] != '.' || s[k+1:k+4] != "eyJ" {
			continue
		}
		p := k + 1
		for p < len(s) && isB64URL(s[p]) {
			p++
		}
		if p-k-1 < 10 {
			continue
		}
		end := p
		if p < len(s) && s[p] == '.' {
			end = p + 1
			for end < len(s) && isB64URL(s[end]) {
				end++
			}
		}
		dst = append(dst, span{start, end})
		i = end
	}
}

type passwordDetector struct {
	url, kv, js *regexp.Regexp
}

func newPasswordDetector() passwordDetector {
	return passwordDetector{
		url: regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s/:@?#"']*:([^\s/@?#"']+)@`),
		kv:  regexp.MustCompile(`(?i)(?:^|[^A-Za-z0-9_])(?:password|passwd|pwd|pass)\s*=\s*("[^"]*"|'[^']*'|[^\s;&,"']+)`),
		js:  regexp.MustCompile(`(?i)"(?:password|passwd|pwd|pass)"\s*:\s*"((?:[^"\\]|\\.)*)"`),
	}
}

func (passwordDetector) name() string { return string(DetectPassword) }

func (d passwordDetector) find(dst []span, s string, _ []byte) []span {
	if strings.Contains(s, "://") {
		dst = groupSpans(dst, d.url, s)
	}
	if containsFold(s, "pass") || containsFold(s, "pwd") {
		dst = groupSpans(dst, d.kv, s)
		if strings.IndexByte(s, '"') >= 0 {
			dst = groupSpans(dst, d.js, s)
		}
	}
	return dst
}

func groupSpans(dst []span, re *regexp.Regexp, s string) []span {
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		if m[3] > m[2] {
			dst = append(dst, span{m[2], m[3]})
		}
	}
	return dst
}
