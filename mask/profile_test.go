package mask

import (
	"errors"
	"testing"
)

func TestProfile(t *testing.T) {
	ops, err := Profile(ProfileAWSSecrets)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, op := range ops {
		k := op.Service + " " + op.Operation
		if seen[k] {
			t.Errorf("duplicate entry %s", k)
		}
		seen[k] = true
		if _, err := New(Config{Rules: op.Rules}); err != nil {
			t.Errorf("%s: %v", k, err)
		}
		for _, r := range op.Rules {
			if r.Name == "" {
				t.Errorf("%s: unnamed rule", k)
			}
		}
	}
	// A fresh copy each time.
	ops[0].Rules[0].JSON = "changed"
	again, _ := Profile(ProfileAWSSecrets)
	if again[0].Rules[0].JSON == "changed" {
		t.Error("Profile shares state between calls")
	}
	if _, err := Profile("nope"); err == nil {
		t.Error("unknown profile accepted")
	}
	p, err := CompileProfile(ProfileAWSSecrets, Config{Rules: []Rule{{Detect: DetectPrivateKey}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range [][2]string{
		{"cognito-identity", "GetCredentialsForIdentity"},
		{"Cognito Identity", "getcredentialsforidentity"},
		{"cognitoidentity", "GetCredentialsForIdentity"},
		{"Secrets Manager", "GetSecretValue"},
		{"ecr-public", "GetAuthorizationToken"},
	} {
		if p.Masker(names[0], names[1]) == nil || ProfileRules(ProfileAWSSecrets, names[0], names[1]) == nil {
			t.Errorf("no rules for %q %q", names[0], names[1])
		}
	}
	if p.Masker("s3", "ListBuckets") != nil || ProfileRules(ProfileAWSSecrets, "s3", "ListBuckets") != nil {
		t.Error("rules for s3 ListBuckets")
	}
	// S3 object content: detectors, whatever the format, text included.
	obj := p.Masker("s3", "GetObject")
	out, rep, err := obj.Mask("text/plain", []byte("[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"))
	if err != nil || string(out) != "[default]\naws_access_key_id = ****MPLE\naws_secret_access_key = ****\n" || rep.Format != Text {
		t.Errorf("s3 GetObject text: %q %+v %v", out, rep, err)
	}
	if _, _, err := obj.Mask("application/zip", []byte("PK\x03\x04")); !errors.Is(err, ErrUnmaskable) {
		t.Errorf("s3 GetObject binary: %v", err)
	}
	// cfg.Rules are added to every operation.
	out, _, err = p.Masker("ecs", "DescribeTaskDefinition").MaskJSON([]byte(`{"k":"-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----"}`))
	if err != nil || string(out) != `{"k":"****"}` {
		t.Errorf("extra rule not applied: %s %v", out, err)
	}
}
