package awsproxy

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Bounds of the aws-chunked decoder.
const (
	maxChunkLine    = 4 << 10  // one chunk header or trailer line, CRLF included
	maxTrailerBytes = 16 << 10 // all trailer lines together
	// DefaultMaxChunkSize bounds one chunk of a signed aws-chunked body:
	// the gateway holds a whole chunk to verify it before forwarding it.
	// SDKs that sign chunks send 64-128 KiB.
	DefaultMaxChunkSize = 4 << 20
)

// chunkSigner computes the chain of chunk and trailer signatures of a
// STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER) body: each signature covers
// the previous one, starting from the request's own ("seed") signature.
type chunkSigner struct {
	key   *sigKey
	date  string // yyyymmddThhmmssZ of the request
	scope string // date/region/service/aws4_request
	prev  string // previous signature, hex
	buf   []byte // the string to sign, reused from chunk to chunk
}

func (s *chunkSigner) next(kind, hash string) string {
	b := append(s.buf[:0], kind...)
	b = append(b, '\n')
	b = append(b, s.date...)
	b = append(b, '\n')
	b = append(b, s.scope...)
	b = append(b, '\n')
	b = append(b, s.prev...)
	b = append(b, '\n')
	if kind == "AWS4-HMAC-SHA256-PAYLOAD" {
		b = append(b, emptySHA256...)
		b = append(b, '\n')
	}
	b = append(b, hash...)
	s.buf = b
	sum := s.key.sum(b)
	s.prev = hex.EncodeToString(sum[:])
	return s.prev
}

// chunkSig returns the signature of the next chunk with the given data.
func (s *chunkSigner) chunkSig(data []byte) string {
	return s.chunkSigHash(sha256Hex(data))
}

// chunkSigHash is chunkSig for data whose hex SHA-256 is already known, so
// that one hash serves both the client's and the gateway's chain.
func (s *chunkSigner) chunkSigHash(dataHash string) string {
	return s.next("AWS4-HMAC-SHA256-PAYLOAD", dataHash)
}

// trailerSig returns the signature of the canonical trailer block
// ("name:value\n" per trailer).
func (s *chunkSigner) trailerSig(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	return s.next("AWS4-HMAC-SHA256-TRAILER", hex.EncodeToString(sum[:]))
}

type chunkState uint8

const (
	stHeader  chunkState = iota // expecting a chunk header line
	stData                      // streaming the data of an unsigned chunk
	stTrailer                   // expecting trailer lines after the final chunk
	stEnd                       // expecting the end of the body
	stDone
)

// chunkReader reads an aws-chunked request body, checks its framing, and
// yields the body to send upstream. With in and out set (signed modes) it
// verifies each chunk against the client's signature chain before yielding
// it, with the signature replaced by the gateway's. Unsigned bodies pass
// through byte for byte. The encoded length never changes, so the request's
// Content-Length stays valid. Any error is an *Error; a body that ends early
// is an error, never a silent EOF, so the upstream request is aborted.
type chunkReader struct {
	src      *bufio.Reader
	body     io.Closer
	in, out  *chunkSigner // nil for unsigned bodies
	trailers bool         // trailers follow the final chunk
	maxChunk int
	want     int64 // X-Amz-Decoded-Content-Length, -1 if unknown
	decoded  int64
	state    chunkState
	remain   int64  // unsigned data left in the current chunk
	pending  []byte // bytes to yield before anything else
	data     []byte // chunk data to yield after pending (a view of buf)
	tail     []byte // bytes to yield after data
	buf      []byte
	err      error
}

func newChunkReader(body io.ReadCloser, in, out *chunkSigner, trailers bool, maxChunk int, decodedLength int64) *chunkReader {
	if maxChunk <= 0 {
		maxChunk = DefaultMaxChunkSize
	}
	return &chunkReader{
		src: bufio.NewReaderSize(body, 32<<10), body: body, in: in, out: out,
		trailers: trailers, maxChunk: maxChunk, want: decodedLength,
	}
}

func chunkErr(kind ErrorKind, msg string) *Error {
	return newError(kind, msg, errChunk)
}

var crlf = []byte("\r\n")

// errChunk is wrapped by every aws-chunked framing or signature error.
var errChunk = errors.New("aws-chunked body rejected")

func (c *chunkReader) Close() error { return c.body.Close() }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.pending)+len(c.data)+len(c.tail) == 0 {
		if c.err != nil {
			return 0, c.err
		}
		if c.state == stData {
			return c.readData(p)
		}
		if c.state == stDone {
			c.err = io.EOF
			return 0, io.EOF
		}
		if err := c.step(); err != nil {
			c.err, c.pending, c.data, c.tail = err, nil, nil, nil
			return 0, err
		}
	}
	n := 0
	for _, part := range []*[]byte{&c.pending, &c.data, &c.tail} {
		m := copy(p[n:], *part)
		*part = (*part)[m:]
		n += m
		if len(*part) > 0 {
			return n, nil
		}
	}
	// A chunk header was just handed out: fill the rest of p with the
	// chunk's data in the same read rather than returning a few bytes.
	if c.state == stData && c.remain > 0 && n < len(p) {
		m, err := c.readData(p[n:])
		n += m
		if err != nil && n > 0 {
			return n, nil // the error comes back on the next read
		}
		return n, err
	}
	return n, nil
}

// readData streams unsigned chunk data straight into p.
func (c *chunkReader) readData(p []byte) (int, error) {
	if c.remain == 0 {
		if err := c.expectCRLF(); err != nil {
			c.err = err
			return 0, err
		}
		c.state = stHeader
		c.pending = append(c.pending[:0], '\r', '\n')
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	n, err := c.src.Read(p)
	c.remain -= int64(n)
	if err == io.EOF {
		err = nil
		if n == 0 {
			c.err = truncated()
			return 0, c.err
		}
	}
	if err != nil {
		c.err = err
	}
	return n, err
}

func truncated() *Error {
	return chunkErr(KindBadRequest, "aws-chunked body ended before its final chunk")
}

// srcErr turns a failure to read the client's body into the error to
// report: the gateway's own refusals (a stalled client's RequestTimeout)
// pass through, anything else means the body ended early.
func srcErr(err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return truncated()
}

func (c *chunkReader) expectCRLF() error {
	var b [2]byte
	if _, err := io.ReadFull(c.src, b[:]); err != nil {
		return srcErr(err)
	}
	if b != [2]byte{'\r', '\n'} {
		return chunkErr(KindBadRequest, "aws-chunked chunk data not followed by CRLF")
	}
	return nil
}

// readLine reads one CRLF-terminated line (without the CRLF), bounded.
func (c *chunkReader) readLine() (string, error) {
	line, err := c.src.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return "", chunkErr(KindBadRequest, "aws-chunked line too long")
	}
	if err != nil {
		return "", srcErr(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return "", chunkErr(KindBadRequest, "aws-chunked line not terminated by CRLF")
	}
	return string(line[:len(line)-2]), nil
}

func (c *chunkReader) step() error {
	switch c.state {
	case stHeader:
		return c.header()
	case stTrailer:
		return c.trailer()
	case stEnd:
		if c.trailers { // the trailer block already ended with its blank line
			return c.expectEOF()
		}
		if err := c.expectCRLF(); err != nil {
			return err
		}
		c.pending = append(c.pending[:0], '\r', '\n')
		return c.expectEOF()
	}
	return nil
}

func (c *chunkReader) expectEOF() error {
	if _, err := c.src.ReadByte(); err != io.EOF {
		return chunkErr(KindBadRequest, "data after the end of the aws-chunked body")
	}
	c.state = stDone
	return nil
}

// header handles one chunk header line and, for signed bodies, its data.
func (c *chunkReader) header() error {
	line, err := c.readLine()
	if err != nil {
		return err
	}
	sizeTok, ext, hasExt := strings.Cut(line, ";")
	if sizeTok == "" || len(sizeTok) > 16 {
		return chunkErr(KindBadRequest, "aws-chunked chunk size missing or too long")
	}
	size, err := strconv.ParseUint(sizeTok, 16, 63)
	if err != nil {
		return chunkErr(KindBadRequest, "aws-chunked chunk size is not hex")
	}
	if c.in == nil { // unsigned: pass the line through as it came
		if hasExt && strings.Contains(ext, "chunk-signature=") {
			return chunkErr(KindBadRequest, "signed chunk in an unsigned aws-chunked body")
		}
		if err := c.count(size); err != nil {
			return err
		}
		c.pending = append(append(c.pending[:0], line...), '\r', '\n')
		if size == 0 {
			c.state = c.afterFinal()
		} else {
			c.state, c.remain = stData, int64(size)
		}
		return nil
	}
	sig, ok := strings.CutPrefix(ext, "chunk-signature=")
	if !hasExt || !ok || len(sig) != 64 {
		return chunkErr(KindBadRequest, "aws-chunked chunk lacks its chunk-signature")
	}
	if size > uint64(c.maxChunk) {
		return chunkErr(KindRequestTooLarge, "aws-chunked chunk larger than the gateway's limit")
	}
	if err := c.count(size); err != nil {
		return err
	}
	data, err := c.readChunk(int(size))
	if err != nil {
		return err
	}
	if size > 0 {
		if err := c.expectCRLF(); err != nil {
			return err
		}
	}
	dataHash := sha256Hex(data)
	want := c.in.chunkSigHash(dataHash)
	if !hmac.Equal([]byte(want), []byte(sig)) {
		return chunkErr(KindSignatureMismatch, "aws-chunked chunk signature does not match")
	}
	out := c.out.chunkSigHash(dataHash)
	c.pending = append(c.pending[:0], sizeTok...)
	c.pending = append(c.pending, ";chunk-signature="...)
	c.pending = append(c.pending, out...)
	c.pending = append(c.pending, '\r', '\n')
	// The verified data is yielded from buf itself, not copied again.
	c.data = data
	if size > 0 {
		c.tail = crlf
	} else {
		c.state = c.afterFinal()
	}
	return nil
}

// readChunk reads size bytes of chunk data into c.buf, growing it as the
// data arrives rather than trusting the declared size up front: a client
// that announces a 16 MiB chunk and sends nothing costs little memory.
func (c *chunkReader) readChunk(size int) ([]byte, error) {
	data := c.buf[:0]
	for len(data) < size {
		if len(data) == cap(data) {
			grown := make([]byte, len(data), min(size, max(2*cap(data), 64<<10)))
			copy(grown, data)
			data = grown
		}
		n, err := c.src.Read(data[len(data):min(size, cap(data))])
		data = data[:len(data)+n]
		if err != nil && len(data) < size {
			if err == io.EOF {
				return nil, truncated()
			}
			return nil, srcErr(err)
		}
	}
	c.buf = data
	return data, nil
}

func (c *chunkReader) afterFinal() chunkState {
	if c.trailers {
		return stTrailer
	}
	return stEnd
}

// count adds a chunk's size to the decoded total and checks it against
// X-Amz-Decoded-Content-Length.
func (c *chunkReader) count(size uint64) error {
	c.decoded += int64(size)
	if c.want != -1 && (c.decoded > c.want || (size == 0 && c.decoded != c.want)) {
		return chunkErr(KindBadRequest, "aws-chunked body length differs from X-Amz-Decoded-Content-Length")
	}
	return nil
}

// trailer reads the whole trailer block, verifies its signature in signed
// mode, and yields it (re-signed) followed by the closing blank line.
func (c *chunkReader) trailer() error {
	var raw, canonical []byte
	sig, sigLine := "", ""
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if line == "" {
			break
		}
		if len(raw)+len(line) > maxTrailerBytes {
			return chunkErr(KindRequestTooLarge, "aws-chunked trailers too large")
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			return chunkErr(KindBadRequest, "malformed aws-chunked trailer line")
		}
		if sig != "" {
			return chunkErr(KindBadRequest, "aws-chunked trailer after the trailer signature")
		}
		if c.in != nil && strings.EqualFold(name, "x-amz-trailer-signature") {
			sig, sigLine = strings.TrimSpace(value), line
			continue
		}
		raw = append(append(raw, line...), '\r', '\n')
		canonical = append(canonical, strings.ToLower(name)...)
		canonical = append(canonical, ':')
		canonical = append(canonical, strings.TrimSpace(value)...)
		canonical = append(canonical, '\n')
	}
	c.pending = append(c.pending[:0], raw...)
	if c.in != nil {
		if len(sig) != 64 {
			return chunkErr(KindBadRequest, "aws-chunked trailers lack x-amz-trailer-signature")
		}
		if !hmac.Equal([]byte(c.in.trailerSig(canonical)), []byte(sig)) {
			return chunkErr(KindSignatureMismatch, "aws-chunked trailer signature does not match")
		}
		// The re-signed line keeps the name and spacing the client used,
		// so the body's length does not change.
		i := strings.Index(sigLine, sig)
		c.pending = append(c.pending, sigLine[:i]...)
		c.pending = append(c.pending, c.out.trailerSig(canonical)...)
		c.pending = append(c.pending, sigLine[i+len(sig):]...)
		c.pending = append(c.pending, '\r', '\n')
	}
	c.pending = append(c.pending, '\r', '\n')
	c.state = stEnd
	return nil
}
