package awsproxy

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SigV4 constants shared by the verifier and the chunk signer.
const (
	sigAlgorithm     = "AWS4-HMAC-SHA256"
	sigTerminator    = "aws4_request"
	amzDateLayout    = "20060102T150405Z"
	scopeDateLayout  = "20060102"
	emptySHA256      = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	maxPresignExpiry = 7 * 24 * time.Hour

	headerAuthorization   = "Authorization"
	headerAmzDate         = "X-Amz-Date"
	headerSecurityToken   = "X-Amz-Security-Token"
	headerContentSHA256   = "X-Amz-Content-Sha256"
	headerDecodedLength   = "X-Amz-Decoded-Content-Length"
	headerAmzTrailer      = "X-Amz-Trailer"
	queryAlgorithm        = "X-Amz-Algorithm"
	queryCredential       = "X-Amz-Credential"
	queryDate             = "X-Amz-Date"
	queryExpires          = "X-Amz-Expires"
	querySignedHeaders    = "X-Amz-SignedHeaders"
	querySignature        = "X-Amz-Signature"
	querySecurityToken    = "X-Amz-Security-Token"
	maxAuthorizationBytes = 8 << 10
)

// Payload hash values with a meaning of their own (x-amz-content-sha256).
const (
	PayloadUnsigned              = "UNSIGNED-PAYLOAD"
	PayloadStreamingUnsigned     = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	PayloadStreamingSigned       = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	PayloadStreamingSignedTrailr = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
)

// errMalformed is wrapped by every parse error of the SigV4 inputs.
var errMalformed = errors.New("malformed SigV4 input")

// credentialScope is the parsed Credential= value: AKID/date/region/service/aws4_request.
type credentialScope struct {
	AccessKeyID string
	Date        string // yyyymmdd
	Region      string
	Service     string
}

// String returns the scope without the access key id, as used in strings to sign.
func (c credentialScope) String() string {
	return string(c.appendTo(make([]byte, 0, len(c.Date)+len(c.Region)+len(c.Service)+len(sigTerminator)+3)))
}

func (c credentialScope) appendTo(dst []byte) []byte {
	dst = append(dst, c.Date...)
	dst = append(dst, '/')
	dst = append(dst, c.Region...)
	dst = append(dst, '/')
	dst = append(dst, c.Service...)
	dst = append(dst, '/')
	return append(dst, sigTerminator...)
}

// sigv4Auth is everything a SigV4-signed request claims about itself, taken
// either from the Authorization header or from a presigned query string.
type sigv4Auth struct {
	Scope         credentialScope
	SignedHeaders []string // lower case, sorted, as the client listed them
	Signature     string   // lower-case hex, 64 characters
	Presigned     bool
	Expires       time.Duration // presigned only
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errMalformed}, args...)...)
}

// parseCredential parses "AKID/20261125/us-east-1/s3/aws4_request".
func parseCredential(v string) (credentialScope, error) {
	var parts [5]string
	rest, ok := v, true
	for i := range 4 {
		if parts[i], rest, ok = strings.Cut(rest, "/"); !ok {
			break
		}
	}
	parts[4] = rest
	if !ok || strings.Contains(rest, "/") {
		return credentialScope{}, malformed("credential %q must have 5 slash-separated parts", v)
	}
	c := credentialScope{AccessKeyID: parts[0], Date: parts[1], Region: parts[2], Service: parts[3]}
	switch {
	case c.AccessKeyID == "" || len(c.AccessKeyID) > 128:
		return c, malformed("credential has an empty or oversized access key id")
	case len(c.Date) != 8 || !isDigits(c.Date):
		return c, malformed("credential date %q is not yyyymmdd", c.Date)
	case c.Region == "" || c.Service == "":
		return c, malformed("credential %q lacks a region or service", v)
	case parts[4] != sigTerminator:
		return c, malformed("credential must end in %q", sigTerminator)
	}
	return c, nil
}

// parseSignedHeaders parses "host;x-amz-date" and insists on lower case,
// sorted, unique names that include host.
func parseSignedHeaders(v string) ([]string, error) {
	if v == "" {
		return nil, malformed("empty SignedHeaders")
	}
	names := strings.Split(v, ";")
	hasHost := false
	for i, n := range names {
		if n == "" || !isToken(n) || n != strings.ToLower(n) {
			return nil, malformed("bad signed header name %q", n)
		}
		if i > 0 && names[i-1] >= n {
			return nil, malformed("SignedHeaders must be sorted and unique")
		}
		if n == "host" {
			hasHost = true
		}
	}
	if !hasHost {
		return nil, malformed("SignedHeaders must include host")
	}
	return names, nil
}

func parseSignatureHex(v string) (string, error) {
	if len(v) != 64 {
		return "", malformed("signature must be 64 hex characters")
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", malformed("signature must be lower-case hex")
		}
	}
	return v, nil
}

// parseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/date/region/service/aws4_request, SignedHeaders=a;b, Signature=hex
//
// Components may be separated by commas with or without spaces; each must
// appear exactly once.
func parseAuthorization(v string) (sigv4Auth, error) {
	var a sigv4Auth
	if len(v) > maxAuthorizationBytes {
		return a, malformed("authorization header too long")
	}
	alg, rest, ok := strings.Cut(v, " ")
	if !ok || alg != sigAlgorithm {
		return a, malformed("authorization must start with %s", sigAlgorithm)
	}
	var cred, signed, sig string
	var seen int
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		k, val, ok := strings.Cut(part, "=")
		if !ok {
			return a, malformed("authorization component %q has no '='", part)
		}
		var dst *string
		var bit int
		switch k {
		case "Credential":
			dst, bit = &cred, 1
		case "SignedHeaders":
			dst, bit = &signed, 2
		case "Signature":
			dst, bit = &sig, 4
		default:
			return a, malformed("unknown authorization component %q", k)
		}
		if seen&bit != 0 {
			return a, malformed("duplicate authorization component %q", k)
		}
		seen |= bit
		*dst = val
	}
	if seen != 7 {
		return a, malformed("authorization needs Credential, SignedHeaders and Signature")
	}
	var err error
	if a.Scope, err = parseCredential(cred); err != nil {
		return a, err
	}
	if a.SignedHeaders, err = parseSignedHeaders(signed); err != nil {
		return a, err
	}
	if a.Signature, err = parseSignatureHex(sig); err != nil {
		return a, err
	}
	return a, nil
}

// parsePresigned parses the X-Amz-* parameters of a presigned URL. It
// returns the auth, the request time and the session token.
func parsePresigned(q url.Values) (sigv4Auth, time.Time, string, error) {
	var a sigv4Auth
	a.Presigned = true
	for _, k := range []string{queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature} {
		if len(q[k]) != 1 {
			return a, time.Time{}, "", malformed("presigned URL needs exactly one %s", k)
		}
	}
	if len(q[querySecurityToken]) > 1 {
		return a, time.Time{}, "", malformed("presigned URL has several %s", querySecurityToken)
	}
	if q.Get(queryAlgorithm) != sigAlgorithm {
		return a, time.Time{}, "", malformed("unsupported %s %q", queryAlgorithm, q.Get(queryAlgorithm))
	}
	var err error
	if a.Scope, err = parseCredential(q.Get(queryCredential)); err != nil {
		return a, time.Time{}, "", err
	}
	if a.SignedHeaders, err = parseSignedHeaders(q.Get(querySignedHeaders)); err != nil {
		return a, time.Time{}, "", err
	}
	if a.Signature, err = parseSignatureHex(q.Get(querySignature)); err != nil {
		return a, time.Time{}, "", err
	}
	t, err := parseAmzDate(q.Get(queryDate))
	if err != nil {
		return a, time.Time{}, "", err
	}
	exp := q.Get(queryExpires)
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || secs <= 0 || !isDigits(exp) || secs > int64(maxPresignExpiry/time.Second) {
		return a, time.Time{}, "", malformed("%s must be 1..604800 seconds", queryExpires)
	}
	a.Expires = time.Duration(secs) * time.Second
	return a, t, q.Get(querySecurityToken), nil
}

func parseAmzDate(v string) (time.Time, error) {
	if len(v) != len(amzDateLayout) {
		return time.Time{}, malformed("X-Amz-Date %q is not yyyymmddThhmmssZ", v)
	}
	t, err := time.Parse(amzDateLayout, v)
	if err != nil {
		return time.Time{}, malformed("X-Amz-Date %q is not yyyymmddThhmmssZ", v)
	}
	return t, nil
}

// requestTime reads X-Amz-Date, falling back to the Date header.
func requestTime(h http.Header) (time.Time, error) {
	if v := h.Values(headerAmzDate); len(v) > 0 {
		if len(v) > 1 {
			return time.Time{}, malformed("several X-Amz-Date headers")
		}
		return parseAmzDate(v[0])
	}
	if v := h.Get("Date"); v != "" {
		t, err := http.ParseTime(v)
		if err != nil {
			return time.Time{}, malformed("Date header %q is not an HTTP date", v)
		}
		return t.UTC(), nil
	}
	return time.Time{}, malformed("request has neither X-Amz-Date nor Date")
}

// signingKey derives the SigV4 signing key for a scope.
func signingKey(secret string, s credentialScope) *sigKey {
	k := hmacSHA256([]byte("AWS4"+secret), s.Date)
	k = hmacSHA256(k, s.Region)
	k = hmacSHA256(k, s.Service)
	return &sigKey{raw: hmacSHA256(k, sigTerminator)}
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// sigKey is a derived signing key. It keeps the keyed HMAC states it has
// used for reuse: crypto/hmac allocates three objects per hmac.New, and a
// signature is computed twice per request (the client's, the gateway's) and
// once per aws-chunked chunk.
type sigKey struct {
	raw  []byte
	macs sync.Pool // of *keyedMAC
}

type keyedMAC struct {
	h   hash.Hash
	out [sha256.Size]byte
}

// sum returns HMAC-SHA256(key, msg).
func (k *sigKey) sum(msg []byte) [sha256.Size]byte {
	m, _ := k.macs.Get().(*keyedMAC)
	if m == nil {
		m = &keyedMAC{h: hmac.New(sha256.New, k.raw)}
	} else {
		m.h.Reset()
	}
	m.h.Write(msg)
	var sum [sha256.Size]byte
	copy(sum[:], m.h.Sum(m.out[:0]))
	k.macs.Put(m)
	return sum
}

// appendStringToSign appends to dst the SigV4 string to sign for a
// canonical request with the given SHA-256.
func appendStringToSign(dst []byte, t time.Time, scope credentialScope, canonicalHash *[sha256.Size]byte) []byte {
	dst = append(dst, sigAlgorithm...)
	dst = append(dst, '\n')
	dst = t.UTC().AppendFormat(dst, amzDateLayout)
	dst = append(dst, '\n')
	dst = scope.appendTo(dst)
	dst = append(dst, '\n')
	return hex.AppendEncode(dst, canonicalHash[:])
}

// sigBuffers pools the buffers that canonical requests and strings to sign
// are built in.
var sigBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooledSigBuffer keeps a request with huge headers from pinning its
// buffer in the pool.
const maxPooledSigBuffer = 64 << 10

// signature computes the SigV4 signature of a request whose canonical
// request canonical appends to the buffer it is given: the canonical
// request is hashed, then the same pooled buffer holds the string to sign.
func signature(key *sigKey, t time.Time, scope credentialScope, canonical func([]byte) ([]byte, error)) ([sha256.Size]byte, error) {
	bp := sigBuffers.Get().(*[]byte)
	buf, err := canonical((*bp)[:0])
	var sig [sha256.Size]byte
	if err == nil {
		sum := sha256.Sum256(buf)
		buf = appendStringToSign(buf[:0], t, scope, &sum)
		sig = key.sum(buf)
	}
	if cap(buf) <= maxPooledSigBuffer {
		*bp = buf[:0]
		sigBuffers.Put(bp)
	}
	return sig, err
}

// equalHexSignature compares a computed signature with a client's
// lower-case hex one in constant time.
func equalHexSignature(sum [sha256.Size]byte, hexSig string) bool {
	var want [2 * sha256.Size]byte
	hex.Encode(want[:], sum[:])
	if len(hexSig) != len(want) {
		return false
	}
	var v byte
	for i := range want {
		v |= want[i] ^ hexSig[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// appendCanonicalRequest appends the canonical request of r to dst, as its
// client must have built it. rawPath is the path exactly as received
// (percent-encoded); escapePath asks for the extra round of escaping that
// every service but S3 applies. dropQuery names a query parameter that is
// left out (X-Amz-Signature for presigned URLs).
func appendCanonicalRequest(dst []byte, r *http.Request, rawPath string, escapePath bool, signed []string, payloadHash, dropQuery string) ([]byte, error) {
	dst = append(dst, r.Method...)
	dst = append(dst, '\n')
	if rawPath == "" {
		rawPath = "/"
	}
	if escapePath {
		dst = appendURIEncoded(dst, rawPath, false)
	} else {
		dst = append(dst, rawPath...)
	}
	dst = append(dst, '\n')
	dst, err := appendCanonicalQuery(dst, r.URL.RawQuery, dropQuery)
	if err != nil {
		return dst, err
	}
	dst = append(dst, '\n')
	for _, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		dst = appendCanonicalHeaderValue(dst, r, name)
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	for i, name := range signed {
		if i > 0 {
			dst = append(dst, ';')
		}
		dst = append(dst, name...)
	}
	dst = append(dst, '\n')
	return append(dst, payloadHash...), nil
}

// appendCanonicalHeaderValue appends the trimmed, comma-joined values of a
// signed header. Headers that net/http moves out of the header map (Host,
// Transfer-Encoding) are read from where it put them.
func appendCanonicalHeaderValue(dst []byte, r *http.Request, name string) []byte {
	var values []string
	switch name {
	case "host":
		return appendTrimmed(dst, r.Host)
	case "transfer-encoding":
		for i, v := range r.TransferEncoding {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, v...)
		}
		return dst
	case "content-length":
		values = r.Header[headerKey(name)]
		if len(values) == 0 && r.ContentLength >= 0 {
			return strconv.AppendInt(dst, r.ContentLength, 10)
		}
	default:
		values = r.Header[headerKey(name)]
	}
	for i, v := range values {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendTrimmed(dst, v)
	}
	return dst
}

// appendTrimmed appends v without leading and trailing whitespace and with
// runs of inner spaces collapsed to one, as SigV4 (and the AWS SDKs)
// canonicalize header values. Inner tabs are kept, as the SDKs keep them.
func appendTrimmed(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return append(dst, v...)
	}
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			space = true
			continue
		}
		if space {
			dst = append(dst, ' ')
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

type queryPair struct{ k, v string }

// appendCanonicalQuery appends the canonical query string: every parameter
// decoded, re-encoded with SigV4's strict escaping, sorted by key then value.
func appendCanonicalQuery(dst []byte, raw, drop string) ([]byte, error) {
	if raw == "" {
		return dst, nil
	}
	var stack [16]queryPair
	pairs := stack[:0]
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return dst, malformed("bad query key %q", k)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return dst, malformed("bad query value for %q", dk)
		}
		if drop != "" && dk == drop {
			continue
		}
		pairs = append(pairs, queryPair{uriEncode(dk, true), uriEncode(dv, true)})
	}
	slices.SortFunc(pairs, func(a, b queryPair) int {
		if c := strings.Compare(a.k, b.k); c != 0 {
			return c
		}
		return strings.Compare(a.v, b.v)
	})
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.k...)
		dst = append(dst, '=')
		dst = append(dst, p.v...)
	}
	return dst, nil
}

const upperHex = "0123456789ABCDEF"

// uriEncode applies SigV4's URI encoding: everything but unreserved
// characters is percent-encoded; '/' is kept unless encodeSlash. It
// allocates only when something needs encoding.
func uriEncode(s string, encodeSlash bool) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !unreserved(s[i]) && (encodeSlash || s[i] != '/') {
			n++
		}
	}
	if n == 0 {
		return s
	}
	return string(appendURIEncoded(make([]byte, 0, len(s)+2*n), s, encodeSlash))
}

// appendURIEncoded appends s with SigV4's URI encoding to dst.
func appendURIEncoded(dst []byte, s string, encodeSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || (!encodeSlash && c == '/') {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperHex[c>>4], upperHex[c&15])
	}
	return dst
}

func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// isToken reports whether s is an HTTP header-name token.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			continue
		}
		switch c {
		case '!', '#', '$', '%', '&', '\'', '*', '+', '^', '`', '|':
			continue
		}
		return false
	}
	return s != ""
}

// isPayloadHash reports whether v is a literal lower-case hex SHA-256.
func isPayloadHash(v string) bool {
	_, err := parseSignatureHex(v)
	return err == nil
}
