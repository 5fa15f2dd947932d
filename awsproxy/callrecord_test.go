package awsproxy_test

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy"
)

// TestClientAbortedDownloadRecorded: a client that goes away in the middle
// of a download leaves a call record (and audit event) with an error, not
// a clean 200.
func TestClientAbortedDownloadRecorded(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20) // 16 MiB
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", "16777216")
		for off := 0; off < len(big); off += 64 << 10 {
			if _, err := w.Write(big[off : off+64<<10]); err != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	h := newHarness(t, harnessOptions{Upstreams: map[string]string{"s3": up.URL}})
	resp, err := h.Gateway.Client().Do(h.signed(t, reqSpec{path: "/b/big"}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 100<<10)); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // gone, with most of the body unread
	h.Gateway.CloseClientConnections()
	calls := waitForCalls(t, h, 1)
	if len(calls) != 1 {
		t.Fatalf("gateway finished %d calls", len(calls))
	}
	c := calls[0]
	ev := awsproxy.AuditEvent(c, audit.PhaseCompletion)
	if c.Err == nil || ev.Response.ErrorCode != awsproxy.CodeClientDisconnected || c.BytesOut >= int64(len(big)) || ev.Response.Refused {
		t.Fatalf("aborted download recorded as status %d, %d bytes out, err %v, audit %+v", c.Status, c.BytesOut, c.Err, ev.Response)
	}
}

// TestUploadResetByUpstreamRecorded: an upload the upstream cuts off by a
// reset is recorded as a connection that broke during the call, not as an
// upstream that could not be reached.
func TestUploadResetByUpstreamRecorded(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.CopyN(io.Discard, r.Body, 64<<10)
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		conn.Close()
	}))
	t.Cleanup(up.Close)
	h := newHarness(t, harnessOptions{Upstreams: map[string]string{"s3": up.URL}})
	body := bytes.Repeat([]byte("x"), 8<<20)
	r := h.signed(t, reqSpec{method: "PUT", path: "/b/upload", body: body, hash: awsproxy.PayloadUnsigned})
	resp, _ := h.do(t, r)
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	calls := waitForCalls(t, h, 1)
	if len(calls) != 1 {
		t.Fatalf("gateway finished %d calls", len(calls))
	}
	c := calls[0]
	if c.Err == nil || strings.Contains(c.Err.Message, "could not be reached") || !strings.Contains(c.Err.Message, "broke during the call") || !c.Forwarded {
		t.Fatalf("upload reset recorded as %v (forwarded %v)", c.Err, c.Forwarded)
	}
	// A closed port is still "could not be reached".
	h2 := newHarness(t, harnessOptions{Upstreams: map[string]string{"s3": closedUpstreamURL(t)}})
	h2.do(t, h2.signed(t, reqSpec{method: "PUT", path: "/b/upload", body: []byte("x"), hash: awsproxy.PayloadUnsigned}))
	if calls := waitForCalls(t, h2, 1); len(calls) != 1 || calls[0].Err == nil || !strings.Contains(calls[0].Err.Message, "could not be reached") {
		t.Fatalf("refused connection recorded as %+v", calls)
	}
}
