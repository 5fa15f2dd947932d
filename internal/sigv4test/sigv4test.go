// Package sigv4test checks AWS Signature Version 4 signatures in tests the
// way an AWS endpoint does: it rebuilds a received request from the headers
// its signature claims to cover, signs that again with the AWS SDK's own
// signer and the expected credentials, and compares. Test upstreams use it
// to prove that what the gateway sends would be accepted by AWS.
package sigv4test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Auth holds the components of a SigV4 Authorization header.
type Auth struct {
	AccessKeyID, Date, Region, Service string
	SignedHeaders, Signature           string
}

// ParseAuthorization splits an "AWS4-HMAC-SHA256 Credential=...,
// SignedHeaders=..., Signature=..." header.
func ParseAuthorization(v string) (Auth, error) {
	var a Auth
	rest, ok := strings.CutPrefix(v, "AWS4-HMAC-SHA256 ")
	if !ok {
		return a, fmt.Errorf("authorization %q is not AWS4-HMAC-SHA256", v)
	}
	for field := range strings.SplitSeq(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(field), "=")
		switch k {
		case "Credential":
			scope := strings.Split(val, "/")
			if len(scope) != 5 || scope[4] != "aws4_request" {
				return a, fmt.Errorf("credential %q is not a SigV4 scope", val)
			}
			a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
		case "SignedHeaders":
			a.SignedHeaders = val
		case "Signature":
			a.Signature = val
		}
	}
	if a.AccessKeyID == "" || a.SignedHeaders == "" || a.Signature == "" {
		return a, fmt.Errorf("authorization %q lacks a component", v)
	}
	return a, nil
}

// Verify checks that r, received by a server with the given body, carries a
// header-based SigV4 signature by creds over the body's SHA-256. Only the
// headers the signature lists are used to rebuild the request, so a header
// the signer left out cannot influence the result. A session token, when
// creds has one, must have been signed.
func Verify(r *http.Request, body []byte, creds aws.Credentials) (Auth, error) {
	got, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		return got, err
	}
	if got.AccessKeyID != creds.AccessKeyID {
		return got, fmt.Errorf("signed with access key %q, want %q", got.AccessKeyID, creds.AccessKeyID)
	}
	signingTime, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return got, fmt.Errorf("X-Amz-Date: %v", err)
	}
	// r.RequestURI is the request target exactly as it came off the wire.
	rebuilt, err := http.NewRequest(r.Method, "http://"+r.Host+r.RequestURI, bytes.NewReader(body))
	if err != nil {
		return got, err
	}
	rebuilt.ContentLength = 0
	for name := range strings.SplitSeq(got.SignedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			rebuilt.ContentLength = r.ContentLength
		default:
			v := r.Header.Values(name)
			if len(v) == 0 {
				return got, fmt.Errorf("signed header %q was not received", name)
			}
			rebuilt.Header[http.CanonicalHeaderKey(name)] = v
		}
	}
	sum := sha256.Sum256(body)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = got.Service == "s3" })
	if err := signer.SignHTTP(context.Background(), creds, rebuilt, hex.EncodeToString(sum[:]), got.Service, got.Region, signingTime); err != nil {
		return got, err
	}
	want, err := ParseAuthorization(rebuilt.Header.Get("Authorization"))
	if err != nil {
		return got, err
	}
	if want.Date != got.Date || want.SignedHeaders != got.SignedHeaders || want.Signature != got.Signature {
		return got, fmt.Errorf("signature mismatch: received %s over %s (scope date %s), computed %s over %s",
			got.Signature, got.SignedHeaders, got.Date, want.Signature, want.SignedHeaders)
	}
	return got, nil
}
