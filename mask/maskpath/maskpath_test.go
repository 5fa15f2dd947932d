package maskpath

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func seg(k Kind, t string) Segment { return Segment{Kind: k, Text: t} }

func TestParse(t *testing.T) {
	tests := []struct {
		path     string
		anchored bool
		want     []Segment
	}{
		{"SecretString", false, []Segment{seg(Name, "SecretString")}},
		{"aws.secret_access_key", false, []Segment{seg(Name, "aws"), seg(Name, "secret_access_key")}},
		{"$.Credentials.SecretKey", true, []Segment{seg(Name, "Credentials"), seg(Name, "SecretKey")}},
		{"Environment.Variables.*", false, []Segment{seg(Name, "Environment"), seg(Name, "Variables"), seg(Glob, "*")}},
		{"**.password", false, []Segment{seg(Deep, "**"), seg(Name, "password")}},
		{"a.**.**.b", false, []Segment{seg(Name, "a"), seg(Deep, "**"), seg(Name, "b")}},
		{"Credentials.Secret*", false, []Segment{seg(Name, "Credentials"), seg(Glob, "Secret*")}},
		{"a?c", false, []Segment{seg(Glob, "a?c")}},
		{`a\.b`, false, []Segment{seg(Name, "a.b")}},
		{`a\*`, false, []Segment{seg(Name, "a*")}},
		{`a\*b*`, false, []Segment{seg(Glob, `a\*b*`)}},
		{`\$ref`, false, []Segment{seg(Name, "$ref")}},
		{`Display\ Name`, false, []Segment{seg(Name, "Display Name")}},
		{`x\#y*`, false, []Segment{seg(Glob, "x#y*")}},
		{"0", false, []Segment{seg(Name, "0")}},
		{"clé.valeur", false, []Segment{seg(Name, "clé"), seg(Name, "valeur")}},
		{"$.**.a", true, []Segment{seg(Deep, "**"), seg(Name, "a")}},
		{"a-b_c.d", false, []Segment{seg(Name, "a-b_c"), seg(Name, "d")}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			p, err := Parse(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if p.Anchored != tt.anchored || !reflect.DeepEqual(p.Segments, tt.want) {
				t.Fatalf("Parse(%q) = %+v", tt.path, p)
			}
			back, err := Parse(p.String())
			if err != nil || !reflect.DeepEqual(back, p) {
				t.Fatalf("String() = %q does not parse back: %+v, %v", p.String(), back, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		path   string
		offset int
		msg    string
	}{
		{"", 0, "empty path"},
		{"a..b[", 2, "empty segment"},
		{".a", 0, "empty segment"},
		{"a.", 2, "ends with '.'"},
		{"$.", 2, "ends with '.'"},
		{"$a", 1, "'$' must be followed by '.'"},
		{"a.$b", 2, "'$' may only start the path"},
		{"Parameters.#.Value", 11, "gjson"},
		{`Parameters.#(Type=="x")#.Value`, 11, "gjson"},
		{"a[0]", 1, "indexes"},
		{"a/b", 1, "separated by '.'"},
		{"//SecretAccessKey", 0, "separated by '.'"},
		{"a.@attr", 2, "attributes"},
		{"ns:Name", 2, "namespace"},
		{"a|b", 1, "pipes"},
		{"{a,b}", 0, "multipaths"},
		{"a b", 1, "white space"},
		{"a\tb", 1, "control character"},
		{"a\\\tb", 2, "control character"},
		{"a\x01b", 1, "control character"},
		{`a\b`, 1, "escapes only reserved"},
		{`a\`, 1, "ends with '\\'"},
		{"a**b", 1, "'**' must stand alone"},
		{"***", 0, "'**' must stand alone"},
		{"a.**", 2, "must not end with '**'"},
		{"**", 0, "must not end with '**'"},
		{"a\xffb", 1, "not valid UTF-8"},
		{strings.Repeat("a", MaxLen+1), MaxLen, "limit"},
		{strings.Repeat("a.", MaxSegments) + "a", 2 * MaxSegments, "more than 32 segments"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := Parse(tt.path)
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Parse(%q) = %v, want *Error", tt.path, err)
			}
			if pe.Offset != tt.offset || !strings.Contains(pe.Msg, tt.msg) {
				t.Fatalf("Parse(%q) = offset %d %q, want offset %d containing %q", tt.path, pe.Offset, pe.Msg, tt.offset, tt.msg)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	tests := []struct {
		seg  string
		name string
		want bool
	}{
		{"a", "a", true},
		{"a", "A", false},
		{"*", "anything", true},
		{"*", "", true},
		{"Secret*", "SecretAccessKey", true},
		{"Secret*", "AccessKey", false},
		{"?b", "éb", true},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{`a\**`, "a*bc", true},
		{`a\**`, "abc", false},
	}
	for _, tt := range tests {
		p, err := Parse(tt.seg)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Segments[0].Match(tt.name); got != tt.want {
			t.Errorf("%q matches %q = %v, want %v", tt.seg, tt.name, got, tt.want)
		}
	}
	if !(Segment{Kind: Deep, Text: "**"}).Match("x") {
		t.Error("Deep must match any name")
	}
}

// FuzzParse checks that Parse never panics, that every error points inside
// the path, and that an accepted path prints in a form that parses back to
// the same Path.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a", "a.b", "$.a.*.b", "**.x", `a\.b`, `a\**`, "a..b[", "Parameters.#.Value", "a/b", "a.**", "é.?"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Offset < 0 || pe.Offset > len(s) {
				t.Fatalf("Parse(%q) = %v", s, err)
			}
			return
		}
		if len(p.Segments) == 0 || p.Segments[len(p.Segments)-1].Kind == Deep || len(p.Segments) > MaxSegments {
			t.Fatalf("Parse(%q) accepted %+v", s, p)
		}
		for i, sg := range p.Segments {
			if sg.Text == "" || !utf8.ValidString(sg.Text) {
				t.Fatalf("segment %d of %q is %+v", i, s, sg)
			}
			if sg.Kind == Name && !sg.Match(sg.Text) {
				t.Fatalf("name segment %q does not match itself", sg.Text)
			}
		}
		back, err := Parse(p.String())
		if err != nil || !reflect.DeepEqual(back, p) {
			t.Fatalf("Parse(%q).String() = %q parses to %+v, %v", s, p.String(), back, err)
		}
	})
}
