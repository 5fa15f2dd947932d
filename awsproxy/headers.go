package awsproxy

import (
	"net/textproto"
	"strings"
)

// SigV4 names headers in lower case; net/http keys them in canonical
// form. Converting between the two allocates, once per header and request,
// on both the verifying and the signing side; these tables answer for the
// headers that AWS clients send on nearly every request.
var (
	canonicalOf = map[string]string{} // lower -> canonical
	lowerOf     = map[string]string{} // canonical -> lower
)

func init() {
	for _, k := range []string{
		"Accept", "Accept-Encoding", "Amz-Sdk-Invocation-Id", "Amz-Sdk-Request", "Authorization",
		"Cache-Control", "Connection", "Content-Disposition", "Content-Encoding", "Content-Language",
		"Content-Length", "Content-Md5", "Content-Type", "Date", "Expect", "Expires", "Host",
		"If-Match", "If-Modified-Since", "If-None-Match", "If-Unmodified-Since", "Range",
		"Smithy-Protocol", "Transfer-Encoding", "User-Agent",
		"X-Amz-Acl", "X-Amz-Api-Version", "X-Amz-Checksum-Algorithm", "X-Amz-Checksum-Crc32",
		"X-Amz-Checksum-Crc32c", "X-Amz-Checksum-Crc64nvme", "X-Amz-Checksum-Mode",
		"X-Amz-Checksum-Sha1", "X-Amz-Checksum-Sha256", "X-Amz-Content-Sha256", "X-Amz-Copy-Source",
		"X-Amz-Date", "X-Amz-Decoded-Content-Length", "X-Amz-Expected-Bucket-Owner",
		"X-Amz-Request-Payer", "X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Security-Token",
		"X-Amz-Server-Side-Encryption", "X-Amz-Storage-Class", "X-Amz-Target", "X-Amz-Trailer",
		"X-Amz-User-Agent", "X-Amzn-Trace-Id", "X-Gatehouse-Mcp-Session", "X-Gatehouse-Mcp-Tool",
	} {
		lk := strings.ToLower(k)
		canonicalOf[lk] = k
		lowerOf[k] = lk
	}
}

// headerKey returns the http.Header key of a lower-case SigV4 header name.
func headerKey(lower string) string {
	if k, ok := canonicalOf[lower]; ok {
		return k
	}
	return textproto.CanonicalMIMEHeaderKey(lower)
}

// lowerHeader returns the SigV4 (lower-case) name of an http.Header key.
func lowerHeader(key string) string {
	if lk, ok := lowerOf[key]; ok {
		return lk
	}
	return strings.ToLower(key)
}
