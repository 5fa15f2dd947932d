// Package awsproxy is the data path of gatehouse: an http.Handler that sits
// where AWS endpoints would be, verifies each caller's SigV4 signature,
// passes the call through pluggable stages (classification, policy,
// approvals), re-signs it with credentials only the gateway holds, and
// streams it to the real AWS endpoint.
//
// # One call
//
//  1. Authenticate. The SigV4 signature is read from the Authorization
//     header or from a presigned query string. The Authenticator turns the
//     access key id (and session token) into a Session: a principal and the
//     secret the request must be signed with. The handler then rebuilds the
//     canonical request from what arrived (every signed header, the
//     canonical query, the payload hash) and compares signatures in
//     constant time. The signing time must be within MaxSkew (15 minutes)
//     of the clock; presigned URLs must not have expired.
//  2. Resolve. The service and region come from the credential scope, never
//     from the Host header. The service must be known (Config.Services or
//     the built-in table) and the region must match
//     ^[a-z]{2}(-[a-z]+)+-\d+$; the upstream URL is built from those two
//     values by the partition rules (aws, aws-cn, aws-us-gov; global
//     endpoints of IAM, STS in us-east-1, Route 53, CloudFront,
//     Organizations, S3 in us-east-1) or taken from Config.Upstreams. No
//     value a client controls can make the gateway sign a request for a
//     host it chose (the SSRF invariant). Absolute-form request targets are
//     refused; Forwarded and X-Forwarded-* headers are dropped.
//  3. Stages. Each Config.Stages entry sees the verified Call and may refuse
//     it with an *Error.
//  4. Re-sign and forward. Config.Credentials supplies AWS credentials for
//     the session (StaticCredentials, or AssumeRoleSource: STS AssumeRole
//     per role and principal, SourceIdentity = the principal's subject).
//     The outbound request keeps the client's method, path, query and
//     signed headers; Authorization, X-Amz-Date, X-Amz-Security-Token and
//     any x-amz-* header the client did not sign are removed, and the
//     gateway signs it again with its own SigV4 signer (the canonicalization
//     the verifier uses, cross-checked against the AWS SDK's signer in the
//     tests; cached signing keys; no path double-escaping for S3).
//     S3 virtual-hosted requests (bucket.<Config.VirtualHostDomains>) are
//     forwarded path-style; presigned requests are forwarded as
//     header-signed requests.
//  5. Respond. The response streams back, masked when the decision carries
//     mask obligations (see Masking); Config.ModifyResponse may rewrite
//     it; Config.OnDone sees the finished Call.
//
// # Masking
//
// A decision's mask obligations apply to the response body as it is: its
// Content-Type picks the walker (JSON, XML, or text for the detectors),
// not the service's protocol, so an application/json object read from S3
// is masked by a policy path and the aws-secrets profile finds credentials
// in a text object (see package mask). Policy paths have one syntax for
// JSON and XML (package mask/maskpath). Obligations are compiled before the
// call is forwarded: one this gateway cannot apply (the hash strategy
// without Config.MaskHashKey) refuses the call with InternalError and
// nothing reaches AWS. Only calls with obligations buffer their response
// (up to Config.MaxMaskBody); the others stream.
//
// A response an obligation cannot be applied to (a binary body or an
// unknown media type, an encoding that cannot be decoded, a body over
// MaxMaskBody, a ranged part that is not the whole object, JSON or XML
// that does not parse, a text body for a path) is withheld: the client
// gets the AWS-shaped error ResponseWithheld ([CodeResponseWithheld]) and
// the call record and audit event carry the reason. The call already ran
// upstream, so the status is one no SDK retries: 403 when the upstream
// answered with success (aws-sdk-go-v2's standard retryer, like the other
// SDKs', retries 500, 502, 503, 504, 429 and throttling and timeout codes;
// a 502 here made a stock SDK repeat a write three times), the upstream's
// own status when it answered with an error, so the client retries
// exactly when it would have retried the unmasked answer. A mask entry
// with onUnmaskable: pass opts out: when every obligation that cannot be
// applied says pass, the response goes through without them, and
// Call.Masked.Skipped and the audit event (strategy "pass") name them and
// the reason.
//
// # Payload modes
//
// The gateway keeps the client's payload hash and checks the body against
// it:
//
//   - literal SHA-256: bodies up to 1 MiB are read and verified before
//     anything is sent upstream; larger bodies stream, are hashed as they
//     pass, and a mismatch fails the last read so the upstream request is
//     aborted, never completed. Upstream AWS checks the same hash again.
//   - no x-amz-content-sha256 (every service but S3): the signature covers
//     the body's hash, so the body is read (bounded by MaxBodyBuffer) and
//     hashed before verification.
//   - UNSIGNED-PAYLOAD: streamed as is.
//   - STREAMING-UNSIGNED-PAYLOAD-TRAILER: the aws-chunked framing is checked
//     as it streams (chunk sizes, CRLFs, trailers, the decoded length) and
//     passed through byte for byte.
//   - STREAMING-AWS4-HMAC-SHA256-PAYLOAD and ...-PAYLOAD-TRAILER: each chunk
//     is held (bounded by MaxChunkSize), verified against the client's
//     signature chain, and re-emitted with the gateway's chain, which
//     starts from the re-signed request's signature. Trailer signatures are
//     verified and replaced. The encoded length does not change, so
//     Content-Length stays valid.
//
// Request and response bodies otherwise stream with pooled 32 KiB buffers:
// memory does not grow with object size.
//
// A literal hash and signed chunks cost the gateway one SHA-256 per byte,
// about as much CPU as the rest of the copy (BENCHMARKS.md). The AWS SDKs
// use them for uploads over plain HTTP; served over TLS, the SDKs send
// STREAMING-UNSIGNED-PAYLOAD-TRAILER instead, which streams at the speed
// of a bare reverse proxy.
//
// # Approvals bind the effective request
//
// PolicyStage binds an approval to the request as it reaches AWS, so that
// what a human approved is what is forwarded (Fingerprint): the principal,
// IAM action and resources, method, path and canonical query as
// forwarded, every bound header, the body's SHA-256 in every payload mode,
// and the digest of the policy decision. Bound headers are the forwarded
// headers the service's models read as input members
// (catalog.InputHeaders: x-amz-acl, x-amz-copy-source,
// x-amz-bypass-governance-retention, object-lock, MFA, SSE, x-amz-meta-*,
// Content-Type ...); only signing, date, token, transport framing and
// checksum headers and per-attempt SDK headers are left out, and
// Content-Encoding without its aws-chunked coding. A literal payload hash
// is the body's digest (checked as the body streams, the upstream request
// aborted before its last byte on a mismatch); an UNSIGNED-PAYLOAD or
// aws-chunked body of a call that needs approval is read whole (chunk
// signatures verified), held in memory up to MaxBodyBuffer, hashed, and
// then sent from memory; a larger one is refused with EntityTooLarge. A
// reload that changes the decision for a request changes its fingerprint,
// so grants made under the old decision no longer apply; the record names
// the policy revision. Approvers see everything the fingerprint covers
// (approval.Detail), the body as a preview with secrets masked.
//
// A call waiting for approval is answered ApprovalPending (403) with the
// approval's id, page URL, expiry and mode in the X-Gatehouse-Approval-*
// headers and as ApprovalId, ApprovalUrl, ApprovalExpires and ApprovalMode
// members of the error body; PendingApprovalOf reads them from an AWS SDK
// error.
//
// # Errors
//
// Refusals are AWS-shaped for the service's protocol (S3 <Error>, query
// <ErrorResponse>, EC2 <Response><Errors>, JSON __type with
// X-Amzn-ErrorType) so SDKs report codes such as SignatureDoesNotMatch,
// InvalidAccessKeyId / InvalidClientTokenId / UnrecognizedClientException,
// RequestTimeTooSkewed and AccessDenied. Upstream failures become 502
// (unreachable, reset) or 504 (no answer within the transport's timeouts).
// Every refusal also carries an X-Gatehouse-Error header with the code, and
// every response an X-Gatehouse-Request-Id header naming the call (Call.ID)
// for correlation with the gateway's audit records.
//
// # Bounds
//
// MaxHeaderBytes (64 KiB) bounds request headers; MaxBodyBuffer (16 MiB)
// bounds a body that must be held to verify it; MaxBufferedBytes (256 MiB)
// bounds the bodies all calls hold at once (past it a call is refused with
// the protocol's throttling error, 503, which SDKs retry); MaxChunkSize (4 MiB)
// bounds one signed chunk; BodyReadTimeout (1 minute) bounds the wait for
// the next bytes of a request body. Past a bound the request is refused
// with an AWS-shaped error (RequestHeaderSectionTooLarge for headers,
// EntityTooLarge for a body, chunk or trailer block; RequestTimeout for a
// stalled body). The default Transport bounds dial,
// TLS-handshake and response-header waits. Serve the handler from an
// http.Server with ReadHeaderTimeout and IdleTimeout set.
package awsproxy
