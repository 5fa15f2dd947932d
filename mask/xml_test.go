package mask

import (
	"errors"
	"strings"
	"testing"
)

const stsAssumeRole = `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::123456789012:assumed-role/demo/s</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY</SecretAccessKey>
      <SessionToken>IQoJb3JpZ2luX2VjEXAMPLETOKEN&amp;more</SessionToken>
      <Expiration>2026-11-25T12:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId></ResponseMetadata>
</AssumeRoleResponse>`

const secretKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func TestMaskXML(t *testing.T) {
	tests := []struct {
		name   string
		rules  []Rule
		in     string
		want   []string // substrings of the output
		absent []string // substrings that must be gone
		count  int
	}{
		{"sts credentials", []Rule{
			{XML: "*/Credentials/SecretAccessKey"},
			{XML: "*/Credentials/SessionToken"},
			{XML: "*/Credentials/AccessKeyId", Strategy: Partial, Keep: 4},
		}, stsAssumeRole,
			[]string{"<SecretAccessKey>****</SecretAccessKey>", "<SessionToken>****</SessionToken>", "<AccessKeyId>****MPLE</AccessKeyId>", "<Expiration>2026-11-25T12:00:00Z</Expiration>", `xmlns="https://sts.amazonaws.com/doc/2011-06-15/"`},
			[]string{"wJalr", "IQoJ", "ASIAIOSFODNN7EXAMPLE"}, 3},
		{"anchored path", []Rule{{XML: "/AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey"}}, stsAssumeRole,
			[]string{"<SecretAccessKey>****</SecretAccessKey>"}, nil, 1},
		{"anchored path must start at root", []Rule{{XML: "/AssumeRoleResult/Credentials/SecretAccessKey"}}, stsAssumeRole,
			[]string{"wJalr"}, nil, 0},
		{"any depth", []Rule{{XML: "//SecretAccessKey"}}, stsAssumeRole,
			[]string{"<SecretAccessKey>****</SecretAccessKey>"}, nil, 1},
		{"double star in middle", []Rule{{XML: "AssumeRoleResponse/**/SessionToken"}}, stsAssumeRole,
			[]string{"<SessionToken>****</SessionToken>"}, nil, 1},
		{"star is one level", []Rule{{XML: "AssumeRoleResponse/*/SecretAccessKey"}}, stsAssumeRole,
			[]string{"wJalr"}, nil, 0},
		{"glob in name", []Rule{{XML: "Credentials/Se*"}}, stsAssumeRole,
			[]string{"<SecretAccessKey>****</SecretAccessKey>", "<SessionToken>****</SessionToken>"}, nil, 2},
		{"namespace prefix ignored", []Rule{{XML: "x:Credentials/x:SecretAccessKey"}},
			`<r xmlns:a="urn:a"><a:Credentials><a:SecretAccessKey>s</a:SecretAccessKey></a:Credentials></r>`,
			[]string{"<a:SecretAccessKey>****</a:SecretAccessKey>"}, nil, 1},
		{"element with children masks its text", []Rule{{XML: "Credentials"}}, stsAssumeRole,
			[]string{"<Expiration>****</Expiration>", "<AccessKeyId>****</AccessKeyId>"}, []string{"wJalr"}, 4},
		{"remove element", []Rule{{XML: "Credentials/SessionToken", Strategy: Remove}}, stsAssumeRole,
			[]string{"<SecretAccessKey>wJalr"}, []string{"SessionToken"}, 1},
		{"remove subtree", []Rule{{XML: "Credentials", Strategy: Remove}}, stsAssumeRole,
			[]string{"</AssumedRoleUser>\n    \n  </AssumeRoleResult>"}, []string{"Credentials", "wJalr"}, 1},
		{"remove root redacts", []Rule{{XML: "/r", Strategy: Remove}}, `<r>s</r>`, []string{"<r>****</r>"}, nil, 1},
		{"entities decoded and re-escaped", []Rule{{XML: "v", Strategy: Partial, Keep: 2}},
			`<r><v>abcdef&lt;&amp;</v></r>`, []string{"<v>****&lt;&amp;</v>"}, nil, 1},
		{"cdata and comments", []Rule{{XML: "v"}},
			`<r><v><![CDATA[sec]]><!-- c -->ret</v></r>`, []string{"<r><v>****</v></r>"}, []string{"sec", "ret"}, 1},
		{"empty and self-closing untouched", []Rule{{XML: "v"}},
			`<r><v/><v></v></r>`, []string{"<r><v/><v></v></r>"}, nil, 0},
		{"mixed content masked run by run", []Rule{{XML: "v"}},
			`<r><v>one<b>two</b>three</v></r>`, []string{"<r><v>****<b>****</b>****</v></r>"}, nil, 3},
		{"attributes untouched", []Rule{{XML: "v"}},
			`<r><v a="keep">x</v></r>`, []string{`<v a="keep">****</v>`}, nil, 1},
		{"detector in text", []Rule{{Detect: DetectAWSAccessKeyID}},
			`<r><m>key AKIAIOSFODNN7EXAMPLE used</m></r>`, []string{"<m>key **** used</m>"}, nil, 1},
		{"detector secret by element name", []Rule{{Detect: DetectAWSSecretKey}}, stsAssumeRole,
			[]string{"<SecretAccessKey>****</SecretAccessKey>"}, nil, 1},
		{"detector remove", []Rule{{Detect: DetectAWSAccessKeyID, Strategy: Remove}},
			`<r><a>x</a><m>AKIAIOSFODNN7EXAMPLE</m></r>`, []string{"<r><a>x</a></r>"}, nil, 1},
		{"prolog kept", []Rule{{XML: "v"}},
			"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r><v>s</v></r>\n", []string{"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<r><v>****</v></r>\n"}, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, tt.rules...)
			out, rep, err := m.MaskXML([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := mustNew(t, Rule{XML: "x"}).MaskXML(out); err != nil {
				t.Fatalf("output is not well-formed: %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(string(out), a) {
					t.Errorf("output still has %q:\n%s", a, out)
				}
			}
			if rep.Total() != tt.count {
				t.Errorf("count = %d, want %d (%+v)", rep.Total(), tt.count, rep.Entries)
			}
		})
	}
}

func TestMaskXMLInvalid(t *testing.T) {
	m := mustNew(t, Rule{XML: "a"})
	for _, in := range []string{
		``, `   `, `<a>`, `<a></b>`, `<a></a><b></b>`, `text<a/>`, `<a/>text`, `<a>&bogus;</a>`, `<a b=c/>`,
		`</a>`, `<a><b></a></b>`, "<a>\x00</a>", `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`,
		strings.Repeat("<a>", MaxDepth+1) + strings.Repeat("</a>", MaxDepth+1),
	} {
		_, _, err := m.MaskXML([]byte(in))
		var se *SyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: err = %v, want *SyntaxError", in, err)
		}
	}
}

func TestParseXMLPath(t *testing.T) {
	tests := []struct {
		path    string
		want    []string
		wantErr string
	}{
		{"a", []string{"**", "a"}, ""},
		{"*/Credentials/SecretAccessKey", []string{"**", "*", "Credentials", "SecretAccessKey"}, ""},
		{"/a/b", []string{"a", "b"}, ""},
		{"//a", []string{"**", "a"}, ""},
		{"/a//b", []string{"a", "**", "b"}, ""},
		{"/a/**/b", []string{"a", "**", "b"}, ""},
		{"ns:a/b", []string{"**", "a", "b"}, ""},
		{"", nil, "empty"},
		{"/", nil, "names no element"},
		{"///a", nil, "three slashes"},
		{"a/", nil, "must end"},
		{"a/**", nil, "must end"},
		{"a**b", nil, "stand alone"},
		{"a b", nil, "not allowed"},
		{"a[1]", nil, "not allowed"},
		{"@x", nil, "not allowed"},
	}
	for _, tt := range tests {
		p, err := parseXMLPath(tt.path)
		switch {
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: err = %v, want %q", tt.path, err, tt.wantErr)
			}
		case err != nil:
			t.Errorf("%q: %v", tt.path, err)
		case strings.Join(p.segs, "|") != strings.Join(tt.want, "|"):
			t.Errorf("%q: segs %q, want %q", tt.path, p.segs, tt.want)
		}
	}
}
