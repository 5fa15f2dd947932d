package awsproxy

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
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
// through byte for byte. With in set and out nil the signatures are only
// verified and yielded as they came. If tap is set, it receives the decoded
// payload (chunk data only) as it passes. The encoded length never changes, so the request's
// Content-Length stays valid. Any error is an *Error; a body that ends early
// is an error, never a silent EOF, so the upstream request is aborted.
type chunkReader struct {
	src      *bufio.Reader
	body     io.Closer
	in, out  *chunkSigner // nil for unsigned bodies; out nil to verify only
	tap      io.Writer    // receives the decoded payload, if set
	trailers bool         // trailers follow the final chunk
	maxChunk int
	want     int64 // X-Amz-Decoded-Content-Length, -1 if unknown
	decoded  int64
	state    chunkState
	remain   int64  // unsigned data left in the current chunk
	pending  []byte // bytes to yield before anything else (a view of hdr or crlf)
	hdr      []byte // reused backing array of pending
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

// Read fills p with as much of the body as it can without waiting for the
// client once it has some bytes in hand: chunk headers, data and the CRLFs
// between them go out together, so that the upstream connection sees full
// writes rather than a few bytes at every chunk boundary.
func (c *chunkReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(c.pending)+len(c.data)+len(c.tail) > 0 {
			n += c.drain(p[n:])
			continue
		}
		if c.err != nil || (n > 0 && !c.ready()) {
			break
		}
		var err error
		switch c.state {
		case stData:
			var m int
			m, err = c.readData(p[n:])
			n += m
		case stDone:
			err = io.EOF
		default:
			err = c.step()
		}
		if err != nil {
			// Bytes already in p were checked; the error comes with the
			// next read.
			c.err, c.pending, c.data, c.tail = err, nil, nil, nil
		}
	}
	if n > 0 {
		return n, nil
	}
	return 0, c.err
}

// drain copies queued bytes into p.
func (c *chunkReader) drain(p []byte) int {
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	m := copy(p[n:], c.data)
	c.data = c.data[m:]
	n += m
	m = copy(p[n:], c.tail)
	c.tail = c.tail[m:]
	return n + m
}

// ready reports whether the next step can be taken with the bytes the
// client has already sent, without waiting for more.
func (c *chunkReader) ready() bool {
	buffered := c.src.Buffered()
	switch c.state {
	case stData:
		if c.remain > 0 {
			return buffered > 0
		}
		return buffered >= 2
	case stHeader:
		if c.in != nil {
			return false // a signed chunk is read whole: not worth waiting for
		}
		b, _ := c.src.Peek(buffered)
		return bytes.IndexByte(b, '\n') >= 0
	case stDone:
		return true
	}
	return false
}

// setPending queues b, built on c.hdr, to be yielded next.
func (c *chunkReader) setPending(b []byte) {
	c.hdr = b[:0]
	c.pending = b
}

// readData streams unsigned chunk data straight into p; at the end of the
// chunk it checks and queues the CRLF that closes it.
func (c *chunkReader) readData(p []byte) (int, error) {
	if c.remain == 0 {
		if err := c.expectCRLF(); err != nil {
			return 0, err
		}
		c.state = stHeader
		c.pending = crlf
		return 0, nil
	}
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	n, err := c.src.Read(p)
	c.remain -= int64(n)
	if c.tap != nil && n > 0 {
		c.tap.Write(p[:n])
	}
	switch {
	case err == io.EOF && n == 0:
		return 0, truncated()
	case err == io.EOF:
		err = nil // the rest of the chunk is missing: the next read says so
	case err != nil:
		err = srcErr(err)
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
	b, err := c.src.Peek(2)
	if err != nil {
		return srcErr(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return chunkErr(KindBadRequest, "aws-chunked chunk data not followed by CRLF")
	}
	_, err = c.src.Discard(2)
	return err
}

// readLine reads one CRLF-terminated line (without the CRLF), bounded. The
// line is a view of the read buffer, valid until the next read.
func (c *chunkReader) readLine() ([]byte, error) {
	line, err := c.src.ReadSlice('\n')
	if err == bufio.ErrBufferFull || len(line) > maxChunkLine {
		return nil, chunkErr(KindBadRequest, "aws-chunked line too long")
	}
	if err != nil {
		return nil, srcErr(err)
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, chunkErr(KindBadRequest, "aws-chunked line not terminated by CRLF")
	}
	return line[:len(line)-2], nil
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
		c.pending = crlf
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
	sizeTok, ext, hasExt := bytes.Cut(line, []byte{';'})
	if len(sizeTok) == 0 || len(sizeTok) > 16 {
		return chunkErr(KindBadRequest, "aws-chunked chunk size missing or too long")
	}
	size, ok := parseChunkSize(sizeTok)
	if !ok {
		return chunkErr(KindBadRequest, "aws-chunked chunk size is not hex")
	}
	if c.in == nil { // unsigned: pass the line through as it came
		if hasExt && bytes.Contains(ext, []byte("chunk-signature=")) {
			return chunkErr(KindBadRequest, "signed chunk in an unsigned aws-chunked body")
		}
		if err := c.count(size); err != nil {
			return err
		}
		c.setPending(append(append(c.hdr[:0], line...), '\r', '\n'))
		if size == 0 {
			c.state = c.afterFinal()
		} else {
			c.state, c.remain = stData, int64(size)
		}
		return nil
	}
	sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
	if !hasExt || !ok || len(sig) != 64 {
		return chunkErr(KindBadRequest, "aws-chunked chunk lacks its chunk-signature")
	}
	if size > uint64(c.maxChunk) {
		return chunkErr(KindBodyTooLarge, "aws-chunked chunk larger than the gateway's limit")
	}
	if err := c.count(size); err != nil {
		return err
	}
	// line is about to be overwritten by the chunk's data: keep the
	// signature and start the re-signed header with the size as sent.
	var clientSig [64]byte
	copy(clientSig[:], sig)
	hdr := append(c.hdr[:0], sizeTok...)
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
	if !constantTimeEqual(want, clientSig[:]) {
		return chunkErr(KindSignatureMismatch, "aws-chunked chunk signature does not match")
	}
	if c.tap != nil {
		c.tap.Write(data)
	}
	hdr = append(hdr, ";chunk-signature="...)
	if c.out != nil {
		hdr = append(hdr, c.out.chunkSigHash(dataHash)...)
	} else {
		hdr = append(hdr, clientSig[:]...)
	}
	c.setPending(append(hdr, '\r', '\n'))
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

// parseChunkSize parses a chunk size: 1 to 16 hex digits, below 2^63.
func parseChunkSize(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(d)
	}
	return n, n < 1<<63
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
		lb, err := c.readLine()
		if err != nil {
			return err
		}
		line := string(lb)
		if line == "" {
			break
		}
		if len(raw)+len(line) > maxTrailerBytes {
			return chunkErr(KindBodyTooLarge, "aws-chunked trailers too large")
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
	b := append(c.hdr[:0], raw...)
	if c.in != nil {
		if len(sig) != 64 {
			return chunkErr(KindBadRequest, "aws-chunked trailers lack x-amz-trailer-signature")
		}
		if !constantTimeEqual(c.in.trailerSig(canonical), sig) {
			return chunkErr(KindSignatureMismatch, "aws-chunked trailer signature does not match")
		}
		// The re-signed line keeps the name and spacing the client used,
		// so the body's length does not change.
		i := strings.Index(sigLine, sig)
		b = append(b, sigLine[:i]...)
		if c.out != nil {
			b = append(b, c.out.trailerSig(canonical)...)
		} else {
			b = append(b, sig...)
		}
		b = append(b, sigLine[i+len(sig):]...)
		b = append(b, '\r', '\n')
	}
	c.setPending(append(b, '\r', '\n'))
	c.state = stEnd
	return nil
}
