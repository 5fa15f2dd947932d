package approval

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// CSRFTokenTTL is how long an HTML form's anti-CSRF token stays valid.
const CSRFTokenTTL = time.Hour

// csrfToken returns a token binding the viewer and an expiry:
// "<unix expiry>.<base64url HMAC-SHA256(key, purpose, viewer, expiry)>".
func (h *Handler) csrfToken(p identity.Principal, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return e + "." + base64.RawURLEncoding.EncodeToString(h.csrfMAC(p, e))
}

func (h *Handler) csrfMAC(p identity.Principal, exp string) []byte {
	m := hmac.New(sha256.New, h.key)
	m.Write([]byte("gatehouse approval ui\x00" + p.String() + "\x00" + exp))
	return m.Sum(nil)
}

// csrfValid checks a token from a form: well formed, not expired, and
// minted for this viewer with this handler's key.
func (h *Handler) csrfValid(p identity.Principal, tok string) bool {
	e, mac, ok := strings.Cut(tok, ".")
	if !ok {
		return false
	}
	exp, err := strconv.ParseInt(e, 10, 64)
	if err != nil || !h.b.now().Before(time.Unix(exp, 0)) {
		return false
	}
	// Decoding skips CR and LF; a token must be exactly the canonical
	// encoding of its MAC.
	got, err := base64.RawURLEncoding.DecodeString(mac)
	return err == nil && base64.RawURLEncoding.EncodeToString(got) == mac && hmac.Equal(got, h.csrfMAC(p, e))
}

type uiRequirement struct {
	Requirement
	Have int
}

type uiRecord struct {
	RecordView
	Reqs    []uiRequirement
	Summary [][2]string
}

type uiPage struct {
	Viewer  string
	List    bool
	Records []uiRecord
	CSRF    string
	Error   string
}

func (h *Handler) uiRecord(p identity.Principal, rec Record) uiRecord {
	u := uiRecord{RecordView: h.view(p, rec)}
	for _, q := range rec.Requirements {
		have := 0
		for _, v := range rec.Votes {
			if v.Approve && slices.ContainsFunc(v.Groups, func(g string) bool { return slices.Contains(q.Groups, g) }) {
				have++
			}
		}
		u.Reqs = append(u.Reqs, uiRequirement{Requirement: q, Have: have})
	}
	for k, v := range rec.Summary {
		u.Summary = append(u.Summary, [2]string{k, v})
	}
	slices.SortFunc(u.Summary, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	return u
}

// render writes an HTML page with headers that keep it out of frames and
// caches, forbid scripts and keep the approval URL out of Referer headers.
func (h *Handler) render(w http.ResponseWriter, status int, page uiPage) {
	var buf bytes.Buffer
	if err := h.tmpl.Execute(&buf, page); err != nil {
		http.Error(w, "approval: page failed to render", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (h *Handler) page(p identity.Principal) uiPage {
	return uiPage{Viewer: p.String(), CSRF: h.csrfToken(p, h.b.now().Add(CSRFTokenTTL))}
}

func (h *Handler) uiList(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	page := h.page(p)
	page.List = true
	views, err := h.list(r, p)
	if err != nil {
		status, _, msg := h.classify(err)
		page.Error = msg
		h.render(w, status, page)
		return
	}
	for _, v := range views {
		page.Records = append(page.Records, h.uiRecord(p, v.Record))
	}
	h.render(w, http.StatusOK, page)
}

func (h *Handler) uiGet(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	page := h.page(p)
	rec, err := h.lookup(r, p)
	if err != nil {
		status, _, msg := h.classify(err)
		page.Error = msg
		h.render(w, status, page)
		return
	}
	page.Records = []uiRecord{h.uiRecord(p, rec)}
	h.render(w, http.StatusOK, page)
}

func (h *Handler) uiVote(w http.ResponseWriter, r *http.Request) {
	p, _ := identity.PrincipalFrom(r.Context())
	page := h.page(p)
	verb := r.PathValue("verb")
	if verb != "approve" && verb != "deny" {
		page.Error = "no such operation"
		h.render(w, http.StatusNotFound, page)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		page.Error = "the form could not be read"
		h.render(w, http.StatusBadRequest, page)
		return
	}
	if !h.csrfValid(p, r.PostForm.Get("csrf")) {
		page.Error = "the form expired or did not come from this page: reload and try again"
		h.render(w, http.StatusForbidden, page)
		return
	}
	rec, err := h.lookup(r, p)
	if err == nil {
		rec, err = h.cast(r, rec.ID, p, verb, r.PostForm.Get("reason"))
	}
	if err != nil {
		status, _, msg := h.classify(err)
		page.Error = msg
		if rec.ID != "" {
			page.Records = []uiRecord{h.uiRecord(p, rec)}
		}
		h.render(w, status, page)
		return
	}
	// Relative to <mount>/ui/<id>/<verb>: back to <mount>/ui/<id>.
	w.Header().Set("Location", "../"+rec.ID)
	w.WriteHeader(http.StatusSeeOther)
}

var uiTemplate = template.Must(template.New("ui").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}).Parse(uiHTML))

// uiHTML is the whole page: no scripts, no external assets. Forms post
// to "<id>/<verb>", relative to <mount>/ui/ and <mount>/ui/<id> alike.
const uiHTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gatehouse approvals</title>
<style>
body{font:15px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#222}
h1{font-size:1.4rem} .rec{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}
.state{font-weight:bold;text-transform:uppercase} .err{background:#fde;border:1px solid #c88;padding:.6rem;border-radius:4px}
table{border-collapse:collapse} td,th{padding:.15rem .6rem .15rem 0;text-align:left;vertical-align:top}
code{font-size:.9em;word-break:break-all} pre{white-space:pre-wrap;word-break:break-all;max-height:30rem;overflow:auto;background:#f6f6f6;padding:.5rem} form{display:inline-block;margin:.5rem .5rem 0 0}
input[type=text]{width:20rem}
</style></head><body>
<h1>gatehouse approvals</h1>
<p>Signed in as <code>{{.Viewer}}</code>{{if not .List}} &middot; <a href="./">all pending approvals</a>{{end}}</p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if and .List (not .Records)}}<p>No pending approvals you can see.</p>{{end}}
{{range .Records}}<section class="rec">
<h2><a href="{{.ID}}"><code>{{.Action}}</code></a> <span class="state">{{.State}}</span></h2>
<table>
<tr><th>Requester</th><td><code>{{.Principal}}</code>{{with .Requester.Email}} ({{.}}){{end}}</td></tr>
{{if .Resources}}<tr><th>Resources</th><td>{{range .Resources}}<code>{{.}}</code><br>{{end}}</td></tr>{{end}}
{{with .Detail}}{{template "detail" .}}{{else}}{{range .Summary}}<tr><th>{{index . 0}}</th><td><code>{{index . 1}}</code></td></tr>{{end}}{{end}}
{{with .Policy}}<tr><th>Policy revision</th><td><code>{{.}}</code></td></tr>{{end}}
{{range .Reqs}}<tr><th>Rule {{.Rule}}</th><td>{{.Reason}}<br>{{.Have}} of {{.MinApprovals}} approvals from {{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</td></tr>{{end}}
<tr><th>Requested</th><td>{{ts .CreatedAt}}, expires {{ts .ExpiresAt}}</td></tr>
{{if not .DecidedAt.IsZero}}<tr><th>Decided</th><td>{{ts .DecidedAt}}{{with .Note}}: {{.}}{{end}}</td></tr>{{end}}
{{range .Votes}}<tr><th>{{if .Approve}}Approved by{{else}}Denied by{{end}}</th><td><code>{{.Approver}}</code> at {{ts .At}}{{with .Reason}}: {{.}}{{end}}</td></tr>{{end}}
<tr><th>Approval id</th><td><code>{{.ID}}</code></td></tr>
</table>
{{if .CanVote}}<form method="post" action="{{.ID}}/approve"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="text" name="reason" maxlength="1024" placeholder="reason (optional)"> <button type="submit">Approve</button></form>
<form method="post" action="{{.ID}}/deny"><input type="hidden" name="csrf" value="{{$.CSRF}}">
<input type="text" name="reason" maxlength="1024" placeholder="reason (optional)"> <button type="submit">Deny</button></form>{{end}}
</section>{{end}}
</body></html>
{{define "detail"}}<tr><th>Request</th><td><code>{{.Method}} {{.Path}}{{with .Query}}?{{.}}{{end}}</code></td></tr>
<tr><th>Operation</th><td><code>{{.Service}} {{.Operation}}</code> in <code>{{.Region}}</code></td></tr>
{{range $k, $v := .Params}}<tr><th>{{$k}}</th><td><code>{{$v}}</code></td></tr>{{end}}
<tr><th>Headers</th><td>{{range .Headers}}<code>{{.Name}}: {{.Value}}</code>{{if .Digest}} (secret, digest shown){{end}}<br>{{else}}none that change what AWS does{{end}}</td></tr>
{{with .Body}}<tr><th>Body</th><td>{{if ge .Size 0}}{{.Size}} bytes{{else}}length unknown{{end}}{{with .ContentType}}, <code>{{.}}</code>{{end}}, SHA-256 <code>{{.SHA256}}</code>{{if .Masked}}; secrets masked{{end}}{{with .PreviewNote}}<br>{{.}}{{end}}
{{with .Preview}}<pre>{{.}}</pre>{{end}}</td></tr>{{end}}{{end}}
`
