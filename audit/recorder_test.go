package audit_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

func TestNewBody(t *testing.T) {
	tests := []struct {
		name          string
		in            []byte
		size          int64
		limit         int
		wantText      string
		wantB64       bool
		wantTruncated bool
		wantSize      int64
	}{
		{"small text", []byte(`{"a":1}`), -1, 100, `{"a":1}`, false, false, 7},
		{"cut at the limit", []byte("abcdef"), -1, 4, "abcd", false, true, 6},
		{"already a prefix", []byte("abc"), 1000, 100, "abc", false, true, 1000},
		{"cut inside a character", []byte("aé"), -1, 2, "a", false, true, 3},
		{"binary", []byte{0xff, 0x00, 0xfe}, -1, 100, "", true, false, 3},
		{"default limit", []byte(strings.Repeat("x", audit.DefaultMaxBody+1)), -1, 0, strings.Repeat("x", audit.DefaultMaxBody), false, true, audit.DefaultMaxBody + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := audit.NewBody(tt.in, tt.size, tt.limit)
			if b.Text != tt.wantText || (b.Base64 != "") != tt.wantB64 || b.Truncated != tt.wantTruncated || b.Size != tt.wantSize {
				t.Fatalf("%+v", b)
			}
			if tt.wantB64 && string(b.Bytes()) != string(tt.in) {
				t.Fatalf("Bytes() = %q", b.Bytes())
			}
		})
	}
}

func TestFilterHeaderAndURL(t *testing.T) {
	h := http.Header{}
	for _, k := range []string{"Authorization", "X-Amz-Security-Token", "Cookie", "Set-Cookie", "Proxy-Authorization",
		"X-Amz-Server-Side-Encryption-Customer-Key", "X-Custom-Token", "X-Client-Secret"} {
		h.Set(k, "secret-value")
	}
	h.Set("Content-Type", "application/json")
	h.Set("X-Amz-Date", "20261125T220000Z")
	out := audit.FilterHeader(h)
	if len(out) != 2 || out.Get("Content-Type") == "" || out.Get("X-Amz-Date") == "" {
		t.Fatalf("filtered header %v", out)
	}
	if h.Get("Authorization") == "" {
		t.Fatal("FilterHeader modified its input")
	}
	u, _ := url.Parse("https://user:pw@s3.example/bucket/key?X-Amz-Signature=abc&X-Amz-Credential=AKID%2F&x-amz-security-token=t&versionId=3")
	got := audit.RedactURL(u)
	if got != "https://s3.example/bucket/key?versionId=3" {
		t.Fatalf("RedactURL = %s", got)
	}
}

func TestSessionFile(t *testing.T) {
	tests := []struct {
		id, want string
	}{
		{"ASIA123", "s-ASIA123.jsonl"},
		{"mcp_session-1", "s-mcp_session-1.jsonl"},
		{"../../etc/passwd", "h-"},
		{"a/b", "h-"},
		{"", "h-"},
		{strings.Repeat("a", 65), "h-"},
		{"..", "h-"},
	}
	for _, tt := range tests {
		got := audit.SessionFile(tt.id)
		if !strings.HasPrefix(got, tt.want) || strings.ContainsAny(got, `/\`) || strings.Contains(got, "..") {
			t.Errorf("SessionFile(%q) = %q", tt.id, got)
		}
	}
	if audit.SessionFile("a/b") == audit.SessionFile("a/c") {
		t.Error("distinct ids share a file")
	}
}

func exchange(i int, session string) *audit.Exchange {
	e := audittest.NewEvent(i)
	e.SessionID = session
	req := http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=..."}, "X-Amz-Date": {"20261125T220000Z"}}
	return &audit.Exchange{
		SessionID: session, CallID: e.CallID, Time: e.Time,
		Request:  audit.Message{Method: "GET", URL: "http://127.0.0.1/bucket/key?X-Amz-Signature=abc", Header: req, Body: audit.NewBody(nil, 0, 0)},
		Response: audit.Message{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: audit.NewBody([]byte(`{"SecretString":"***"}`), -1, 0)},
		Event:    e,
	}
}

func TestFileRecorder(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	r, err := audit.NewFileRecorder(audit.FileRecorderConfig{Dir: dir, MaxBody: 8, MaxSessionBytes: 8 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := r.Record(ctx, exchange(i, "sess/../1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Record(ctx, exchange(9, "other")); err != nil {
		t.Fatal(err)
	}
	xs, err := audit.LoadSession(dir, "sess/../1")
	if err != nil {
		t.Fatal(err)
	}
	if len(xs) != 3 || xs[2].CallID != "call-00000002" || xs[0].Event == nil || xs[0].Event.Decision.Rule != "deletes-need-approval" {
		t.Fatalf("loaded %+v", xs)
	}
	x := xs[0]
	if x.Request.Header.Get("Authorization") != "" || strings.Contains(x.Request.URL, "Signature") {
		t.Fatalf("credentials recorded: %+v", x.Request)
	}
	if x.Response.Body.Text != `{"Secret` || !x.Response.Body.Truncated || x.Response.Body.Size != 22 {
		t.Fatalf("response body not bounded: %+v", x.Response.Body)
	}
	sessions, err := audit.Sessions(dir)
	if err != nil || len(sessions) != 2 || sessions[0].ID != "sess/../1" || sessions[0].Exchanges != 3 {
		t.Fatalf("sessions %+v %v", sessions, err)
	}
	// The per-session bound.
	var full error
	for i := range 100 {
		if err := r.Record(ctx, exchange(i, "big")); err != nil {
			full = err
			break
		}
	}
	if !errors.Is(full, audit.ErrSessionFull) {
		t.Fatalf("no ErrSessionFull: %v", full)
	}
	if fi, _ := os.Stat(filepath.Join(dir, audit.SessionFile("big"))); fi.Size() > 8<<10 {
		t.Fatalf("session file grew to %d", fi.Size())
	}
	r.Close()
	if err := r.Record(ctx, exchange(1, "x")); !errors.Is(err, audit.ErrClosed) {
		t.Fatalf("Record after Close = %v", err)
	}
}
