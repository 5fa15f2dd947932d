package awsproxy_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
)

// awsCLIPath is the AWS CLI v2. Another (v1) aws may come earlier in PATH,
// so the path is fixed.
const awsCLIPath = "/usr/bin/aws"

// cliRunner runs the AWS CLI against the gateway with an environment of its
// own: the gateway key, empty config files, a private HOME and no proxies.
type cliRunner struct {
	t        *testing.T
	endpoint string
	env      []string
}

func newCLIRunner(t *testing.T, h *harness, akid, secret string) *cliRunner {
	t.Helper()
	if _, err := os.Stat(awsCLIPath); err != nil {
		t.Skipf("AWS CLI v2 not installed at %s (%v); install it to run the CLI compatibility tests", awsCLIPath, err)
	}
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	configFile := filepath.Join(dir, "config")
	credsFile := filepath.Join(dir, "credentials")
	for _, f := range []string{configFile, credsFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{
		"PATH=/usr/bin:/bin",
		"HOME=" + home,
		"AWS_ACCESS_KEY_ID=" + akid,
		"AWS_SECRET_ACCESS_KEY=" + secret,
		"AWS_DEFAULT_REGION=" + testRegion,
		"AWS_CONFIG_FILE=" + configFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + credsFile,
		"AWS_PAGER=",
		"AWS_EC2_METADATA_DISABLED=true",
		// One attempt per request: a retry must not hide a refusal.
		"AWS_RETRY_MODE=standard",
		"AWS_MAX_ATTEMPTS=1",
	}
	if cert := h.Gateway.Certificate(); cert != nil {
		// The gateway's self-signed certificate, trusted by this CLI
		// process only.
		caFile := filepath.Join(dir, "gateway-ca.pem")
		if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
			t.Fatal(err)
		}
		env = append(env, "AWS_CA_BUNDLE="+caFile)
	}
	return &cliRunner{t: t, endpoint: h.Gateway.URL, env: env}
}

// run runs `aws --endpoint-url <gateway> args...` and returns its output.
func (c *cliRunner) run(args ...string) (stdout, stderr string, err error) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, awsCLIPath, append([]string{"--endpoint-url", c.endpoint, "--no-cli-pager"}, args...)...)
	cmd.Env = c.env
	cmd.Dir = c.t.TempDir()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

// mustRun runs the CLI and fails the test if it exits non-zero.
func (c *cliRunner) mustRun(args ...string) string {
	c.t.Helper()
	start := time.Now()
	out, errOut, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("aws %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, out, errOut)
	}
	c.t.Logf("aws %s (%v): %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	return out
}

func cliFileSHA256(t *testing.T, path string) (string, int64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil)), n
}

// s3Operation names the S3 operation of a path-style call, enough to tell
// the CLI's requests apart.
func s3Operation(c *awsproxy.Call) string {
	r := c.Request
	q := r.URL.Query()
	path := strings.Trim(r.URL.Path, "/")
	objectLevel := strings.Contains(path, "/")
	switch {
	case r.Method == http.MethodGet && path == "":
		return "ListBuckets"
	case r.Method == http.MethodPut && !objectLevel:
		return "CreateBucket"
	case r.Method == http.MethodDelete && !objectLevel:
		return "DeleteBucket"
	case r.Method == http.MethodGet && !objectLevel && q.Has("list-type"):
		return "ListObjectsV2"
	case r.Method == http.MethodGet && !objectLevel:
		return "ListObjects"
	case r.Method == http.MethodHead && !objectLevel:
		return "HeadBucket"
	case r.Method == http.MethodPost && q.Has("uploads"):
		return "CreateMultipartUpload"
	case r.Method == http.MethodPut && q.Has("partNumber"):
		return "UploadPart"
	case r.Method == http.MethodPost && q.Has("uploadId"):
		return "CompleteMultipartUpload"
	case r.Method == http.MethodDelete && q.Has("uploadId"):
		return "AbortMultipartUpload"
	case r.Method == http.MethodPut:
		return "PutObject"
	case r.Method == http.MethodHead:
		return "HeadObject"
	case r.Method == http.MethodGet && r.Header.Get("Range") != "":
		return "GetObject(range)"
	case r.Method == http.MethodGet:
		return "GetObject"
	case r.Method == http.MethodDelete:
		return "DeleteObject"
	}
	return r.Method + " " + r.URL.Path
}

// payloadClass names a Call.PayloadHash: one of the payload constants, the
// empty-body hash, or "sha256" for the hash of a non-empty body.
func payloadClass(hash string) string {
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	switch {
	case hash == empty:
		return "sha256(empty)"
	case len(hash) == 64 && strings.Trim(hash, "0123456789abcdef") == "":
		return "sha256"
	}
	return hash
}

// payloadModes counts the payload modes of the calls by S3 operation.
func payloadModes(calls []*awsproxy.Call) map[string]map[string]int {
	modes := map[string]map[string]int{}
	for _, c := range calls {
		op := s3Operation(c)
		if modes[op] == nil {
			modes[op] = map[string]int{}
		}
		modes[op][payloadClass(c.PayloadHash)]++
	}
	return modes
}

// formatModes renders payloadModes as sorted "Op: mode xN, ..." lines.
func formatModes(modes map[string]map[string]int) string {
	var lines []string
	for op, m := range modes {
		var parts []string
		for mode, n := range m {
			parts = append(parts, fmt.Sprintf("%s x%d", mode, n))
		}
		slices.Sort(parts)
		lines = append(lines, op+": "+strings.Join(parts, ", "))
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// TestCLIThroughGateway drives the real AWS CLI v2 through the gateway:
// bucket creation, a 50 MiB multipart upload and a ranged multi-part
// download (compared by SHA-256), listings, delete and bucket removal,
// over plain HTTP and over HTTPS.
func TestCLIThroughGateway(t *testing.T) {
	data := randomBytes(50<<20, 50)
	sum := sha256.Sum256(data)
	wantSum := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name string
		tls  bool
		// wantUploadModes are the payload modes the CLI may use for
		// PutObject and UploadPart on this transport.
		wantUploadModes []string
	}{
		// Over HTTP botocore signs the SHA-256 of each body.
		{name: "http", tls: false, wantUploadModes: []string{"sha256"}},
		// Over HTTPS CLI 2.9 skips payload signing; newer ones (2.23+) send
		// CRC checksums in an unsigned aws-chunked trailer.
		{name: "https", tls: true, wantUploadModes: []string{"sha256", awsproxy.PayloadUnsigned, awsproxy.PayloadStreamingUnsigned}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{TLS: tc.tls})
			cli := newCLIRunner(t, h, clientAKID, clientSecret)
			dir := t.TempDir()
			src := filepath.Join(dir, "upload.bin")
			if err := os.WriteFile(src, data, 0o600); err != nil {
				t.Fatal(err)
			}
			small := filepath.Join(dir, "small.txt")
			smallData := []byte("one PutObject, below the CLI's multipart threshold\n")
			if err := os.WriteFile(small, smallData, 0o600); err != nil {
				t.Fatal(err)
			}
			bucket := "cli-" + tc.name
			key := "data/big file+ü.bin"
			objURL := "s3://" + bucket + "/" + key

			if out := cli.mustRun("s3", "mb", "s3://"+bucket); !strings.Contains(out, "make_bucket: "+bucket) {
				t.Fatalf("s3 mb output %q", out)
			}
			start := time.Now()
			cli.mustRun("s3", "cp", "--no-progress", src, objURL)
			t.Logf("50 MiB upload took %v", time.Since(start).Round(time.Millisecond))
			cli.mustRun("s3", "cp", "--no-progress", small, "s3://"+bucket+"/small.txt")
			if out := cli.mustRun("s3", "ls"); !strings.Contains(out, " "+bucket+"\n") {
				t.Fatalf("s3 ls lacks the bucket: %q", out)
			}
			if out := cli.mustRun("s3", "ls", "s3://"+bucket); !strings.Contains(out, "PRE data/") || !strings.Contains(out, fmt.Sprintf(" %d small.txt", len(smallData))) {
				t.Fatalf("s3 ls s3://%s lacks the prefix: %q", bucket, out)
			}
			if out := cli.mustRun("s3", "ls", "s3://"+bucket+"/data/"); !strings.Contains(out, fmt.Sprintf(" %d big file+ü.bin", len(data))) {
				t.Fatalf("s3 ls s3://%s/data/ lacks the object: %q", bucket, out)
			}
			dst := filepath.Join(dir, "download.bin")
			start = time.Now()
			cli.mustRun("s3", "cp", "--no-progress", objURL, dst)
			t.Logf("50 MiB download took %v", time.Since(start).Round(time.Millisecond))
			if got, n := cliFileSHA256(t, dst); got != wantSum || n != int64(len(data)) {
				t.Fatalf("downloaded %d bytes with sha256 %s, want %d bytes with %s", n, got, len(data), wantSum)
			}
			if out := cli.mustRun("s3", "cp", "s3://"+bucket+"/small.txt", "-"); out != string(smallData) {
				t.Fatalf("s3 cp to stdout = %q, want %q", out, smallData)
			}
			for _, u := range []string{objURL, "s3://" + bucket + "/small.txt"} {
				if out := cli.mustRun("s3", "rm", u); !strings.Contains(out, "delete: "+u) {
					t.Fatalf("s3 rm output %q", out)
				}
			}
			if out := cli.mustRun("s3", "rb", "s3://"+bucket); !strings.Contains(out, "remove_bucket: "+bucket) {
				t.Fatalf("s3 rb output %q", out)
			}
			if out := cli.mustRun("s3", "ls"); strings.Contains(out, bucket) {
				t.Fatalf("bucket still listed after rb: %q", out)
			}

			calls := h.Calls()
			modes := payloadModes(calls)
			t.Logf("payload modes the CLI sent over %s:\n%s", tc.name, formatModes(modes))
			var uploaded int64
			for _, c := range calls {
				if c.Err != nil {
					t.Errorf("%s %s refused: %v", c.Request.Method, c.Request.URL, c.Err)
				}
				if c.Session == nil || c.Session.Principal.String() != testPrincipal.String() {
					t.Errorf("%s %s not tied to the test principal", c.Request.Method, c.Request.URL)
				}
				if s3Operation(c) == "UploadPart" {
					uploaded += c.BytesIn
				}
			}
			if modes["CreateMultipartUpload"] == nil || modes["CompleteMultipartUpload"] == nil || len(modes["UploadPart"]) == 0 || len(modes["PutObject"]) == 0 {
				t.Fatalf("the CLI did not upload 50 MiB as multipart:\n%s", formatModes(modes))
			}
			if uploaded < int64(len(data)) {
				t.Errorf("gateway read %d bytes of parts, want at least %d", uploaded, len(data))
			}
			for _, op := range []string{"PutObject", "UploadPart"} {
				for mode := range modes[op] {
					if !slices.Contains(tc.wantUploadModes, mode) {
						t.Errorf("%s sent with payload mode %q, want one of %q", op, mode, tc.wantUploadModes)
					}
				}
			}
		})
	}
}

// TestCLIRefused checks that the CLI gets the AWS error a refused request
// deserves and that nothing reaches the upstream.
func TestCLIRefused(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	small := filepath.Join(t.TempDir(), "small.txt")
	if err := os.WriteFile(small, []byte("never uploaded"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		akid       string
		secret     string
		args       []string
		wantStderr string
	}{
		{name: "wrong secret ls", akid: clientAKID, secret: "not-the-client-secret", args: []string{"s3", "ls"}, wantStderr: "SignatureDoesNotMatch"},
		{name: "wrong secret mb", akid: clientAKID, secret: "not-the-client-secret", args: []string{"s3", "mb", "s3://refused"}, wantStderr: "SignatureDoesNotMatch"},
		{name: "wrong secret upload", akid: clientAKID, secret: "not-the-client-secret", args: []string{"s3", "cp", small, "s3://refused/small.txt"}, wantStderr: "SignatureDoesNotMatch"},
		{name: "unknown key", akid: "GHNOSUCHKEY", secret: clientSecret, args: []string{"s3", "ls"}, wantStderr: "InvalidAccessKeyId"},
		{name: "upstream key used directly", akid: upAKID, secret: upSecret, args: []string{"s3", "ls"}, wantStderr: "InvalidAccessKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cli := newCLIRunner(t, h, tc.akid, tc.secret)
			before := h.S3Hits.Load()
			out, errOut, err := cli.run(tc.args...)
			if err == nil {
				t.Fatalf("aws %s succeeded: %s", strings.Join(tc.args, " "), out)
			}
			if !strings.Contains(errOut, tc.wantStderr) {
				t.Fatalf("aws %s stderr = %q, want %s", strings.Join(tc.args, " "), errOut, tc.wantStderr)
			}
			if got := h.S3Hits.Load(); got != before {
				t.Fatalf("%d refused requests reached the upstream", got-before)
			}
			t.Logf("aws %s: %v: %s", strings.Join(tc.args, " "), err, strings.TrimSpace(errOut))
		})
	}
}
