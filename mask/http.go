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
	"fmt"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
)

// FormatOf returns the format a Content-Type declares: JSON for
// application/json, application/x-amz-json-1.0 and -1.1 and any type with
// a "+json" suffix or "json" subtype; XML for text/xml, application/xml and
// any "+xml" suffix; "" otherwise.
func FormatOf(contentType string) Format {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	_, sub, ok := strings.Cut(mt, "/")
	if !ok {
		return ""
	}
	switch {
	case sub == "json" || strings.HasSuffix(sub, "+json") || strings.HasPrefix(sub, "x-amz-json"):
		return JSON
	case sub == "xml" || strings.HasSuffix(sub, "+xml"):
		return XML
	}
	return ""
}

// sniff guesses the format from the first byte that is not white space.
func sniff(body []byte) Format {
	b := bytes.TrimLeft(body, " \t\r\n\ufeff")
	switch {
	case len(b) == 0:
		return ""
	case b[0] == '{' || b[0] == '[':
		return JSON
	case b[0] == '<':
		return XML
	}
	return ""
}

// Mask masks a JSON or XML body chosen by its content type (see FormatOf).
// When the type names neither, the body is sniffed: '{' or '[' means JSON,
// '<' means XML; anything else is refused with an *UnsupportedError. An
// empty body is returned as it is. This is the entry point for bodies that
// are not AWS responses, such as MCP tool results.
func (m *Masker) Mask(contentType string, body []byte) ([]byte, *Report, error) {
	f := FormatOf(contentType)
	if len(bytes.TrimSpace(body)) == 0 {
		return body, &Report{Format: f}, nil
	}
	if f == "" {
		f = sniff(body)
	}
	switch f {
	case JSON:
		return m.MaskJSON(body)
	case XML:
		return m.MaskXML(body)
	}
	return nil, nil, &UnsupportedError{What: "content type", Got: contentType}
}

// MaskResponse masks an HTTP response in place; resp.Request may be nil.
//
// The body is read whole, up to Config.MaxBody bytes (DefaultMaxBody); a
// larger body, before or after decompression, yields a *TooLargeError.
// Content-Encoding gzip, x-gzip and deflate (zlib or raw) are decoded;
// other encodings yield an *UnsupportedError. The body is then masked by
// its Content-Type as Mask does; invalid JSON or XML yields a
// *SyntaxError. On every error the body has been closed and replaced with
// http.NoBody, so nothing unmasked can be passed on by mistake: the caller
// answers with an error of its own.
//
// When nothing was masked, the original bytes (still encoded) are put back
// and only Content-Length is set. When something was masked, the masked
// body is sent without any content encoding: Content-Encoding is removed,
// Content-Length set and Transfer-Encoding cleared; X-Amz-Crc32 (as
// DynamoDB sends it) is recomputed as the decimal CRC-32 (IEEE) of the new
// body; x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1 and -sha256 are
// recomputed, composite or unknown x-amz-checksum-* headers are removed;
// Content-MD5 is removed, and so are x-amz-checksum-* trailers.
//
// Responses without a body, HEAD responses and 204 and 304 responses are
// left alone.
func (m *Masker) MaskResponse(resp *http.Response) (rep *Report, err error) {
	if resp.Header == nil {
		resp.Header = http.Header{}
	}
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || (resp.Request != nil && resp.Request.Method == http.MethodHead) {
		return &Report{Format: FormatOf(resp.Header.Get("Content-Type"))}, nil
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
			resp.TransferEncoding = nil
		}
	}()
	if resp.ContentLength > m.maxBody {
		return nil, &TooLargeError{Limit: m.maxBody, Size: resp.ContentLength}
	}
	wire, err := io.ReadAll(io.LimitReader(resp.Body, m.maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("mask: reading the response body: %w", err)
	}
	if int64(len(wire)) > m.maxBody {
		return nil, &TooLargeError{Limit: m.maxBody, Size: -1}
	}
	resp.Body.Close()
	resp.Body = nil
	plain, err := m.decode(wire, resp.Header.Values("Content-Encoding"))
	if err != nil {
		return nil, err
	}
	out, rep, err := m.Mask(resp.Header.Get("Content-Type"), plain)
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
	return rep, nil
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
