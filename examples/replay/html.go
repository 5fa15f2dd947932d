package main

import (
	"html/template"
	"io"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
)

// page is the whole HTML document: inline CSS, no scripts, no external
// assets, every value escaped by html/template.
const page = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>gatehouse session {{.Session}}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #1d2329; background: #fafbfc; }
h1 { font-size: 1.3rem; margin-bottom: .2rem; }
.meta { color: #57606a; margin-bottom: 1.5rem; }
.call { background: #fff; border: 1px solid #d0d7de; border-left: 6px solid #8c959f; border-radius: 6px; padding: .8rem 1rem; margin: 0 0 1rem; }
.call.allow { border-left-color: #1a7f37; }
.call.deny { border-left-color: #cf222e; }
.call.approve { border-left-color: #9a6700; }
.call h2 { font-size: 1rem; margin: 0 0 .5rem; font-family: ui-monospace, monospace; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 1rem; font-size: .8rem; background: #eaeef2; margin-right: .3rem; }
.badge.ok { background: #dafbe1; } .badge.refused, .badge.error { background: #ffebe9; }
dl { display: grid; grid-template-columns: 8rem 1fr; gap: .15rem .8rem; margin: 0; }
dt { color: #57606a; } dd { margin: 0; overflow-wrap: anywhere; }
pre { background: #f6f8fa; padding: .5rem; border-radius: 4px; overflow-x: auto; white-space: pre-wrap; overflow-wrap: anywhere; margin: .2rem 0 0; }
details { margin-top: .5rem; } summary { cursor: pointer; color: #0969da; }
</style>
</head>
<body>
<h1>Session <code>{{.Session}}</code></h1>
<p class="meta">{{len .Calls}} call(s){{if .Calls}}, {{fmtTime .First}} to {{fmtTime .Last}}{{end}}. Responses are shown after masking; credentials were never recorded.</p>
<main>
{{range .Calls}}<section class="call {{.Effect}}" id="call-{{.N}}" data-call-id="{{.CallID}}">
<h2>#{{.N}} <span class="badge {{.Outcome}}">{{.Outcome}}</span>{{.Action}} <small>{{.Method}} {{.URL}}</small></h2>
<dl>
<dt>time</dt><dd>{{fmtTime .Time}} (+{{.Offset}})</dd>
<dt>call id</dt><dd class="call-id">{{.CallID}}</dd>
{{if .Principal}}<dt>principal</dt><dd class="principal">{{.Principal}}{{if .Role}} (role {{.Role}}){{end}}</dd>{{end}}
<dt>decision</dt><dd class="decision">{{if .Decision}}{{.Decision}}{{else}}none recorded{{end}}</dd>
{{if .Matched}}<dt>matched rules</dt><dd>{{range $i, $m := .Matched}}{{if $i}}; {{end}}{{$m}}{{end}}</dd>{{end}}
<dt>approval</dt><dd class="approval">{{if .Approval}}{{.Approval}}{{else}}not needed{{end}}</dd>
<dt>response</dt><dd class="response">{{.Response}}</dd>
{{if .AWSID}}<dt>AWS request id</dt><dd>{{.AWSID}}</dd>{{end}}
{{if .Masks}}<dt>masked</dt><dd class="masks">{{range $i, $m := .Masks}}{{if $i}}; {{end}}{{$m}}{{end}}</dd>{{end}}
</dl>
<details open><summary>masked response body</summary><pre class="response-body">{{body .RespBody}}</pre></details>
<details><summary>request</summary><pre>{{range .ReqHead}}{{.}}
{{end}}
{{body .ReqBody}}</pre></details>
<details><summary>response headers</summary><pre>{{range .RespHead}}{{.}}
{{end}}</pre></details>
</section>
{{end}}</main>
</body>
</html>
`

func renderHTML(w io.Writer, session string, xs []audit.Exchange) error {
	t, err := template.New("page").Funcs(template.FuncMap{
		"fmtTime": func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) },
		"body":    bodyText,
	}).Parse(page)
	if err != nil {
		return err
	}
	cs := calls(xs)
	data := struct {
		Session     string
		Calls       []call
		First, Last time.Time
	}{Session: session, Calls: cs}
	if len(cs) > 0 {
		data.First, data.Last = cs[0].Time, cs[len(cs)-1].Time
	}
	return t.Execute(w, data)
}
