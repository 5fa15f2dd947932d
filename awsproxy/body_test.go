package awsproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"testing"
)

// readAllScribbling reads r with reads of size n and overwrites the buffer
// after every read, as a caller that reuses its buffer may: a reader that
// kept p past the read would hash the scribbles.
func readAllScribbling(r io.Reader, n int) ([]byte, error) {
	var out []byte
	p := make([]byte, n)
	for {
		m, err := r.Read(p)
		out = append(out, p[:m]...)
		for i := range p {
			p[i] = 0xAA
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func TestHashingBody(t *testing.T) {
	for _, size := range []int{0, 1, 32<<10 - 1, 32 << 10, 1<<20 + 7} {
		data := patternBytes(size)
		sum := sha256.Sum256(data)
		want := hex.EncodeToString(sum[:])
		for _, known := range []bool{true, false} {
			length := int64(size)
			if !known {
				length = -1
			}
			for _, readSize := range []int{7, 32 << 10, 1 << 20} {
				name := fmt.Sprintf("size=%d/length-known=%v/read=%d", size, known, readSize)
				t.Run(name+"/intact", func(t *testing.T) {
					hb := newHashingBody(io.NopCloser(bytes.NewReader(data)), want, length)
					got, err := readAllScribbling(hb, readSize)
					if err != nil || !bytes.Equal(got, data) {
						t.Fatalf("read %d bytes, err %v; want all %d and EOF", len(got), err, size)
					}
					hb.Close()
				})
				if size == 0 {
					continue
				}
				for _, at := range []int{0, size / 2, size - 1} {
					t.Run(fmt.Sprintf("%s/tampered-at-%d", name, at), func(t *testing.T) {
						evil := bytes.Clone(data)
						evil[at] ^= 1
						hb := newHashingBody(io.NopCloser(&lastReadEOF{data: evil}), want, length)
						got, err := readAllScribbling(hb, readSize)
						var e *Error
						if !errors.As(err, &e) || e.Kind != KindContentSHA256Mismatch {
							t.Fatalf("err = %v, want a ContentSHA256Mismatch", err)
						}
						if len(got) >= size {
							t.Fatalf("all %d bytes were handed on before the mismatch", len(got))
						}
						hb.Close()
					})
				}
			}
		}
	}
	t.Run("short of Content-Length", func(t *testing.T) {
		data := patternBytes(100 << 10)
		sum := sha256.Sum256(data)
		hb := newHashingBody(io.NopCloser(bytes.NewReader(data[:90<<10])), hex.EncodeToString(sum[:]), int64(len(data)))
		got, err := readAllScribbling(hb, 32<<10)
		var e *Error
		// The upstream request cannot complete short of its Content-Length;
		// the error makes the transport abort it.
		if !errors.As(err, &e) || e.Kind != KindBadRequest || len(got) > 90<<10 {
			t.Fatalf("read %d bytes, err %v; want at most the 90 KiB sent, then a BadRequest", len(got), err)
		}
	})
}

// patternBytes returns n bytes that differ from position to position.
func patternBytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// lastReadEOF returns its data in 48 KiB reads, the last one together with
// io.EOF: the case where a check made "at EOF" comes too late.
type lastReadEOF struct{ data []byte }

func (e *lastReadEOF) Read(p []byte) (int, error) {
	n := copy(p[:min(len(p), 48<<10)], e.data)
	e.data = e.data[n:]
	if len(e.data) == 0 {
		return n, io.EOF
	}
	return n, nil
}
