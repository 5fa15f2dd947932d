package awsproxy

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
		"AWS4-HMAC-SHA256 Credential=AKID/20261125/eu-west-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"AWS4-HMAC-SHA256 Signature=x, Credential=a/b/c/d/e, SignedHeaders=host",
		"AWS4-HMAC-SHA256 Credential=,SignedHeaders=,Signature=",
		"AWS4-HMAC-SHA256 Credential=a=b, Credential=c",
		"AWS4-HMAC-SHA256 ,,,",
		"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAuthorization(s)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		checkAuth(t, a)
		if a.Presigned || a.Expires != 0 {
			t.Fatalf("header auth parsed as presigned: %+v", a)
		}
		if !strings.HasPrefix(s, sigAlgorithm+" ") || len(s) > maxAuthorizationBytes {
			t.Fatalf("accepted %q", s)
		}
		// The accepted value means the same as its canonical rendering.
		canon := sigAlgorithm + " Credential=" + a.Scope.AccessKeyID + "/" + a.Scope.String() +
			", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
		b, err := parseAuthorization(canon)
		if err != nil {
			t.Fatalf("canonical form %q of an accepted value is refused: %v", canon, err)
		}
		if b.Scope != a.Scope || b.Signature != a.Signature || strings.Join(b.SignedHeaders, ";") != strings.Join(a.SignedHeaders, ";") {
			t.Fatalf("round trip changed %+v to %+v", a, b)
		}
	})
}

// checkAuth checks the invariants of a successfully parsed sigv4Auth.
func checkAuth(t *testing.T, a sigv4Auth) {
	t.Helper()
	sc := a.Scope
	if sc.AccessKeyID == "" || len(sc.AccessKeyID) > 128 || strings.Contains(sc.AccessKeyID, "/") ||
		len(sc.Date) != 8 || !isDigits(sc.Date) || sc.Region == "" || sc.Service == "" ||
		strings.Contains(sc.Region, "/") || strings.Contains(sc.Service, "/") {
		t.Fatalf("bad scope %+v", sc)
	}
	if !isPayloadHash(a.Signature) {
		t.Fatalf("bad signature %q", a.Signature)
	}
	hasHost := false
	for i, h := range a.SignedHeaders {
		if !isToken(h) || h != strings.ToLower(h) || (i > 0 && a.SignedHeaders[i-1] >= h) {
			t.Fatalf("bad signed headers %q", a.SignedHeaders)
		}
		hasHost = hasHost || h == "host"
	}
	if !hasHost {
		t.Fatalf("signed headers %q lack host", a.SignedHeaders)
	}
}

func FuzzParsePresigned(f *testing.F) {
	for _, s := range []string{
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A/20261125/us-east-1/s3/aws4_request&X-Amz-Date=20261125T000000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host%3Bx-amz-meta-a&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef&X-Amz-Security-Token=t%2Bo&versionId=3&a&=b&c=+",
		// X-Amz-Expires values that overflowed a time.Duration.
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=18446744074&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=A%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=9223372037&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		"a=%zz&b=1;c=2",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		a, at, tok, err := parsePresigned(q)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
		} else {
			checkAuth(t, a)
			if !a.Presigned || a.Expires < time.Second || a.Expires > maxPresignExpiry || a.Expires%time.Second != 0 {
				t.Fatalf("accepted expiry %v", a.Expires)
			}
			if at.Format(amzDateLayout) != q.Get(queryDate) || at.Location() != time.UTC {
				t.Fatalf("date %v from %q", at, q.Get(queryDate))
			}
			if tok != q.Get(querySecurityToken) || a.Signature != q.Get(querySignature) {
				t.Fatalf("token %q, signature %q", tok, a.Signature)
			}
		}
		// The canonical query of any raw query either fails cleanly or is
		// a fixed point, without the dropped parameter.
		cq, err := appendCanonicalQuery(nil, raw, querySignature)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("error %v does not wrap errMalformed", err)
			}
			return
		}
		canon := string(cq)
		if again, err := appendCanonicalQuery(nil, canon, ""); err != nil || string(again) != canon {
			t.Fatalf("canonical query %q is not a fixed point: %q, %v", canon, again, err)
		}
		for part := range strings.SplitSeq(canon, "&") {
			if k, _, _ := strings.Cut(part, "="); k == querySignature {
				t.Fatalf("canonical query %q keeps %s", canon, querySignature)
			}
			for i := 0; i < len(part); i++ {
				if c := part[i]; !unreserved(c) && c != '%' && c != '=' {
					t.Fatalf("canonical query %q has unescaped %q", canon, c)
				}
			}
		}
	})
}

// fuzzMaxChunk bounds signed chunks in FuzzChunkReader; it admits the
// known-answer bodies' 64 KiB chunk.
const fuzzMaxChunk = 1 << 17

func FuzzChunkReader(f *testing.F) {
	// mode: bit 0 trailers, bit 1 signed (the order of chunkModes). Signed
	// bodies are checked against the client chain with seed katSeedSigned,
	// or katSeedTrailer for trailer bodies with bit 2 set (the trailer
	// known-answer body).
	add := func(body []byte, mode uint8, readSize uint16, want int64) { f.Add(body, mode, readSize, want) }
	add(katBody(katChunkSigsSigned, ""), 2|4, 4096, katDecodedLen)
	add(katBody(katChunkSigsTrailer, katTrailerSig), 3|4, 1000, katDecodedLen)
	add(katBody(katChunkSigsTrailer, katTrailerSig), 3|4, 0, -1)
	for i, m := range chunkModes {
		mode := uint8(i) // chunkModes is in mode-bit order
		add(ckBody(m), mode, 7, int64(len(ckData)))
		add(ckBody(m), mode, 0, -1) // one-byte reads
		add(ckBody(m), mode, 100, -2)
		add(ckBody(m, "x-a:1", "X-B:  two  "), mode, 3, int64(len(ckData)))
	}
	// A trailer signature with a space after the colon.
	b := ckBody(chunkModes[3])
	add(bytes.Replace(b, []byte("x-amz-trailer-signature:"), []byte("x-amz-trailer-signature: "), 1), 3, 4096, int64(len(ckData)))
	add([]byte("5\r\nhello\r\n0\r\n\r\n"), 0, 2, 5)
	add([]byte("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"), 1, 64, 0)
	add([]byte("7fffffffffffffff;chunk-signature=0\r\n"), 2, 1, -1)
	add([]byte("ffffffffffffffff\r\n"), 0, 5, -2)

	f.Fuzz(func(t *testing.T, body []byte, mode uint8, readSize uint16, want int64) {
		if len(body) > 1<<20 {
			return
		}
		m := chunkModes[mode&3]
		if want < -2 {
			want = -1
		}
		seed := katSeedSigned
		if mode&4 != 0 && m.trailers {
			seed = katSeedTrailer
		}
		var cr *chunkReader
		src := io.NopCloser(bytes.NewReader(body))
		if m.signed {
			cr = newChunkReader(src, clientSigner(seed), gatewaySigner(), m.trailers, fuzzMaxChunk, want)
		} else {
			cr = newChunkReader(src, nil, nil, m.trailers, fuzzMaxChunk, want)
		}
		buf := make([]byte, 1+int(readSize)%8192)
		var out []byte
		var err error
		// Bounded work: every Read but the last yields at least one byte.
		for reads := 0; ; reads++ {
			if reads > len(body)+2 {
				t.Fatalf("%d reads of a %d-byte body", reads, len(body))
			}
			var n int
			n, err = cr.Read(buf)
			out = append(out, buf[:n]...)
			if err != nil {
				break
			}
			if n == 0 {
				t.Fatalf("Read returned 0, nil")
			}
		}
		if len(out) > len(body) {
			t.Fatalf("yielded %d bytes of a %d-byte body", len(out), len(body))
		}
		if !m.signed && !bytes.HasPrefix(body, out) {
			t.Fatalf("unsigned output %q is not a prefix of the input", out)
		}
		if err != io.EOF {
			var e *Error
			if !errors.As(err, &e) || !errors.Is(err, errChunk) {
				t.Fatalf("error %v (%T) is not a chunk *Error", err, err)
			}
			if n, err2 := cr.Read(buf); n != 0 || err2 != err {
				t.Fatalf("Read after the error: %d, %v", n, err2)
			}
			return
		}
		// Success: same length; unsigned bodies unchanged; signed ones
		// verified under the client's chain and re-signed under the
		// gateway's, with the same data and trailers.
		if len(out) != len(body) {
			t.Fatalf("output %d bytes, input %d", len(out), len(body))
		}
		if want == -2 {
			t.Fatal("accepted with an unparsable X-Amz-Decoded-Content-Length")
		}
		if !m.signed {
			if !bytes.Equal(out, body) {
				t.Fatalf("unsigned output differs from the input")
			}
			return
		}
		din, err := refDecode(body, clientChain(seed), m.trailers)
		if err != nil {
			t.Fatalf("accepted a body that does not verify: %v\n%q", err, body)
		}
		dout, err := refDecode(out, gatewayChain(), m.trailers)
		if err != nil {
			t.Fatalf("output does not verify under the gateway's chain: %v\n%q", err, out)
		}
		if !bytes.Equal(din.data, dout.data) || strings.Join(din.trailers, "\n") != strings.Join(dout.trailers, "\n") || din.sigs != dout.sigs {
			t.Fatal("output decodes differently from the input")
		}
		if want >= 0 && int64(len(din.data)) != want {
			t.Fatalf("decoded %d bytes, X-Amz-Decoded-Content-Length %d", len(din.data), want)
		}
	})
}
