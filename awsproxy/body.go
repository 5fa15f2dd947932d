package awsproxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"time"
)

// errBodyTimeout answers a client that stopped sending its body, with the
// code S3 uses for the same case.
var errBodyTimeout = &Error{
	Kind: KindBadRequest, Code: "RequestTimeout",
	Message: "Your socket connection to the server was not read from or written to within the timeout period.",
	Err:     os.ErrDeadlineExceeded,
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// constantTimeEqual compares two strings or byte slices in time that
// depends only on their lengths, as subtle.ConstantTimeCompare does,
// without converting either first.
func constantTimeEqual[A, B ~string | ~[]byte](a A, b B) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return subtle.ConstantTimeByteEq(v, 0) == 1
}

// newRequestID returns a random 16-hex-digit id. Request ids need to be
// unique, not secret.
func newRequestID() string {
	var b [16]byte
	v := rand.Uint64()
	const digits = "0123456789ABCDEF"
	for i := range b {
		b[i] = digits[v>>(60-4*uint(i))&15]
	}
	return string(b[:])
}

// bytesBody is a request body served from memory.
type bytesBody struct{ *bytes.Reader }

func newBytesBody(b []byte) io.ReadCloser { return bytesBody{bytes.NewReader(b)} }
func (bytesBody) Close() error            { return nil }

// limitedReader reads at most n bytes, then reports io.EOF.
type limitedReader struct {
	r io.Reader
	n int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// countingBody counts the request body bytes read from the client.
type countingBody struct {
	r io.ReadCloser
	c *Call
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.c.BytesIn += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.r.Close() }

// hashingBody streams a body whose SHA-256 the client claimed. The claim
// is checked before the last bytes are handed on: when the body ends (at
// Content-Length, or at EOF found by peeking ahead) and the hash differs,
// the read returns an error instead of the final bytes, so the upstream
// never receives a complete request and aborts it.
type hashingBody struct {
	r      io.Reader     // the body; a bufio.Reader when the length is unknown
	peek   *bufio.Reader // non-nil when the length is unknown: to see EOF coming
	body   io.Closer
	h      hash.Hash
	want   string
	length int64 // Content-Length, -1 if unknown
	n      int64
	err    error
}

func newHashingBody(r io.ReadCloser, want string, length int64) *hashingBody {
	b := &hashingBody{r: r, body: r, h: sha256.New(), want: want, length: length}
	if length < 0 {
		b.peek = bufio.NewReaderSize(r, 32<<10)
		b.r = b.peek
	}
	return b
}

func (b *hashingBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.length >= 0 && int64(len(p)) > b.length-b.n {
		p = p[:max(b.length-b.n, 0)]
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	end := err == io.EOF
	if err == nil && !end {
		if b.length >= 0 {
			end = b.n == b.length
		} else if _, perr := b.peek.Peek(1); perr == io.EOF {
			end = true
		}
	}
	if err != nil && err != io.EOF {
		b.err = err
		return n, err
	}
	if !end {
		return n, nil
	}
	switch {
	case b.length >= 0 && b.n != b.length:
		b.err = newError(KindBadRequest, "request body shorter than its Content-Length", io.ErrUnexpectedEOF)
	case hex.EncodeToString(b.h.Sum(nil)) != b.want:
		b.err = newError(KindContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.", nil)
	default:
		b.err = io.EOF
		return n, nil
	}
	return 0, b.err // withhold the final bytes
}

func (b *hashingBody) Close() error { return b.body.Close() }

// deadlineBody extends the connection's read deadline before each read so
// that a client may send a large body slowly but not stall forever.
type deadlineBody struct {
	r       io.ReadCloser
	rc      *http.ResponseController
	timeout time.Duration
	now     func() time.Time
	until   time.Time
	broken  bool
	// timedOut is set when the client stalled; the server then cancels
	// the request's context, which must not hide the cause.
	timedOut bool
}

func (h *Handler) deadlineBody(c *Call, body io.ReadCloser) io.ReadCloser {
	if c.rc == nil {
		return body
	}
	d := &deadlineBody{r: body, rc: c.rc, timeout: h.cfg.BodyReadTimeout, now: time.Now}
	c.stall = d
	return d
}

func (d *deadlineBody) Read(p []byte) (int, error) {
	if !d.broken {
		// Refresh at most once a second: a deadline set per read costs
		// timer churn on every 32 KiB.
		if now := d.now(); d.until.Sub(now) < d.timeout-time.Second {
			d.until = now.Add(d.timeout)
			if err := d.rc.SetReadDeadline(d.until); err != nil {
				d.broken = true // not supported by this ResponseWriter
			}
		}
	}
	n, err := d.r.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = errBodyTimeout
		d.timedOut = true
	}
	return n, err
}

func (d *deadlineBody) Close() error { return d.r.Close() }

// maxCapture bounds the response bytes kept for session recording.
const maxCapture = 64 << 10

// countingWriter records the status and body size of the response.
type countingWriter struct {
	http.ResponseWriter
	status  int
	n       int64
	capture []byte // the first bytes of the body, for session recording; nil if not recording
	err     error  // the first failed write: the client went away
}

func (w *countingWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	if err != nil && w.err == nil {
		w.err = err
	}
	if w.capture != nil && len(w.capture) < maxCapture {
		w.capture = append(w.capture, p[:min(n, maxCapture-len(w.capture))]...)
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the server's writer (flushes,
// deadlines).
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
