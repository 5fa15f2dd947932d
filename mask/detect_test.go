package mask

import (
	"strings"
	"testing"
)

func TestDetectors(t *testing.T) {
	const (
		pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1\n-----END RSA PRIVATE KEY-----"
		jwt = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImF1ZCI6Imd3In0.c2lnbmF0dXJlX2J5dGVz"
	)
	long := "IQoJb3JpZ2luX2VjE" + strings.Repeat("Ab0/", 30)
	tests := []struct {
		name string
		d    Detector
		key  string
		in   string
		want string // output text; "" means unchanged
	}{
		{"akid", DetectAWSAccessKeyID, "", "id AKIAIOSFODNN7EXAMPLE.", "id ****."},
		{"asia", DetectAWSAccessKeyID, "", "ASIAIOSFODNN7EXAMPLE", "****"},
		{"akid inside word", DetectAWSAccessKeyID, "", "xAKIAIOSFODNN7EXAMPLE", ""},
		{"akid too long", DetectAWSAccessKeyID, "", "AKIAIOSFODNN7EXAMPLEX", ""},
		{"akid lower case", DetectAWSAccessKeyID, "", "AKIAiosfodnn7example", ""},
		{"secret by key", DetectAWSSecretKey, "SecretAccessKey", secretKey, "****"},
		{"secret by label", DetectAWSSecretKey, "", "aws_secret_access_key = " + secretKey + "\n", "aws_secret_access_key = ****\n"},
		{"secret standalone random", DetectAWSSecretKey, "note", secretKey, "****"},
		{"secret hex digest kept", DetectAWSSecretKey, "sha", "da39a3ee5e6b4b0d3255bfef95601890afd80709", ""},
		{"secret in prose kept", DetectAWSSecretKey, "", "the key " + secretKey + " is here", ""},
		{"secret 41 chars kept", DetectAWSSecretKey, "secret", secretKey + "A", ""},
		{"session token by prefix", DetectAWSSessionToken, "", "token: " + long, "token: ****"},
		{"session token by key", DetectAWSSessionToken, "SessionToken", strings.Repeat("Zm9v", 30), "****"},
		{"short base64 kept", DetectAWSSessionToken, "SessionToken", "Zm9vYmFy", ""},
		{"pem", DetectPrivateKey, "", "key:\n" + pem + "\nend", "key:\n****\nend"},
		{"pem without end", DetectPrivateKey, "", "x " + "-----BEGIN PRIVATE KEY-----\nMIIE", "x ****"},
		{"public key kept", DetectPrivateKey, "", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----", ""},
		{"pgp", DetectPrivateKey, "", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nx\n-----END PGP PRIVATE KEY BLOCK-----", "****"},
		{"jwt", DetectJWT, "", "Bearer " + jwt, "Bearer ****"},
		{"jwt unsigned", DetectJWT, "", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", "****"},
		{"not jwt", DetectJWT, "", "eyJhbGciOiJub25lIn0 only", ""},
		{"url password", DetectPassword, "", "postgres://app:s3cr3t@db.internal:5432/app", "postgres://app:****@db.internal:5432/app"},
		{"url without password", DetectPassword, "", "https://user@example.com/x", ""},
		{"kv password", DetectPassword, "", "Server=db;User Id=app;Password=s3cr3t;Database=x", "Server=db;User Id=app;Password=****;Database=x"},
		{"kv pwd quoted", DetectPassword, "", `host=db pwd='s3 cr3t' user=x`, `host=db pwd=**** user=x`},
		{"json password", DetectPassword, "", `{"username":"app","password":"s3\"cr3t"}`, `{"username":"app","password":"****"}`},
		{"passport kept", DetectPassword, "", "passport=X123", ""},
		{"all", DetectAll, "", "AKIAIOSFODNN7EXAMPLE and " + jwt, "**** and ****"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := mustNew(t, Rule{Detect: tt.d})
			hits, _, _ := m.detect(nil, nil, tt.in, []byte(tt.key), nil)
			got := string(m.rewrite(nil, tt.in, hits, make([]int, 1), &hasher{}))
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if got != want {
				t.Errorf("got  %q\nwant %q", got, want)
			}
		})
	}
}

func TestDetectorsOverlapAndStrategies(t *testing.T) {
	m := mustNew(t,
		Rule{Detect: DetectAWSAccessKeyID, Strategy: Partial, Keep: 4},
		Rule{Pattern: `AKIA\w+`, Strategy: Hash},
	)
	out, rep, err := m.MaskJSON([]byte(`{"log":"AKIAIOSFODNN7EXAMPLE!"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"log":"****MPLE!"}` {
		t.Errorf("out = %s", out)
	}
	if len(rep.Entries) != 1 || rep.Entries[0].Detector != string(DetectAWSAccessKeyID) || rep.Entries[0].Count != 1 {
		t.Errorf("report = %+v", rep.Entries)
	}
}
