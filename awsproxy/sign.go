package awsproxy

import (
	"encoding/hex"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// unsignedHeaders are left out of the gateway's signature, as the AWS SDKs
// leave them out: they are rewritten on the way (User-Agent, tracing) or
// belong to the connection.
var unsignedHeaders = map[string]bool{
	"authorization": true, "user-agent": true, "x-amzn-trace-id": true, "expect": true,
	"transfer-encoding": true, "connection": true,
}

// signRequest signs an outbound request with SigV4 (header-based) for the
// gateway's credentials and returns the signature. It sets X-Amz-Date and,
// for temporary credentials, X-Amz-Security-Token, and signs Host, the
// length of a non-empty body and every other header except those in
// unsignedHeaders, with the verifier's own appendCanonicalRequest (which
// is cross-checked against the AWS SDK's signer in the tests). S3 paths
// are signed without a second round of escaping. The signing key comes
// from the handler's key cache.
func (h *Handler) signRequest(req *http.Request, creds aws.Credentials, service, region, payloadHash string, now time.Time) (string, error) {
	now = now.UTC()
	var db [len(amzDateLayout)]byte
	amzDate := string(now.AppendFormat(db[:0], amzDateLayout))
	req.Header[headerAmzDate] = []string{amzDate}
	delete(req.Header, headerAuthorization)
	if creds.SessionToken != "" {
		req.Header[headerSecurityToken] = []string{creds.SessionToken}
	} else {
		delete(req.Header, headerSecurityToken)
	}
	// Content-Length travels as req.ContentLength; a header copy would be
	// stale or duplicate.
	delete(req.Header, "Content-Length")
	var stack [32]string
	names := append(stack[:0], "host")
	if req.ContentLength > 0 {
		names = append(names, "content-length")
	}
	for k := range req.Header {
		lk := lowerHeader(k)
		if !unsignedHeaders[lk] && lk != "host" && lk != "content-length" {
			names = append(names, lk)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	// The request's Host is the one the transport sends (URL.Host when
	// unset); appendCanonicalRequest reads it from req.Host.
	if req.Host == "" {
		req.Host = req.URL.Host
	}
	scope := credentialScope{AccessKeyID: creds.AccessKeyID, Date: amzDate[:len(scopeDateLayout)], Region: region, Service: service}
	key := h.upKeys.get(creds.SecretAccessKey, scope)
	sig, err := signature(key, now, scope, func(b []byte) ([]byte, error) {
		return appendCanonicalRequest(b, req, req.URL.EscapedPath(), service != "s3", names, payloadHash, "")
	})
	if err != nil {
		return "", err
	}
	var ab [512]byte
	authz := append(ab[:0], sigAlgorithm+" Credential="...)
	authz = append(authz, creds.AccessKeyID...)
	authz = append(authz, '/')
	authz = scope.appendTo(authz)
	authz = append(authz, ", SignedHeaders="...)
	for i, n := range names {
		if i > 0 {
			authz = append(authz, ';')
		}
		authz = append(authz, n...)
	}
	authz = append(authz, ", Signature="...)
	authz = hex.AppendEncode(authz, sig[:])
	v := string(authz)
	req.Header[headerAuthorization] = []string{v}
	return v[len(v)-2*len(sig):], nil
}
