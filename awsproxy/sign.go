package awsproxy

import (
	"net/http"
	"slices"
	"strings"
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
// unsignedHeaders, with the verifier's own canonicalRequest (which
// is cross-checked against the AWS SDK's signer in the tests). S3 paths
// are signed without a second round of escaping. The signing key comes
// from the handler's key cache.
func (h *Handler) signRequest(req *http.Request, creds aws.Credentials, service, region, payloadHash string, now time.Time) (string, error) {
	now = now.UTC()
	req.Header.Set(headerAmzDate, now.Format(amzDateLayout))
	req.Header.Del(headerAuthorization)
	if creds.SessionToken != "" {
		req.Header.Set(headerSecurityToken, creds.SessionToken)
	} else {
		req.Header.Del(headerSecurityToken)
	}
	// Content-Length travels as req.ContentLength; a header copy would be
	// stale or duplicate.
	req.Header.Del("Content-Length")
	names := make([]string, 0, len(req.Header)+2)
	names = append(names, "host")
	if req.ContentLength > 0 {
		names = append(names, "content-length")
	}
	for k := range req.Header {
		lk := strings.ToLower(k)
		if !unsignedHeaders[lk] && lk != "host" && lk != "content-length" {
			names = append(names, lk)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)

	// The request's Host is the one the transport sends (URL.Host when
	// unset); canonicalRequest reads it from req.Host.
	if req.Host == "" {
		req.Host = req.URL.Host
	}
	canonical, err := canonicalRequest(req, req.URL.EscapedPath(), service != "s3", names, payloadHash, "")
	if err != nil {
		return "", err
	}
	signed := strings.Join(names, ";")
	scope := credentialScope{AccessKeyID: creds.AccessKeyID, Date: now.Format(scopeDateLayout), Region: region, Service: service}
	key := h.upKeys.get(creds.SecretAccessKey, scope)
	sig := signString(key, stringToSign(now, scope, canonical))
	req.Header.Set(headerAuthorization, sigAlgorithm+" Credential="+creds.AccessKeyID+"/"+scope.String()+", SignedHeaders="+signed+", Signature="+sig)
	return sig, nil
}
