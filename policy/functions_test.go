package policy

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestIAMLike(t *testing.T) {
	tests := []struct {
		s, pattern string
		want       bool
	}{
		{"s3:GetObject", "s3:GetObject", true},
		{"s3:GetObject", "s3:Get*", true},
		{"s3:GetObject", "s3:*", true},
		{"s3:GetObject", "*", true},
		{"", "*", true},
		{"", "", true},
		{"s3:GetObject", "s3:getobject", false},
		{"s3:GetObject", "s3:Put*", false},
		{"s3:GetObject", "s3:GetObjec?", true},
		{"s3:GetObject", "s3:GetObje?", false},
		{"s3:GetObjectAcl", "s3:Get*Acl", true},
		{"s3:GetObjectAcl", "s3:Get*Ac", false},
		{"arn:aws:s3:::prod-logs/a/b", "arn:aws:s3:::prod-*", true},
		{"arn:aws:s3:::dev-logs/prod-x", "arn:aws:s3:::prod-*", false},
		{"arn:aws:s3:::Prod-logs", "arn:aws:s3:::prod-*", false},
		{"arn:aws:ec2:eu-west-1:111122223333:instance/i-1", "arn:aws:ec2:*:111122223333:*", true},
		{"arn:aws:ec2:eu-west-1:444455556666:instance/i-1", "arn:aws:ec2:*:111122223333:*", false},
		{"aaaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*a*b", true},
		{"aaaaaaaaaaaaaaaaaaaaaaaaa", "*a*a*a*a*a*a*b", false},
		{"héllo", "h?llo", true},
		{"héllo", "h??llo", false},
	}
	for _, tt := range tests {
		t.Run(tt.s+"~"+tt.pattern, func(t *testing.T) {
			if got := iamLike(tt.s, tt.pattern); got != tt.want {
				t.Errorf("iamLike(%q, %q) = %v, want %v", tt.s, tt.pattern, got, tt.want)
			}
			if got := globRegexp(tt.pattern).MatchString(tt.s); got != tt.want {
				t.Errorf("reference disagrees: %v", got)
			}
		})
	}
}

// globRegexp is the reference semantics of iamLike.
func globRegexp(p string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)^")
	for _, r := range p {
		switch r {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

func FuzzIAMLike(f *testing.F) {
	f.Add("s3:GetObject", "s3:Get*")
	f.Add("arn:aws:s3:::prod-logs/a", "arn:aws:s3:::prod-*/?")
	f.Add("aaaa", "*a*?a")
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 256 || len(p) > 64 {
			return
		}
		if !utf8Valid(s) || !utf8Valid(p) {
			iamLike(s, p) // must not panic
			return
		}
		if got, want := iamLike(s, p), globRegexp(p).MatchString(s); got != want {
			t.Fatalf("iamLike(%q, %q) = %v, reference %v", s, p, got, want)
		}
	})
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestCheckIAMPattern(t *testing.T) {
	tests := []struct {
		p       string
		wantErr string
	}{
		{"*", ""},
		{"s3:GetObject", ""},
		{"s3:*", ""},
		{"*:Get*", ""},
		{"s3-object-lambda:Write?etObjectResponse", ""},
		{"arn:aws:s3:::prod-*", ""},
		{"arn:aws:iam::111122223333:role/app:x", ""},
		{"arn:*:*:*:*:*", ""},
		{"", "empty pattern"},
		{"s3:getObject", "upper-case"},
		{"S3:GetObject", "service prefix"},
		{"s3:Get_Object", "may hold only letters"},
		{"s3:", "empty service or action"},
		{":Get", "empty service or action"},
		{"GetObject", "neither an IAM action"},
		{"arn:aws:s3:::", "empty resource"},
		{"arn::s3:::x", "empty partition or service"},
		{"arn:aws:s3", "six parts"},
		{"arn:aws:s3:::a b", "white space"},
	}
	for _, tt := range tests {
		t.Run(tt.p, func(t *testing.T) {
			err := checkIAMPattern(tt.p)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkIAMPattern(%q) = %v, want %q", tt.p, err, tt.wantErr)
			}
		})
	}
}

func TestWindow(t *testing.T) {
	if _, err := time.LoadLocation("Europe/Berlin"); err != nil {
		t.Skip("no zone database:", err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	tests := []struct {
		window, zone, at string
		want             bool
		wantErr          string
	}{
		{"Mon-Fri 09:00-18:00", "Europe/Berlin", "2026-01-05T08:00:00Z", true, ""},  // Mon 09:00 CET
		{"Mon-Fri 09:00-18:00", "Europe/Berlin", "2026-01-05T07:59:59Z", false, ""}, // Mon 08:59
		{"Mon-Fri 09:00-18:00", "Europe/Berlin", "2026-01-05T17:00:00Z", false, ""}, // Mon 18:00, end exclusive
		{"Mon-Fri 09:00-18:00", "UTC", "2026-01-05T17:30:00Z", true, ""},
		{"Mon-Fri 09:00-18:00", "Europe/Berlin", "2026-01-10T10:00:00Z", false, ""}, // Saturday
		{"Sat,Sun 00:00-24:00", "UTC", "2026-01-10T23:59:00Z", true, ""},
		{"Fri-Mon 10:00-11:00", "UTC", "2026-01-11T10:30:00Z", true, ""}, // Sunday, wrapping range
		{"Fri-Mon 10:00-11:00", "UTC", "2026-01-07T10:30:00Z", false, ""},
		{"Mon 22:00-06:00", "UTC", "2026-01-05T23:00:00Z", true, ""},  // Monday night
		{"Mon 22:00-06:00", "UTC", "2026-01-06T05:59:00Z", true, ""},  // Tuesday morning, opened Monday
		{"Mon 22:00-06:00", "UTC", "2026-01-05T05:00:00Z", false, ""}, // Monday morning belongs to Sunday
		{"09:00-17:00", "UTC", "2026-01-10T12:00:00Z", true, ""},
		{"* 09:00-17:00", "UTC", "2026-01-10T12:00:00Z", true, ""},
		{"mon-fri 09:00-17:00", "UTC", "2026-01-05T12:00:00Z", true, ""},
		{"Mon-Fri 9:00-17:00", "UTC", "", false, `bad time "9:00"`},
		{"Mon-Fri 09:00-25:00", "UTC", "", false, "bad time"},
		{"Mon-Fri 09:00-09:00", "UTC", "", false, "equal"},
		{"Mon-Fri 24:00-09:00", "UTC", "", false, "cannot start at 24:00"},
		{"Mon-Fri", "UTC", "", false, `bad time "Mon"`},
		{"Mon-Fri 0900", "UTC", "", false, "want a time range"},
		{"Mon-Fri 09:00 18:00", "UTC", "", false, "want"},
		{"Mo-Fr 09:00-18:00", "UTC", "", false, `unknown day "Mo"`},
	}
	for _, tt := range tests {
		t.Run(tt.window+"@"+tt.at, func(t *testing.T) {
			w, err := parseWindow(tt.window)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			loc, err := loadZone(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			if got := w.contains(at(tt.at), loc); got != tt.want {
				t.Errorf("contains = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHelpersInCEL exercises the helpers and the declared variables
// through real conditions.
func TestHelpersInCEL(t *testing.T) {
	tests := []struct {
		when string
		want bool
	}{
		{`request.action.iamLike("s3:Get*")`, true},
		{`iamLike(request.resource, "arn:aws:s3:::prod-*")`, true},
		{`request.resources.exists(r, r.iamLike("arn:aws:s3:::dev-*"))`, false},
		{`request.sourceIp.inCidr("10.0.0.0/8")`, true},
		{`request.sourceIp.inCidr(["192.168.0.0/16", "10.1.0.0/16"])`, true},
		{`request.sourceIp.inCidr("192.168.0.0/16")`, false},
		{`request.userAgent.inCidr("0.0.0.0/0")`, false}, // not an address: in no network
		{`"::ffff:10.1.2.3".inCidr("10.0.0.0/8")`, true},
		{`request.time.inWindow("Mon-Fri 09:00-18:00", "Europe/Berlin")`, true},
		{`request.time.inWindow("Sat,Sun 00:00-24:00")`, false},
		{`request.time.inWindow(principal.claims.window)`, true}, // not literal: parsed at evaluation
		{`"mcp-agents" in principal.groups && principal.role == "agents"`, true},
		{`principal.claims.tier == "gold" && principal.email.endsWith("@example.com")`, true},
		{`principal.clientId == "mcp-server" && principal.issuer.startsWith("https://")`, true},
		{`request.params.bucket == "prod-logs" && request.params.maxKeys > 100`, true},
		{`request.params.?missing.orValue("x") == "x"`, true},
		{`has(request.params.bucket) && !has(request.params.missing)`, true},
		{`sets.contains(principal.groups, ["mcp-agents"])`, true},
		{`request.userAgent.lowerAscii().contains("sdk")`, true},
		{`mcp.present && mcp.tool == "read_file" && mcp.arguments.path == "/etc/hosts" && mcp.sessionId == "s-1"`, true},
		{`request.method == "GET" && request.path == "/prod-logs" && request.region == "eu-central-1"`, true},
		{`request.operation == "GetObject" && request.readOnly && !request.credentialIssuing && !request.returnsSecrets`, true},
		{`request.time > timestamp("2026-01-01T00:00:00Z") && request.time.getDayOfWeek("UTC") == 1`, true},
		{`request.service == "s3"`, true},
	}
	in := agentInput("s3:GetObject", "arn:aws:s3:::prod-logs/k")
	in.Role = "agents"
	in.Principal.ClientID = "mcp-server"
	in.Principal.Email = "agent@example.com"
	in.Principal.Claims = map[string]any{"tier": "gold", "window": "Mon 09:00-12:00"}
	in.Request.Params = map[string]any{"bucket": "prod-logs", "maxKeys": int64(1000)}
	in.Request.UserAgent = "aws-sdk-go-v2/1.30"
	in.Request.Method, in.Request.Path, in.Request.Region = "GET", "/prod-logs", "eu-central-1"
	in.Request.Operation, in.Request.ReadOnly = "GetObject", true
	in.MCP = &MCP{SessionID: "s-1", Tool: "read_file", Arguments: map[string]any{"path": "/etc/hosts"}}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			p := mustCompile(t, rulesYAML([4]string{"r", "allow", strings.ReplaceAll(tt.when, "'", "''"), ""}), Options{})
			d := p.Decide(in)
			if len(d.Errors) > 0 {
				t.Fatalf("evaluation error: %v", d.Errors[0].Err)
			}
			if got := d.Effect == Allow; got != tt.want {
				t.Errorf("matched = %v, want %v", got, tt.want)
			}
		})
	}
	// Without an MCP context, mcp.present is false and its fields are empty.
	in.MCP = nil
	p := mustCompile(t, rulesYAML([4]string{"r", "allow", `!mcp.present && mcp.tool == "" && size(mcp.arguments) == 0`, ""}), Options{})
	if d := p.Decide(in); d.Effect != Allow {
		t.Errorf("mcp without context: %s", d.Explain())
	}
}
