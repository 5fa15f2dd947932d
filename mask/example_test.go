package mask_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"

	"github.com/gatehouse-dev/gatehouse/mask"
)

// Masking a tool result (any JSON or XML body) with rules compiled once.
func ExampleMasker_Mask() {
	m, err := mask.New(mask.Config{Rules: []mask.Rule{
		{Name: "db-password", JSON: "db.password"},
		{Name: "keys", JSON: "keys.#.id", Strategy: mask.Partial, Keep: 4},
		{Name: "credentials", Detect: mask.DetectAll},
	}})
	if err != nil {
		panic(err)
	}
	out, rep, err := m.Mask("application/json", []byte(
		`{"db":{"host":"db.internal","password":"hunter2"},"keys":[{"id":"AKIAIOSFODNN7EXAMPLE"}],"log":"dsn=postgres://app:s3cr3t@db/app"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(out))
	for _, e := range rep.Entries {
		fmt.Println(e.Rule, e.Strategy, e.Count)
	}
	// Output:
	// {"db":{"host":"db.internal","password":"****"},"keys":[{"id":"****MPLE"}],"log":"dsn=postgres://app:****@db/app"}
	// db-password redact 1
	// keys partial 1
	// credentials redact 1
}

// Masking AWS responses in a reverse proxy's ModifyResponse hook with the
// built-in aws-secrets profile. The operation would come from the
// gateway's classification of the request.
func ExampleMasker_MaskResponse() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		io.WriteString(w, `{"Name":"db","SecretString":"{\"password\":\"hunter2\"}"}`)
	}))
	defer upstream.Close()

	profile, err := mask.CompileProfile(mask.ProfileAWSSecrets, mask.Config{})
	if err != nil {
		panic(err)
	}
	target, _ := url.Parse(upstream.URL)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(target) },
		ModifyResponse: func(resp *http.Response) error {
			m := profile.Masker("secretsmanager", "GetSecretValue")
			if m == nil {
				return nil // nothing to mask: stream as is
			}
			rep, err := m.MaskResponse(resp)
			if err != nil {
				return err // answered by ErrorHandler; never the unmasked body
			}
			fmt.Println("audit:", rep.Entries[0].Rule, rep.Entries[0].Strategy, rep.Entries[0].Count)
			return nil
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			status := http.StatusBadGateway
			if errors.Is(err, mask.ErrTooLarge) {
				status = http.StatusInternalServerError
			}
			http.Error(w, "masking failed", status)
		},
	}
	gateway := httptest.NewServer(proxy)
	defer gateway.Close()

	resp, err := http.Post(gateway.URL, "application/x-amz-json-1.1", nil)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(string(body))
	// Output:
	// audit: secret-string redact 1
	// {"Name":"db","SecretString":"****"}
}
