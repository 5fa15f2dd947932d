package mask

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func response(body []byte, header ...string) *http.Response {
	h := http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		h.Add(header[i], header[i+1])
	}
	return &http.Response{
		StatusCode:    200,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
	}
}

func encode(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zlib":
		w = zlib.NewWriter(&buf)
	case "flate":
		w, _ = flate.NewWriter(&buf, flate.BestSpeed)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.ContentLength != int64(len(b)) || resp.Header.Get("Content-Length") != strconv.Itoa(len(b)) {
		t.Errorf("Content-Length %d / %q, body %d bytes", resp.ContentLength, resp.Header.Get("Content-Length"), len(b))
	}
	return b
}

const secretDoc = `{"Name":"db","SecretString":"hunter2"}`
const maskedDoc = `{"Name":"db","SecretString":"****"}`

func TestMaskResponseEncodings(t *testing.T) {
	m := mustNew(t, Rule{JSON: "SecretString"})
	for _, tt := range []struct {
		name, header string
		body         []byte
	}{
		{"identity", "", []byte(secretDoc)},
		{"gzip", "gzip", encode(t, "gzip", []byte(secretDoc))},
		{"x-gzip", "x-gzip", encode(t, "gzip", []byte(secretDoc))},
		{"deflate (zlib)", "deflate", encode(t, "zlib", []byte(secretDoc))},
		{"deflate (raw)", "deflate", encode(t, "flate", []byte(secretDoc))},
		{"gzip twice", "gzip, gzip", encode(t, "gzip", encode(t, "gzip", []byte(secretDoc)))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp := response(tt.body, "Content-Type", "application/x-amz-json-1.1")
			if tt.header != "" {
				resp.Header.Set("Content-Encoding", tt.header)
			}
			resp.TransferEncoding = []string{"chunked"}
			rep, err := m.MaskResponse(resp)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(readBody(t, resp)); got != maskedDoc {
				t.Errorf("body = %s", got)
			}
			if resp.Header.Get("Content-Encoding") != "" || resp.TransferEncoding != nil {
				t.Errorf("encoding left: %q %q", resp.Header.Get("Content-Encoding"), resp.TransferEncoding)
			}
			if rep.Total() != 1 || rep.Entries[0].Path != "SecretString" || rep.Entries[0].Strategy != Redact {
				t.Errorf("report = %+v", rep)
			}
		})
	}
}

func TestMaskResponseUnchangedKeepsWireBytes(t *testing.T) {
	m := mustNew(t, Rule{JSON: "Missing"})
	wire := encode(t, "gzip", []byte(secretDoc))
	resp := response(wire, "Content-Type", "application/json", "Content-Encoding", "gzip", "X-Amz-Crc32", "123", "Content-Md5", "x")
	rep, err := m.MaskResponse(resp)
	if err != nil || rep.Masked() {
		t.Fatalf("rep=%+v err=%v", rep, err)
	}
	if !bytes.Equal(readBody(t, resp), wire) || resp.Header.Get("Content-Encoding") != "gzip" ||
		resp.Header.Get("X-Amz-Crc32") != "123" || resp.Header.Get("Content-Md5") != "x" {
		t.Errorf("unchanged response was altered: %v", resp.Header)
	}
}

func TestMaskResponseChecksums(t *testing.T) {
	m := mustNew(t, Rule{JSON: "SecretString"})
	resp := response([]byte(secretDoc), "Content-Type", "application/json",
		"X-Amz-Crc32", "1",
		"X-Amz-Checksum-Crc32", "AAAAAA==",
		"X-Amz-Checksum-Crc32c", "AAAAAA==",
		"X-Amz-Checksum-Crc64nvme", "AAAAAAAAAAA=",
		"X-Amz-Checksum-Sha1", "AAAA",
		"X-Amz-Checksum-Sha256", "AAAA",
		"X-Amz-Checksum-Type", "FULL_OBJECT",
		"Content-Md5", "AAAA",
		"Etag", `"abc"`,
	)
	resp.Trailer = http.Header{"X-Amz-Checksum-Crc32": {"x"}, "X-Other": {"y"}}
	if _, err := m.MaskResponse(resp); err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	b64 := base64.StdEncoding.EncodeToString
	s1 := sha1.Sum(body)
	s256 := sha256.Sum256(body)
	want := map[string]string{
		"X-Amz-Crc32":              strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10),
		"X-Amz-Checksum-Crc32":     b64(be32(crc32.ChecksumIEEE(body))),
		"X-Amz-Checksum-Crc32c":    b64(be32(crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))),
		"X-Amz-Checksum-Crc64nvme": b64(be64(crc64.Checksum(body, crc64.MakeTable(crc64NVME)))),
		"X-Amz-Checksum-Sha1":      b64(s1[:]),
		"X-Amz-Checksum-Sha256":    b64(s256[:]),
		"X-Amz-Checksum-Type":      "FULL_OBJECT",
		"Content-Md5":              "",
		"Etag":                     `"abc"`,
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := resp.Trailer["X-Amz-Checksum-Crc32"]; ok || resp.Trailer.Get("X-Other") != "y" {
		t.Errorf("trailers = %v", resp.Trailer)
	}

	// Composite (multipart) checksums cannot be recomputed: removed.
	resp = response([]byte(secretDoc), "Content-Type", "application/json", "X-Amz-Checksum-Crc32", "AAAAAA==-3", "X-Amz-Checksum-Type", "COMPOSITE", "X-Amz-Checksum-Md5", "x")
	if _, err := m.MaskResponse(resp); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"X-Amz-Checksum-Crc32", "X-Amz-Checksum-Type", "X-Amz-Checksum-Md5"} {
		if v := resp.Header.Get(k); v != "" {
			t.Errorf("%s = %q, want removed", k, v)
		}
	}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
func be64(v uint64) []byte { return append(be32(uint32(v>>32)), be32(uint32(v))...) }

// TestCRC64NVME checks the table against the published check value of
// CRC-64/NVME ("123456789").
func TestCRC64NVME(t *testing.T) {
	if got := crc64.Checksum([]byte("123456789"), crc64.MakeTable(crc64NVME)); got != 0xae8b14860a799888 {
		t.Errorf("crc64nvme = %#x", got)
	}
}

// closeTracker records Close.
type closeTracker struct {
	io.Reader
	closed bool
}

func (c *closeTracker) Close() error { c.closed = true; return nil }

func TestMaskResponseErrors(t *testing.T) {
	m, err := New(Config{Rules: []Rule{{JSON: "SecretString"}}, MaxBody: 64})
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(`{"SecretString":"` + strings.Repeat("s", 100) + `"}`)
	bomb := encode(t, "gzip", []byte(`{"SecretString":"`+strings.Repeat("s", 1000)+`"}`))
	tests := []struct {
		name    string
		resp    *http.Response
		wantErr error
		check   func(error) bool
	}{
		{"declared too large", response(big, "Content-Type", "application/json"), ErrTooLarge,
			func(err error) bool {
				var e *TooLargeError
				return errors.As(err, &e) && e.Size == int64(len(big)) && e.Limit == 64
			}},
		{"undeclared too large", func() *http.Response {
			r := response(big, "Content-Type", "application/json")
			r.ContentLength = -1
			return r
		}(), ErrTooLarge, func(err error) bool { var e *TooLargeError; return errors.As(err, &e) && e.Size == -1 }},
		{"too large after gunzip", response(bomb, "Content-Type", "application/json", "Content-Encoding", "gzip"), ErrTooLarge, nil},
		{"unknown encoding", response([]byte("x"), "Content-Type", "application/json", "Content-Encoding", "br"), ErrUnsupported, nil},
		{"bad gzip", response([]byte("not gzip"), "Content-Type", "application/json", "Content-Encoding", "gzip"), nil,
			func(err error) bool { var e *SyntaxError; return errors.As(err, &e) }},
		{"text body for path rules", response([]byte("hunter2"), "Content-Type", "text/plain"), ErrUnsupported, nil},
		{"binary body", response([]byte("hunter2"), "Content-Type", "image/png"), ErrUnmaskable, nil},
		{"partial body", func() *http.Response {
			r := response([]byte(`{"SecretString":"hunter2"`), "Content-Type", "application/json")
			r.StatusCode = http.StatusPartialContent
			r.Header.Set("Content-Range", "bytes 0-24/100")
			return r
		}(), ErrUnmaskable, nil},
		{"invalid JSON", response([]byte(`{"SecretString":"hunter2"`), "Content-Type", "application/json"), nil,
			func(err error) bool { var e *SyntaxError; return errors.As(err, &e) && e.Format == JSON }},
		{"invalid XML", response([]byte(`<a>hunter2`), "Content-Type", "text/xml"), nil,
			func(err error) bool { var e *SyntaxError; return errors.As(err, &e) && e.Format == XML }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct := &closeTracker{Reader: tt.resp.Body}
			tt.resp.Body = ct
			_, err := m.MaskResponse(tt.resp)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(err) {
				t.Errorf("err = %#v", err)
			}
			if !strings.HasPrefix(err.Error(), "mask: ") || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("message %q", err)
			}
			if !ct.closed || tt.resp.Body != http.NoBody || tt.resp.ContentLength != 0 {
				t.Errorf("body not closed and replaced (closed=%v body=%T)", ct.closed, tt.resp.Body)
			}
		})
	}
}

func TestMaskResponseLeavesBodilessAlone(t *testing.T) {
	m := mustNew(t, Rule{JSON: "a"})
	head := response([]byte("x"), "Content-Type", "application/json")
	head.Request, _ = http.NewRequest(http.MethodHead, "http://127.0.0.1/", nil)
	noContent := response([]byte("x"), "Content-Type", "application/json")
	noContent.StatusCode = 204
	for _, r := range []*http.Response{head, noContent, {StatusCode: 200, Header: http.Header{}, Body: http.NoBody}} {
		body := r.Body
		if _, err := m.MaskResponse(r); err != nil || r.Body != body {
			t.Errorf("err=%v, body replaced", err)
		}
	}
	// An empty body is fine and stays empty.
	r := response(nil, "Content-Type", "application/json")
	if _, err := m.MaskResponse(r); err != nil || len(readBody(t, r)) != 0 {
		t.Errorf("empty body: %v", err)
	}
}

func TestMaskByContentType(t *testing.T) {
	m := mustNew(t, Rule{JSON: "s"}, Rule{XML: "s"})
	tests := []struct {
		ct, in, want string
		f            Format
	}{
		{"application/json; charset=utf-8", `{"s":"x"}`, `{"s":"****"}`, JSON},
		{"application/x-amz-json-1.0", `{"s":"x"}`, `{"s":"****"}`, JSON},
		{"application/vnd.api+json", `{"s":"x"}`, `{"s":"****"}`, JSON},
		{"text/xml", `<r><s>x</s></r>`, `<r><s>****</s></r>`, XML},
		{"application/atom+xml", `<r><s>x</s></r>`, `<r><s>****</s></r>`, XML},
		{"", ` {"s":"x"}`, ` {"s":"****"}`, JSON},
		{"application/octet-stream", `<r><s>x</s></r>`, `<r><s>****</s></r>`, XML},
	}
	for _, tt := range tests {
		out, rep, err := m.Mask(tt.ct, []byte(tt.in))
		if err != nil || string(out) != tt.want || rep.Format != tt.f {
			t.Errorf("%q: %s %+v %v", tt.ct, out, rep, err)
		}
	}
	if _, _, err := m.Mask("text/plain", []byte("s=x")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("text/plain: %v", err)
	}
}

// FuzzMaskResponse drives MaskResponse with any status, media type,
// content coding, range and checksum: it never panics; a refusal leaves
// no body behind and matches ErrUnmaskable; a masked body is sent
// identity-encoded with a Content-Length, a checksum and (for a whole 206)
// a Content-Range that describe it; a body passed unmasked goes on byte
// for byte as it came.
func FuzzMaskResponse(f *testing.F) {
	for _, s := range []struct {
		status          int
		ct, ce, cr      string
		body            string
		compress, crc32 bool
	}{
		{200, "application/json", "", "", `{"secret":"s","n":"x"}`, false, true},
		{200, "application/json", "gzip", "", `{"secret":"s"}`, true, true},
		{200, "text/xml", "deflate", "", `<r><secret>s</secret></r>`, true, false},
		{206, "application/json", "", "bytes 0-13/14", `{"secret":"s"}`, false, true},
		{206, "text/plain", "", "bytes 0-3/99", `SECR`, false, false},
		{200, "text/plain", "", "", "key SECRET12 here", false, true},
		{200, "image/png", "", "", "\x89PNG", false, false},
		{200, "application/json", "br", "", "x", false, false},
		{404, "application/xml", "", "", `<Error><Code>NoSuchKey</Code></Error>`, false, false},
	} {
		f.Add(s.status, s.ct, s.ce, s.cr, []byte(s.body), s.compress, s.crc32)
	}
	strict := mustNew(f, Rule{Path: "secret"}, Rule{Pattern: `SECRET[0-9]+`})
	skipping := mustNew(f, Rule{Path: "secret", SkipUnmaskable: true}, Rule{Pattern: `SECRET[0-9]+`, SkipUnmaskable: true})
	f.Fuzz(func(t *testing.T, status int, ct, ce, cr string, body []byte, compress, withCRC bool) {
		if status < 100 || status > 599 {
			return
		}
		wire := body
		if compress && (ce == "gzip" || ce == "deflate") {
			coding := map[string]string{"gzip": "gzip", "deflate": "zlib"}[ce]
			wire = encode(t, coding, body)
		}
		for _, m := range []*Masker{strict, skipping} {
			r := response(wire, "Content-Type", ct)
			r.StatusCode = status
			if ce != "" {
				r.Header.Set("Content-Encoding", ce)
			}
			if cr != "" {
				r.Header.Set("Content-Range", cr)
			}
			if withCRC {
				r.Header.Set("X-Amz-Checksum-Crc32", base64.StdEncoding.EncodeToString(be32(crc32.ChecksumIEEE(wire))))
			}
			tracker := &closeTracker{Reader: r.Body}
			r.Body = tracker
			rep, err := m.MaskResponse(r)
			if err != nil {
				if !errors.Is(err, ErrUnmaskable) || r.Body != http.NoBody || !tracker.closed {
					t.Fatalf("refusal: %v, body %T, closed %v", err, r.Body, tracker.closed)
				}
				if m == skipping {
					t.Fatalf("a masker whose rules all skip refused: %v", err)
				}
				continue
			}
			out, rerr := io.ReadAll(r.Body)
			if rerr != nil {
				t.Fatal(rerr)
			}
			if !rep.Masked() {
				if !bytes.Equal(out, wire) {
					t.Fatalf("unmasked body changed: %q -> %q", wire, out)
				}
				continue
			}
			if r.Header.Get("Content-Encoding") != "" || r.Header.Get("Content-Length") != strconv.Itoa(len(out)) || r.ContentLength != int64(len(out)) {
				t.Fatalf("masked body headers %v for %d bytes", r.Header, len(out))
			}
			if withCRC && r.Header.Get("X-Amz-Checksum-Crc32") != base64.StdEncoding.EncodeToString(be32(crc32.ChecksumIEEE(out))) {
				t.Fatalf("stale checksum %q", r.Header.Get("X-Amz-Checksum-Crc32"))
			}
			if status == http.StatusPartialContent && r.StatusCode == status && r.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-%d/%d", len(out)-1, len(out)) {
				t.Fatalf("Content-Range %q for %d bytes", r.Header.Get("Content-Range"), len(out))
			}
			if rep.Format == Text && secretRE.Match(out) {
				t.Fatalf("text output %q holds a secret", out)
			}
		}
	})
}
