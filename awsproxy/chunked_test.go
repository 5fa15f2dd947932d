package awsproxy

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// AWS's published S3 streaming upload examples: 66560 bytes of 'a' in a
// 65536-byte chunk, a 1024-byte chunk and the final chunk.
const (
	katSeedSigned  = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	katSeedTrailer = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
	katTrailerSig  = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
	katTrailerLine = "x-amz-checksum-crc32c:sOO8/Q=="
	katDecodedLen  = 66560
	katEncodedLen  = 66824
)

var (
	katChunkSigsSigned = []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	}
	katChunkSigsTrailer = []string{
		"b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2",
		"1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7",
		"2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992",
	}
	katData = bytes.Repeat([]byte{'a'}, katDecodedLen)
)

// katBody writes the example body with the given chunk signatures and, when
// trailerSig is set, the example's trailer block.
func katBody(sigs []string, trailerSig string) []byte {
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=" + sigs[0] + "\r\n")
	b.Write(katData[:65536])
	b.WriteString("\r\n400;chunk-signature=" + sigs[1] + "\r\n")
	b.Write(katData[65536:])
	b.WriteString("\r\n0;chunk-signature=" + sigs[2] + "\r\n")
	if trailerSig != "" {
		b.WriteString(katTrailerLine + "\r\nx-amz-trailer-signature:" + trailerSig + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// refChain restates the chunk-signature chain from its definition,
// independently of chunkSigner.
type refChain struct {
	key   []byte
	date  string
	scope string
	prev  string
}

func newRefChain(secret, date, region, service, amzDate, seed string) *refChain {
	return &refChain{
		key:   refSigningKey(secret, date, region, service),
		date:  amzDate,
		scope: date + "/" + region + "/" + service + "/aws4_request",
		prev:  seed,
	}
}

func (c *refChain) chunk(data []byte) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-PAYLOAD", c.date, c.scope, c.prev, refHexSHA256(nil), refHexSHA256(data)}, "\n")
	c.prev = hex.EncodeToString(refHMAC(c.key, sts))
	return c.prev
}

func (c *refChain) trailer(canonical string) string {
	sts := strings.Join([]string{"AWS4-HMAC-SHA256-TRAILER", c.date, c.scope, c.prev, refHexSHA256([]byte(canonical))}, "\n")
	c.prev = hex.EncodeToString(refHMAC(c.key, sts))
	return c.prev
}

func (c *refChain) clone() *refChain { d := *c; return &d }

// refEncode writes data as an aws-chunked body with chunks of the given
// sizes (the rest goes into one more chunk), signed with chain when it is
// not nil, followed by the trailer lines when trailers is true.
func refEncode(data []byte, sizes []int, chain *refChain, trailers bool, trailerLines ...string) []byte {
	var b bytes.Buffer
	chunk := func(d []byte) {
		b.WriteString(strconv.FormatInt(int64(len(d)), 16))
		if chain != nil {
			b.WriteString(";chunk-signature=" + chain.chunk(d))
		}
		b.WriteString("\r\n")
		b.Write(d)
		if len(d) > 0 {
			b.WriteString("\r\n")
		}
	}
	for _, n := range sizes {
		n = min(n, len(data))
		chunk(data[:n])
		data = data[n:]
	}
	if len(data) > 0 {
		chunk(data)
	}
	chunk(nil)
	if trailers {
		var canonical strings.Builder
		for _, l := range trailerLines {
			b.WriteString(l + "\r\n")
			name, value, _ := strings.Cut(l, ":")
			canonical.WriteString(strings.ToLower(name) + ":" + strings.TrimSpace(value) + "\n")
		}
		if chain != nil {
			b.WriteString("x-amz-trailer-signature:" + chain.trailer(canonical.String()) + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// refDecoded is what refDecode found in a body.
type refDecoded struct {
	data     []byte
	trailers []string // "name:value" as sent, the signature excluded
	sigs     int      // signatures verified
}

// refDecode parses an aws-chunked body and verifies its signatures with
// chain (nil for an unsigned body), independently of chunkReader.
func refDecode(body []byte, chain *refChain, trailers bool) (refDecoded, error) {
	var d refDecoded
	line := func() (string, error) {
		i := bytes.Index(body, []byte("\r\n"))
		if i < 0 {
			return "", errors.New("unterminated line")
		}
		l := string(body[:i])
		body = body[i+2:]
		return l, nil
	}
	for {
		l, err := line()
		if err != nil {
			return d, err
		}
		tok, ext, _ := strings.Cut(l, ";")
		size, err := strconv.ParseUint(tok, 16, 40)
		if err != nil {
			return d, fmt.Errorf("chunk size %q: %v", tok, err)
		}
		if uint64(len(body)) < size {
			return d, errors.New("short chunk")
		}
		data := body[:size]
		body = body[size:]
		if size > 0 {
			if !bytes.HasPrefix(body, []byte("\r\n")) {
				return d, errors.New("no CRLF after chunk data")
			}
			body = body[2:]
		}
		if chain != nil {
			sig, ok := strings.CutPrefix(ext, "chunk-signature=")
			if !ok || sig != chain.chunk(data) {
				return d, fmt.Errorf("chunk %d: bad signature %q", d.sigs, ext)
			}
			d.sigs++
		}
		d.data = append(d.data, data...)
		if size == 0 {
			break
		}
	}
	if trailers {
		var canonical strings.Builder
		sigSeen := false
		for {
			l, err := line()
			if err != nil {
				return d, err
			}
			if l == "" {
				break
			}
			name, value, ok := strings.Cut(l, ":")
			if !ok {
				return d, fmt.Errorf("trailer %q", l)
			}
			if chain != nil && strings.EqualFold(name, "x-amz-trailer-signature") {
				if sigSeen || strings.TrimSpace(value) != chain.trailer(canonical.String()) {
					return d, fmt.Errorf("bad trailer signature %q", value)
				}
				sigSeen = true
				d.sigs++
				continue
			}
			if sigSeen {
				return d, errors.New("trailer after the trailer signature")
			}
			canonical.WriteString(strings.ToLower(name) + ":" + strings.TrimSpace(value) + "\n")
			d.trailers = append(d.trailers, l)
		}
		if chain != nil && !sigSeen {
			return d, errors.New("no trailer signature")
		}
	} else if l, err := line(); err != nil || l != "" {
		return d, errors.New("no CRLF after the final chunk")
	}
	if len(body) != 0 {
		return d, fmt.Errorf("%d bytes after the end", len(body))
	}
	return d, nil
}

// Chains of the tests: "client" is what the client signed with, "gateway"
// what the gateway re-signs with (a different key, date, scope and seed).
const (
	gwSecret = "gateway/upstream+SECRET"
	gwDate   = "20261125"
	gwAmz    = "20261125T083000Z"
	gwRegion = "eu-west-1"
	gwSeed   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func clientSigner(seed string) *chunkSigner {
	return &chunkSigner{key: signingKey(katSecret, katScope), date: katAmzDate, scope: katScope.String(), prev: seed}
}

func gatewaySigner() *chunkSigner {
	s := credentialScope{Date: gwDate, Region: gwRegion, Service: "s3"}
	return &chunkSigner{key: signingKey(gwSecret, s), date: gwAmz, scope: s.String(), prev: gwSeed}
}

func clientChain(seed string) *refChain {
	return newRefChain(katSecret, "20130524", "us-east-1", "s3", katAmzDate, seed)
}

func gatewayChain() *refChain {
	return newRefChain(gwSecret, gwDate, gwRegion, "s3", gwAmz, gwSeed)
}

// readModes read a whole reader in different ways.
var readModes = []struct {
	name string
	read func(io.Reader) ([]byte, error)
}{
	{"ReadAll", io.ReadAll},
	{"OneByte", func(r io.Reader) ([]byte, error) { return io.ReadAll(iotest.OneByteReader(r)) }},
	{"Odd", func(r io.Reader) ([]byte, error) {
		var out []byte
		buf := make([]byte, 4093)
		for {
			n, err := r.Read(buf[:1+len(out)%4093])
			out = append(out, buf[:n]...)
			if err == io.EOF {
				return out, nil
			}
			if err != nil {
				return out, err
			}
		}
	}},
}

// srcModes present the input body to chunkReader in different ways.
var srcModes = []struct {
	name string
	wrap func([]byte) io.ReadCloser
}{
	{"Bytes", func(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }},
	{"OneByte", func(b []byte) io.ReadCloser { return io.NopCloser(iotest.OneByteReader(bytes.NewReader(b))) }},
	{"DataErr", func(b []byte) io.ReadCloser { return io.NopCloser(iotest.DataErrReader(bytes.NewReader(b))) }},
}

func TestChunkKnownAnswerReference(t *testing.T) {
	// The reference chain reproduces AWS's published signatures, so it can
	// be trusted to check the gateway's re-signed output.
	for _, tt := range []struct {
		name       string
		seed       string
		sigs       []string
		trailerSig string
	}{
		{"signed", katSeedSigned, katChunkSigsSigned, ""},
		{"trailer", katSeedTrailer, katChunkSigsTrailer, katTrailerSig},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := clientChain(tt.seed)
			for i, d := range [][]byte{katData[:65536], katData[65536:], nil} {
				if got := c.chunk(d); got != tt.sigs[i] {
					t.Fatalf("reference chunk %d signature %s, want %s", i, got, tt.sigs[i])
				}
			}
			if tt.trailerSig != "" {
				if got := c.trailer(katTrailerLine + "\n"); got != tt.trailerSig {
					t.Fatalf("reference trailer signature %s, want %s", got, tt.trailerSig)
				}
			}
			// And so does chunkSigner.
			s := clientSigner(tt.seed)
			if s.chunkSig(katData[:65536]) != tt.sigs[0] || s.chunkSig(katData[65536:]) != tt.sigs[1] || s.chunkSig(nil) != tt.sigs[2] {
				t.Fatal("chunkSigner disagrees with the published chunk signatures")
			}
			if tt.trailerSig != "" && s.trailerSig([]byte(katTrailerLine+"\n")) != tt.trailerSig {
				t.Fatal("chunkSigner disagrees with the published trailer signature")
			}
			// The body built with refEncode is the published one.
			want := katBody(tt.sigs, tt.trailerSig)
			var lines []string
			if tt.trailerSig != "" {
				lines = []string{katTrailerLine}
			}
			if got := refEncode(katData, []int{65536}, clientChain(tt.seed), tt.trailerSig != "", lines...); !bytes.Equal(got, want) {
				t.Fatal("refEncode does not reproduce the published body")
			}
		})
	}
	crc := crc32.Checksum(katData, crc32.MakeTable(crc32.Castagnoli))
	if got := base64.StdEncoding.EncodeToString([]byte{byte(crc >> 24), byte(crc >> 16), byte(crc >> 8), byte(crc)}); "x-amz-checksum-crc32c:"+got != katTrailerLine {
		t.Fatalf("crc32c of the example data is %s", got)
	}
	if n := len(katBody(katChunkSigsSigned, "")); n != katEncodedLen {
		t.Fatalf("signed example body is %d bytes, want %d", n, katEncodedLen)
	}
}

// TestChunkReaderKnownAnswer feeds AWS's example bodies through chunkReader
// and checks that they come out re-signed by the gateway's chain, with the
// same data, trailer and length.
func TestChunkReaderKnownAnswer(t *testing.T) {
	for _, tt := range []struct {
		name       string
		seed       string
		sigs       []string
		trailerSig string
	}{
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD", katSeedSigned, katChunkSigsSigned, ""},
		{"STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", katSeedTrailer, katChunkSigsTrailer, katTrailerSig},
	} {
		trailers := tt.trailerSig != ""
		body := katBody(tt.sigs, tt.trailerSig)
		// What the gateway must send: the same body, signed by its chain.
		gw := gatewayChain()
		wantSigs := []string{gw.chunk(katData[:65536]), gw.chunk(katData[65536:]), gw.chunk(nil)}
		wantTrailerSig := ""
		if trailers {
			wantTrailerSig = gw.trailer(katTrailerLine + "\n")
		}
		want := katBody(wantSigs, wantTrailerSig)
		for _, src := range srcModes {
			for _, rm := range readModes {
				t.Run(tt.name+"/"+src.name+"/"+rm.name, func(t *testing.T) {
					cr := newChunkReader(src.wrap(body), clientSigner(tt.seed), gatewaySigner(), trailers, 0, katDecodedLen)
					got, err := rm.read(cr)
					if err != nil {
						t.Fatalf("read: %v", err)
					}
					if len(got) != len(body) {
						t.Fatalf("output is %d bytes, input %d", len(got), len(body))
					}
					d, err := refDecode(got, gatewayChain(), trailers)
					if err != nil {
						t.Fatalf("output does not verify under the gateway's chain: %v", err)
					}
					wantN := 3
					if trailers {
						wantN = 4
						if len(d.trailers) != 1 || d.trailers[0] != katTrailerLine {
							t.Fatalf("trailers %q", d.trailers)
						}
					}
					if d.sigs != wantN || !bytes.Equal(d.data, katData) {
						t.Fatalf("decoded %d bytes with %d signatures", len(d.data), d.sigs)
					}
					if !bytes.Equal(got, want) {
						t.Fatal("output differs from the expected re-signed body")
					}
					if _, err := cr.Read(make([]byte, 1)); err != io.EOF {
						t.Fatalf("Read after the end: %v", err)
					}
				})
			}
		}
	}
}

// validBodies returns a small valid body of each mode, for the error tests
// to mutate.
type chunkMode struct {
	name     string
	signed   bool
	trailers bool
}

var chunkModes = []chunkMode{
	{"unsigned", false, false},
	{"unsigned-trailer", false, true},
	{"signed", true, false},
	{"signed-trailer", true, true},
}

const ckData = "hello, aws-chunked world!"

func ckBody(m chunkMode, trailerLines ...string) []byte {
	var chain *refChain
	if m.signed {
		chain = clientChain(katSeedSigned)
	}
	if m.trailers && trailerLines == nil {
		trailerLines = []string{"x-amz-checksum-crc32:AAAAAA==", "X-Other:  spaced value "}
	}
	return refEncode([]byte(ckData), []int{8, 0x10}, chain, m.trailers, trailerLines...)
}

func newTestChunkReader(m chunkMode, body []byte, maxChunk int, want int64) *chunkReader {
	src := io.NopCloser(bytes.NewReader(body))
	if m.signed {
		return newChunkReader(src, clientSigner(katSeedSigned), gatewaySigner(), m.trailers, maxChunk, want)
	}
	return newChunkReader(src, nil, nil, m.trailers, maxChunk, want)
}

func TestChunkReaderValid(t *testing.T) {
	tests := []struct {
		name string
		mode chunkMode
		body string
		want int64
	}{
		{name: "unsigned, trailers", mode: chunkModes[1], body: "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n", want: 5},
		{name: "unsigned, no trailers in trailer mode", mode: chunkModes[1], body: "5\r\nhello\r\n0\r\n\r\n", want: 5},
		{name: "unsigned, no trailer mode", mode: chunkModes[0], body: "5\r\nhello\r\n0\r\n\r\n", want: 5},
		{name: "unsigned, empty", mode: chunkModes[0], body: "0\r\n\r\n", want: 0},
		{name: "unsigned, upper-case hex and zeros", mode: chunkModes[0], body: "00A\r\n0123456789\r\n000\r\n\r\n", want: 10},
		{name: "unsigned, other extension", mode: chunkModes[0], body: "5;name=value\r\nhello\r\n0;x\r\n\r\n", want: 5},
		{name: "unsigned, unknown length", mode: chunkModes[0], body: "5\r\nhello\r\n0\r\n\r\n", want: -1},
		{name: "unsigned, CRLF in data", mode: chunkModes[0], body: "4\r\n\r\n\r\n\r\n0\r\n\r\n", want: 4},
		{name: "unsigned, 16-digit size", mode: chunkModes[0], body: "0000000000000003\r\nabc\r\n0\r\n\r\n", want: 3},
		{name: "unsigned, trailer with spaces", mode: chunkModes[1], body: "0\r\nx-a: b \r\n\r\n", want: 0},
	}
	for _, tt := range tests {
		for _, rm := range readModes {
			t.Run(tt.name+"/"+rm.name, func(t *testing.T) {
				cr := newTestChunkReader(tt.mode, []byte(tt.body), 0, tt.want)
				got, err := rm.read(cr)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if string(got) != tt.body {
					t.Fatalf("output %q, want the input %q", got, tt.body)
				}
			})
		}
	}
	// Generated bodies of every mode, several chunk layouts.
	for _, m := range chunkModes {
		for _, sizes := range [][]int{nil, {1}, {1, 1, 1}, {24}, {25}, {7, 3, 11}} {
			var chain *refChain
			if m.signed {
				chain = clientChain(katSeedSigned)
			}
			body := refEncode([]byte(ckData), sizes, chain, m.trailers, "x-amz-checksum-sha256:abc=")
			for _, rm := range readModes {
				t.Run(fmt.Sprintf("%s/%v/%s", m.name, sizes, rm.name), func(t *testing.T) {
					got, err := rm.read(newTestChunkReader(m, body, 0, int64(len(ckData))))
					if err != nil {
						t.Fatalf("read: %v", err)
					}
					checkChunkOutput(t, m, body, got)
				})
			}
		}
	}
}

// checkChunkOutput checks a successful chunkReader output against its input.
func checkChunkOutput(t *testing.T, m chunkMode, in, out []byte) {
	t.Helper()
	if len(out) != len(in) {
		t.Fatalf("output is %d bytes, input %d", len(out), len(in))
	}
	if !m.signed {
		if !bytes.Equal(out, in) {
			t.Fatalf("unsigned output %q differs from the input %q", out, in)
		}
		return
	}
	din, err := refDecode(in, clientChain(katSeedSigned), m.trailers)
	if err != nil {
		t.Fatalf("input accepted but does not verify under the client's chain: %v\n%q", err, in)
	}
	dout, err := refDecode(out, gatewayChain(), m.trailers)
	if err != nil {
		t.Fatalf("output does not verify under the gateway's chain: %v\n%q", err, out)
	}
	if !bytes.Equal(din.data, dout.data) || strings.Join(din.trailers, "\n") != strings.Join(dout.trailers, "\n") || din.sigs != dout.sigs {
		t.Fatalf("output decodes to %q %q, input to %q %q", dout.data, dout.trailers, din.data, din.trailers)
	}
}

// replaceOnce replaces the first old in b with new, and fails if there is none.
func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in %q", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func TestChunkReaderErrors(t *testing.T) {
	unsigned, unsignedTr, signed, signedTr := chunkModes[0], chunkModes[1], chunkModes[2], chunkModes[3]
	sigs := func(b []byte) []string { // chunk and trailer signatures in order
		var out []string
		for _, f := range bytes.FieldsFunc(b, func(r rune) bool { return r == '=' || r == ':' || r == '\r' || r == ';' }) {
			if len(f) == 64 {
				out = append(out, string(f))
			}
		}
		return out
	}
	trSig := func(b []byte) string { s := sigs(b); return s[len(s)-1] }
	flip := func(s string) string { // change the last hex digit
		c := byte('0')
		if s[63] == '0' {
			c = '1'
		}
		return s[:63] + string(c)
	}
	longLine := strings.Repeat("x", maxChunkLine)
	var manyTrailers []string
	for i := 0; len(manyTrailers)*100 <= maxTrailerBytes; i++ {
		manyTrailers = append(manyTrailers, fmt.Sprintf("x-t%d:%s", i, strings.Repeat("v", 94)))
	}
	tests := []struct {
		name     string
		mode     chunkMode
		body     func(t *testing.T) []byte
		maxChunk int
		want     int64 // X-Amz-Decoded-Content-Length; 0 means len(ckData)
		wantKind ErrorKind
	}{
		{name: "empty body", mode: signed, body: func(*testing.T) []byte { return nil }, wantKind: KindBadRequest},
		{name: "empty body unsigned", mode: unsignedTr, body: func(*testing.T) []byte { return nil }, wantKind: KindBadRequest},
		{name: "bad chunk signature", mode: signed, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[0], flip(sigs(b)[0]))
		}},
		{name: "bad final chunk signature", mode: signed, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[3], flip(sigs(b)[3]))
		}},
		{name: "upper-case chunk signature", mode: signed, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[1], strings.ToUpper(sigs(b)[1]))
		}},
		{name: "seed signature as chunk signature", mode: signed, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[0], katSeedSigned)
		}},
		{name: "tampered data byte", mode: signed, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "world", "wOrld")
		}},
		{name: "tampered data byte, trailer mode", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "hello", "jello")
		}},
		{name: "chunks swapped", mode: signed, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			c := clientChain(katSeedSigned)
			s1, s2 := c.chunk([]byte("hello, a")), c.chunk([]byte("ws-chunked world!"))
			return []byte("11;chunk-signature=" + s2 + "\r\nws-chunked world!\r\n8;chunk-signature=" + s1 + "\r\nhello, a\r\n0;chunk-signature=" + s1 + "\r\n\r\n")
		}},
		{name: "chunk signed with another seed", mode: signed, wantKind: KindSignatureMismatch, body: func(*testing.T) []byte {
			return refEncode([]byte(ckData), nil, clientChain(katSeedTrailer), false)
		}},
		{name: "final chunk missing its signature chain position", mode: signed, wantKind: KindSignatureMismatch, body: func(*testing.T) []byte {
			// A valid 2-chunk body with its middle chunk dropped.
			c := clientChain(katSeedSigned)
			s1 := c.chunk([]byte(ckData[:8]))
			c.chunk([]byte(ckData[8:]))
			s3 := c.chunk(nil)
			return []byte("8;chunk-signature=" + s1 + "\r\n" + ckData[:8] + "\r\n0;chunk-signature=" + s3 + "\r\n\r\n")
		}, want: 8},
		{name: "oversize chunk", mode: signed, maxChunk: 15, wantKind: KindBodyTooLarge, body: func(*testing.T) []byte { return ckBody(signed) }},
		{name: "oversize chunk, huge size", mode: signed, wantKind: KindBodyTooLarge, body: func(*testing.T) []byte {
			return []byte("7fffffffffffffff;chunk-signature=" + katSeedSigned + "\r\n")
		}, want: -1},
		{name: "size not hex", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "8;", "g;")
		}},
		{name: "size not hex, unsigned", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "8x\r\n")
		}},
		{name: "size with 0x", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "0x8\r\n")
		}},
		{name: "size negative", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "-8\r\n")
		}},
		{name: "size with sign", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "+8\r\n")
		}},
		{name: "size with space", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "8;", "8 ;")
		}},
		{name: "size with underscore", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "10\r\n", "1_0\r\n")
		}},
		{name: "size too long", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "8;", "00000000000000008;")
		}},
		{name: "size too long, unsigned", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "00000000000000008\r\n")
		}},
		{name: "size over 63 bits", mode: unsigned, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return []byte("ffffffffffffffff\r\n")
		}, want: -1},
		{name: "size missing", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "8;", ";")
		}},
		{name: "empty chunk line", mode: unsigned, wantKind: KindBadRequest, body: func(*testing.T) []byte { return []byte("\r\n") }},
		{name: "missing chunk-signature", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return refEncode([]byte(ckData), nil, nil, false)
		}},
		{name: "missing chunk-signature in trailer mode", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return refEncode([]byte(ckData), nil, nil, true, "x-a:b")
		}},
		{name: "missing signature of final chunk", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, "0;chunk-signature="+sigs(b)[3], "0")
		}},
		{name: "empty chunk-signature", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[0], "")
		}},
		{name: "short chunk-signature", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[0], sigs(b)[0][:63])
		}},
		{name: "long chunk-signature", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[0], sigs(b)[0]+"0")
		}},
		{name: "other chunk extension", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, "8;chunk-signature=", "8;chunk-signaturf=")
		}},
		{name: "extension before chunk-signature", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "8;chunk-signature=", "8;x=y;chunk-signature=")
		}},
		{name: "signature in unsigned mode", mode: unsigned, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(signed) }},
		{name: "signature in unsigned trailer mode", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(signedTr) }},
		{name: "data after the end", mode: signed, wantKind: KindBadRequest, body: func(*testing.T) []byte { return append(ckBody(signed), 'x') }},
		{name: "data after the end, trailer mode", mode: signedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte { return append(ckBody(signedTr), "\r\n"...) }},
		{name: "data after the end, unsigned", mode: unsigned, wantKind: KindBadRequest, body: func(*testing.T) []byte { return append(ckBody(unsigned), "0\r\n\r\n"...) }},
		{name: "data after the end, unsigned trailer", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte { return append(ckBody(unsignedTr), ' ') }},
		{name: "second body after the end", mode: signed, wantKind: KindBadRequest, body: func(*testing.T) []byte { return append(ckBody(signed), ckBody(signed)...) }},
		{name: "missing CRLF after data", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "hello, a\r\n", "hello, a")
		}},
		{name: "missing CRLF after data, unsigned", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "hello, a\r\n", "hello, a")
		}},
		{name: "LF after data", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "hello, a\r\n", "hello, a\n\r")
		}},
		{name: "chunk longer than its size", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "hello, a\r\n", "hello, ax\r\n")
		}},
		{name: "LF-terminated chunk line", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return replaceOnce(t, b, sigs(b)[0]+"\r\n", sigs(b)[0]+"\n")
		}},
		{name: "LF-terminated chunk line, unsigned", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "8\n")
		}},
		{name: "missing final CRLF", mode: signed, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			b := ckBody(signed)
			return b[:len(b)-2]
		}},
		{name: "final CRLF replaced", mode: signed, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			b := ckBody(signed)
			return append(b[:len(b)-2:len(b)-2], "\n\n"...)
		}},
		{name: "no final chunk", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signed)
			return b[:bytes.LastIndex(b, []byte("0;chunk-signature="))]
		}},
		{name: "no final chunk, unsigned", mode: unsignedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return []byte("5\r\nhello\r\n")
		}},
		{name: "decoded length too small", mode: signed, want: int64(len(ckData)) - 1, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(signed) }},
		{name: "decoded length too large", mode: signed, want: int64(len(ckData)) + 1, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(signed) }},
		{name: "decoded length zero", mode: signedTr, want: -3, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(signedTr) }},
		{name: "decoded length too small, unsigned", mode: unsignedTr, want: 8, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(unsignedTr) }},
		{name: "decoded length too large, unsigned", mode: unsigned, want: 1 << 40, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(unsigned) }},
		// decodedLength (handler.go) reports an unparsable header as -2.
		{name: "decoded length header invalid", mode: signed, want: -2, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(signed) }},
		{name: "decoded length header invalid, unsigned", mode: unsignedTr, want: -2, wantKind: KindBadRequest, body: func(*testing.T) []byte { return ckBody(unsignedTr) }},
		{name: "trailer without signature", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "x-amz-trailer-signature:", "x-amz-trailer-signaturf:")
		}},
		{name: "trailers without signature", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, "x-amz-trailer-signature:"+trSig(b)+"\r\n", "")
		}},
		{name: "no trailer block at all", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			// The final chunk followed by the blank line only.
			b := ckBody(signed)
			return b
		}},
		{name: "empty trailer signature", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, "x-amz-trailer-signature:"+trSig(b), "x-amz-trailer-signature:")
		}},
		{name: "short trailer signature", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, trSig(b), trSig(b)[1:])
		}},
		{name: "tampered trailer value", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "AAAAAA==", "AAAAAB==")
		}},
		{name: "tampered trailer name", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "x-amz-checksum-crc32:", "x-amz-checksum-crc64:")
		}},
		{name: "trailer dropped", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "X-Other:  spaced value \r\n", "")
		}},
		{name: "trailer added", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "X-Other:", "X-New:1\r\nX-Other:")
		}},
		{name: "trailers reordered", mode: signedTr, wantKind: KindSignatureMismatch, body: func(*testing.T) []byte {
			b := ckBody(signedTr, "a:1", "b:2")
			return bytes.Replace(b, []byte("a:1\r\nb:2\r\n"), []byte("b:2\r\na:1\r\n"), 1)
		}},
		{name: "bad trailer signature", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, trSig(b), flip(trSig(b)))
		}},
		{name: "chunk signature as trailer signature", mode: signedTr, wantKind: KindSignatureMismatch, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, "x-amz-trailer-signature:"+trSig(b), "x-amz-trailer-signature:"+sigs(b)[3])
		}},
		{name: "trailer after the trailer signature", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, trSig(b)+"\r\n", trSig(b)+"\r\nx-late:1\r\n")
		}},
		{name: "two trailer signatures", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			b := ckBody(signedTr)
			return replaceOnce(t, b, trSig(b)+"\r\n", trSig(b)+"\r\nx-amz-trailer-signature:"+trSig(b)+"\r\n")
		}},
		{name: "trailer line too long", mode: signedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return ckBody(signedTr, "x-long:"+longLine)
		}},
		{name: "trailer line too long, unsigned", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return ckBody(unsignedTr, "x-long:"+longLine)
		}},
		{name: "trailer line over the read buffer", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return ckBody(unsignedTr, "x-long:"+strings.Repeat("y", 64<<10))
		}},
		{name: "trailers too large", mode: signedTr, wantKind: KindBodyTooLarge, body: func(*testing.T) []byte {
			return ckBody(signedTr, manyTrailers...)
		}},
		{name: "trailers too large, unsigned", mode: unsignedTr, wantKind: KindBodyTooLarge, body: func(*testing.T) []byte {
			return ckBody(unsignedTr, manyTrailers...)
		}},
		{name: "trailer without colon", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return ckBody(unsignedTr, "x-amz-checksum-crc32 AAAAAA==")
		}},
		{name: "trailer with bad name", mode: signedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return ckBody(signedTr, "x amz:1")
		}},
		{name: "trailer with empty name", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return ckBody(unsignedTr, ":1")
		}},
		{name: "trailer block not terminated", mode: unsignedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			b := ckBody(unsignedTr)
			return b[:len(b)-2]
		}},
		{name: "trailer block not terminated, signed", mode: signedTr, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			b := ckBody(signedTr)
			return b[:len(b)-2]
		}},
		{name: "LF-terminated trailer", mode: signedTr, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signedTr), "AAAAAA==\r\n", "AAAAAA==\n")
		}},
		{name: "chunk line too long", mode: unsigned, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(unsigned), "8\r\n", "8;"+longLine+"\r\n")
		}},
		{name: "chunk line too long, signed", mode: signed, wantKind: KindBadRequest, body: func(t *testing.T) []byte {
			return replaceOnce(t, ckBody(signed), "8;", "8;"+longLine)
		}},
		{name: "chunk line without end", mode: unsigned, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return bytes.Repeat([]byte("0"), 40<<10)
		}},
		{name: "huge unsigned chunk, short data", mode: unsigned, wantKind: KindBadRequest, body: func(*testing.T) []byte {
			return []byte("7fffffffffffffff\r\nabc")
		}, want: -1},
	}
	for _, tt := range tests {
		for _, rm := range readModes {
			t.Run(tt.name+"/"+rm.name, func(t *testing.T) {
				body := tt.body(t)
				want := tt.want
				switch want {
				case 0:
					want = int64(len(ckData))
				case -3:
					want = 0
				}
				cr := newTestChunkReader(tt.mode, body, tt.maxChunk, want)
				got, err := rm.read(cr)
				checkChunkError(t, err, tt.wantKind)
				checkPartialOutput(t, tt.mode, body, got)
				// The error sticks.
				if _, err2 := cr.Read(make([]byte, 10)); err2 != err {
					t.Fatalf("Read after the error: %v, want %v", err2, err)
				}
			})
		}
	}
}

func checkChunkError(t *testing.T, err error, want ErrorKind) {
	t.Helper()
	var e *Error
	switch {
	case err == nil:
		t.Fatalf("no error, want kind %d", want)
	case !errors.As(err, &e):
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	case e.Kind != want:
		t.Fatalf("error %v has kind %d, want %d", err, e.Kind, want)
	case !errors.Is(err, errChunk):
		t.Fatalf("error %v does not wrap errChunk", err)
	}
}

// checkPartialOutput checks what chunkReader yielded before an error: never
// more than it read, and for unsigned bodies a prefix of the input.
func checkPartialOutput(t *testing.T, m chunkMode, in, out []byte) {
	t.Helper()
	if len(out) > len(in) {
		t.Fatalf("yielded %d bytes of a %d-byte body", len(out), len(in))
	}
	if !m.signed && !bytes.HasPrefix(in, out) {
		t.Fatalf("unsigned output %q is not a prefix of the input %q", out, in)
	}
}

// TestChunkReaderTruncated cuts valid bodies at every byte: every cut must
// be an error, never a silent EOF.
func TestChunkReaderTruncated(t *testing.T) {
	for _, m := range chunkModes {
		body := ckBody(m)
		for _, rm := range readModes {
			for cut := 0; cut < len(body); cut++ {
				cr := newTestChunkReader(m, body[:cut], 0, int64(len(ckData)))
				got, err := rm.read(cr)
				if err == nil {
					t.Fatalf("%s/%s: body cut at %d/%d accepted: %q", m.name, rm.name, cut, len(body), body[:cut])
				}
				var e *Error
				if !errors.As(err, &e) || e.Kind != KindBadRequest {
					t.Fatalf("%s/%s: body cut at %d: %v", m.name, rm.name, cut, err)
				}
				checkPartialOutput(t, m, body[:cut], got)
			}
			// And with the decoded length unknown.
			cr := newTestChunkReader(m, body[:len(body)-1], 0, -1)
			if _, err := rm.read(cr); err == nil {
				t.Fatalf("%s/%s: body without its last byte accepted", m.name, rm.name)
			}
		}
	}
	// The known-answer bodies at their interesting points.
	for _, tt := range []struct {
		name, seed string
		body       []byte
		trailers   bool
	}{
		{"signed", katSeedSigned, katBody(katChunkSigsSigned, ""), false},
		{"trailer", katSeedTrailer, katBody(katChunkSigsTrailer, katTrailerSig), true},
	} {
		var cuts []int
		for _, mark := range []string{"\r\n", ";chunk-signature=", "x-amz-", ":"} {
			for i := 0; ; {
				j := bytes.Index(tt.body[i:], []byte(mark))
				if j < 0 {
					break
				}
				i += j
				cuts = append(cuts, i-1, i, i+1, i+len(mark)-1, i+len(mark), i+len(mark)+1)
				i += len(mark)
			}
		}
		cuts = append(cuts, 0, 1, 100, 65536, len(tt.body)-1)
		for _, cut := range cuts {
			if cut < 0 || cut >= len(tt.body) {
				continue
			}
			cr := newChunkReader(io.NopCloser(bytes.NewReader(tt.body[:cut])), clientSigner(tt.seed), gatewaySigner(), tt.trailers, 0, katDecodedLen)
			got, err := io.ReadAll(cr)
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindBadRequest {
				t.Fatalf("%s cut at %d: %v", tt.name, cut, err)
			}
			if len(got) > cut {
				t.Fatalf("%s cut at %d: yielded %d bytes", tt.name, cut, len(got))
			}
		}
	}
}

// TestChunkReaderSourceError checks that a failing client body is an
// error, never a clean end, and one the gateway answers as the client's.
func TestChunkReaderSourceError(t *testing.T) {
	boom := errors.New("connection reset")
	for _, m := range chunkModes {
		body := ckBody(m)
		for cut := 0; cut < len(body); cut++ {
			src := io.NopCloser(io.MultiReader(bytes.NewReader(body[:cut]), iotest.ErrReader(boom)))
			var cr *chunkReader
			if m.signed {
				cr = newChunkReader(src, clientSigner(katSeedSigned), gatewaySigner(), m.trailers, 0, -1)
			} else {
				cr = newChunkReader(src, nil, nil, m.trailers, 0, -1)
			}
			_, err := io.ReadAll(cr)
			if err == nil {
				t.Fatalf("%s: source error after %d bytes ignored", m.name, cut)
			}
			// An *Error, so that the client hears of its own broken body
			// (400) rather than of an upstream failure (502).
			var e *Error
			if !errors.As(err, &e) || e.Kind != KindBadRequest {
				t.Fatalf("%s: source error after %d bytes reported as %v (%T), want a BadRequest *Error", m.name, cut, err, err)
			}
		}
	}
}

// TestChunkReaderTrailerSignatureForms checks trailer-signature lines that
// are not in the exact form AWS SDKs write: they verify, and the re-signed
// line keeps the length of the received one.
func TestChunkReaderTrailerSignatureForms(t *testing.T) {
	m := chunkModes[3]
	tests := []struct {
		name   string
		rewrap func(sig string) string // the signature line as sent
	}{
		{"canonical", func(s string) string { return "x-amz-trailer-signature:" + s }},
		{"capitalised name", func(s string) string { return "X-Amz-Trailer-Signature:" + s }},
		{"space after colon", func(s string) string { return "x-amz-trailer-signature: " + s }},
		{"spaces around", func(s string) string { return "x-amz-trailer-signature:  " + s + " " }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ckBody(m)
			i := bytes.Index(b, []byte("x-amz-trailer-signature:"))
			sig := string(b[i+24 : i+24+64])
			body := append(append(b[:i:i], tt.rewrap(sig)...), "\r\n\r\n"...)
			got, err := io.ReadAll(newTestChunkReader(m, body, 0, int64(len(ckData))))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			checkChunkOutput(t, m, body, got)
		})
	}
}

func TestChunkReaderClose(t *testing.T) {
	closed := 0
	src := closeCounter{Reader: bytes.NewReader(ckBody(chunkModes[0])), n: &closed}
	cr := newChunkReader(src, nil, nil, false, 0, -1)
	if err := cr.Close(); err != nil || closed != 1 {
		t.Fatalf("Close: %v, closed %d times", err, closed)
	}
}

type closeCounter struct {
	io.Reader
	n *int
}

func (c closeCounter) Close() error { *c.n++; return nil }

func TestChunkReaderMaxChunk(t *testing.T) {
	m := chunkModes[2]
	body := refEncode([]byte(ckData), []int{16}, clientChain(katSeedSigned), false)
	// A chunk of exactly maxChunk bytes is fine; a limit one byte lower is not.
	if _, err := io.ReadAll(newTestChunkReader(m, body, 16, int64(len(ckData)))); err != nil {
		t.Fatalf("chunk of maxChunk bytes: %v", err)
	}
	_, err := io.ReadAll(newTestChunkReader(m, body, 15, int64(len(ckData))))
	checkChunkError(t, err, KindBodyTooLarge)
	// Unsigned bodies stream, so the bound does not apply to them.
	u := refEncode([]byte(ckData), nil, nil, true)
	if _, err := io.ReadAll(newTestChunkReader(chunkModes[1], u, 4, int64(len(ckData)))); err != nil {
		t.Fatalf("unsigned chunk over maxChunk: %v", err)
	}
}

func TestParseChunkSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"a", 10, true}, {"FFFF", 65535, true}, {"10000", 65536, true},
		{"0000000000000003", 3, true}, {"7fffffffffffffff", 1<<63 - 1, true},
		{"8000000000000000", 0, false}, {"ffffffffffffffff", 0, false}, {"00000000000000000", 0, false},
		{"", 0, false}, {"g", 0, false}, {"+1", 0, false}, {"-1", 0, false}, {" 1", 0, false},
		{"0x10", 0, false}, {"1_0", 0, false},
	} {
		got, ok := parseChunkSize([]byte(tt.in))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseChunkSize(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

// TestChunkReaderCoalesces checks that an unsigned aws-chunked body that is
// already in hand comes out in large reads, headers and data together,
// rather than a few bytes at every chunk boundary (which costs a write to
// the upstream socket each).
func TestChunkReaderCoalesces(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 10_000) // 100 KB in 1,000 chunks
	sizes := make([]int, 1000)
	for i := range sizes {
		sizes[i] = 100
	}
	body := refEncode(data, sizes, nil, true, "x-amz-checksum-crc32:AAAAAA==")
	cr := newChunkReader(io.NopCloser(bytes.NewReader(body)), nil, nil, true, 0, int64(len(data)))
	var out []byte
	p := make([]byte, 32<<10)
	reads := 0
	for {
		n, err := cr.Read(p)
		out = append(out, p[:n]...)
		if n > 0 {
			reads++
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(out, body) {
		t.Fatal("the body did not pass through unchanged")
	}
	// Each refill of the 32 KiB read buffer can end a read early once.
	if limit := 2*(len(body)/(32<<10)+1) + 2; reads > limit {
		t.Fatalf("%d reads for a %d-byte body in hand, want at most %d", reads, len(body), limit)
	}
}

// TestChunkReaderDoesNotWaitWithBytesInHand checks the other side of
// coalescing: what the client has sent goes on at once, even when the
// chunk is not complete yet.
func TestChunkReaderDoesNotWaitWithBytesInHand(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	cr := newChunkReader(pr, nil, nil, true, 0, -1)
	go pw.Write([]byte("a\r\n01234"))
	got := make(chan string, 1)
	go func() {
		p := make([]byte, 64)
		n, err := cr.Read(p)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(p[:n])
	}()
	select {
	case s := <-got:
		if s != "a\r\n01234" {
			t.Fatalf("first read gave %q, want the header and the 5 bytes sent", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read waited for the rest of the chunk while holding bytes")
	}
}

// TestChunkReaderTapVerifyOnly: with a tap the reader hands on exactly the
// decoded payload; with in set and out nil it verifies the client's
// signatures and yields the body unchanged (how a body held for an
// approval is checked and hashed before it is sent).
func TestChunkReaderTapVerifyOnly(t *testing.T) {
	for _, m := range chunkModes {
		for _, sizes := range [][]int{nil, {1}, {7, 3, 11}, {25}} {
			t.Run(fmt.Sprintf("%s/%v", m.name, sizes), func(t *testing.T) {
				var chain *refChain
				var in *chunkSigner
				if m.signed {
					chain, in = clientChain(katSeedSigned), clientSigner(katSeedSigned)
				}
				body := refEncode([]byte(ckData), sizes, chain, m.trailers, "x-amz-checksum-sha256:abc=")
				var tap bytes.Buffer
				cr := newChunkReader(io.NopCloser(bytes.NewReader(body)), in, nil, m.trailers, 0, int64(len(ckData)))
				cr.tap = &tap
				got, err := io.ReadAll(cr)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if !bytes.Equal(got, body) {
					t.Fatalf("verify-only output differs from the input:\n%q\n%q", got, body)
				}
				if tap.String() != ckData {
					t.Fatalf("tap got %q, want the decoded payload %q", tap.String(), ckData)
				}
			})
		}
	}
	// A tampered chunk is still refused in verify-only mode.
	body := refEncode([]byte(ckData), []int{8}, clientChain(katSeedSigned), false)
	body[bytes.Index(body, []byte("hello"))] ^= 1
	cr := newChunkReader(io.NopCloser(bytes.NewReader(body)), clientSigner(katSeedSigned), nil, false, 0, -1)
	if _, err := io.ReadAll(cr); err == nil {
		t.Fatal("a tampered chunk passed verify-only mode")
	}
}
