package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Defaults of recording.
const (
	DefaultMaxBody         = 64 << 10
	DefaultMaxSessionBytes = 64 << 20
	maxExchangeLine        = 16 << 20
)

// Exchange is one recorded request/response pair of a session, after
// masking: what replay shows. Bodies are truncated at a bound; headers
// that carry credentials are removed.
type Exchange struct {
	SessionID string    `json:"session_id"`
	CallID    string    `json:"call_id,omitempty"` // Event.CallID of the call
	Time      time.Time `json:"time"`
	Request   Message   `json:"request"`
	Response  Message   `json:"response"`
	// Event is the call's completion event, so that a recording replays
	// with its decision and approval on its own.
	Event *Event `json:"event,omitempty"`
}

// Message is a recorded request (Method, URL) or response (Status).
type Message struct {
	Method string      `json:"method,omitempty"`
	URL    string      `json:"url,omitempty"`
	Status int         `json:"status,omitempty"`
	Header http.Header `json:"header,omitempty"`
	Body   Body        `json:"body"`
}

// Body is a recorded body: Text when it is valid UTF-8, else Base64, cut
// to a bound.
type Body struct {
	Text   string `json:"text,omitempty"`
	Base64 string `json:"base64,omitempty"`
	// Size is the body's full size in bytes, -1 if unknown.
	Size int64 `json:"size"`
	// Truncated reports that only the first bytes were kept.
	Truncated bool `json:"truncated,omitempty"`
	// Withheld, when set, says why the content was not recorded at all
	// (it could not be checked for secrets: binary, compressed, cut, or
	// in a format the masker does not read); Size still tells its length.
	Withheld string `json:"withheld,omitempty"`
}

// WithheldBody records only the size of a body whose content is not
// recorded, and why.
func WithheldBody(size int64, why string) Body {
	return Body{Size: size, Withheld: why}
}

// NewBody records the first limit bytes of b (limit <= 0 means
// DefaultMaxBody). size is the body's full size, or -1 for len(b); pass a
// larger size when b is already a truncated prefix.
func NewBody(b []byte, size int64, limit int) Body {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if size < int64(len(b)) {
		size = int64(len(b))
	}
	out := Body{Size: size, Truncated: size > int64(len(b))}
	if len(b) > limit {
		b = b[:limit]
		out.Truncated = true
	}
	if utf8.Valid(b) {
		out.Text = string(b)
	} else if t, ok := trimUTF8(b); ok && out.Truncated {
		out.Text = t // a cut in the middle of a character
	} else {
		out.Base64 = base64.StdEncoding.EncodeToString(b)
	}
	return out
}

func trimUTF8(b []byte) (string, bool) {
	for i := 0; i < utf8.UTFMax && len(b) > 0; i++ {
		b = b[:len(b)-1]
		if utf8.Valid(b) {
			return string(b), true
		}
	}
	return "", false
}

// Bytes returns the recorded bytes.
func (b Body) Bytes() []byte {
	if b.Base64 != "" {
		out, _ := base64.StdEncoding.DecodeString(b.Base64)
		return out
	}
	return []byte(b.Text)
}

// bound cuts an already recorded body to limit bytes.
func (b Body) bound(limit int) Body {
	raw := b.Bytes()
	if len(raw) <= limit {
		return b
	}
	nb := NewBody(raw[:limit], b.Size, limit)
	nb.Truncated = true
	return nb
}

// secretHeaders are never recorded.
var secretHeaders = []string{
	"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie",
	"X-Amz-Security-Token", "X-Amz-Server-Side-Encryption-Customer-Key",
	"X-Amz-Copy-Source-Server-Side-Encryption-Customer-Key",
}

// secretQuery are the query parameters that are never recorded: the
// presigned-URL credentials, and the tokens and assertions of STS's
// unsigned calls sent as GET.
var secretQuery = []string{"X-Amz-Signature", "X-Amz-Security-Token", "X-Amz-Credential", "WebIdentityToken", "SAMLAssertion"}

// FilterHeader returns a copy of h without the headers that carry
// credentials (Authorization, X-Amz-Security-Token, cookies, SSE-C keys).
func FilterHeader(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	out := h.Clone()
	for _, k := range secretHeaders {
		delete(out, k)
	}
	for k := range out {
		if strings.Contains(strings.ToLower(k), "token") || strings.Contains(strings.ToLower(k), "secret") {
			delete(out, k)
		}
	}
	return out
}

// RedactURL returns u as a string without presigned-URL credentials
// (X-Amz-Signature, X-Amz-Security-Token, X-Amz-Credential), STS tokens
// and assertions (WebIdentityToken, SAMLAssertion) and user information.
func RedactURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	c := *u
	c.User = nil
	if c.RawQuery != "" {
		q := c.Query()
		for k := range q {
			if slices.ContainsFunc(secretQuery, func(s string) bool { return strings.EqualFold(s, k) }) {
				q.Del(k)
			}
		}
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// Recorder stores the exchanges of sessions. Contract: Record is safe for
// concurrent use, neither modifies nor retains x, and returns an error when
// the exchange was not stored (a recording failure does not refuse a call:
// the audit event is the record of truth; count and report it).
type Recorder interface {
	Record(ctx context.Context, x *Exchange) error
}

// ErrSessionFull is returned by FileRecorder.Record once a session's file
// reached MaxSessionBytes.
var ErrSessionFull = errors.New("audit: session recording is full")

// FileRecorderConfig configures a FileRecorder.
type FileRecorderConfig struct {
	// Dir holds one JSON Lines file per session; created (0700) if
	// missing. Required.
	Dir string
	// MaxBody bounds each recorded body again (the recorder does not
	// trust its callers to); default DefaultMaxBody.
	MaxBody int
	// MaxSessionBytes bounds one session's file; past it Record returns
	// ErrSessionFull. Default DefaultMaxSessionBytes.
	MaxSessionBytes int64
	// Sync calls fsync after every exchange.
	Sync bool
}

// FileRecorder is the default Recorder: one JSON Lines file per session
// in a directory, named by SessionFile.
type FileRecorder struct {
	cfg    FileRecorderConfig
	mu     sync.Mutex
	closed bool
}

// NewFileRecorder validates cfg and creates the directory.
func NewFileRecorder(cfg FileRecorderConfig) (*FileRecorder, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit: FileRecorderConfig.Dir is required")
	}
	if cfg.MaxBody < 0 || cfg.MaxSessionBytes < 0 {
		return nil, errors.New("audit: FileRecorderConfig bounds must not be negative")
	}
	if cfg.MaxBody == 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.MaxSessionBytes == 0 {
		cfg.MaxSessionBytes = DefaultMaxSessionBytes
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: FileRecorderConfig.Dir: %w", err)
	}
	return &FileRecorder{cfg: cfg}, nil
}

var plainSession = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// SessionFile returns the file name of a session: "s-<id>.jsonl" for ids
// of up to 64 letters, digits, '-' and '_', else "h-<hex SHA-256 of the
// id, 40 digits>.jsonl". It never contains a path separator or "..".
func SessionFile(id string) string {
	if plainSession.MatchString(id) {
		return "s-" + id + ".jsonl"
	}
	sum := sha256.Sum256([]byte(id))
	return "h-" + hex.EncodeToString(sum[:20]) + ".jsonl"
}

// Record implements Recorder.
func (r *FileRecorder) Record(_ context.Context, x *Exchange) error {
	if x == nil || x.SessionID == "" {
		return errors.New("audit: record: Exchange.SessionID is required")
	}
	c := *x
	c.Time = c.Time.UTC()
	c.Request.Header = FilterHeader(c.Request.Header)
	c.Response.Header = FilterHeader(c.Response.Header)
	c.Request.Body = c.Request.Body.bound(r.cfg.MaxBody)
	c.Response.Body = c.Response.Body.bound(r.cfg.MaxBody)
	if u, err := url.Parse(c.Request.URL); err == nil {
		c.Request.URL = RedactURL(u)
	} else {
		c.Request.URL = ""
	}
	line, err := json.Marshal(&c)
	if err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	line = append(line, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	path := filepath.Join(r.cfg.Dir, SessionFile(x.SessionID))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	if fi.Size()+int64(len(line)) > r.cfg.MaxSessionBytes {
		return fmt.Errorf("%w: session %q reached %d bytes", ErrSessionFull, x.SessionID, fi.Size())
	}
	if _, err := f.Write(line); err != nil {
		return fmt.Errorf("audit: record: %w", err)
	}
	if r.cfg.Sync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("audit: record: %w", err)
		}
	}
	return nil
}

// Close makes later Records fail with ErrClosed.
func (r *FileRecorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	return nil
}

// LoadSession reads the exchanges of session id from dir, in recording
// order. Lines longer than 16 MiB or not JSON are an error.
func LoadSession(dir, id string) ([]Exchange, error) {
	f, err := os.Open(filepath.Join(dir, SessionFile(id)))
	if err != nil {
		return nil, fmt.Errorf("audit: load session %q: %w", id, err)
	}
	defer f.Close()
	xs, err := readExchanges(f)
	if err != nil {
		return nil, fmt.Errorf("audit: load session %q: %w", id, err)
	}
	return xs, nil
}

func readExchanges(r io.Reader) ([]Exchange, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxExchangeLine)
	var xs []Exchange
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var x Exchange
		if err := json.Unmarshal(line, &x); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		xs = append(xs, x)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return xs, nil
}

// SessionSummary describes one recorded session.
type SessionSummary struct {
	ID        string
	File      string
	Exchanges int
	First     time.Time
	Last      time.Time
}

// Sessions lists the sessions recorded in dir, by time of their first
// exchange.
func Sessions(dir string) ([]SessionSummary, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: sessions: %w", err)
	}
	var out []SessionSummary
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".jsonl") || !(strings.HasPrefix(n, "s-") || strings.HasPrefix(n, "h-")) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, fmt.Errorf("audit: sessions: %w", err)
		}
		xs, err := readExchanges(f)
		f.Close()
		if err != nil || len(xs) == 0 {
			continue
		}
		out = append(out, SessionSummary{ID: xs[0].SessionID, File: n, Exchanges: len(xs), First: xs[0].Time, Last: xs[len(xs)-1].Time})
	}
	slices.SortFunc(out, func(a, b SessionSummary) int { return a.First.Compare(b.First) })
	return out, nil
}
