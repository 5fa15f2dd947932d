package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

const xss = `<script>alert("x")</script><img src=http://evil.example/x.png>`

// record writes a session of three calls: an approved delete whose
// response was masked, a denied call with a hostile body, and a call
// with a binary response.
func record(t *testing.T) (dir string, session string) {
	t.Helper()
	dir, session = t.TempDir(), "ASIAEXAMPLE123"
	r, err := audit.NewFileRecorder(audit.FileRecorderConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 3 {
		e := audittest.NewEvent(i)
		e.SessionID = session
		resp := audit.NewBody([]byte(`{"SecretString":"[masked]","Name":"db"}`), -1, 0)
		switch i {
		case 1:
			e.Decision = &audit.DecisionInfo{Effect: "deny", Rule: "no-iam", Reason: "agents never touch IAM " + xss}
			e.Approval = nil
			e.Masks = nil
			e.Request.Action = "iam:CreateUser"
			e.Response = &audit.ResponseInfo{Status: 403, Refused: true, ErrorCode: "AccessDenied", ErrorMessage: "denied by rule no-iam"}
			resp = audit.NewBody([]byte(xss), -1, 0)
		case 2:
			e.Decision = &audit.DecisionInfo{Effect: "allow", Rule: "agents-read"}
			e.Approval = nil
			e.Request.Action = "s3:GetObject"
			resp = audit.NewBody([]byte{0xff, 0xfe, 0x00, 0x01}, -1, 0)
		}
		x := &audit.Exchange{
			SessionID: session, CallID: e.CallID, Time: e.Time.Add(time.Duration(i) * time.Second),
			Request: audit.Message{Method: "POST", URL: "http://127.0.0.1:9/?X-Amz-Signature=abc&Action=Do",
				Header: http.Header{"Authorization": {"AWS4-HMAC-SHA256 secret"}, "X-Amz-Date": {"20261125T220000Z"}},
				Body:   audit.NewBody([]byte("Action=Do"), -1, 0)},
			Response: audit.Message{Status: e.Response.Status, Header: http.Header{"Content-Type": {"application/json"}}, Body: resp},
			Event:    e,
		}
		if err := r.Record(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	return dir, session
}

func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestTimeline(t *testing.T) {
	dir, session := record(t)
	code, out, stderr := runCmd(t, "timeline", dir, session)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"session ASIAEXAMPLE123: 3 call(s)",
		"[1] +0s", "OK", "s3:DeleteObject",
		"decision   approve by rule deletes-need-approval: deleting reports needs a human",
		"approval   APPR0 consumed; approved by https://issuer.example#alice",
		"masked     SecretString (redact, 1 value(s), rule secrets)",
		`body       {"SecretString":"[masked]","Name":"db"}`,
		"[2] +1.001s", "REFUSED", "iam:CreateUser", "decision   deny by rule no-iam",
		"response   403 in 0s, 0 B in / 0 B out, refused by the gateway, AccessDenied: denied by rule no-iam",
		"[3] +2.002s", "(4 bytes of binary data)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret") && strings.Contains(out, "AWS4-HMAC") {
		t.Error("timeline shows the Authorization header")
	}
}

func TestHTML(t *testing.T) {
	dir, session := record(t)
	outFile := filepath.Join(t.TempDir(), "session.html")
	if code, _, stderr := runCmd(t, "html", dir, session, "-o", outFile); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	raw, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	xs, _ := audit.LoadSession(dir, session)
	type found struct {
		callID, decision, approval, body, class string
	}
	var sections []found
	var scripts, external []string
	var walk func(n *html.Node, cur *found)
	walk = func(n *html.Node, cur *found) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "iframe", "object", "embed", "img":
				scripts = append(scripts, n.Data)
			}
			for _, a := range n.Attr {
				if a.Key == "src" || a.Key == "href" || strings.HasPrefix(a.Key, "on") {
					external = append(external, n.Data+" "+a.Key+"="+a.Val)
				}
			}
			if n.Data == "section" && hasClass(n, "call") {
				sections = append(sections, found{callID: attr(n, "data-call-id"), class: attr(n, "class")})
				cur = &sections[len(sections)-1]
			}
			if cur != nil {
				switch {
				case n.Data == "dd" && hasClass(n, "decision"):
					cur.decision = text(n)
				case n.Data == "dd" && hasClass(n, "approval"):
					cur.approval = text(n)
				case n.Data == "pre" && hasClass(n, "response-body"):
					cur.body = text(n)
				}
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, cur)
		}
	}
	walk(doc, nil)
	if len(scripts) > 0 || len(external) > 0 {
		t.Fatalf("page is not self-contained or not inert: elements %v, attributes %v", scripts, external)
	}
	if len(sections) != len(xs) {
		t.Fatalf("%d call sections, %d recorded calls", len(sections), len(xs))
	}
	for i, x := range xs {
		s := sections[i]
		e := x.Event
		if s.callID != x.CallID || !strings.Contains(s.class, e.Decision.Effect) {
			t.Errorf("call %d: section %+v, want call %s with effect %s", i+1, s, x.CallID, e.Decision.Effect)
		}
		if !strings.Contains(s.decision, e.Decision.Effect+" by rule "+e.Decision.Rule) || !strings.Contains(s.decision, e.Decision.Reason) {
			t.Errorf("call %d: decision %q", i+1, s.decision)
		}
		if e.Approval != nil && !strings.Contains(s.approval, e.Approval.ID+" "+e.Approval.State) {
			t.Errorf("call %d: approval %q", i+1, s.approval)
		}
		if e.Approval == nil && s.approval != "not needed" {
			t.Errorf("call %d: approval %q", i+1, s.approval)
		}
		if x.Response.Body.Text != "" && s.body != x.Response.Body.Text {
			t.Errorf("call %d: response body %q, want the masked %q", i+1, s.body, x.Response.Body.Text)
		}
	}
	if !strings.Contains(sections[1].body, `<script>alert("x")</script>`) {
		t.Errorf("the hostile body must show as text: %q", sections[1].body)
	}
	if bytes.Contains(raw, []byte("AWS4-HMAC-SHA256 secret")) || bytes.Contains(raw, []byte("X-Amz-Signature")) {
		t.Error("page shows recorded credentials")
	}
}

func hasClass(n *html.Node, c string) bool {
	for _, f := range strings.Fields(attr(n, "class")) {
		if f == c {
			return true
		}
	}
	return false
}

func attr(n *html.Node, k string) string {
	for _, a := range n.Attr {
		if a.Key == k {
			return a.Val
		}
	}
	return ""
}

func text(n *html.Node) string {
	var b strings.Builder
	var f func(*html.Node)
	f = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			f(c)
		}
	}
	f(n)
	return b.String()
}

func TestSessions(t *testing.T) {
	dir, _ := record(t)
	code, out, _ := runCmd(t, "sessions", dir)
	if code != 0 || !strings.Contains(out, "ASIAEXAMPLE123") || !strings.Contains(out, "3 call(s)") {
		t.Fatalf("exit %d: %s", code, out)
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, MaxBytes: 6 << 10})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
	head := s.Head()
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	anchor := fmt.Sprintf("%d:%s", head.Seq, head.Hash)

	code, out, stderr := runCmd(t, "verify", dir)
	if code != 0 || !strings.Contains(out, "OK: ") || !strings.Contains(out, "12 events") {
		t.Fatalf("intact chain: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, _ := runCmd(t, append([]string{"verify", "-head", anchor}, files...)...); code != 0 {
		t.Fatalf("intact chain with anchor: exit %d\n%s", code, out)
	}
	code, out, _ = runCmd(t, "verify", "-json", dir)
	var rep audit.Report
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil || rep.Events != 12 {
		t.Fatalf("-json: exit %d\n%s", code, out)
	}

	// Swap two lines of the second file.
	b, _ := os.ReadFile(files[1])
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines[1], lines[2] = lines[2], lines[1]
	os.WriteFile(files[1], bytes.Join(lines, nil), 0o600)
	code, out, _ = runCmd(t, "verify", dir)
	if code != 1 || !strings.Contains(out, "PROBLEM "+files[1]+":3: reordered") || !strings.Contains(out, "FAILED") {
		t.Fatalf("tampered chain: exit %d\n%s", code, out)
	}

	for _, args := range [][]string{{"verify"}, {"verify", "-head", "x", dir}, {"nope"}, {"timeline", dir}, {}} {
		if code, _, _ := runCmd(t, args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := runCmd(t, "timeline", dir, "no-such-session"); code != 1 {
		t.Errorf("missing session: exit %d, want 1", code)
	}
}
