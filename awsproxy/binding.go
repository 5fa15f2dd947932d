package awsproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// fingerprintVersion starts every fingerprint, so that a change of what
// fingerprints cover never lets an old grant match a new request.
const fingerprintVersion = "gatehouse-approval/2"

// forwardsHeader reports whether the outbound request keeps header lk
// (lower case): everything but the client's signature, date and token, and
// x-amz-* headers the client did not sign.
func forwardsHeader(lk string, signed []string) bool {
	switch {
	case lk == "authorization", lk == "x-amz-security-token", lk == "x-amz-date":
		return false
	case strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-content-sha256" && !slices.Contains(signed, lk):
		// Unsigned x-amz-* headers could have been added by anyone on the
		// way; the gateway never signs them on the client's behalf.
		return false
	}
	return true
}

// unboundHeader reports whether a forwarded header lk (lower case) is left
// out of approvals: it carries transport framing, or a checksum the bound
// body digest already implies, or it changes from one attempt of the same
// call to the next (SDK invocation ids, user agents). Everything else that
// the service's models read as input is bound.
func unboundHeader(lk string) bool {
	switch lk {
	case "x-amz-content-sha256", "x-amz-decoded-content-length", "x-amz-trailer", "x-amz-sdk-checksum-algorithm",
		"content-length", "content-md5", "transfer-encoding", "expect", "connection", "keep-alive", "te", "upgrade",
		"proxy-connection", "host", "user-agent", "x-amz-user-agent", "amz-sdk-invocation-id", "amz-sdk-request",
		"accept-encoding", "x-gatehouse-mcp-session", "x-gatehouse-mcp-tool":
		return true
	}
	if alg, ok := strings.CutPrefix(lk, "x-amz-checksum-"); ok {
		// The value headers; the algorithm, type and mode choices stay bound.
		return alg != "algorithm" && alg != "type" && alg != "mode"
	}
	return false
}

// alwaysBound are headers bound for every service, input members or not:
// they choose the operation or the protocol (X-Amz-Target, Smithy-Protocol,
// X-Amzn-Query-Mode) or how the body is read (Content-Type).
func alwaysBound(lk string) bool {
	switch lk {
	case "x-amz-target", "smithy-protocol", "x-amzn-query-mode", "content-type":
		return true
	}
	return false
}

// boundHeaders returns the headers an approval of c covers, sorted by
// name: every forwarded header that the service's models read as input
// (catalog.InputHeaders) or that picks the operation or protocol
// (alwaysBound), minus unboundHeader's; for a service the catalog does not
// know, every forwarded header minus unboundHeader's. Values are as
// forwarded (several joined by ","), except that the Content-Encoding of
// an aws-chunked body drops the aws-chunked coding, which only frames it.
// Values of headers the models mark sensitive are replaced by their
// SHA-256.
func boundHeaders(c *Call) []approval.Header {
	var set *catalog.InputHeaders
	if svc := c.Classification.Service; svc != nil {
		set = svc.InputHeaders()
	}
	streamed := c.payloadMode == modeStreamSigned || c.payloadMode == modeStreamUnsigned
	var out []approval.Header
	for k, vs := range c.Request.Header {
		lk := lowerHeader(k)
		if !forwardsHeader(lk, c.signed) || unboundHeader(lk) {
			continue
		}
		sensitive := false
		if set != nil && !alwaysBound(lk) {
			var in bool
			if in, sensitive = set.Lookup(lk); !in {
				continue
			}
		}
		v := strings.Join(vs, ",")
		if lk == "content-encoding" && streamed {
			v = withoutAWSChunked(v)
			if v == "" {
				continue
			}
		}
		hd := approval.Header{Name: lk, Value: v}
		if sensitive {
			hd.Value, hd.Digest = "sha256:"+sha256Hex([]byte(v)), true
		}
		out = append(out, hd)
	}
	slices.SortFunc(out, func(a, b approval.Header) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func withoutAWSChunked(v string) string {
	var keep []string
	for tok := range strings.SplitSeq(v, ",") {
		if t := strings.TrimSpace(tok); t != "" && !strings.EqualFold(t, "aws-chunked") {
			keep = append(keep, t)
		}
	}
	return strings.Join(keep, ",")
}

// BodyDigest returns the hex SHA-256 of the request's payload (the decoded
// data of an aws-chunked body): the value approvals are bound to. Stages
// call it instead of reading c.Request.Body.
//
// A body signed by a literal SHA-256 is that hash: the gateway checks it
// as the body streams and aborts the upstream request before its last
// byte on a mismatch. Small bodies (up to Config.MaxBodyBuffer) are read
// and checked now, so that approvers can see them. Any other body
// (UNSIGNED-PAYLOAD, aws-chunked with or without signatures) is read
// whole, its framing and chunk signatures verified, and held in memory,
// bounded by Config.MaxBodyBuffer; it is then sent upstream from memory
// through the same checks. A body past the bound is refused with
// EntityTooLarge: a call whose body cannot be held cannot be bound.
func (c *Call) BodyDigest() (string, error) {
	if c.bodyDigest != "" {
		return c.bodyDigest, nil
	}
	if c.h == nil {
		return "", errors.New("awsproxy: Call.BodyDigest on a call the Handler did not make")
	}
	if e := c.h.holdBody(c); e != nil {
		return "", e
	}
	return c.bodyDigest, nil
}

// holdBody reads c's body into memory where the payload mode allows it,
// verifies it, and sets c.bodyDigest (and c.plain, the payload, when held).
func (h *Handler) holdBody(c *Call) *Error {
	r := c.Request
	switch c.payloadMode {
	case modeLiteral:
		if c.Body == nil && r.ContentLength >= 0 && r.ContentLength <= h.cfg.MaxBodyBuffer {
			body, e := h.readBody(c)
			if e != nil {
				return e
			}
			if sha256Hex(body) != c.PayloadHash {
				return newError(KindContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.", nil)
			}
			c.Body = body
		}
		c.plain = c.Body
		c.bodyDigest = c.PayloadHash
		return nil
	case modeUnsigned:
		if c.Body == nil {
			body, e := h.holdRead(c)
			if e != nil {
				return e
			}
			c.Body = body
		}
		c.plain = c.Body
		c.bodyDigest = sha256Hex(c.Body)
		return nil
	}
	// aws-chunked: hold the encoded body, decode and verify a copy now;
	// the held bytes go upstream later through a fresh chunk reader.
	raw, e := h.holdRead(c)
	if e != nil {
		return e
	}
	var in *chunkSigner
	if c.streamIn != nil {
		cp := *c.streamIn
		cp.buf = nil
		in = &cp
	}
	sum := sha256.New()
	plain := &bytes.Buffer{}
	cr := newChunkReader(io.NopCloser(bytes.NewReader(raw)), in, nil, c.PayloadHash != PayloadStreamingSigned, h.cfg.MaxChunkSize, decodedLength(r))
	cr.tap = io.MultiWriter(sum, plain)
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return asError(err)
	}
	if e := h.reserve(c, int64(plain.Len())); e != nil { // the decoded copy
		return e
	}
	c.held, c.plain = raw, plain.Bytes()
	c.bodyDigest = hex.EncodeToString(sum.Sum(nil))
	return nil
}

// holdRead reads the whole body for holdBody, refusing bodies past
// MaxBodyBuffer with a message that says why the body had to be held.
func (h *Handler) holdRead(c *Call) ([]byte, *Error) {
	body, e := h.readBody(c)
	if e != nil && e.Kind == KindBodyTooLarge {
		e = newError(KindBodyTooLarge, "the call needs an approval, which is bound to its body, and its body exceeds the gateway's buffer limit; send it with a literal x-amz-content-sha256, or make it smaller", nil)
	}
	return body, e
}

// binding is what an approval of a call is bound to, besides the call's
// principal, operation, action, resources, method, path and query.
type binding struct {
	headers    []approval.Header
	bodyDigest string
	decision   string
}

// bind computes c's binding; it may read and hold the body (BodyDigest).
func bind(c *Call) (binding, error) {
	digest, err := c.BodyDigest()
	if err != nil {
		return binding{}, err
	}
	b := binding{headers: boundHeaders(c), bodyDigest: digest}
	if c.Decision != nil {
		b.decision = c.Decision.Digest()
	}
	return b, nil
}

// fingerprint computes the approval fingerprint of c: the principal,
// operation, IAM action, resources, method, upstream path and query
// exactly as forwarded, bound headers, body digest and the decision's
// digest. Every part is length-prefixed, so no two different requests
// share an encoding.
func (b binding) fingerprint(c *Call) string {
	h := sha256.New()
	put := func(s string) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		io.WriteString(h, s)
	}
	who := ""
	if c.Session != nil {
		who = c.Session.Principal.String()
	}
	put(fingerprintVersion)
	put(who)
	put(c.Service)
	put(c.Classification.Operation)
	put(c.Classification.Action)
	put(strings.Join(c.Classification.Resources, "\x00"))
	put(c.Request.Method)
	put(c.rawPath)
	put(c.rawQuery)
	put(strconv.Itoa(len(b.headers)))
	for _, hd := range b.headers {
		put(hd.Name)
		put(hd.Value)
	}
	put(b.bodyDigest)
	put(b.decision)
	return hex.EncodeToString(h.Sum(nil))
}

// Fingerprint identifies the effective request an approval is bound to:
// the principal, operation, IAM action, resources, method, the path and
// query exactly as forwarded, every bound header (see the package doc),
// the SHA-256 of the body in every payload mode (BodyDigest, which may
// read and hold the body) and the digest of the policy decision
// (policy.Decision.Digest, when c.Decision is set), so that a reload that
// changes the decision voids grants made under the old one.
func Fingerprint(c *Call) (string, error) {
	b, err := bind(c)
	if err != nil {
		return "", err
	}
	return b.fingerprint(c), nil
}

// errUnshowable refuses a call needing approval that an approver could not
// be shown whole.
func errUnshowable(what string) *Error {
	return &Error{Kind: KindBadRequest, Code: "InvalidRequest",
		Message: "the call needs an approval, and an approver must see everything it is bound to, but " + what + "; the call was not made"}
}

// approvalDetail is what approvers see of c: every part of its binding,
// whole, and the body's preview masked. A call that cannot be shown whole
// (too many bound headers, a value, path or query past the Detail bounds)
// is refused: approvers never approve what they could not see.
func (h *Handler) approvalDetail(c *Call, b binding) (*approval.Detail, *Error) {
	switch {
	case len(b.headers) > approval.MaxDetailHeaders:
		return nil, errUnshowable(fmt.Sprintf("it has %d bound headers, more than the %d an approval shows", len(b.headers), approval.MaxDetailHeaders))
	case len(c.rawPath) > approval.MaxDetailField || len(c.rawQuery) > approval.MaxDetailField:
		return nil, errUnshowable(fmt.Sprintf("its path or query is longer than the %d bytes an approval shows", approval.MaxDetailField))
	}
	for _, hd := range b.headers {
		if len(hd.Value) > approval.MaxDetailHeaderValue {
			return nil, errUnshowable(fmt.Sprintf("header %s is longer than the %d bytes an approval shows", hd.Name, approval.MaxDetailHeaderValue))
		}
	}
	d := &approval.Detail{
		Service: c.Service, Operation: c.Classification.Operation, Region: c.Region, Method: c.Request.Method,
		Path: c.rawPath, Query: c.rawQuery, Headers: slices.Clone(b.headers), Decision: b.decision,
	}
	if len(c.Classification.Params) > 0 {
		// Params are a reading aid (everything they come from is shown
		// whole above), so they may be cut.
		d.Params = make(map[string]string, len(c.Classification.Params))
		for k, v := range c.Classification.Params {
			if len(d.Params) == approval.MaxDetailParams {
				break
			}
			d.Params[k] = cut(v, approval.MaxDetailHeaderValue)
		}
	}
	d.Body = h.bodyPreview(c)
	return d, nil
}

// cut shortens s to at most n bytes, at a UTF-8 boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// bodyPreview describes c's body for approvers: size, digest, media type
// and the start of the payload with secrets masked (every detector of the
// mask package, plus the operation's sensitive members). A body that
// cannot be checked for secrets is not shown; the note says why.
func (h *Handler) bodyPreview(c *Call) *approval.Body {
	b := &approval.Body{SHA256: c.bodyDigest, ContentType: c.Request.Header.Get("Content-Type"), Size: -1}
	switch {
	case c.plain != nil:
		b.Size = int64(len(c.plain))
	case c.Request.ContentLength >= 0 && c.payloadMode == modeLiteral:
		b.Size = c.Request.ContentLength
	}
	if len(b.ContentType) > approval.MaxDetailField {
		b.ContentType = ""
	}
	switch {
	case c.plain == nil:
		b.PreviewNote = "not shown: the body streams; the approval is bound to its signed SHA-256, which the gateway checks before the body's last byte leaves"
		return b
	case len(c.plain) == 0:
		return b
	}
	text, masked, note := h.previewText(c, c.plain)
	if note != "" {
		b.PreviewNote = note
		return b
	}
	b.Masked = masked
	if len(text) > approval.MaxBodyPreview {
		text = cut(text, approval.MaxBodyPreview)
		b.Truncated = true
		b.PreviewNote = "only the start of the body is shown"
	}
	b.Preview = text
	return b
}

// previewText masks a payload for display with the artefact rules of the
// request (see artefactMaskers).
func (h *Handler) previewText(c *Call, body []byte) (text string, masked bool, note string) {
	if !utf8.Valid(body) {
		return "", false, "not shown: binary body; the approval is bound to its SHA-256"
	}
	if sensitivePayload(c) {
		return "", false, "not shown: the body is a sensitive member of the operation; the approval is bound to its SHA-256"
	}
	m, err := h.artefacts.get(c, true)
	if err != nil {
		return "", false, "not shown: the preview's mask rules do not compile"
	}
	out, masked, err := maskArtefact(m, c.Request.Header.Get("Content-Type"), "", body)
	if err != nil {
		return "", false, "not shown: the body is in a format that cannot be checked for secrets; the approval is bound to its SHA-256"
	}
	return string(out), masked, ""
}
