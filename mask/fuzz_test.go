package mask

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
)

// secretRE is what the fuzz maskers' Pattern rule hides.
var secretRE = regexp.MustCompile(`SECRET[0-9]+`)

// FuzzJSONPath checks the path parser never panics and, for every path it
// accepts without queries, that every string gjson selects with that path
// is masked: the masker never masks less than gjson selects.
func FuzzJSONPath(f *testing.F) {
	for _, s := range []struct{ path, doc string }{
		{"a", `{"a":"x"}`},
		{"Parameters.#.Value", `{"Parameters":[{"Value":"1"},{"Value":"2"}]}`},
		{`Parameters.#(Type=="SecureString")#.Value`, `{"Parameters":[{"Type":"SecureString","Value":"1"}]}`},
		{"a.*.c", `{"a":{"b":{"c":"x"},"d":{"c":"y"}}}`},
		{`a\.b`, `{"a.b":"x"}`},
		{"a.1", `{"a":["x","y"]}`},
		{"a?c.0", `{"abc":["x"]}`},
		{"#.a", `[{"a":"x"},{"a":["y"]}]`},
		{"a", `{"a":{"b":"x","c":[1,"y"]}}`},
	} {
		f.Add(s.path, s.doc)
	}
	f.Fuzz(func(t *testing.T, path, doc string) {
		p, err := parseJSONPath(path)
		if err != nil {
			return
		}
		m, err := New(Config{Rules: []Rule{{JSON: path}}})
		if err != nil {
			t.Fatalf("parsed but New failed: %v", err)
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
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q -> %q", doc, out)
		}
		for _, c := range p {
			if c.kind == compFirst || c.kind == compQueryAll {
				return // masking can change what a query selects
			}
		}
		if !utf8Clean(doc) {
			return // gjson and the masker may decode invalid UTF-8 differently
		}
		r := gjson.Get(string(out), path)
		eachString(r, func(s string) {
			if s != Marker {
				t.Fatalf("path %q selects %q in the output of %q: %q", path, s, doc, out)
			}
		})
	})
}

func utf8Clean(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

// eachString calls fn for every string inside a gjson result.
func eachString(r gjson.Result, fn func(string)) {
	switch {
	case r.Type == gjson.String:
		fn(r.Str)
	case r.IsArray() || r.IsObject():
		r.ForEach(func(_, v gjson.Result) bool {
			eachString(v, fn)
			return true
		})
	}
}

func fuzzMasker(t testing.TB) *Masker {
	m, err := New(Config{HashKey: testKey, Rules: []Rule{
		{JSON: "s", XML: "s"},
		{JSON: "a.#.v", XML: "a/*/v"},
		{JSON: "r", XML: "r", Strategy: Remove},
		{JSON: "p", XML: "p", Strategy: Partial, Keep: 2},
		{JSON: "h", XML: "h", Strategy: Hash},
		{JSON: `q.#(k=="x")#.v`},
		{Pattern: `SECRET[0-9]+`},
		{Detect: DetectAll},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// FuzzMaskJSON checks that arbitrary documents never panic the masker,
// that invalid documents are refused, that valid ones give valid JSON, and
// that no string of the output holds what the rules hide.
func FuzzMaskJSON(f *testing.F) {
	for _, s := range []string{
		`{"s":"x","a":[{"v":"y"},{"v":{"w":"z"}}],"r":1,"p":"abcdefgh","h":"k"}`,
		`{"log":"SECRET123 and AKIAIOSFODNN7EXAMPLE","q":[{"k":"x","v":"1"},{"k":"y","v":"2"}]}`,
		`["SECRET1",{"r":"x"},{"s":"\u00e9\ud83d\ude00"}]`,
		`{"r":1,"r":2,"x":{"r":[]}}`,
		`"SECRET9"`, `123`, `{}`, `[]`, `{"a":"\"SECRET1\""}`,
	} {
		f.Add([]byte(s))
	}
	m := fuzzMasker(f)
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, rep, err := m.MaskJSON(doc)
		if !json.Valid(doc) {
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
			t.Fatalf("valid document refused: %v: %q", err, doc)
		}
		if !json.Valid(out) {
			t.Fatalf("output is not JSON: %q -> %q", doc, out)
		}
		if !rep.Masked() && !bytes.Equal(out, doc) {
			t.Fatalf("report says nothing masked but output differs")
		}
		var v any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		walkJSON(v, func(s string) {
			if secretRE.MatchString(s) {
				t.Fatalf("output string %q still matches the pattern: %q -> %q", s, doc, out)
			}
		})
		if top, ok := v.(map[string]any); ok {
			if _, ok := top["r"]; ok {
				t.Fatalf("removed member r is still there: %q -> %q", doc, out)
			}
			walkJSON(top["s"], func(s string) {
				if s != Marker {
					t.Fatalf("s holds %q: %q -> %q", s, doc, out)
				}
			})
		}
	})
}

// walkJSON calls fn for every string value in v.
func walkJSON(v any, fn func(s string)) {
	switch x := v.(type) {
	case string:
		fn(x)
	case []any:
		for _, e := range x {
			walkJSON(e, fn)
		}
	case map[string]any:
		for _, e := range x {
			walkJSON(e, fn)
		}
	}
}

// FuzzMaskXML checks that arbitrary documents never panic the masker, that
// what it accepts encoding/xml accepts too, that its output is well-formed
// (for itself and for encoding/xml), and that no text value of the output
// holds what the rules hide.
func FuzzMaskXML(f *testing.F) {
	for _, s := range []string{
		stsAssumeRole,
		`<r><s>x</s><a><i><v>y</v></i></a><r>gone</r><p>abcdefgh</p><h>k</h></r>`,
		`<?xml version="1.0"?><x:r xmlns:x="u"><x:s><![CDATA[SECRET1]]></x:s><m>a SECRET22 b<b/>SEC<!---->RET3</m></x:r>`,
		`<r a="1"><s/></r>`,
		`<r>&lt;SECRET4&gt;&#65;</r>`,
	} {
		f.Add([]byte(s))
	}
	m := fuzzMasker(f)
	plain := mustNew(f, Rule{XML: "zzz"})
	f.Fuzz(func(t *testing.T, doc []byte) {
		out, _, err := m.MaskXML(doc)
		if err != nil {
			return
		}
		if err := stdXMLWellFormed(doc); err != nil {
			t.Fatalf("accepted what encoding/xml refuses (%v): %q", err, doc)
		}
		if _, _, err := plain.MaskXML(out); err != nil {
			t.Fatalf("output not well-formed (%v): %q -> %q", err, doc, out)
		}
		if err := stdXMLWellFormed(out); err != nil {
			t.Fatalf("encoding/xml refuses the output (%v): %q -> %q", err, doc, out)
		}
		checkXMLText(t, doc, out)
	})
}

// stdXMLWellFormed runs encoding/xml's strict token reader over b.
func stdXMLWellFormed(b []byte) error {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := d.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// checkXMLText checks every text value of the output: runs of character
// data between tags (comments and CDATA included) must not match the
// pattern, and the text of elements named s must be the marker.
func checkXMLText(t *testing.T, doc, out []byte) {
	d := xml.NewDecoder(bytes.NewReader(out))
	var stack []string
	var text strings.Builder
	flush := func() {
		s := text.String()
		text.Reset()
		if secretRE.MatchString(s) {
			t.Fatalf("output text %q still matches the pattern: %q -> %q", s, doc, out)
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return
		}
		switch x := tok.(type) {
		case xml.StartElement:
			flush()
			stack = append(stack, x.Name.Local)
			if x.Name.Local == "r" && len(stack) > 1 {
				t.Fatalf("removed element r is still there: %q -> %q", doc, out)
			}
		case xml.EndElement:
			s := text.String()
			if len(stack) > 0 && stack[len(stack)-1] == "s" && s != "" && s != Marker {
				t.Fatalf("<s> holds %q: %q -> %q", s, doc, out)
			}
			flush()
			stack = stack[:len(stack)-1]
		case xml.CharData:
			text.Write(x)
		}
	}
}
