package mask

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// FormatOf returns the format a Content-Type declares: JSON for
// application/json, application/x-amz-json-1.0 and -1.1 and any type with
// a "+json" suffix or "json" subtype; XML for text/xml, application/xml and
// any "+xml" suffix; Text for other text/* types and the application types
// that hold text (javascript, x-sh, yaml, toml, sql, csv, x-ndjson, ...,
// and any "+yaml" suffix); "" otherwise.
func FormatOf(contentType string) Format {
	switch k, _, _ := mediaOf(contentType); k {
	case mediaJSON:
		return JSON
	case mediaXML:
		return XML
	case mediaText:
		return Text
	}
	return ""
}

// Mask masks a body by its media type (the Content-Type's value) and
// returns the result and a Report; this is the entry point for bodies
// that are not AWS responses, such as MCP tool results.
//
//   - JSON types (see FormatOf): MaskJSON. XML types: MaskXML.
//   - Text types: MaskText, when the body is text (valid UTF-8 without
//     NUL bytes) in an ASCII-compatible charset. Rules with a path cannot
//     apply to text: the body is refused unless each of them sets
//     SkipUnmaskable.
//   - No type, application/octet-stream, binary/octet-stream and
//     application/unknown: the bytes decide. Binary content cannot be
//     masked; text that starts with '{' or '[' and parses as JSON is
//     masked as JSON, text that starts with '<' and parses as XML as XML,
//     and any other text as text.
//   - Any other type (images, archives, PDF, CBOR, event streams, ...):
//     the body cannot be masked.
//
// A body that cannot be masked is refused with an error matching
// ErrUnmaskable (an *UnsupportedError, or a *SyntaxError for a JSON or XML
// type whose body does not parse), unless every rule that cannot be
// applied sets SkipUnmaskable: then the body is returned as it is, minus
// what the other rules masked (a text body's detectors still apply), and
// Report.Skipped names the skipped rules.
// A Masker without rules returns every body unchanged. An empty body is
// returned as it is.
func (m *Masker) Mask(contentType string, body []byte) ([]byte, *Report, error) {
	kind, mt, charset := mediaOf(contentType)
	if len(bytes.TrimSpace(body)) == 0 {
		return body, &Report{Format: FormatOf(contentType)}, nil
	}
	switch kind {
	case mediaJSON, mediaXML:
		f, mask := JSON, m.MaskJSON
		if kind == mediaXML {
			f, mask = XML, m.MaskXML
		}
		out, rep, err := mask(body)
		if err != nil {
			return m.unmaskable(body, f, err)
		}
		return out, rep, nil
	case mediaText:
		if !asciiCharset(charset) {
			return m.unmaskable(body, Text, &UnsupportedError{What: "charset", Got: charset})
		}
		if !isText(body) {
			return m.unmaskable(body, Text, &UnsupportedError{What: "content", Got: mt + " body that is not UTF-8 text"})
		}
		return m.maskText(body, mt)
	case mediaSniff:
		if !isText(body) {
			return m.unmaskable(body, "", &UnsupportedError{What: "content", Got: cmpOr(mt, "untyped") + " body with binary content"})
		}
		var try func([]byte) ([]byte, *Report, error)
		if b := bytes.TrimLeft(body, " \t\r\n\ufeff"); len(b) > 0 {
			switch b[0] {
			case '{', '[':
				try = m.MaskJSON
			case '<':
				try = m.MaskXML
			}
		}
		if try != nil {
			out, rep, err := try(body)
			var se *SyntaxError
			if !errors.As(err, &se) {
				return out, rep, err
			}
		}
		return m.maskText(body, cmpOr(mt, "untyped")+" body")
	}
	return m.unmaskable(body, "", &UnsupportedError{What: "content type", Got: contentType})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// MaskResponse masks an HTTP response in place; resp.Request may be nil.
//
// The body is read whole, up to Config.MaxBody bytes (DefaultMaxBody); a
// larger body, before or after decompression, yields a *TooLargeError.
// Content-Encoding gzip, x-gzip and deflate (zlib or raw) are decoded;
// other encodings yield an *UnsupportedError. A 206 Partial Content
// response is masked only when its Content-Range covers the whole
// representation (bytes 0-(N-1)/N); any other part yields an
// *UnsupportedError: a fragment cannot be parsed, and a secret cut at a
// part boundary would escape the detectors. The body is then masked by
// its Content-Type as Mask does; invalid JSON or XML yields a
// *SyntaxError. Every one of these errors matches ErrUnmaskable. On every
// error the body has been closed and replaced with http.NoBody, so
// nothing unmasked can be passed on by mistake: the caller answers with
// an error of its own.
//
// When every rule that cannot be applied sets SkipUnmaskable, there is no
// error: the response goes on as it came (a body over the bound streams
// on unread past the bytes already read), and Report.Skipped and
// Report.SkipReason say what was skipped and why.
//
// When nothing was masked, the original bytes (still encoded) are put back
// and only Content-Length is set. When something was masked, the masked
// body is sent without any content encoding: Content-Encoding is removed,
// Content-Length set and Transfer-Encoding cleared; X-Amz-Crc32 (as
// DynamoDB sends it) is recomputed as the decimal CRC-32 (IEEE) of the new
// body; x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1 and -sha256 are
// recomputed, composite or unknown x-amz-checksum-* headers are removed;
// Content-MD5 is removed, and so are x-amz-checksum-* trailers. A masked
// whole-representation 206 gets the Content-Range of the new body.
//
// Responses without a body, HEAD responses and 204 and 304 responses are
// left alone.
func (m *Masker) MaskResponse(resp *http.Response) (rep *Report, err error) {
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	ct := resp.Header.Get("Content-Type")
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || (resp.Request != nil && resp.Request.Method == http.MethodHead) {
		return &Report{Format: FormatOf(ct)}, nil
	}
	if len(m.rules) == 0 {
		return &Report{Format: FormatOf(ct)}, nil
	}
	defer func() {
		if err != nil {
			if resp.Body != nil {
				resp.Body.Close()
			}
			resp.Body = http.NoBody
			resp.ContentLength = 0
			resp.Header.Set("Content-Length", "0")
			resp.Header.Del("Content-Encoding")
			resp.Header.Del("Content-Range")
			resp.TransferEncoding = nil
		}
	}()
	whole := false
	if resp.StatusCode == http.StatusPartialContent {
		cr := resp.Header.Get("Content-Range")
		if !wholeRange(cr) {
			return m.skipAll(FormatOf(ct), &UnsupportedError{What: "partial content", Got: cmpOr(cr, "no Content-Range")})
		}
		whole = true
	}
	if resp.ContentLength > m.maxBody {
		return m.skipAll(FormatOf(ct), &TooLargeError{Limit: m.maxBody, Size: resp.ContentLength})
	}
	orig := resp.Body
	wire, err := io.ReadAll(io.LimitReader(orig, m.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("mask: reading the response body: %w", err)
	}
	if int64(len(wire)) > m.maxBody {
		rep, err := m.skipAll(FormatOf(ct), &TooLargeError{Limit: m.maxBody, Size: -1})
		if err == nil {
			// Passed on as it came: the bytes read, then the rest unread.
			resp.Body = struct {
				io.Reader
				io.Closer
			}{io.MultiReader(bytes.NewReader(wire), orig), orig}
		}
		return rep, err
	}
	orig.Close()
	resp.Body = nil
	plain, err := m.decode(wire, resp.Header.Values("Content-Encoding"))
	if err != nil {
		rep, err := m.skipAll(FormatOf(ct), err)
		if err == nil {
			setBody(resp, wire)
		}
		return rep, err
	}
	out, rep, err := m.Mask(ct, plain)
	if err != nil {
		return nil, err
	}
	if !rep.Masked() {
		setBody(resp, wire)
		return rep, nil
	}
	setBody(resp, out)
	resp.Header.Del("Content-Encoding")
	resp.Uncompressed = false
	fixChecksums(resp.Header, out)
	for k := range resp.Trailer {
		if isChecksumHeader(k) || strings.EqualFold(k, "Content-MD5") {
			delete(resp.Trailer, k)
		}
	}
	if whole {
		if len(out) > 0 {
			resp.Header.Set("Content-Range", fmt.Sprintf("bytes 0-%d/%d", len(out)-1, len(out)))
		} else {
			resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
			resp.Header.Del("Content-Range")
		}
	}
	return rep, nil
}

// wholeRange reports whether a Content-Range header covers a whole
// representation: "bytes 0-(N-1)/N".
func wholeRange(cr string) bool {
	rest, ok := strings.CutPrefix(strings.TrimSpace(cr), "bytes ")
	if !ok {
		return false
	}
	span, total, ok := strings.Cut(rest, "/")
	if !ok {
		return false
	}
	first, last, ok := strings.Cut(span, "-")
	if !ok || first != "0" {
		return false
	}
	l, err1 := strconv.ParseInt(last, 10, 64)
	n, err2 := strconv.ParseInt(total, 10, 64)
	return err1 == nil && err2 == nil && l >= 0 && l+1 == n
}

func setBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
	resp.TransferEncoding = nil
}

// decode undoes the content codings, last applied first.
func (m *Masker) decode(b []byte, values []string) ([]byte, error) {
	var codings []string
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			if c = strings.ToLower(strings.TrimSpace(c)); c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	for i := len(codings) - 1; i >= 0; i-- {
		var r io.Reader
		switch codings[i] {
		case "gzip", "x-gzip":
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				return nil, &SyntaxError{Format: Format(codings[i]), Msg: err.Error()}
			}
			r = zr
		case "deflate":
			if zr, err := zlib.NewReader(bytes.NewReader(b)); err == nil {
				r = zr
			} else {
				r = flate.NewReader(bytes.NewReader(b))
			}
		default:
			return nil, &UnsupportedError{What: "content encoding", Got: codings[i]}
		}
		out, err := io.ReadAll(io.LimitReader(r, m.maxBody+1))
		if err != nil {
			return nil, &SyntaxError{Format: Format(codings[i]), Msg: err.Error()}
		}
		if int64(len(out)) > m.maxBody {
			return nil, &TooLargeError{Limit: m.maxBody, Size: -1}
		}
		b = out
	}
	return b, nil
}

func isChecksumHeader(k string) bool {
	k = strings.ToLower(k)
	return strings.HasPrefix(k, "x-amz-checksum-") && k != "x-amz-checksum-type" && k != "x-amz-checksum-mode"
}

// crc64NVME is the reflected CRC-64/NVME polynomial for hash/crc64.
const crc64NVME = 0x9a6c9329ac4bc9b5

// fixChecksums recomputes or removes every header that checks the body.
func fixChecksums(h http.Header, body []byte) {
	if h.Get("X-Amz-Crc32") != "" {
		h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
	h.Del("Content-Md5")
	composite := false
	for k, vs := range h {
		if !isChecksumHeader(k) {
			continue
		}
		var sum []byte
		if len(vs) == 1 && !strings.Contains(vs[0], "-") {
			sum = checksum(strings.ToLower(k[len("x-amz-checksum-"):]), body)
		}
		if sum == nil {
			composite = true
			delete(h, k)
			continue
		}
		h[k] = []string{base64.StdEncoding.EncodeToString(sum)}
	}
	if composite {
		h.Del("X-Amz-Checksum-Type")
	}
}

// checksum computes an x-amz-checksum-* algorithm, or returns nil.
func checksum(alg string, body []byte) []byte {
	var hh hash.Hash
	switch alg {
	case "crc32":
		return binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(body))
	case "crc32c":
		return binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	case "crc64nvme":
		return binary.BigEndian.AppendUint64(nil, crc64.Checksum(body, crc64.MakeTable(crc64NVME)))
	case "sha1":
		hh = sha1.New()
	case "sha256":
		hh = sha256.New()
	default:
		return nil
	}
	hh.Write(body)
	return hh.Sum(nil)
}
