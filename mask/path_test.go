package mask

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/mask/maskpath"
)

// TestPathJSONAndXML: one maskpath path masks the same values in a JSON
// document and in its XML equivalent (root element = top-level value,
// repeated elements = array).
func TestPathJSONAndXML(t *testing.T) {
	tests := []struct {
		name, path      string
		json, wantJSON  string
		xml, wantXML    string
		strategy        Strategy
		wantCount       int
		wantUnchangedOK bool
	}{
		{name: "nested member", path: "aws.secret_access_key",
			json: `{"aws":{"secret_access_key":"S","region":"eu"}}`, wantJSON: `{"aws":{"secret_access_key":"****","region":"eu"}}`,
			xml: `<c><aws><secret_access_key>S</secret_access_key><region>eu</region></aws></c>`, wantXML: `<c><aws><secret_access_key>****</secret_access_key><region>eu</region></aws></c>`, wantCount: 1},
		{name: "any depth, through arrays", path: "aws.secret_access_key",
			json: `{"profiles":[{"aws":{"secret_access_key":"A"}},{"aws":{"secret_access_key":"B"}}]}`, wantJSON: `{"profiles":[{"aws":{"secret_access_key":"****"}},{"aws":{"secret_access_key":"****"}}]}`,
			xml:     `<c><profiles><aws><secret_access_key>A</secret_access_key></aws></profiles><profiles><aws><secret_access_key>B</secret_access_key></aws></profiles></c>`,
			wantXML: `<c><profiles><aws><secret_access_key>****</secret_access_key></aws></profiles><profiles><aws><secret_access_key>****</secret_access_key></aws></profiles></c>`, wantCount: 2},
		{name: "anchored matches the top only", path: "$.aws.key",
			json: `{"aws":{"key":"A"},"x":{"aws":{"key":"B"}}}`, wantJSON: `{"aws":{"key":"****"},"x":{"aws":{"key":"B"}}}`,
			xml: `<r><aws><key>A</key></aws><x><aws><key>B</key></aws></x></r>`, wantXML: `<r><aws><key>****</key></aws><x><aws><key>B</key></aws></x></r>`, wantCount: 1},
		{name: "array of scalars", path: "$.tokens",
			json: `{"tokens":["a","b"],"n":"c"}`, wantJSON: `{"tokens":["****","****"],"n":"c"}`,
			xml: `<r><tokens>a</tokens><tokens>b</tokens><n>c</n></r>`, wantXML: `<r><tokens>****</tokens><tokens>****</tokens><n>c</n></r>`, wantCount: 2},
		{name: "wildcard member", path: "Environment.Variables.*",
			json: `{"Environment":{"Variables":{"A":"1","B":"2"}},"Name":"f"}`, wantJSON: `{"Environment":{"Variables":{"A":"****","B":"****"}},"Name":"f"}`,
			xml: `<f><Environment><Variables><A>1</A><B>2</B></Variables></Environment><Name>f</Name></f>`, wantXML: `<f><Environment><Variables><A>****</A><B>****</B></Variables></Environment><Name>f</Name></f>`, wantCount: 2},
		{name: "deep and glob", path: "**.Secret*",
			json: `{"a":{"b":{"SecretKey":"k","Other":"o"}}}`, wantJSON: `{"a":{"b":{"SecretKey":"****","Other":"o"}}}`,
			xml: `<r><a><b><SecretKey>k</SecretKey><Other>o</Other></b></a></r>`, wantXML: `<r><a><b><SecretKey>****</SecretKey><Other>o</Other></b></a></r>`, wantCount: 1},
		{name: "selected object masks every string inside", path: "creds",
			json: `{"creds":{"id":"i","secret":"s","n":3}}`, wantJSON: `{"creds":{"id":"****","secret":"****","n":3}}`,
			xml: `<r><creds><id>i</id><secret>s</secret></creds></r>`, wantXML: `<r><creds><id>****</id><secret>****</secret></creds></r>`, wantCount: 2},
		{name: "remove", path: "$.password", strategy: Remove,
			json: `{"user":"u","password":"p"}`, wantJSON: `{"user":"u"}`,
			xml: `<r><user>u</user><password>p</password></r>`, wantXML: `<r><user>u</user></r>`, wantCount: 1},
		{name: "no match leaves the document alone", path: "nothing.here",
			json: `{"a":"b"}`, wantJSON: `{"a":"b"}`, xml: `<r><a>b</a></r>`, wantXML: `<r><a>b</a></r>`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, Rule{Path: tt.path, Strategy: tt.strategy})
			out, rep, err := m.MaskJSON([]byte(tt.json))
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, string(out), tt.wantJSON)
			if rep.Total() != tt.wantCount {
				t.Errorf("JSON count %d, want %d", rep.Total(), tt.wantCount)
			}
			out, rep, err = m.MaskXML([]byte(tt.xml))
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.wantXML {
				t.Errorf("XML:\n got %s\nwant %s", out, tt.wantXML)
			}
			if rep.Total() != tt.wantCount {
				t.Errorf("XML count %d, want %d", rep.Total(), tt.wantCount)
			}
		})
	}
}

func TestPathRuleErrors(t *testing.T) {
	for _, tt := range []struct {
		rule Rule
		want string
	}{
		{Rule{Path: "a..b["}, `Path: maskpath: "a..b[" at offset 2: empty segment`},
		{Rule{Path: "a", JSON: "a"}, "set Path or JSON and XML, not both"},
		{Rule{Path: "a", When: `a=="x"`}, "a condition needs a JSON path"},
	} {
		_, err := New(Config{Rules: []Rule{tt.rule}})
		var ce *ConfigError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v) = %v, want %q", tt.rule, err, tt.want)
		}
	}
}

const textSecret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"

func TestMaskDispatchByMediaType(t *testing.T) {
	detect := Rule{Name: "secret-keys", Detect: DetectAWSSecretKey}
	path := Rule{Path: "aws.secret_access_key"}
	tests := []struct {
		name     string
		rules    []Rule
		ct, body string
		want     string // "" with wantErr
		format   Format
		skipped  int
		wantErr  string
	}{
		{name: "json by path", rules: []Rule{path}, ct: "application/json",
			body: `{"aws":{"secret_access_key":"x"}}`, want: `{"aws":{"secret_access_key":"****"}}`, format: JSON},
		{name: "xml by path", rules: []Rule{path}, ct: "application/xml",
			body: `<c><aws><secret_access_key>x</secret_access_key></aws></c>`, want: `<c><aws><secret_access_key>****</secret_access_key></aws></c>`, format: XML},
		{name: "text by detector", rules: []Rule{detect}, ct: "text/plain; charset=utf-8",
			body: textSecret, want: "aws_secret_access_key = ****\n", format: Text},
		{name: "shell script is text", rules: []Rule{detect}, ct: "application/x-sh",
			body: textSecret, want: "aws_secret_access_key = ****\n", format: Text},
		{name: "octet-stream text is sniffed as text", rules: []Rule{detect}, ct: "binary/octet-stream",
			body: textSecret, want: "aws_secret_access_key = ****\n", format: Text},
		{name: "octet-stream json is sniffed as json", rules: []Rule{path}, ct: "application/octet-stream",
			body: `{"aws":{"secret_access_key":"x"}}`, want: `{"aws":{"secret_access_key":"****"}}`, format: JSON},
		{name: "untyped broken json falls back to text", rules: []Rule{detect}, ct: "",
			body: `{"a": ` + textSecret, want: `{"a": aws_secret_access_key = ****` + "\n", format: Text},
		{name: "text for a path rule is refused", rules: []Rule{path, detect}, ct: "text/plain",
			body: textSecret, wantErr: `cannot be masked by path: rules ["aws.secret_access_key"]`},
		{name: "text for a skipping path rule: detectors still apply", rules: []Rule{{Path: "a", SkipUnmaskable: true}, detect}, ct: "text/plain",
			body: textSecret, want: "aws_secret_access_key = ****\n", format: Text, skipped: 1},
		{name: "binary type refused", rules: []Rule{detect}, ct: "image/png",
			body: "\x89PNG" + textSecret, wantErr: `unsupported content type "image/png"`},
		{name: "binary content refused", rules: []Rule{detect}, ct: "application/octet-stream",
			body: "\x00\x01" + textSecret, wantErr: "binary content"},
		{name: "text type with binary content refused", rules: []Rule{detect}, ct: "text/plain",
			body: "a\x00" + textSecret, wantErr: "not UTF-8 text"},
		{name: "utf-16 charset refused", rules: []Rule{detect}, ct: "text/plain; charset=UTF-16",
			body: textSecret, wantErr: `unsupported charset "utf-16"`},
		{name: "declared json that does not parse refused", rules: []Rule{detect}, ct: "application/json",
			body: textSecret, wantErr: "invalid json"},
		{name: "binary passes when every rule skips", rules: []Rule{{Detect: DetectAll, SkipUnmaskable: true}, {Path: "a", SkipUnmaskable: true}}, ct: "image/png",
			body: "\x89PNG" + textSecret, want: "\x89PNG" + textSecret, skipped: 2},
		{name: "binary refused when one rule does not skip", rules: []Rule{{Detect: DetectAll, SkipUnmaskable: true}, {Path: "a"}}, ct: "image/png",
			body: "\x89PNG", wantErr: "unsupported content type"},
		{name: "no rules: anything passes", rules: nil, ct: "image/png", body: "\x89PNG", want: "\x89PNG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, tt.rules...)
			out, rep, err := m.Mask(tt.ct, []byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !errors.Is(err, ErrUnmaskable) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want ErrUnmaskable containing %q", err, tt.wantErr)
				}
				if out != nil || strings.Contains(err.Error(), "wJalr") {
					t.Fatalf("refusal leaks: %q, %v", out, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want || rep.Format != tt.format || len(rep.Skipped) != tt.skipped {
				t.Fatalf("got %q %+v, want %q format %q skipped %d", out, rep, tt.want, tt.format, tt.skipped)
			}
			if tt.skipped > 0 && rep.SkipReason == "" {
				t.Fatal("skipped rules without a reason")
			}
		})
	}
}

func TestMaskTextStrategies(t *testing.T) {
	m, err := New(Config{HashKey: []byte("0123456789abcdef"), Rules: []Rule{
		{Detect: DetectAWSAccessKeyID, Strategy: Partial, Keep: 4},
		{Pattern: `token=(\S+)`, Strategy: Hash},
		{Pattern: `REMOVE-ME`, Strategy: Remove},
	}})
	if err != nil {
		t.Fatal(err)
	}
	out, rep := m.MaskText([]byte("id AKIAIOSFODNN7EXAMPLE token=abc REMOVE-ME."))
	want := regexp.MustCompile(`^id \*\*\*\*MPLE token=hmac-sha256:[0-9a-f]{16} \.$`)
	if !want.Match(out) || rep.Total() != 3 || rep.Format != Text {
		t.Fatalf("MaskText = %q, %+v", out, rep)
	}
}

// partial returns a 206 response with the given Content-Range.
func partial(body, cr string) *http.Response {
	r := response([]byte(body), "Content-Type", "application/json", "Content-Range", cr)
	r.StatusCode = http.StatusPartialContent
	return r
}

func TestMaskResponsePartial(t *testing.T) {
	m := mustNew(t, Rule{Path: "secret"})
	doc := `{"secret":"hunter2","n":"x"}`
	// The whole representation in one part is masked, and its range fixed.
	r := partial(doc, fmt.Sprintf("bytes 0-%d/%d", len(doc)-1, len(doc)))
	if _, err := m.MaskResponse(r); err != nil {
		t.Fatal(err)
	}
	got := readBody(t, r)
	if string(got) != `{"secret":"****","n":"x"}` || r.Header.Get("Content-Range") != fmt.Sprintf("bytes 0-%d/%d", len(got)-1, len(got)) {
		t.Fatalf("whole 206: %s, Content-Range %q", got, r.Header.Get("Content-Range"))
	}
	// Any other part is refused, whatever its content.
	for _, cr := range []string{"bytes 0-9/28", "bytes 10-27/28", "bytes 0-27/*", "", "bytes=0-27/28", "items 0-1/2"} {
		r := partial(doc, cr)
		if _, err := m.MaskResponse(r); !errors.Is(err, ErrUnmaskable) || r.Body != http.NoBody || r.Header.Get("Content-Range") != "" {
			t.Errorf("Content-Range %q: err %v, body %T", cr, err, r.Body)
		}
	}
	// With every rule skipping, a part passes as it came.
	skip := mustNew(t, Rule{Path: "secret", SkipUnmaskable: true})
	r = partial(doc[:10], "bytes 0-9/28")
	rep, err := skip.MaskResponse(r)
	if err != nil || len(rep.Skipped) != 1 || !strings.Contains(rep.SkipReason, "partial content") {
		t.Fatalf("skip: %+v %v", rep, err)
	}
	if b, _ := io.ReadAll(r.Body); string(b) != doc[:10] || r.StatusCode != 206 {
		t.Fatalf("skip: body %q", b)
	}
}

// TestMaskResponseSkipStreams: a body over the bound passes whole, unread
// past the bound, when every rule skips; it is refused otherwise.
func TestMaskResponseSkipStreams(t *testing.T) {
	big := []byte(`{"secret":"` + strings.Repeat("s", 200) + `"}`)
	for _, declared := range []bool{true, false} {
		m, err := New(Config{MaxBody: 64, Rules: []Rule{{Path: "secret", SkipUnmaskable: true}}})
		if err != nil {
			t.Fatal(err)
		}
		r := response(big, "Content-Type", "application/json")
		if !declared {
			r.ContentLength = -1
		}
		ct := &closeTracker{Reader: r.Body}
		r.Body = ct
		rep, err := m.MaskResponse(r)
		if err != nil || !strings.Contains(rep.SkipReason, "64-byte") {
			t.Fatalf("declared=%v: %+v %v", declared, rep, err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if !bytes.Equal(b, big) || !ct.closed {
			t.Fatalf("declared=%v: body %d bytes, closed %v", declared, len(b), ct.closed)
		}
	}
	// A body whose encoding cannot be decoded goes on encoded.
	m := mustNew(t, Rule{Path: "secret", SkipUnmaskable: true})
	r := response([]byte("brotli bytes"), "Content-Type", "application/json", "Content-Encoding", "br")
	rep, err := m.MaskResponse(r)
	if err != nil || !strings.Contains(rep.SkipReason, `content encoding "br"`) || r.Header.Get("Content-Encoding") != "br" || string(readBody(t, r)) != "brotli bytes" {
		t.Fatalf("br: %+v %v", rep, err)
	}
}

// FuzzPath checks, for any maskpath path and any document, that the JSON
// masker masks every string the path reaches by the rules of the package
// doc (a reference evaluator written independently below), that the
// output is JSON, and that the XML masker masks the same strings in the
// XML form of the document.
func FuzzPath(f *testing.F) {
	for _, s := range []struct{ path, doc string }{
		{"aws.secret_access_key", `{"aws":{"secret_access_key":"S","r":"x"}}`},
		{"$.a.*", `{"a":{"b":"x","c":["y","z"]},"d":"w"}`},
		{"**.k", `{"a":[{"k":"1"},{"b":{"k":"2"}}]}`},
		{"a.b*", `{"a":[{"bc":"1","x":"2"}],"b":"3"}`},
		{"a.**.c", `{"a":{"c":"1","b":{"c":"2"}}}`},
		{"$.x", `[{"x":"1"},{"y":"2"}]`},
	} {
		f.Add(s.path, s.doc)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		p, err := maskpath.Parse(path)
		if err != nil {
			return
		}
		m, err := New(Config{Rules: []Rule{{Path: path}}})
		if err != nil {
			t.Fatalf("maskpath accepted %q but New refused it: %v", path, err)
		}
		out, _, err := m.MaskJSON([]byte(doc))
		if !json.Valid([]byte(doc)) {
			if err == nil {
				t.Fatalf("invalid document accepted: %q", doc)
			}
			return
		}
		if err != nil {
			var se *SyntaxError
			if errors.As(err, &se) && strings.Contains(se.Msg, "too deep") {
				return
			}
			t.Fatalf("valid document refused: %v", err)
		}
		if !utf8Clean(doc) {
			return
		}
		in, err1 := decodeNumbers([]byte(doc))
		got, err2 := decodeNumbers(out)
		if err1 != nil || err2 != nil {
			t.Fatalf("output is not JSON: %q -> %q: %v %v", doc, out, err1, err2)
		}
		want := refMask(p, in)
		wj, _ := json.Marshal(want)
		gj, _ := json.Marshal(got)
		if !bytes.Equal(wj, gj) {
			t.Fatalf("path %q on %s:\n got %s\nwant %s", path, doc, gj, wj)
		}
		// The same document as XML, when it has an XML form.
		x, ok := toXML(in)
		if !ok {
			return
		}
		for _, s := range p.Segments {
			if !p.Anchored && s.Kind != maskpath.Deep && s.Match(xmlRoot) {
				return // the XML document has one more name than the JSON one
			}
		}
		xout, _, err := m.MaskXML(x)
		if err != nil {
			t.Fatalf("XML form of %s refused: %v\n%s", doc, err, x)
		}
		if got, want := xmlTexts(t, xout), xmlTexts(t, mustXML(t, want)); got != want {
			t.Fatalf("path %q: XML masked\n%s\nJSON masked\n%s", path, got, want)
		}
	})
}

// decodeNumbers decodes JSON keeping numbers as json.Number (a number
// too large for float64 is still valid JSON).
func decodeNumbers(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

// refMask masks (redacts) every string the path reaches in v, following
// the package doc: segments match member names, arrays are transparent, a
// selected value has every string inside it masked, an unanchored path
// may start at any depth. It tracks the set of path positions reached.
func refMask(p maskpath.Path, v any) any {
	segs := p.Segments
	if !p.Anchored {
		segs = append([]maskpath.Segment{{Kind: maskpath.Deep, Text: "**"}}, segs...)
	}
	return refWalk(segs, map[int]bool{0: true}, v, false)
}

func refWalk(segs []maskpath.Segment, at map[int]bool, v any, selected bool) any {
	switch x := v.(type) {
	case string:
		if selected {
			return Marker
		}
		return x
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = refWalk(segs, at, e, selected)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			next := map[int]bool{}
			for pos := range at {
				refStep(segs, pos, k, next)
			}
			out[k] = refWalk(segs, next, e, selected || next[len(segs)])
		}
		return out
	}
	return v
}

// refStep adds the positions reached from pos by consuming member name k.
func refStep(segs []maskpath.Segment, pos int, k string, next map[int]bool) {
	if pos >= len(segs) {
		return
	}
	if segs[pos].Kind == maskpath.Deep {
		next[pos] = true              // "**" takes k and stays
		refStep(segs, pos+1, k, next) // "**" takes nothing
		return
	}
	if segs[pos].Match(k) {
		next[pos+1] = true
	}
}

const xmlRoot = "gatehouse-root"

var xmlName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)

// toXML renders a JSON value as XML: the root element stands for the
// value, members become child elements, arrays repeat their element.
// Only documents of objects, arrays and non-empty strings, with keys that
// are XML names and no array directly inside an array, have such a form.
func toXML(v any) ([]byte, bool) {
	var b bytes.Buffer
	ok := true
	var elem func(name string, v any)
	elem = func(name string, v any) {
		switch x := v.(type) {
		case string:
			if x == "" || strings.TrimSpace(x) != x {
				ok = false
			}
			b.WriteString("<" + name + ">")
			xml.EscapeText(&b, []byte(x))
			b.WriteString("</" + name + ">")
		case map[string]any:
			b.WriteString("<" + name + ">")
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if !xmlName.MatchString(k) || strings.HasPrefix(strings.ToLower(k), "xml") {
					ok = false
				}
				elem(k, x[k])
			}
			b.WriteString("</" + name + ">")
		case []any:
			for _, e := range x {
				if _, nested := e.([]any); nested {
					ok = false
				}
				elem(name, e)
			}
		default:
			ok = false
		}
	}
	if _, isArray := v.([]any); isArray {
		return nil, false
	}
	elem(xmlRoot, v)
	return b.Bytes(), ok
}

func mustXML(t *testing.T, v any) []byte {
	x, ok := toXML(v)
	if !ok {
		t.Fatalf("no XML form for %v", v)
	}
	return x
}

// xmlTexts lists the text of every element in document order.
func xmlTexts(t *testing.T, doc []byte) string {
	d := xml.NewDecoder(bytes.NewReader(doc))
	var b strings.Builder
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return b.String()
		}
		if err != nil {
			t.Fatalf("%v in %s", err, doc)
		}
		switch x := tok.(type) {
		case xml.StartElement:
			b.WriteString("<" + x.Name.Local + ">")
		case xml.CharData:
			b.Write(x)
		}
	}
}

// FuzzMaskMediaType checks the dispatch by media type: it never panics,
// every refusal matches ErrUnmaskable and returns nothing, a body that is
// not text is never passed on for a masker whose rules all apply, text
// output never holds what the detector rule hides, and with every rule
// skipping nothing is ever refused.
func FuzzMaskMediaType(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"aws":{"secret_access_key":"SECRET1"}}`},
		{"text/xml", `<a><aws><secret_access_key>SECRET2</secret_access_key></aws></a>`},
		{"text/plain; charset=utf-8", "key SECRET3\n"},
		{"application/octet-stream", "SECRET4"},
		{"", `{"a":"SECRET5"}`},
		{"image/png", "\x89PNG SECRET6"},
		{"text/plain; charset=utf-16", "S\x00E\x00"},
		{"application/json; charset=", "{}"},
		{"multipart/byteranges; boundary=x", "--x"},
	} {
		f.Add(s.ct, s.body)
	}
	strict := mustNew(f, Rule{Pattern: `SECRET[0-9]+`})
	withPath := mustNew(f, Rule{Pattern: `SECRET[0-9]+`}, Rule{Path: "aws.secret_access_key"})
	skipping := mustNew(f, Rule{Pattern: `SECRET[0-9]+`, SkipUnmaskable: true}, Rule{Path: "aws.secret_access_key", SkipUnmaskable: true})
	f.Fuzz(func(t *testing.T, ct, body string) {
		for _, m := range []*Masker{strict, withPath, skipping} {
			out, rep, err := m.Mask(ct, []byte(body))
			if err != nil {
				if !errors.Is(err, ErrUnmaskable) || out != nil || rep != nil {
					t.Fatalf("Mask(%q, %q) = %q, %+v, %v", ct, body, out, rep, err)
				}
				if m == skipping {
					t.Fatalf("a masker whose rules all skip refused %q %q: %v", ct, body, err)
				}
				continue
			}
			if strings.TrimSpace(body) == "" {
				continue
			}
			if m == strict && !isText([]byte(body)) && FormatOf(ct) != JSON && FormatOf(ct) != XML {
				t.Fatalf("binary %q body passed: %q", ct, body)
			}
			if rep.Format == Text && len(rep.Skipped) == 0 && secretRE.Match(out) {
				t.Fatalf("text output %q still holds a secret", out)
			}
		}
	})
}
