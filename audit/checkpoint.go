package audit

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// Bounds of checkpoints and key files read back.
const (
	// MaxCheckpointBytes bounds a signed checkpoint note; a larger one is
	// refused as malformed (a gatehouse checkpoint is about 250 bytes).
	MaxCheckpointBytes = 16 << 10
	// MaxOriginBytes bounds a checkpoint's origin line.
	MaxOriginBytes  = 256
	maxKeyFileBytes = 64 << 10
)

// Errors of checkpoints. OpenCheckpoint wraps one of them, and, for a bad
// signature or an unknown key, the note package's error
// (*note.InvalidSignatureError, *note.UnverifiedNoteError).
var (
	// ErrBadCheckpoint: the note or its body is not a well-formed
	// checkpoint.
	ErrBadCheckpoint = errors.New("audit: malformed checkpoint")
	// ErrCheckpointSignature: a known key's signature does not verify:
	// the checkpoint was altered or forged.
	ErrCheckpointSignature = errors.New("audit: checkpoint signature does not verify")
	// ErrCheckpointKey: no known key signed the checkpoint.
	ErrCheckpointKey = errors.New("audit: checkpoint is not signed by a known key")
)

// Checkpoint is a statement of a chain's extent: its first Size records
// end with the record whose hash is Hash. Signed (Sign), it is what makes
// removal of a chain's newest records detectable; see the package
// documentation ("Checkpoints").
//
// Its body is the C2SP tlog-checkpoint body: three lines, the origin, the
// size in decimal, and the head hash in standard base64:
//
//	gatehouse-gw-1/audit
//	1234
//	UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw=
//
// The hash is the chain record's own hash (SHA-256, or HMAC-SHA256 for a
// keyed chain), not the root of a Merkle tree: the origin of a gatehouse
// chain never names a transparency log.
type Checkpoint struct {
	// Origin names the chain; see FileConfig.CheckpointOrigin.
	Origin string `json:"origin"`
	// Size is the number of records the checkpoint covers: the sequence
	// number of the last of them (headers count, as in the chain).
	Size uint64 `json:"size"`
	// Hash is the hash of record Size, as the chain writes it (64
	// lowercase hex digits).
	Hash string `json:"hash"`
}

// SignedCheckpoint is a Checkpoint with its signed note.
type SignedCheckpoint struct {
	Checkpoint
	// Note is the signed note: the body, a blank line and one signature
	// line per key (golang.org/x/mod/sumdb/note).
	Note []byte `json:"note"`
	// Signers names the keys whose signatures verified; set by
	// OpenCheckpoint.
	Signers []string `json:"signers,omitempty"`
}

// validOrigin reports whether s can be an origin line: 1 to
// MaxOriginBytes of UTF-8 without control characters and without leading
// or trailing space.
func validOrigin(s string) bool {
	if s == "" || len(s) > MaxOriginBytes || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}

func (c Checkpoint) validate() error {
	switch {
	case !validOrigin(c.Origin):
		return fmt.Errorf("%w: origin %q must be 1 to %d bytes of UTF-8 without control characters or surrounding space", ErrBadCheckpoint, c.Origin, MaxOriginBytes)
	case c.Size == 0 || c.Size > math.MaxInt64:
		return fmt.Errorf("%w: size %d is not between 1 and 2^63-1", ErrBadCheckpoint, c.Size)
	case !chain.IsHash(c.Hash):
		return fmt.Errorf("%w: hash %q is not 64 lowercase hex digits", ErrBadCheckpoint, c.Hash)
	}
	return nil
}

// Body returns the checkpoint's note text: "<origin>\n<size>\n<base64 hash>\n".
// It does not validate c; Sign does.
func (c Checkpoint) Body() []byte {
	raw, _ := hex.DecodeString(c.Hash)
	b := make([]byte, 0, len(c.Origin)+70)
	b = append(b, c.Origin...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Size, 10)
	b = append(b, '\n')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '\n')
}

// ParseCheckpoint parses a checkpoint body (the note text, without
// signatures). It is strict: exactly three lines, a size without sign or
// leading zeros, canonical base64 of exactly 32 bytes; it never panics.
func ParseCheckpoint(body []byte) (Checkpoint, error) {
	if len(body) > MaxCheckpointBytes {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadCheckpoint, len(body), MaxCheckpointBytes)
	}
	lines := strings.Split(string(body), "\n")
	if len(lines) != 4 || lines[3] != "" {
		return Checkpoint{}, fmt.Errorf("%w: want three lines (origin, size, hash), each ending in a newline", ErrBadCheckpoint)
	}
	origin, size, hash := lines[0], lines[1], lines[2]
	if !validOrigin(origin) {
		return Checkpoint{}, fmt.Errorf("%w: origin line %q", ErrBadCheckpoint, origin)
	}
	n, err := strconv.ParseUint(size, 10, 64)
	if err != nil || size == "" || size[0] < '0' || size[0] > '9' || (size[0] == '0' && len(size) > 1) {
		return Checkpoint{}, fmt.Errorf("%w: size line %q is not a decimal number", ErrBadCheckpoint, size)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(hash)
	if err != nil || len(raw) != 32 || base64.StdEncoding.EncodeToString(raw) != hash {
		return Checkpoint{}, fmt.Errorf("%w: hash line %q is not the base64 of 32 bytes", ErrBadCheckpoint, hash)
	}
	c := Checkpoint{Origin: origin, Size: n, Hash: hex.EncodeToString(raw)}
	if err := c.validate(); err != nil {
		return Checkpoint{}, err
	}
	return c, nil
}

// Sign validates c and signs its body with s.
func (c Checkpoint) Sign(s note.Signer) (SignedCheckpoint, error) {
	if s == nil {
		return SignedCheckpoint{}, errors.New("audit: sign checkpoint: no signer")
	}
	if err := c.validate(); err != nil {
		return SignedCheckpoint{}, err
	}
	msg, err := note.Sign(&note.Note{Text: string(c.Body())}, s)
	if err != nil {
		return SignedCheckpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	return SignedCheckpoint{Checkpoint: c, Note: msg}, nil
}

// OpenCheckpoint verifies a signed checkpoint note against the known keys
// and parses its body. At least one known key must have signed it, and
// every signature by a known key must verify; signatures by other keys
// are ignored. Errors wrap ErrBadCheckpoint, ErrCheckpointSignature or
// ErrCheckpointKey.
func OpenCheckpoint(msg []byte, known []note.Verifier) (SignedCheckpoint, error) {
	if len(msg) > MaxCheckpointBytes {
		return SignedCheckpoint{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadCheckpoint, len(msg), MaxCheckpointBytes)
	}
	n, err := note.Open(msg, note.VerifierList(known...))
	if err != nil {
		var invalid *note.InvalidSignatureError
		var unverified *note.UnverifiedNoteError
		var unknown *note.UnknownVerifierError
		switch {
		case errors.As(err, &invalid):
			return SignedCheckpoint{}, fmt.Errorf("%w: %w", ErrCheckpointSignature, err)
		case errors.As(err, &unverified):
			names := make([]string, 0, len(unverified.Note.UnverifiedSigs))
			for _, s := range unverified.Note.UnverifiedSigs {
				names = append(names, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
			}
			return SignedCheckpoint{}, fmt.Errorf("%w: signed by %s only: %w", ErrCheckpointKey, strings.Join(names, ", "), err)
		case errors.As(err, &unknown):
			return SignedCheckpoint{}, fmt.Errorf("%w: %w", ErrCheckpointKey, err)
		}
		return SignedCheckpoint{}, fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	c, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return SignedCheckpoint{}, err
	}
	sc := SignedCheckpoint{Checkpoint: c, Note: bytes.Clone(msg)}
	for _, s := range n.Sigs {
		sc.Signers = append(sc.Signers, s.Name)
	}
	return sc, nil
}

// checkpointText returns a signed note's body without checking any
// signature: what a FileSink reads back from its own directory.
func checkpointText(msg []byte) (Checkpoint, error) {
	if len(msg) > MaxCheckpointBytes {
		return Checkpoint{}, fmt.Errorf("%w: %d bytes, more than %d", ErrBadCheckpoint, len(msg), MaxCheckpointBytes)
	}
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return Checkpoint{}, fmt.Errorf("%w: no signature block", ErrBadCheckpoint)
	}
	return ParseCheckpoint(msg[:i+1])
}

// CheckpointFileName is the name of the file in a FileSink's directory
// that holds the newest checkpoint of the chain of prefix ("" means
// "audit"): "<prefix>.checkpoint".
func CheckpointFileName(prefix string) string {
	if prefix == "" {
		prefix = "audit"
	}
	return prefix + ".checkpoint"
}

// CheckpointNote is a signed checkpoint handed to Verify, with where it
// came from (for the report).
type CheckpointNote struct {
	// Source names where the note came from: a file's path, a database
	// row. It is only shown in problems.
	Source string `json:"source"`
	Note   []byte `json:"note"`
}

// ReadCheckpointFile reads a checkpoint note from a file, at most
// MaxCheckpointBytes; Source is the path.
func ReadCheckpointFile(path string) (CheckpointNote, error) {
	b, err := readBounded(path, MaxCheckpointBytes)
	if err != nil {
		return CheckpointNote{}, fmt.Errorf("audit: read checkpoint: %w", err)
	}
	return CheckpointNote{Source: path, Note: b}, nil
}

// ReadDirCheckpoint reads the checkpoint file of the chain of prefix (""
// means "audit") in dir, CheckpointFileName(prefix), as VerifyDir and a
// resuming FileSink read it: ok is false when there is none. A file
// larger than MaxCheckpointBytes is read only just past the bound, so
// that OpenCheckpoint and Verify report it as malformed; the error is for
// a file that cannot be read.
func ReadDirCheckpoint(dir, prefix string) (n CheckpointNote, ok bool, err error) {
	path := filepath.Join(dir, CheckpointFileName(prefix))
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return CheckpointNote{}, false, nil
	}
	if err != nil {
		return CheckpointNote{}, false, fmt.Errorf("audit: read checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxCheckpointBytes+1))
	if err != nil {
		return CheckpointNote{}, false, fmt.Errorf("audit: read checkpoint %s: %w", path, err)
	}
	return CheckpointNote{Source: path, Note: b}, true, nil
}

// readBounded reads a file of at most max bytes.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}

// writeFileAtomic replaces dir/name with data: a temporary file, written
// and (with sync) fsynced, renamed over the old one, then the directory
// fsynced, so that a crash leaves either the old or the new content.
func writeFileAtomic(dir, name string, data []byte, sync bool) error {
	tmp, err := os.CreateTemp(dir, "."+name+".*.tmp")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if sync {
		if err := tmp.Sync(); err != nil {
			return err
		}
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	ok = true
	if sync {
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	d.Close()
	return err
}

// LoadSigner reads a checkpoint signing key from a file: one line, the
// signer key of golang.org/x/mod/sumdb/note ("PRIVATE+KEY+<name>+<hash>+<key>"),
// as note.GenerateKey makes it and "replay keygen" writes it. Keep the
// file readable by the gateway only (mode 0600). Errors never quote the
// file's content.
func LoadSigner(path string) (note.Signer, error) {
	b, err := readBounded(path, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint signer key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if strings.ContainsAny(key, "\n\r") || !strings.HasPrefix(key, "PRIVATE+KEY+") {
		return nil, fmt.Errorf("audit: checkpoint signer key %s: want one line PRIVATE+KEY+<name>+<hash>+<key> (replay keygen writes it)", path)
	}
	s, err := note.NewSigner(key)
	if err != nil {
		// note's errors do not quote the key either.
		return nil, fmt.Errorf("audit: checkpoint signer key %s: %w", path, err)
	}
	return s, nil
}

// LoadVerifiers reads checkpoint verifier keys from a file: one per line
// ("<name>+<hash>+<key>", as note.GenerateKey and "replay keygen" make
// them); blank lines and lines starting with # are skipped. Several keys
// let a verifier accept checkpoints across a key rotation.
func LoadVerifiers(path string) ([]note.Verifier, error) {
	b, err := readBounded(path, maxKeyFileBytes)
	if err != nil {
		return nil, fmt.Errorf("audit: checkpoint verifier key: %w", err)
	}
	var out []note.Verifier
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "PRIVATE+") {
			return nil, fmt.Errorf("audit: checkpoint verifier key %s:%d is a private signer key: give the verifier (public) key", path, i+1)
		}
		v, err := note.NewVerifier(line)
		if err != nil {
			return nil, fmt.Errorf("audit: checkpoint verifier key %s:%d: %w", path, i+1, err)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("audit: checkpoint verifier key %s: no key in the file", path)
	}
	return out, nil
}

// CheckpointWriter stores checkpoints outside a FileSink's directory,
// where whoever can change the files cannot change them: a database, an
// append-only bucket, a transparency log. pgsink.CheckpointStore is one.
// FileSink calls it from one goroutine at a time, newest checkpoint last;
// it may skip checkpoints superseded while a call was running. An error
// is logged and counted (FileStats.CheckpointWriterFailures), and the
// next checkpoint is offered as usual.
type CheckpointWriter interface {
	WriteCheckpoint(ctx context.Context, c SignedCheckpoint) error
}
