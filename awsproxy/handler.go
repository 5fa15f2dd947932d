package awsproxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
	"github.com/gatehouse-dev/gatehouse/mask"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// Defaults of the bounds in Config.
const (
	DefaultMaxSkew         = 15 * time.Minute
	DefaultMaxHeaderBytes  = 64 << 10
	DefaultMaxBodyBuffer   = 16 << 20
	DefaultBodyReadTimeout = time.Minute
	// DefaultMaxBufferedBytes is 16 bodies of DefaultMaxBodyBuffer.
	DefaultMaxBufferedBytes = 16 * DefaultMaxBodyBuffer
	// smallBody is the largest body with a literal payload hash that is
	// verified in full before anything is sent upstream; larger ones are
	// verified as they stream and the upstream request is aborted on a
	// mismatch.
	smallBody = 1 << 20
)

// Config configures a Handler. The zero value of every optional field is
// the strict, safe choice.
type Config struct {
	// Authenticator resolves callers' access keys. Required.
	Authenticator Authenticator
	// Credentials supplies the gateway-held AWS credentials used to re-sign
	// each call for upstream. Required.
	Credentials CredentialSource

	// Upstreams overrides the endpoint of a service with a base URL, for
	// custom endpoints, VPC endpoints and tests. Keys are a service's
	// model name ("bedrock-runtime"), endpoint prefix or signing name
	// ("s3"), looked up in that order. The region is still validated. A
	// signing name listed here is served even if the catalog lacks it.
	Upstreams map[string]string
	// Catalog classifies each call (operation, IAM action, resources,
	// parameters, risk flags) and lists the services the gateway routes
	// to. Nil means catalog.Default(), every service of the AWS models.
	Catalog *catalog.Catalog
	// Account is the AWS account id put in resource ARNs when the caller's
	// role ARN does not name one.
	Account string
	// VirtualHostDomains are host names under which S3 virtual-hosted
	// requests arrive ("s3.gateway.example" accepts
	// "bucket.s3.gateway.example"). Requests to other hosts are path-style.
	VirtualHostDomains []string

	// Stages run in order for every authenticated call before credentials
	// are fetched; any error refuses the call.
	Stages []Stage
	// MaskHashKey keys the "hash" mask strategy (at least 16 bytes); without
	// it, policies that ask for hashing fail closed.
	MaskHashKey []byte
	// MaxMaskBody bounds a response the gateway buffers to mask it; a
	// larger one is withheld. Zero means mask.DefaultMaxBody.
	MaxMaskBody int64
	// ModifyResponse, if set, may rewrite an upstream response before it is
	// returned, after the decision's mask obligations were applied. An
	// error refuses the response with an AWS error.
	ModifyResponse func(c *Call, resp *http.Response) error
	// WebIdentity, if set, makes the handler answer unsigned
	// sts:AssumeRoleWithWebIdentity calls itself, minting gateway session
	// credentials (use identity.Exchanger, and SessionAuthenticator as the
	// Authenticator). Point SDKs at it with AWS_ENDPOINT_URL_STS.
	WebIdentity WebIdentityExchanger

	// Audit, if set, receives an intent event for every call about to be
	// forwarded (a fail-closed trail that cannot write it refuses the call)
	// and a completion event for every request, forwarded or refused.
	Audit *audit.Trail

	// Recorder, if set, stores each call's request and response by
	// session, for replay. A recording never holds a live credential,
	// whatever the policy says: headers and URLs lose credentials
	// (Authorization, X-Amz-Security-Token, presigned signatures, STS
	// tokens), and bodies are masked by every detector, the aws-secrets
	// profile (the gateway's own STS answers included) and the operation's
	// sensitive members; a body that cannot be masked (binary, compressed,
	// captured only in part, not JSON, XML or a form) is withheld, only its
	// size kept. Bodies are cut at audit.DefaultMaxBody. Recording failures
	// are counted by the recorder and never affect the call.
	Recorder audit.Recorder

	// OnDone, if set, is called once per request after the response has
	// been written, whether the call was forwarded or refused.
	OnDone func(c *Call)

	// Transport sends requests upstream. Nil means a transport with dial,
	// TLS-handshake and response-header timeouts (see NewTransport).
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// MaxSkew bounds the difference between a request's signing time and
	// the gateway's clock. Zero means DefaultMaxSkew.
	MaxSkew time.Duration
	// MaxHeaderBytes bounds the size of all request header names and
	// values; past it the request is refused. Zero means DefaultMaxHeaderBytes.
	MaxHeaderBytes int
	// MaxBodyBuffer bounds a body the gateway must hold in memory to verify
	// it (requests without x-amz-content-sha256 are signed over a body hash).
	// Zero means DefaultMaxBodyBuffer.
	MaxBodyBuffer int64
	// MaxBufferedBytes bounds the request bodies all calls together hold
	// in memory at once (bodies signed by hash, small bodies checked
	// before forwarding, bodies held to bind an approval). A call whose
	// body would go past it is refused with the protocol's throttling
	// error (503), which SDKs retry. Zero means DefaultMaxBufferedBytes.
	MaxBufferedBytes int64
	// MaxChunkSize bounds one chunk of a signed aws-chunked body. Zero
	// means DefaultMaxChunkSize.
	MaxChunkSize int
	// BodyReadTimeout is the longest the gateway waits for the next bytes
	// of a request body before giving up on a stalled client. Zero means
	// DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// Logger receives one debug line per refused request and warnings for
	// upstream failures; nil means no logging.
	Logger *slog.Logger
}

// Stage is one step of the pipeline between authentication and
// forwarding: classification, policy, approvals. Check runs after the
// caller's signature has been verified; it may fill in fields of c for
// later stages and the audit record. Returning an error refuses the call:
// an *Error picks the AWS error the client sees, any other error is
// answered as an internal error. Check must not read c.Request.Body.
type Stage interface {
	Check(ctx context.Context, c *Call) error
}

// StageFunc adapts a function to Stage.
type StageFunc func(ctx context.Context, c *Call) error

// Check implements Stage.
func (f StageFunc) Check(ctx context.Context, c *Call) error { return f(ctx, c) }

// Call is the gateway's record of one request as it moves through the
// pipeline. Fields above the "results" line are set before stages run;
// the rest are filled in as the call completes.
type Call struct {
	ID      string        // request id the gateway assigned
	Start   time.Time     // when the request arrived
	Request *http.Request // inbound request; its body belongs to the gateway
	Session *Session      // authenticated caller, nil if authentication failed

	Service   string   // signing name from the credential scope
	Region    string   // region from the credential scope
	Protocol  Protocol // wire protocol of the service
	Bucket    string   // S3 bucket when addressed virtual-host style
	Presigned bool     // authenticated by a presigned URL
	// PayloadHash is the payload hash the client signed: a hex SHA-256 or
	// one of the Payload* constants.
	PayloadHash string
	// Body is the request body when the gateway buffered it (small bodies
	// and bodies signed by hash); nil when it streams.
	Body []byte
	// Classification is what the catalog recognised: service, operation,
	// IAM action, resources, parameters and risk flags.
	Classification catalog.Classification
	// Upstream is the URL the request is sent to.
	Upstream *url.URL
	// Decision is the policy decision, when a PolicyStage ran.
	Decision *policy.Decision
	// Approval is the approval record of a call that needed one.
	Approval *approval.Record
	// Masked reports what masking changed in the response (paths,
	// strategies and counts, never values), and in Skipped the mask rules
	// a response passed without because their obligations say
	// onUnmaskable: pass; nil if no mask applied.
	Masked *mask.Report

	// results
	Forwarded bool // the request was sent upstream
	// AWSRequestID and AWSExtendedRequestID are the upstream's request ids
	// (x-amz-request-id / x-amzn-RequestId, x-amz-id-2), for CloudTrail.
	AWSRequestID, AWSExtendedRequestID string
	Status                             int    // HTTP status returned to the client
	Err                                *Error // the refusal, if the gateway refused the call
	BytesIn                            int64  // request body bytes read from the client
	BytesOut                           int64  // response body bytes written to the client
	Duration                           time.Duration

	payloadMode payloadMode
	streamIn    *chunkSigner // client's chunk signature chain
	streamOut   *chunkSigner // gateway's chunk signature chain
	rawPath     string       // escaped path to send upstream
	rawQuery    string       // query to send upstream
	creds       aws.Credentials
	signed      []string // client-signed header names
	rc          *http.ResponseController
	stall       *deadlineBody // the body reader that enforces BodyReadTimeout
	approved    bool          // an approval granted this exact call
	h           *Handler      // the handler serving the call
	bodyDigest  string        // SHA-256 of the payload, once BodyDigest computed it
	plain       []byte        // the payload, when held (decoded for aws-chunked)
	held        []byte        // an aws-chunked body as received, held to be bound
	masker      *mask.Masker  // the decision's mask obligations, compiled before forwarding
	reserved    int64         // bytes of Handler.buffered this call holds
}

type payloadMode uint8

const (
	modeLiteral payloadMode = iota
	modeUnsigned
	modeStreamUnsigned
	modeStreamSigned
)

// Handler is an http.Handler that authenticates SigV4-signed AWS requests,
// runs them through the configured stages, re-signs them with
// gateway-held credentials and streams them to the AWS endpoint. It is safe
// for concurrent use.
type Handler struct {
	cfg       Config
	resolver  *resolver
	proxy     *httputil.ReverseProxy
	vhosts    []string
	keys      keyCache // clients' signing keys
	upKeys    keyCache // the gateway's own signing keys
	maskers   maskers
	artefacts artefactMaskers
	buffered  atomic.Int64 // body bytes all calls hold (MaxBufferedBytes)
}

type callKey struct{}

// New validates cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Authenticator == nil {
		return nil, errors.New("awsproxy: Config.Authenticator is required")
	}
	if cfg.Credentials == nil {
		return nil, errors.New("awsproxy: Config.Credentials is required")
	}
	if cfg.MaxSkew < 0 || cfg.MaxHeaderBytes < 0 || cfg.MaxBodyBuffer < 0 || cfg.MaxChunkSize < 0 || cfg.BodyReadTimeout < 0 || cfg.MaxBufferedBytes < 0 {
		return nil, errors.New("awsproxy: Config bounds must not be negative")
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.MaxHeaderBytes == 0 {
		cfg.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if cfg.MaxBodyBuffer == 0 {
		cfg.MaxBodyBuffer = DefaultMaxBodyBuffer
	}
	if cfg.MaxBufferedBytes == 0 {
		cfg.MaxBufferedBytes = max(DefaultMaxBufferedBytes, cfg.MaxBodyBuffer)
	}
	if cfg.MaxChunkSize == 0 {
		cfg.MaxChunkSize = DefaultMaxChunkSize
	}
	if cfg.BodyReadTimeout == 0 {
		cfg.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Transport == nil {
		cfg.Transport = NewTransport()
	}
	for i, s := range cfg.Stages {
		if s == nil {
			return nil, fmt.Errorf("awsproxy: Config.Stages[%d] is nil", i)
		}
	}
	if cfg.Catalog == nil {
		cfg.Catalog = catalog.Default()
	}
	res, err := newResolver(cfg.Catalog, cfg.Upstreams)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		maskers:   maskers{cfg: mask.Config{HashKey: cfg.MaskHashKey, MaxBody: cfg.MaxMaskBody}, cache: boundedCache[string, *mask.Masker]{max: maxCachedMaskers}},
		artefacts: artefactMaskers{cfg: mask.Config{HashKey: cfg.MaskHashKey, MaxBody: cfg.MaxMaskBody}, cache: boundedCache[artefactKey, *mask.Masker]{max: maxArtefactMaskers}},
		cfg:       cfg,
		resolver:  res,
	}
	for _, d := range cfg.VirtualHostDomains {
		d = strings.ToLower(strings.Trim(d, "."))
		if d == "" || strings.ContainsAny(d, ":/ ") {
			return nil, fmt.Errorf("awsproxy: Config.VirtualHostDomains entry %q is not a host name", d)
		}
		h.vhosts = append(h.vhosts, d)
	}
	h.proxy = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      &signingTransport{h: h, next: cfg.Transport},
		BufferPool:     bufferPool{},
		ErrorHandler:   h.upstreamError,
		ModifyResponse: h.modifyResponse,
		ErrorLog:       errorLog(cfg.Logger),
	}
	return h, nil
}

// NewTransport returns the default upstream transport: HTTP/1.1 and HTTP/2
// with bounded dial, TLS-handshake, 100-continue and response-header waits,
// so that no client hangs on a dead upstream.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   128,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 2 * time.Minute,
	}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &Call{ID: newRequestID(), Start: h.cfg.Now(), Request: r, rc: http.NewResponseController(w), h: h}
	cw := &countingWriter{ResponseWriter: w}
	if h.cfg.Recorder != nil {
		cw.capture = make([]byte, 0, 4<<10)
	}
	w.Header().Set("X-Gatehouse-Request-Id", c.ID)
	defer h.done(c, cw)
	if isUnsignedSTS(r) {
		h.serveWebIdentity(cw, c)
		return
	}
	if e := h.prepare(c); e != nil {
		h.refuse(cw, c, e)
		return
	}
	ctx := r.Context()
	for _, s := range h.cfg.Stages {
		if err := s.Check(ctx, c); err != nil {
			h.refuse(cw, c, asError(err))
			return
		}
	}
	if isGetCallerIdentity(c) {
		h.serveCallerIdentity(cw, c)
		return
	}
	if e := h.checkMasks(c); e != nil {
		h.refuse(cw, c, e)
		return
	}
	if e := h.auditIntent(ctx, c); e != nil {
		h.refuse(cw, c, e)
		return
	}
	creds, err := h.cfg.Credentials.Credentials(ctx, c.Session)
	if err != nil {
		e := asError(err)
		if e.Kind == KindInternal {
			e.Message = "the gateway could not obtain upstream credentials"
		}
		h.refuse(cw, c, e)
		return
	}
	c.creds = creds
	out := r.WithContext(context.WithValue(ctx, callKey{}, c))
	out.Body = h.upstreamBody(c, cw)
	h.proxy.ServeHTTP(cw, out)
}

func (h *Handler) done(c *Call, cw *countingWriter) {
	if c.reserved != 0 {
		h.buffered.Add(-c.reserved)
		c.reserved = 0
	}
	switch {
	case cw.status != 0:
		c.Status = cw.status
	case c.Status == 0:
		c.Status = http.StatusOK
	}
	c.BytesOut = cw.n
	c.Duration = h.cfg.Now().Sub(c.Start)
	if cw.err != nil && c.Err == nil {
		// The status line went out; the rest of the response did not.
		c.Err = &Error{Kind: KindBadRequest, Code: CodeClientDisconnected, Err: cw.err,
			Message: "the client went away before the whole response was sent"}
	}
	if c.Err != nil && h.cfg.Logger != nil {
		h.cfg.Logger.Debug("awsproxy: refused", "id", c.ID, "code", c.Err.code(c.Protocol), "err", c.Err)
	}
	if h.cfg.Audit != nil {
		// Record is not cancelled with the client's request.
		h.cfg.Audit.Record(c.Request.Context(), AuditEvent(c, audit.PhaseCompletion))
	}
	if h.cfg.Recorder != nil {
		h.record(c, cw)
	}
	if h.cfg.OnDone != nil {
		h.cfg.OnDone(c)
	}
}

func (h *Handler) refuse(w http.ResponseWriter, c *Call, e *Error) {
	c.Err = e
	// The body is never read for a refused call: closing it lets net/http
	// decide whether the connection can be reused.
	if c.Request.Body != nil {
		c.Request.Body.Close()
	}
	writeError(w, c.Request, c.Protocol, e, c.ID)
}

// prepare authenticates the request, verifies its signature and payload,
// and resolves its upstream. It fills c; nothing is sent anywhere.
func (h *Handler) prepare(c *Call) *Error {
	r := c.Request
	if headerBytes(r) > h.cfg.MaxHeaderBytes {
		return newError(KindRequestTooLarge, "request headers exceed the gateway's limit", nil)
	}
	if r.URL.IsAbs() || r.URL.Host != "" {
		// Absolute-form request targets are proxy requests: never honoured.
		return newError(KindBadRequest, "absolute-form request targets are not accepted", nil)
	}
	if e := checkConnectionHeader(r.Header); e != nil {
		return e
	}
	if e := checkProtocolMarkers(r); e != nil {
		return e
	}
	auth, t, token, e := h.parseAuth(r)
	if e != nil {
		return e
	}
	c.Service, c.Region, c.Presigned = auth.Scope.Service, auth.Scope.Region, auth.Presigned
	if len(r.TransferEncoding) > 0 && slices.Contains(auth.SignedHeaders, "content-length") {
		// net/http lets Transfer-Encoding win and drops Content-Length; a
		// client that signed a length and sent chunks is refused outright.
		return newError(KindBadRequest, "request has both Content-Length and Transfer-Encoding", nil)
	}
	c.Protocol = h.resolver.protocol(c.Service)
	if e := h.checkTime(auth, t); e != nil {
		return e
	}
	if !h.resolver.known(c.Service) {
		return newError(KindUnknownService, fmt.Sprintf("service %q is not served by this gateway", c.Service), nil)
	}
	if !validRegion(c.Region) {
		return newError(KindUnknownService, fmt.Sprintf("region %q is not a valid AWS region", c.Region), nil)
	}
	sess, err := h.cfg.Authenticator.Authenticate(r.Context(), Credential{
		AccessKeyID: auth.Scope.AccessKeyID, SessionToken: token, Service: c.Service, Region: c.Region,
	})
	if err != nil {
		return authError(err)
	}
	if !sess.Expires.IsZero() && !h.cfg.Now().Before(sess.Expires) {
		return newError(KindExpiredToken, "The security token included in the request is expired", ErrExpiredToken)
	}
	if sess.ID == "" {
		sess.ID = auth.Scope.AccessKeyID
	}
	if e := h.payload(c, auth); e != nil {
		return e
	}
	key := h.keys.get(sess.SecretAccessKey, auth.Scope)
	want, err := signature(key, t, auth.Scope, func(b []byte) ([]byte, error) {
		return appendCanonicalRequest(b, r, r.URL.EscapedPath(), c.Service != "s3", auth.SignedHeaders, c.PayloadHash, presignDrop(auth))
	})
	if err != nil {
		return newError(KindMalformedAuth, "request query cannot be canonicalized", err)
	}
	if !equalHexSignature(want, auth.Signature) {
		return newError(KindSignatureMismatch, "The request signature we calculated does not match the signature you provided. Check your key and signing method.", nil)
	}
	c.Session = sess
	c.signed = auth.SignedHeaders
	// From here on the request holds only what is forwarded: policy, the
	// audit trail and approvals never see a header AWS will not.
	dropUnsignedAmzHeaders(r.Header, c.signed)
	if c.payloadMode == modeStreamSigned {
		c.streamIn = &chunkSigner{key: key, date: t.UTC().Format(amzDateLayout), scope: auth.Scope.String(), prev: auth.Signature}
	}
	if e := h.checkBody(c); e != nil {
		return e
	}
	if c.Service == "s3" {
		c.Bucket, _ = h.virtualBucket(r.Host)
	}
	c.Classification = h.cfg.Catalog.Classify(&catalog.Request{
		SigningName: c.Service, Region: c.Region, Account: h.account(sess),
		Method: r.Method, RawPath: r.URL.EscapedPath(), Query: r.URL.Query(), Header: r.Header,
		Bucket: c.Bucket, Body: c.Body,
	})
	if p := protocolOf(c.Classification.Service); p != ProtocolUnknown {
		c.Protocol = p
	}
	if svc := c.Classification.Service; svc != nil && svc.Name == "s3" {
		// A bucket label that decodes to something no bucket can be named
		// ("a%2F..%2Fb") would be judged under one name and resolved by
		// S3 under another: refused, never forwarded.
		if b := c.Classification.Params["Bucket"]; b != "" && !s3BucketName(b) {
			return &Error{Kind: KindBadRequest, Code: "InvalidBucketName", Message: "The specified bucket is not valid."}
		}
	}
	base, override, e := h.resolver.resolve(c.Service, c.Classification.Service, c.Region)
	if e != nil {
		return e
	}
	if svc := c.Classification.Service; svc != nil && !override && c.Classification.Operation != "" {
		if op := svc.Operation(c.Classification.Operation); op != nil && op.HostPrefix != "" {
			if base, e = withHostPrefix(base, op.HostPrefix, c.Classification.Params); e != nil {
				return e
			}
		}
	}
	return h.target(c, base, auth)
}

// account is the AWS account id for resource ARNs: the one in the
// session's role ARN, else Config.Account.
func (h *Handler) account(s *Session) string {
	if a := arnAccount(s.Role); a != "" {
		return a
	}
	return h.cfg.Account
}

// arnAccount returns the account field of an ARN
// (arn:partition:service:region:account:resource), or "".
func arnAccount(arn string) string {
	rest, ok := strings.CutPrefix(arn, "arn:")
	if !ok {
		return ""
	}
	for range 3 {
		if _, rest, ok = strings.Cut(rest, ":"); !ok {
			return ""
		}
	}
	account, _, ok := strings.Cut(rest, ":")
	if !ok {
		return ""
	}
	return account
}

func presignDrop(a sigv4Auth) string {
	if a.Presigned {
		return querySignature
	}
	return ""
}

func (h *Handler) parseAuth(r *http.Request) (sigv4Auth, time.Time, string, *Error) {
	authz := r.Header.Values(headerAuthorization)
	presigned := strings.Contains(r.URL.RawQuery, "X-Amz-Signature") || strings.Contains(r.URL.RawQuery, "X-Amz-Algorithm")
	switch {
	case len(authz) == 0 && !presigned:
		return sigv4Auth{}, time.Time{}, "", newError(KindMissingAuth, "Request is missing Authentication Token", nil)
	case len(authz) > 1 || (len(authz) == 1 && presigned):
		return sigv4Auth{}, time.Time{}, "", newError(KindMalformedAuth, "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified", nil)
	case presigned:
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return sigv4Auth{}, time.Time{}, "", newError(KindMalformedAuth, "malformed query string", err)
		}
		a, t, tok, err := parsePresigned(q)
		if err != nil {
			return a, t, tok, newError(KindMalformedAuth, err.Error(), err)
		}
		if r.Header.Get(headerSecurityToken) != "" {
			return a, t, tok, newError(KindMalformedAuth, "presigned URL with an X-Amz-Security-Token header", nil)
		}
		return a, t, tok, nil
	}
	a, err := parseAuthorization(authz[0])
	if err != nil {
		return a, time.Time{}, "", newError(KindMalformedAuth, err.Error(), err)
	}
	t, err := requestTime(r.Header)
	if err != nil {
		return a, t, "", newError(KindMalformedAuth, err.Error(), err)
	}
	tokens := r.Header.Values(headerSecurityToken)
	if len(tokens) > 1 {
		return a, t, "", newError(KindMalformedAuth, "several X-Amz-Security-Token headers", nil)
	}
	tok := ""
	if len(tokens) == 1 {
		tok = tokens[0]
	}
	return a, t, tok, nil
}

func (h *Handler) checkTime(a sigv4Auth, t time.Time) *Error {
	var db [len(scopeDateLayout)]byte
	if string(t.UTC().AppendFormat(db[:0], scopeDateLayout)) != a.Scope.Date {
		return newError(KindSignatureMismatch, "credential scope date does not match the request date", nil)
	}
	now := h.cfg.Now()
	if a.Presigned {
		if t.After(now.Add(h.cfg.MaxSkew)) {
			return newError(KindRequestTimeSkewed, "The presigned URL is not yet valid", nil)
		}
		if now.After(t.Add(a.Expires)) {
			return newError(KindPresignExpired, "Request has expired", nil)
		}
		return nil
	}
	if d := now.Sub(t); d > h.cfg.MaxSkew || d < -h.cfg.MaxSkew {
		return newError(KindRequestTimeSkewed, "The difference between the request time and the current time is too large.", nil)
	}
	return nil
}

// payload determines the payload mode and the hash the signature covers.
// Bodies signed by a hash the client did not send (every service but S3)
// are buffered here, bounded, and hashed.
func (h *Handler) payload(c *Call, a sigv4Auth) *Error {
	r := c.Request
	hash := r.Header.Get(headerContentSHA256)
	if hash == "" && a.Presigned {
		hash = r.URL.Query().Get(headerContentSHA256)
		if hash == "" && c.Service == "s3" {
			// Only S3 presigns over UNSIGNED-PAYLOAD; other services
			// (an STS GetCallerIdentity URL, say) sign the body's hash.
			hash = PayloadUnsigned
		}
	}
	switch hash {
	case PayloadUnsigned:
		c.payloadMode = modeUnsigned
		if !streamsBodies(c.Service) {
			// Every other service reads its parameters from the body:
			// it is held and classified, never judged without it.
			body, e := h.readBody(c)
			if e != nil {
				return e
			}
			c.Body = body
		}
	case PayloadStreamingUnsigned, PayloadStreamingSigned, PayloadStreamingSignedTrailr:
		if !streamsBodies(c.Service) {
			return newError(KindBadRequest, "aws-chunked bodies are accepted for S3 only", nil)
		}
		c.payloadMode = modeStreamUnsigned
		if hash != PayloadStreamingUnsigned {
			c.payloadMode = modeStreamSigned
		}
	case "":
		body, e := h.readBody(c)
		if e != nil {
			return e
		}
		c.Body = body
		hash = sha256Hex(body)
	default:
		if !isPayloadHash(hash) {
			return newError(KindBadRequest, "x-amz-content-sha256 must be a hex SHA-256 or a known payload mode", nil)
		}
		c.payloadMode = modeLiteral
	}
	c.PayloadHash = hash
	return nil
}

// streamsBodies reports whether a signing name's bodies may stream
// unread (UNSIGNED-PAYLOAD, aws-chunked): the S3 family, whose request
// parameters are in the path, query and headers and whose bodies are
// object data. Every other service's bodies are read and classified.
func streamsBodies(signingName string) bool {
	switch signingName {
	case "s3", "s3-object-lambda", "s3-outposts", "s3express":
		return true
	}
	return false
}

// checkBody verifies a literal payload hash over a small body before
// anything leaves; large bodies are checked while streaming.
func (h *Handler) checkBody(c *Call) *Error {
	if c.payloadMode != modeLiteral || c.Body != nil {
		return nil
	}
	r := c.Request
	if r.ContentLength < 0 || r.ContentLength > smallBody {
		return nil
	}
	body, e := h.readBody(c)
	if e != nil {
		return e
	}
	if sha256Hex(body) != c.PayloadHash {
		return newError(KindContentSHA256Mismatch, "The provided 'x-amz-content-sha256' header does not match what was computed.", nil)
	}
	c.Body = body
	return nil
}

// readBody reads the whole request body, bounded by MaxBodyBuffer.
func (h *Handler) readBody(c *Call) ([]byte, *Error) {
	r := c.Request
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return []byte{}, nil
	}
	if r.ContentLength > h.cfg.MaxBodyBuffer {
		return nil, newError(KindBodyTooLarge, "request body exceeds the gateway's buffer limit", nil)
	}
	n := r.ContentLength
	reserve := n
	if n < 0 {
		n, reserve = 512, h.cfg.MaxBodyBuffer
	}
	if e := h.reserve(c, reserve); e != nil {
		return nil, e
	}
	buf := make([]byte, 0, n+1)
	lr := &limitedReader{r: h.deadlineBody(c, r.Body), n: h.cfg.MaxBodyBuffer + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		m, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err != nil {
			if err == errBodyTimeout {
				return nil, errBodyTimeout
			}
			if err != io.EOF {
				return nil, newError(KindBadRequest, "request body could not be read", err)
			}
			break
		}
	}
	if int64(len(buf)) > h.cfg.MaxBodyBuffer {
		return nil, newError(KindBodyTooLarge, "request body exceeds the gateway's buffer limit", nil)
	}
	if r.ContentLength >= 0 && int64(len(buf)) != r.ContentLength {
		return nil, newError(KindBadRequest, "request body shorter than its Content-Length", nil)
	}
	c.BytesIn = int64(len(buf))
	h.reserve(c, int64(len(buf))-reserve) // what was read, not what was feared
	return buf, nil
}

// reserve adds n bytes (negative to give back) to the bodies held by all
// calls, refusing when it would pass MaxBufferedBytes.
func (h *Handler) reserve(c *Call, n int64) *Error {
	if n > 0 && h.buffered.Add(n) > h.cfg.MaxBufferedBytes {
		h.buffered.Add(-n)
		return newError(KindThrottled, "the gateway holds as many request bodies as it may; retry shortly", nil)
	}
	if n < 0 {
		h.buffered.Add(n)
	}
	c.reserved += n
	return nil
}

// target computes the upstream URL: the validated base, the client's path
// (with the virtual-host bucket moved into it) and query (minus presigned
// auth parameters).
func (h *Handler) target(c *Call, base *url.URL, a sigv4Auth) *Error {
	r := c.Request
	raw := r.URL.EscapedPath()
	if raw == "" {
		raw = "/"
	}
	if b := c.Bucket; b != "" {
		if raw == "/" {
			raw = "/" + b
		} else {
			raw = "/" + b + raw
		}
	}
	c.rawPath = base.Path + raw
	c.rawQuery = r.URL.RawQuery
	if a.Presigned {
		c.rawQuery = stripPresignQuery(r.URL.RawQuery)
	}
	path, err := url.PathUnescape(c.rawPath)
	if err != nil {
		return newError(KindBadRequest, "request path is not valid percent-encoding", err)
	}
	c.Upstream = &url.URL{Scheme: base.Scheme, Host: base.Host, Path: path, RawPath: c.rawPath, RawQuery: c.rawQuery}
	return nil
}

// virtualBucket returns the bucket of a virtual-hosted S3 request.
func (h *Handler) virtualBucket(host string) (string, bool) {
	if len(h.vhosts) == 0 {
		return "", false
	}
	if hh, _, err := net.SplitHostPort(host); err == nil {
		host = hh
	}
	host = strings.ToLower(host)
	for _, d := range h.vhosts {
		if b, ok := strings.CutSuffix(host, "."+d); ok && validBucket(b) {
			return b, true
		}
	}
	return "", false
}

// validBucket accepts S3 bucket names (3-63 of [a-z0-9.-], starting and
// ending with a letter or digit).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return b[0] != '.' && b[0] != '-' && b[len(b)-1] != '.' && b[len(b)-1] != '-'
}

// s3BucketName accepts every name S3 has ever allowed for a bucket,
// legacy us-east-1 names included: 1 to 255 of letters, digits, '.', '-'
// and '_'.
func s3BucketName(b string) bool {
	if len(b) == 0 || len(b) > 255 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// checkConnectionHeader refuses a Connection header that names another
// header: a proxy removes the headers it names (hop-by-hop), so such a
// header would be judged by policy and never reach AWS.
func checkConnectionHeader(h http.Header) *Error {
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			switch strings.ToLower(strings.TrimSpace(tok)) {
			case "", "close", "keep-alive":
			default:
				return newError(KindBadRequest, "the Connection header may only say close or keep-alive", nil)
			}
		}
	}
	return nil
}

// checkProtocolMarkers refuses a request that names its operation twice,
// in two protocols: an X-Amz-Target (JSON protocol) with a form body or an
// Action query parameter (query protocol). A service that accepts both
// (SQS) might run the other one than the gateway classified.
func checkProtocolMarkers(r *http.Request) *Error {
	if r.Header.Get("X-Amz-Target") == "" {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/x-www-form-urlencoded" || strings.Contains(r.URL.RawQuery, "Action=") {
		return newError(KindBadRequest, "the request names its operation both in X-Amz-Target and as a query-protocol Action", nil)
	}
	return nil
}

// dropUnsignedAmzHeaders removes the x-amz-* headers the client did not
// sign (anyone on the way could have added them; they are never
// forwarded), so that nothing downstream judges them.
func dropUnsignedAmzHeaders(h http.Header, signed []string) {
	for k := range h {
		lk := lowerHeader(k)
		if strings.HasPrefix(lk, "x-amz-") && lk != "x-amz-content-sha256" && lk != "x-amz-date" && lk != "x-amz-security-token" &&
			!slices.Contains(signed, lk) {
			delete(h, k)
		}
	}
}

// stripPresignQuery removes the presigned-URL auth parameters from a raw
// query, keeping the others exactly as they were sent.
func stripPresignQuery(raw string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if dk, err := url.QueryUnescape(k); err == nil && presignParam(dk) || part == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(part)
	}
	return b.String()
}

func presignParam(k string) bool {
	switch k {
	case queryAlgorithm, queryCredential, queryDate, queryExpires, querySignedHeaders, querySignature, querySecurityToken:
		return true
	}
	return false
}

// upstreamBody returns the body to send upstream for c.
func (h *Handler) upstreamBody(c *Call, w http.ResponseWriter) io.ReadCloser {
	r := c.Request
	if c.Body != nil {
		return newBytesBody(c.Body)
	}
	if r.Body == nil || r.Body == http.NoBody {
		return http.NoBody
	}
	var body io.ReadCloser
	if c.held != nil {
		// Held to bind an approval: already read (and counted) whole.
		body = newBytesBody(c.held)
	} else {
		body = &countingBody{r: h.deadlineBody(c, r.Body), c: c}
	}
	switch c.payloadMode {
	case modeLiteral:
		return newHashingBody(body, c.PayloadHash, r.ContentLength)
	case modeStreamSigned:
		c.streamOut = &chunkSigner{}
		return newChunkReader(body, c.streamIn, c.streamOut, c.PayloadHash == PayloadStreamingSignedTrailr, h.cfg.MaxChunkSize, decodedLength(r))
	case modeStreamUnsigned:
		return newChunkReader(body, nil, nil, true, h.cfg.MaxChunkSize, decodedLength(r))
	}
	return body
}

func decodedLength(r *http.Request) int64 {
	v := r.Header.Get(headerDecodedLength)
	if v == "" {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return -2 // never matches: the body is refused at its first chunk
	}
	return n
}

// rewrite builds the outbound request from the validated call.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	c := pr.In.Context().Value(callKey{}).(*Call)
	out := pr.Out
	out.URL = c.Upstream
	out.Host = ""
	out.RequestURI = ""
	for k := range out.Header {
		if !forwardsHeader(lowerHeader(k), c.signed) {
			delete(out.Header, k)
		}
	}
	if c.Service == "s3" && out.Header.Get(headerContentSHA256) == "" {
		// S3 wants the payload hash as a header with header-based auth
		// (presigned requests arrive without it).
		out.Header.Set(headerContentSHA256, c.PayloadHash)
	}
	if c.Body != nil {
		out.ContentLength = int64(len(c.Body))
		out.Header.Set("Content-Length", strconv.Itoa(len(c.Body)))
		out.TransferEncoding = nil
	}
	if out.ContentLength == 0 {
		out.Body = http.NoBody
	}
}

// signingTransport re-signs each outbound request with the call's
// gateway-held credentials just before it is sent.
type signingTransport struct {
	h    *Handler
	next http.RoundTripper
}

func (t *signingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := req.Context().Value(callKey{}).(*Call)
	now := t.h.cfg.Now().UTC()
	seed, err := t.h.signRequest(req, c.creds, c.Service, c.Region, c.PayloadHash, now)
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, newError(KindInternal, "re-signing for upstream failed", err)
	}
	if c.streamOut != nil {
		scope := credentialScope{AccessKeyID: c.creds.AccessKeyID, Date: now.Format(scopeDateLayout), Region: c.Region, Service: c.Service} // the key signRequest just used
		*c.streamOut = chunkSigner{
			key:   t.h.upKeys.get(c.creds.SecretAccessKey, scope),
			date:  now.Format(amzDateLayout),
			scope: scope.String(),
			prev:  seed,
		}
	}
	c.Forwarded = true
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		c.AWSRequestID, c.AWSExtendedRequestID = audit.AWSRequestIDs(resp.Header)
		if resp.Body != nil {
			resp.Body = &upstreamBody{ReadCloser: resp.Body, c: c}
		}
	}
	return resp, err
}

// upstreamBody records a response body that the upstream cut off: the
// client has already seen the status line, so the truncation shows only in
// the call record (and as an aborted connection to the client).
type upstreamBody struct {
	io.ReadCloser
	c *Call
}

func (b *upstreamBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF && b.c.Err == nil {
		if b.c.Request.Context().Err() != nil {
			// The client went away; the server cancelled the call.
			b.c.Err = &Error{Kind: KindBadRequest, Code: CodeClientDisconnected, Err: err, Message: "the client went away before the whole response was sent"}
		} else {
			b.c.Err = newError(KindBadGateway, "the upstream response was cut off", err)
		}
	}
	return n, err
}

// errorLog routes httputil.ReverseProxy's own messages to the configured
// logger, or nowhere: the library never writes to the standard logger.
func errorLog(l *slog.Logger) *log.Logger {
	if l == nil {
		return log.New(io.Discard, "", 0)
	}
	return slog.NewLogLogger(l.Handler(), slog.LevelWarn)
}

// upstreamError answers transport failures and body-verification failures.
func (h *Handler) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	c := r.Context().Value(callKey{}).(*Call)
	var e *Error
	switch {
	case errors.As(err, &e):
	case c.stall != nil && c.stall.timedOut:
		e = errBodyTimeout
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody is left to answer.
		c.Err = newError(KindBadRequest, "client closed the request", err)
		c.Status = 499
		return
	case isTimeout(err):
		e = newError(KindGatewayTimeout, "the upstream AWS endpoint did not answer in time", err)
	case isDialError(err):
		e = newError(KindBadGateway, "the upstream AWS endpoint could not be reached", err)
	default:
		e = newError(KindBadGateway, fmt.Sprintf("the connection to the upstream AWS endpoint broke during the call, after %d bytes of the request body; the call may or may not have taken effect", c.BytesIn), err)
	}
	if h.cfg.Logger != nil && e.Kind.gatewayFault() {
		h.cfg.Logger.Warn("awsproxy: upstream failure", "id", c.ID, "service", c.Service, "upstream", c.Upstream.Host, "err", err)
	}
	c.Err = e
	writeError(w, r, c.Protocol, e, c.ID)
}

// isDialError reports whether err is a failure to reach the upstream at
// all (DNS, connect, TLS handshake), before anything of the request left.
func isDialError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	var tlsErr *tls.RecordHeaderError
	var cert *tls.CertificateVerificationError
	return (errors.As(err, &op) && op.Op == "dial") || errors.As(err, &dns) || errors.As(err, &tlsErr) || errors.As(err, &cert)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func (h *Handler) modifyResponse(resp *http.Response) error {
	c := resp.Request.Context().Value(callKey{}).(*Call)
	if err := h.maskResponse(c, resp); err != nil {
		return err
	}
	if h.cfg.ModifyResponse == nil {
		return nil
	}
	return h.cfg.ModifyResponse(c, resp)
}

// headerBytes sums the sizes of the request's header names and values.
func headerBytes(r *http.Request) int {
	n := len(r.Host) + len(r.RequestURI)
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// bufferPool shares the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBuffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBuffers.Put(&b) }
