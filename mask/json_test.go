package mask

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/sjson"
)

var testKey = []byte("0123456789abcdef0123456789abcdef")

func mustNew(t testing.TB, rules ...Rule) *Masker {
	t.Helper()
	m, err := New(Config{Rules: rules, HashKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestMaskJSON(t *testing.T) {
	tests := []struct {
		name  string
		rules []Rule
		in    string
		want  string
		count int
	}{
		{"top-level key", []Rule{{JSON: "SecretString"}},
			`{"Name":"db","SecretString":"{\"password\":\"hunter2\"}","VersionId":"v1"}`,
			`{"Name":"db","SecretString":"****","VersionId":"v1"}`, 1},
		{"array wildcard", []Rule{{JSON: "Parameters.#.Value"}},
			`{"Parameters":[{"Name":"a","Value":"1"},{"Name":"b","Value":"2"}],"InvalidParameters":[]}`,
			`{"Parameters":[{"Name":"a","Value":"****"},{"Name":"b","Value":"****"}],"InvalidParameters":[]}`, 2},
		{"query all", []Rule{{JSON: `Parameters.#(Type=="SecureString")#.Value`}},
			`{"Parameters":[{"Type":"String","Value":"plain"},{"Type":"SecureString","Value":"s1"},{"Type":"SecureString","Value":"s2"}]}`,
			`{"Parameters":[{"Type":"String","Value":"plain"},{"Type":"SecureString","Value":"****"},{"Type":"SecureString","Value":"****"}]}`, 2},
		{"query first", []Rule{{JSON: `Parameters.#(Type=="SecureString").Value`}},
			`{"Parameters":[{"Type":"SecureString","Value":"s1"},{"Type":"SecureString","Value":"s2"}]}`,
			`{"Parameters":[{"Type":"SecureString","Value":"****"},{"Type":"SecureString","Value":"s2"}]}`, 1},
		{"numeric query and glob", []Rule{{JSON: `items.#(n>=2)#.sec*`}},
			`{"items":[{"n":1,"secret":"a"},{"n":2,"secret":"b","second":"c","other":"d"}]}`,
			`{"items":[{"n":1,"secret":"a"},{"n":2,"secret":"****","second":"****","other":"d"}]}`, 2},
		{"index", []Rule{{JSON: "a.1"}},
			`{"a":["x","y","z"]}`, `{"a":["x","****","z"]}`, 1},
		{"map wildcard", []Rule{{JSON: "Environment.Variables.*"}},
			`{"Environment":{"Variables":{"DB_PASS":"p","TOKEN":"t"}}}`,
			`{"Environment":{"Variables":{"DB_PASS":"****","TOKEN":"****"}}}`, 2},
		{"object match masks strings inside", []Rule{{JSON: "Credentials"}},
			`{"Credentials":{"AccessKeyId":"AKIA","Expiration":1.7e9,"Nested":["x",true,null]}}`,
			`{"Credentials":{"AccessKeyId":"****","Expiration":1.7e9,"Nested":["****",true,null]}}`, 2},
		{"escaped key", []Rule{{JSON: `a\.b`}},
			`{"a.b":"s","a":{"b":"t"}}`, `{"a.b":"****","a":{"b":"t"}}`, 1},
		{"key with escapes in document", []Rule{{JSON: "key"}},
			`{"k\u0065y":"s"}`, `{"key":"****"}`, 1},
		{"partial", []Rule{{JSON: "id", Strategy: Partial, Keep: 4}},
			`{"id":"AKIAIOSFODNN7EXAMPLE"}`, `{"id":"****MPLE"}`, 1},
		{"partial short value hidden", []Rule{{JSON: "id", Strategy: Partial, Keep: 4}},
			`{"id":"abcdefgh"}`, `{"id":"****"}`, 1},
		{"partial keeps runes and escapes", []Rule{{JSON: "id", Strategy: Partial, Keep: 2}},
			`{"id":"abcdef\"\u00e9"}`, `{"id":"****\"é"}`, 1},
		{"remove middle", []Rule{{JSON: "b", Strategy: Remove}},
			`{"a":1, "b":2, "c":3}`, `{"a":1,"c":3}`, 1},
		{"remove first and last", []Rule{{JSON: "a", Strategy: Remove}, {JSON: "c", Strategy: Remove}},
			`{"a":1,"b":2,"c":3}`, `{"b":2}`, 2},
		{"remove all", []Rule{{JSON: "*", Strategy: Remove}},
			`{"a":1,"b":{"x":[1]},"c":3}`, `{}`, 3},
		{"remove array elements", []Rule{{JSON: `list.#(k=="x")#`, Strategy: Remove}},
			`[0]`, `[0]`, 0},
		{"remove queried elements", []Rule{{JSON: `list.#(k=="x")#`, Strategy: Remove}},
			`{"list":[{"k":"x"},{"k":"y"},{"k":"x"},{"k":"x"}]}`, `{"list":[{"k":"y"}]}`, 3},
		{"remove wins over redact", []Rule{{JSON: "a"}, {JSON: "a", Strategy: Remove}},
			`{"a":"s","b":"t"}`, `{"b":"t"}`, 1},
		{"inner rule overrides outer", []Rule{{JSON: "o"}, {JSON: "o.k", Strategy: Partial, Keep: 1}},
			`{"o":{"j":"secret","k":"abcdef"}}`, `{"o":{"j":"****","k":"****f"}}`, 2},
		{"when holds", []Rule{{JSON: "Parameter.Value", When: `Parameter.Type=="SecureString"`}},
			`{"Parameter":{"Type":"SecureString","Value":"s"}}`, `{"Parameter":{"Type":"SecureString","Value":"****"}}`, 1},
		{"when fails", []Rule{{JSON: "Parameter.Value", When: `Parameter.Type=="SecureString"`}},
			`{"Parameter":{"Type":"String","Value":"s"}}`, `{"Parameter":{"Type":"String","Value":"s"}}`, 0},
		{"no match", []Rule{{JSON: "missing.path"}},
			`{"a":[1,2,{"b":"c"}]}`, `{"a":[1,2,{"b":"c"}]}`, 0},
		{"detector in nested JSON string", []Rule{{Detect: DetectPassword}},
			`{"SecretString":"{\"username\":\"admin\",\"password\":\"hunter2\"}"}`,
			`{"SecretString":"{\"username\":\"admin\",\"password\":\"****\"}"}`, 1},
		{"detector scoped by path", []Rule{{JSON: "logs", Detect: DetectAWSAccessKeyID}},
			`{"logs":["used AKIAIOSFODNN7EXAMPLE today"],"id":"AKIAIOSFODNN7EXAMPLE"}`,
			`{"logs":["used **** today"],"id":"AKIAIOSFODNN7EXAMPLE"}`, 1},
		{"detector remove", []Rule{{Detect: DetectJWT, Strategy: Remove}},
			`{"a":"x","t":"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig"}`, `{"a":"x"}`, 1},
		{"user pattern with group", []Rule{{Pattern: `token=(\w+)`}},
			`{"u":"https://h/?token=abc123&x=1"}`, `{"u":"https://h/?token=****&x=1"}`, 1},
		{"top-level array", []Rule{{JSON: "#.v"}},
			` [ {"v":"a"} , {"v":"b"} ] `, `[{"v":"****"},{"v":"****"}]`, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, tt.rules...)
			out, rep, err := m.MaskJSON([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, string(out), tt.want)
			if rep.Total() != tt.count {
				t.Errorf("count = %d, want %d (%+v)", rep.Total(), tt.count, rep.Entries)
			}
		})
	}
}

func TestMaskJSONHash(t *testing.T) {
	m := mustNew(t, Rule{JSON: "#.v", Strategy: Hash})
	out, _, err := m.MaskJSON([]byte(`[{"v":"same"},{"v":"same"},{"v":"other"}]`))
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	a, b, c := got[0]["v"], got[1]["v"], got[2]["v"]
	if a != b || a == c || !strings.HasPrefix(a, HashPrefix) || len(a) != len(HashPrefix)+16 {
		t.Errorf("hash tokens %q %q %q", a, b, c)
	}
	// A different key gives different tokens.
	m2, _ := New(Config{Rules: []Rule{{JSON: "#.v", Strategy: Hash}}, HashKey: []byte("another key of 16+ bytes")})
	out2, _, _ := m2.MaskJSON([]byte(`[{"v":"same"}]`))
	if strings.Contains(string(out2), a) {
		t.Error("hash does not depend on the key")
	}
}

func TestMaskJSONInvalid(t *testing.T) {
	m := mustNew(t, Rule{JSON: "a"})
	for _, in := range []string{
		``, ` `, `{`, `{"a":}`, `{"a":"x"`, `{"a":"x",}`, `[1,]`, `{"a" "x"}`, `{"a":"\x"}`,
		"{\"a\":\"\x01\"}", `{"a":01}`, `{"a":1.}`, `{"a":-}`, `{"a":tru}`, `{} {}`, `{"a":"\u12"}`,
		`{"a":[1 2]}`, `nul`, `{a:1}`, strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
	} {
		_, _, err := m.MaskJSON([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: err = %v, want *SyntaxError", in, err)
		}
	}
	// Depth exactly MaxDepth is fine.
	ok := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	if _, _, err := m.MaskJSON([]byte(ok)); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
}

func TestMaskJSONUnchangedReturnsInput(t *testing.T) {
	m := mustNew(t, Rule{JSON: "x"})
	in := []byte(`{"a":"b"}`)
	out, rep, err := m.MaskJSON(in)
	if err != nil || &out[0] != &in[0] || rep.Masked() {
		t.Errorf("out=%s rep=%+v err=%v", out, rep, err)
	}
}

func TestParseJSONPath(t *testing.T) {
	tests := []struct {
		path    string
		wantErr string
	}{
		{"a", ""},
		{"a.b.c", ""},
		{"a.#.b", ""},
		{`a.#(b=="c")#.d`, ""},
		{`a.#(b!=1).d`, ""},
		{`a.#(=="x")`, ""},
		{`a.#(b%"x*")#`, ""},
		{`a\.b.c\*`, ""},
		{"a.*.b?", ""},
		{"", "empty path"},
		{"a..b", "empty component"},
		{".a", "empty component"},
		{"a.", "ends with '.'"},
		{"a.#", "counts elements"},
		{"a.#x", "must be followed"},
		{"a|b", "pipes"},
		{"@reverse", "modifiers"},
		{"a.@this", "modifiers"},
		{"[a,b]", "multipaths"},
		{"{a}", "multipaths"},
		{"!true", "literals"},
		{`a.#(b=="c"`, "closing"},
		{`a.#(b.#(c==1))`, "nested"},
		{`a.#(b)`, "no operator"},
		{`a.#(b==)`, "no value"},
		{`a.#(b==x)`, "not a JSON"},
		{`a.#(b%1)`, "needs a string"},
		{`a.#(b<true)`, "needs a string or number"},
		{`a.#(b=="c")x`, "unexpected"},
		{`a\`, "escape"},
		{strings.Repeat("a", MaxPattern+1), "limit"},
	}
	for _, tt := range tests {
		_, err := parseJSONPath(tt.path)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%q: %v", tt.path, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%q: err = %v, want %q", tt.path, err, tt.wantErr)
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"nothing selected", Config{Rules: []Rule{{Name: "x"}}}, `rule 0 ("x"): Path: rule selects nothing`},
		{"bad strategy", Config{Rules: []Rule{{JSON: "a", Strategy: "shred"}}}, "unknown strategy"},
		{"hash without key", Config{Rules: []Rule{{JSON: "a", Strategy: Hash}}}, "needs Config.HashKey"},
		{"short key", Config{HashKey: []byte("short")}, "HashKey"},
		{"keep without partial", Config{Rules: []Rule{{JSON: "a", Keep: 3}}}, "only partial"},
		{"keep too big", Config{Rules: []Rule{{JSON: "a", Strategy: Partial, Keep: 100}}}, "outside"},
		{"bad json path", Config{Rules: []Rule{{JSON: "a|b"}}}, "rule 0: JSON: pipes"},
		{"bad xml path", Config{Rules: []Rule{{JSON: "a"}, {XML: "a/**"}}}, "rule 1: XML"},
		{"bad regex", Config{Rules: []Rule{{Pattern: "a("}}}, "Pattern"},
		{"empty-matching regex", Config{Rules: []Rule{{Pattern: "a*"}}}, "empty string"},
		{"long regex", Config{Rules: []Rule{{Pattern: strings.Repeat("a", MaxPattern+1)}}}, "limit"},
		{"unknown detector", Config{Rules: []Rule{{Detect: "ssn"}}}, "unknown detector"},
		{"detect and pattern", Config{Rules: []Rule{{Detect: DetectJWT, Pattern: "x"}}}, "not both"},
		{"when without json", Config{Rules: []Rule{{XML: "a", When: `a=="b"`}}}, "needs a JSON path"},
		{"bad when", Config{Rules: []Rule{{JSON: "a", When: `a=`}}}, "When"},
		{"negative max", Config{MaxBody: -1}, "MaxBody"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			var ce *ConfigError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want *ConfigError containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestMaskJSONMatchesSJSON uses sjson as the oracle for concrete paths:
// redacting a path must give the same document as sjson setting the
// marker there, and Remove the same as sjson deleting it.
func TestMaskJSONMatchesSJSON(t *testing.T) {
	doc := `{"Name":"db","SecretString":"s","Nested":{"a":{"b":"x","c":[1,"y",{"d":"z"}]}},"List":["p","q","r"],"Num":1}`
	for _, path := range []string{"SecretString", "Nested.a.b", "Nested.a.c.1", "Nested.a.c.2.d", "List.0", "List.2", "Name"} {
		m := mustNew(t, Rule{JSON: path})
		got, _, err := m.MaskJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		want, err := sjson.Set(doc, path, Marker)
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, string(got), want)

		m = mustNew(t, Rule{JSON: path, Strategy: Remove})
		got, _, err = m.MaskJSON([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		want, err = sjson.Delete(doc, path)
		if err != nil {
			t.Fatal(err)
		}
		jsonEqual(t, string(got), want)
	}
}
