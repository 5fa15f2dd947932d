// Package chain is the hash-chain record format shared by the audit file
// sink, Verify and the PostgreSQL sink. The format is documented in the
// audit package's doc.go ("Chain format"); this package is its one
// implementation.
package chain

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"strconv"
)

// Genesis is the prev of the first record of a chain.
const Genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Format names the record format in file headers.
const Format = "gatehouse-audit-chain/1"

// HashLen is the length of a hex hash.
const HashLen = 64

// suffixLen is the length of `,"hash":"<64 hex>"}`.
const suffixLen = len(`,"hash":"`) + HashLen + len(`"}`)

// Hasher computes record hashes: SHA-256, or HMAC-SHA256 when keyed. It is
// not safe for concurrent use.
type Hasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
}

// NewHasher returns a Hasher; a non-empty key selects HMAC-SHA256.
func NewHasher(key []byte) *Hasher {
	if len(key) > 0 {
		return &Hasher{h: hmac.New(sha256.New, key)}
	}
	return &Hasher{h: sha256.New()}
}

// Sum returns the hex hash of b.
func (h *Hasher) Sum(b []byte) string {
	var out [HashLen]byte
	h.sumInto(out[:], b)
	return string(out[:])
}

func (h *Hasher) sumInto(dst []byte, b []byte) {
	h.h.Reset()
	h.h.Write(b)
	hex.Encode(dst, h.h.Sum(h.sum[:0]))
}

// Append appends one record line to dst:
//
//	{"seq":<seq>,"prev":"<prev>","<member>":<value>,"hash":"<hash>"}\n
//
// where hash is the hex hash of the same line without its hash member:
// `{"seq":<seq>,"prev":"<prev>","<member>":<value>}`. value must be
// compact JSON without newlines (encoding/json output is). It returns the
// extended slice and the record's hash.
func (h *Hasher) Append(dst []byte, seq uint64, prev, member string, value []byte) ([]byte, string) {
	start := len(dst)
	dst = AppendBody(dst, seq, prev, member, value)
	dst = append(dst, '}')
	var sum [HashLen]byte
	h.sumInto(sum[:], dst[start:])
	dst = dst[:len(dst)-1]
	dst = append(dst, `,"hash":"`...)
	dst = append(dst, sum[:]...)
	dst = append(dst, `"}`...)
	dst = append(dst, '\n')
	return dst, string(sum[:])
}

// AppendBody appends the record without its hash member and without the
// closing brace.
func AppendBody(dst []byte, seq uint64, prev, member string, value []byte) []byte {
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"prev":"`...)
	dst = append(dst, prev...)
	dst = append(dst, `","`...)
	dst = append(dst, member...)
	dst = append(dst, `":`...)
	dst = append(dst, value...)
	return dst
}

// Hash returns the hash of the record (seq, prev, member, value), as
// Append computes it; the PostgreSQL sink stores rows rather than lines
// and uses it directly.
func (h *Hasher) Hash(seq uint64, prev, member string, value []byte) string {
	b := AppendBody(make([]byte, 0, 100+len(value)), seq, prev, member, value)
	b = append(b, '}')
	return h.Sum(b)
}

// Header is the "file" member of the first record of every file.
type Header struct {
	Format string `json:"format"`
	// Name is the file's own name when it was created.
	Name string `json:"name"`
	// PrevFile is the name of the file holding the previous record; ""
	// for the first file of a chain.
	PrevFile string `json:"prev_file,omitempty"`
	// Created is when the file was created (RFC 3339, UTC).
	Created string `json:"created"`
	// Checkpointed is present in the files of a sink that signs
	// checkpoints: the number of records the newest checkpoint in the
	// directory covered when the file was created (0: none yet).
	Checkpointed *uint64 `json:"checkpointed,omitempty"`
	// ResumedWithoutCheckpoint marks the first file of a sink that resumed
	// a checkpointed chain whose checkpoint was missing, as its
	// configuration allowed: nothing shows whether records were removed
	// from the chain's end before this file.
	ResumedWithoutCheckpoint bool `json:"resumed_without_checkpoint,omitempty"`
}

// Record is a parsed line.
type Record struct {
	Seq   uint64
	Prev  string
	Hash  string
	Event json.RawMessage // set for event records
	File  *Header         // set for file headers
}

// Errors of Parse.
var (
	ErrNoHash    = errors.New(`record does not end with a "hash" member of 64 lowercase hex digits`)
	ErrMalformed = errors.New("record is not a well-formed chain record")
)

type wire struct {
	Seq   *uint64         `json:"seq"`
	Prev  *string         `json:"prev"`
	Hash  string          `json:"hash"`
	Event json.RawMessage `json:"event"`
	File  *Header         `json:"file"`
}

// Parse parses one line (without its newline) and returns the record and
// the hash recomputed over its content; the record is intact when the two
// hashes are equal.
func (h *Hasher) Parse(line []byte) (Record, string, error) {
	if len(line) < suffixLen+2 || !bytes.HasPrefix(line[len(line)-suffixLen:], []byte(`,"hash":"`)) ||
		!bytes.HasSuffix(line, []byte(`"}`)) || !isHex(line[len(line)-suffixLen+len(`,"hash":"`):len(line)-2]) {
		return Record{}, "", ErrNoHash
	}
	var w wire
	d := json.NewDecoder(bytes.NewReader(line))
	d.DisallowUnknownFields()
	if err := d.Decode(&w); err != nil {
		return Record{}, "", ErrMalformed
	}
	if d.More() {
		return Record{}, "", ErrMalformed
	}
	if w.Seq == nil || *w.Seq == 0 || w.Prev == nil || !isHex([]byte(*w.Prev)) || (w.Event == nil) == (w.File == nil) {
		return Record{}, "", ErrMalformed
	}
	if w.Event != nil && bytes.Equal(w.Event, []byte("null")) {
		return Record{}, "", ErrMalformed
	}
	body := make([]byte, 0, len(line)-suffixLen+1)
	body = append(body, line[:len(line)-suffixLen]...)
	body = append(body, '}')
	return Record{Seq: *w.Seq, Prev: *w.Prev, Hash: w.Hash, Event: w.Event, File: w.File}, h.Sum(body), nil
}

func isHex(b []byte) bool {
	if len(b) != HashLen {
		return false
	}
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// IsHash reports whether s is 64 lowercase hex digits.
func IsHash(s string) bool { return isHex([]byte(s)) }
