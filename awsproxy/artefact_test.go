package awsproxy

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/mask"
)

const testJWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJhZ2VudCIsImF1ZCI6ImdhdGVob3VzZSJ9.c2lnbmF0dXJlLWJ5dGVzLXRoYXQtbG9vay1yYW5kb20tZW5vdWdoLTEyMzQ1Njc4OTA"

func artefactMasker(t testing.TB) *mask.Masker {
	t.Helper()
	m, err := mask.New(mask.Config{Rules: []mask.Rule{{Name: "secrets", Detect: mask.DetectAll}, {Name: "pw", JSON: "Password"}}})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMaskArtefact(t *testing.T) {
	m := artefactMasker(t)
	tests := []struct {
		name, ct, ce, body string
		wantErr            bool
		wantMasked         bool
		mustNot            []string
		must               []string
	}{
		{name: "empty", ct: "application/json", body: ""},
		{name: "json secret key", ct: "application/x-amz-json-1.1", body: `{"SecretAccessKey":"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY","Name":"n"}`,
			wantMasked: true, mustNot: []string{"wJalrXUtnFEMI"}, must: []string{`"Name":"n"`}},
		{name: "xml session token", ct: "text/xml", body: `<R><Credentials><SessionToken>FwoGZXIvYXdzEBYaDExampleSessionTokenValue0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCDEF==</SessionToken></Credentials></R>`,
			wantMasked: true, mustNot: []string{"FwoGZXIvYXdzEBYaDExample"}},
		{name: "form with a web identity token", ct: "application/x-www-form-urlencoded; charset=utf-8",
			body:       "Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&WebIdentityToken=" + testJWT + "&Version=2011-06-15",
			wantMasked: true, mustNot: []string{testJWT[len(testJWT)-30:]}, must: []string{"Action=AssumeRoleWithWebIdentity", "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr", "Version=2011-06-15"}},
		{name: "form with a sensitive member", ct: "application/x-www-form-urlencoded", body: "Action=CreateLoginProfile&UserName=u&Password=plain-text-pass",
			wantMasked: true, mustNot: []string{"plain-text-pass"}},
		{name: "form with nothing to mask", ct: "application/x-www-form-urlencoded", body: "Action=ListUsers&Version=2010-05-08",
			must: []string{"Action=ListUsers&Version=2010-05-08"}},
		{name: "form with bad escapes", ct: "application/x-www-form-urlencoded", body: "a=%zz", wantErr: true},
		{name: "text", ct: "text/plain", body: "hello", wantErr: true},
		{name: "binary", ct: "application/octet-stream", body: "\x00\x01", wantErr: true},
		{name: "gzip", ct: "application/json", ce: "gzip", body: "\x1f\x8b", wantErr: true},
		{name: "cut json", ct: "application/json", body: `{"a":"b`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, masked, err := maskArtefact(m, tt.ct, tt.ce, []byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if out != nil {
					t.Fatal("output returned with an error")
				}
				return
			}
			if masked != tt.wantMasked {
				t.Fatalf("masked %v, want %v: %s", masked, tt.wantMasked, out)
			}
			for _, s := range tt.mustNot {
				if strings.Contains(string(out), s) {
					t.Errorf("output %s holds %q", out, s)
				}
			}
			for _, s := range tt.must {
				if !strings.Contains(string(out), s) {
					t.Errorf("output %s lacks %q", out, s)
				}
			}
		})
	}
}

// FuzzMaskForm: any form body either is refused or comes back as a form
// that parses, with no detected secret left in it.
func FuzzMaskForm(f *testing.F) {
	f.Add("Action=AssumeRoleWithWebIdentity&WebIdentityToken=" + testJWT)
	f.Add("a=1&a=2&b=&=c&&d")
	f.Add("Password=x%20y&k=%E2%82%AC")
	f.Add("a=%zz")
	m := artefactMasker(f)
	f.Fuzz(func(t *testing.T, body string) {
		out, masked, err := maskArtefact(m, "application/x-www-form-urlencoded", "", []byte(body))
		if err != nil {
			return
		}
		if !masked && string(out) != body {
			t.Fatalf("nothing masked, yet the body changed: %q -> %q", body, out)
		}
		if masked {
			if _, err := url.ParseQuery(string(out)); err != nil {
				t.Fatalf("masked form %q does not parse: %v", out, err)
			}
		}
		if strings.Contains(string(out), testJWT) {
			t.Fatalf("the token survived: %q", out)
		}
	})
}

// TestArtefactSensitiveInputs: the operation's sensitive input members are
// masked in artefacts at any depth, in JSON bodies and in flattened query
// forms; a body that is itself a sensitive member is withheld.
func TestArtefactSensitiveInputs(t *testing.T) {
	h, err := New(Config{Authenticator: StaticAuthenticator{}, Credentials: StaticCredentials(nil)})
	if err != nil {
		t.Fatal(err)
	}
	call := func(service, signing, op, ct string) *Call {
		c := &Call{Service: signing, Request: httptestRequest(ct)}
		c.Classification.Service = h.cfg.Catalog.Service(service)
		c.Classification.Operation = op
		return c
	}
	tests := []struct {
		name     string
		c        *Call
		body     string
		hidden   []string
		shown    []string
		withheld bool
	}{
		{name: "lambda environment (nested in the model)", c: call("lambda", "lambda", "UpdateFunctionConfiguration", "application/json"),
			body:   `{"FunctionName":"f","Environment":{"Variables":{"DB_PASSWORD":"hunter2hunter2","STRIPE_KEY":"sk_live_abcdef"}}}`,
			hidden: []string{"hunter2hunter2", "sk_live_abcdef"}, shown: []string{`"FunctionName":"f"`}},
		{name: "ec2 user data in a query form", c: call("ec2", "ec2", "RequestSpotInstances", "application/x-www-form-urlencoded"),
			body:   "Action=RequestSpotInstances&LaunchSpecification.UserData=c2VjcmV0LXVzZXItZGF0YQ%3D%3D&SpotPrice=0.1",
			hidden: []string{"c2VjcmV0LXVzZXItZGF0YQ"}, shown: []string{"SpotPrice=0.1"}},
		{name: "a sensitive payload", c: call("s3", "s3", "PutBucketEncryption", "application/xml"),
			body: `<ServerSideEncryptionConfiguration><Rule/></ServerSideEncryptionConfiguration>`, withheld: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := h.artefactBody(tt.c, true, tt.c.Request.Header.Get("Content-Type"), "", []byte(tt.body), int64(len(tt.body)))
			if (b.Withheld != "") != tt.withheld {
				t.Fatalf("withheld %q, want %v", b.Withheld, tt.withheld)
			}
			for _, s := range tt.hidden {
				if strings.Contains(b.Text, s) {
					t.Errorf("artefact %s holds %q", b.Text, s)
				}
			}
			for _, s := range tt.shown {
				if !strings.Contains(b.Text, s) {
					t.Errorf("artefact %s lacks %q", b.Text, s)
				}
			}
		})
	}
}

func httptestRequest(contentType string) *http.Request {
	r, _ := http.NewRequest("POST", "http://gw/", nil)
	r.Header.Set("Content-Type", contentType)
	return r
}
