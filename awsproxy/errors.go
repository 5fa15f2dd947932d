package awsproxy

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"hash/crc32"
	"net/http"
	"strconv"
	"strings"
)

// Protocol is the wire protocol of an AWS service. It decides how requests
// are classified and how errors are shaped.
type Protocol uint8

// The AWS wire protocols.
const (
	ProtocolUnknown  Protocol = iota
	ProtocolRESTXML           // S3, Route 53, CloudFront
	ProtocolRESTJSON          // Lambda, API Gateway, ...
	ProtocolJSON              // JSON 1.0 / 1.1 with X-Amz-Target (DynamoDB, Secrets Manager, ...)
	ProtocolQuery             // STS, IAM, SNS, CloudFormation, RDS, ...
	ProtocolEC2               // EC2
)

func (p Protocol) String() string {
	switch p {
	case ProtocolRESTXML:
		return "rest-xml"
	case ProtocolRESTJSON:
		return "rest-json"
	case ProtocolJSON:
		return "json"
	case ProtocolQuery:
		return "query"
	case ProtocolEC2:
		return "ec2"
	}
	return "unknown"
}

// ErrorKind classifies the errors the gateway itself returns. Each kind maps
// to the error code an AWS service of the request's protocol would use, so
// SDKs report it by a name their users know.
type ErrorKind uint8

// The error kinds the gateway produces.
const (
	KindAccessDenied          ErrorKind = iota + 1 // policy or role refused the call
	KindMissingAuth                                // no SigV4 signature at all
	KindMalformedAuth                              // Authorization or presigned query does not parse
	KindUnknownAccessKey                           // access key id not known to the authenticator
	KindExpiredToken                               // session credentials expired
	KindSignatureMismatch                          // signature does not verify
	KindRequestTimeSkewed                          // X-Amz-Date outside the skew window
	KindPresignExpired                             // presigned URL past its expiry
	KindContentSHA256Mismatch                      // body does not match x-amz-content-sha256
	KindBadRequest                                 // malformed request (framing, headers, body)
	KindUnknownService                             // service or region not allowed by the endpoint rules
	KindRequestTooLarge                            // the request's headers exceed a configured bound
	KindBadGateway                                 // upstream unreachable, reset or malformed
	KindGatewayTimeout                             // upstream did not answer in time
	KindInternal                                   // gateway fault (credentials for upstream, ...)
	KindBodyTooLarge                               // a buffered body, an aws-chunked chunk or its trailers exceed a configured bound
	KindThrottled                                  // the gateway sheds load (503; SDKs retry)
)

// gatewayFault reports whether the kind is the gateway's or the
// upstream's fault rather than the caller's.
func (k ErrorKind) gatewayFault() bool {
	return k == KindBadGateway || k == KindGatewayTimeout || k == KindInternal
}

type kindInfo struct {
	status int
	// codes per protocol family: S3/rest-xml, query (also ec2), json (also rest-json)
	s3, query, json string
}

var kinds = [...]kindInfo{
	KindAccessDenied:          {http.StatusForbidden, "AccessDenied", "AccessDenied", "AccessDeniedException"},
	KindMissingAuth:           {http.StatusForbidden, "AccessDenied", "MissingAuthenticationToken", "MissingAuthenticationTokenException"},
	KindMalformedAuth:         {http.StatusBadRequest, "AuthorizationHeaderMalformed", "IncompleteSignature", "IncompleteSignatureException"},
	KindUnknownAccessKey:      {http.StatusForbidden, "InvalidAccessKeyId", "InvalidClientTokenId", "UnrecognizedClientException"},
	KindExpiredToken:          {http.StatusBadRequest, "ExpiredToken", "ExpiredToken", "ExpiredTokenException"},
	KindSignatureMismatch:     {http.StatusForbidden, "SignatureDoesNotMatch", "SignatureDoesNotMatch", "InvalidSignatureException"},
	KindRequestTimeSkewed:     {http.StatusForbidden, "RequestTimeTooSkewed", "RequestTimeTooSkewed", "InvalidSignatureException"},
	KindPresignExpired:        {http.StatusForbidden, "AccessDenied", "RequestExpired", "InvalidSignatureException"},
	KindContentSHA256Mismatch: {http.StatusBadRequest, "XAmzContentSHA256Mismatch", "SignatureDoesNotMatch", "InvalidSignatureException"},
	KindBadRequest:            {http.StatusBadRequest, "InvalidRequest", "InvalidRequest", "ValidationException"},
	KindUnknownService:        {http.StatusBadRequest, "InvalidRequest", "InvalidAction", "UnknownOperationException"},
	KindRequestTooLarge:       {http.StatusBadRequest, "RequestHeaderSectionTooLarge", "RequestEntityTooLarge", "RequestEntityTooLargeException"},
	KindBadGateway:            {http.StatusBadGateway, "BadGateway", "BadGateway", "BadGatewayException"},
	KindGatewayTimeout:        {http.StatusGatewayTimeout, "GatewayTimeout", "GatewayTimeout", "GatewayTimeoutException"},
	KindInternal:              {http.StatusInternalServerError, "InternalError", "InternalFailure", "InternalFailure"},
	KindBodyTooLarge:          {http.StatusBadRequest, "EntityTooLarge", "RequestEntityTooLarge", "RequestEntityTooLargeException"},
	KindThrottled:             {http.StatusServiceUnavailable, "SlowDown", "Throttling", "ThrottlingException"},
}

// CodeClientDisconnected is the error code a Call (and its audit record)
// carries when the client went away while the response was being sent:
// the status was written, the rest of the body was not.
const CodeClientDisconnected = "ClientDisconnected"

// Error is a refusal the gateway answers itself, shaped for the AWS
// protocol of the request. Stages return an *Error to choose the code and
// message; any other error from a stage becomes KindInternal.
type Error struct {
	Kind    ErrorKind
	Message string
	// Code overrides the per-protocol code of Kind (for example
	// "ApprovalPending"). Status overrides the HTTP status. Zero values keep
	// the defaults of Kind.
	Code   string
	Status int
	// Err is the underlying cause, kept for logs and errors.Is; it is never
	// sent to the client.
	Err error
	// Approval, set on an ApprovalPending refusal, is sent as response
	// headers (HeaderApprovalID ...) and as members of the error body.
	Approval *PendingApproval
}

// newError returns an *Error of the given kind.
func newError(kind ErrorKind, msg string, cause error) *Error {
	return &Error{Kind: kind, Message: msg, Err: cause}
}

func (e *Error) Error() string {
	s := "awsproxy: " + e.code(ProtocolRESTXML) + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

func (e *Error) info() kindInfo {
	if int(e.Kind) < len(kinds) && e.Kind != 0 {
		return kinds[e.Kind]
	}
	return kinds[KindInternal]
}

func (e *Error) status() int {
	if e.Status != 0 {
		return e.Status
	}
	return e.info().status
}

func (e *Error) code(p Protocol) string {
	if e.Code != "" {
		return e.Code
	}
	in := e.info()
	switch p {
	case ProtocolJSON, ProtocolRESTJSON:
		return in.json
	case ProtocolQuery, ProtocolEC2:
		return in.query
	}
	return in.s3
}

// asError turns any error into an *Error, defaulting to KindInternal.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return newError(KindInternal, "internal error", err)
}

// guessProtocol picks the error shape for a request whose service is not (yet)
// known: X-Amz-Target means JSON, a form body or Action query means query,
// anything else gets S3's XML.
func guessProtocol(r *http.Request) Protocol {
	if r.Header.Get("X-Amz-Target") != "" {
		return ProtocolJSON
	}
	if r.URL.Query().Has("Action") || strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return ProtocolQuery
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		return ProtocolRESTJSON
	}
	return ProtocolRESTXML
}

// approvalMembers are the members an ApprovalPending error body adds,
// beside the code and message; SDKs ignore members they do not know.
type approvalMembers struct {
	ApprovalID      string `xml:"ApprovalId,omitempty" json:"ApprovalId,omitempty"`
	ApprovalURL     string `xml:"ApprovalUrl,omitempty" json:"ApprovalUrl,omitempty"`
	ApprovalExpires string `xml:"ApprovalExpires,omitempty" json:"ApprovalExpires,omitempty"`
	ApprovalMode    string `xml:"ApprovalMode,omitempty" json:"ApprovalMode,omitempty"`
}

func (e *Error) approvalMembers() approvalMembers {
	p := e.Approval
	if p == nil {
		return approvalMembers{}
	}
	return approvalMembers{p.ID, p.URL, p.expires(), p.Mode}
}

type s3ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
	approvalMembers
}

type queryErrorBody struct {
	XMLName xml.Name `xml:"ErrorResponse"`
	Error   struct {
		Type    string `xml:"Type"`
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
		approvalMembers
	} `xml:"Error"`
	RequestID string `xml:"RequestId"`
}

type ec2ErrorBody struct {
	XMLName xml.Name `xml:"Response"`
	Errors  struct {
		Error struct {
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
			approvalMembers
		} `xml:"Error"`
	} `xml:"Errors"`
	RequestID string `xml:"RequestID"`
}

// writeError writes e shaped for protocol p. A HEAD request gets no body, as
// with AWS; SDKs then fall back to the status code and headers.
func writeError(w http.ResponseWriter, r *http.Request, p Protocol, e *Error, requestID string) {
	if p == ProtocolUnknown {
		p = guessProtocol(r)
	}
	if strings.EqualFold(r.Header.Get("Smithy-Protocol"), "rpc-v2-cbor") {
		p = ProtocolJSON // codes as for JSON; the body is CBOR below
	}
	code := e.code(p)
	status := e.status()
	var body []byte
	h := w.Header()
	switch {
	case strings.EqualFold(r.Header.Get("Smithy-Protocol"), "rpc-v2-cbor"):
		// Smithy RPC v2 CBOR (CloudWatch's current SDKs): a CBOR map with
		// __type and message.
		kv := []string{"__type", code, "message", e.Message}
		if a := e.approvalMembers(); a.ApprovalID != "" {
			kv = append(kv, "ApprovalId", a.ApprovalID, "ApprovalUrl", a.ApprovalURL, "ApprovalExpires", a.ApprovalExpires, "ApprovalMode", a.ApprovalMode)
		}
		body = cborTextMap(kv...)
		h.Set("Content-Type", "application/cbor")
		h.Set("Smithy-Protocol", "rpc-v2-cbor")
		h.Set("X-Amzn-Requestid", requestID)
	default:
		body, code = writeProtocolError(r, h, p, e, code, status, requestID)
	}
	h.Set("X-Gatehouse-Error", code)
	if e.Approval != nil {
		e.Approval.setHeaders(h)
	}
	if r.Method == http.MethodHead {
		body = nil
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// cborTextMap encodes a CBOR map of text strings (keys and values
// alternating), which is all an error body needs.
func cborTextMap(kv ...string) []byte {
	out := cborHead(nil, 5, uint64(len(kv)/2))
	for _, s := range kv {
		out = cborHead(out, 3, uint64(len(s)))
		out = append(out, s...)
	}
	return out
}

// cborHead appends a CBOR initial byte and argument for major type major.
func cborHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n < 1<<8:
		return append(b, m|24, byte(n))
	case n < 1<<16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n < 1<<32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// writeProtocolError sets the headers and returns the body of an error in
// the shape of protocol p.
func writeProtocolError(r *http.Request, h http.Header, p Protocol, e *Error, code string, status int, requestID string) ([]byte, string) {
	var body []byte
	switch p {
	case ProtocolJSON, ProtocolRESTJSON:
		ct := "application/x-amz-json-1.1"
		if v := r.Header.Get("Content-Type"); strings.HasPrefix(v, "application/x-amz-json-1.") {
			ct = v // answer JSON 1.0 clients in 1.0
		}
		if p == ProtocolRESTJSON {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
		h.Set("X-Amzn-Errortype", code)
		h.Set("X-Amzn-Requestid", requestID)
		body, _ = json.Marshal(struct {
			Type    string `json:"__type"`
			Message string `json:"message"`
			approvalMembers
		}{code, e.Message, e.approvalMembers()})
		// DynamoDB's SDK checks the CRC32 of every response, errors too.
		h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	case ProtocolQuery:
		var q queryErrorBody
		q.Error.Type = "Sender"
		if status >= 500 {
			q.Error.Type = "Receiver"
		}
		q.Error.Code, q.Error.Message, q.RequestID = code, e.Message, requestID
		q.Error.approvalMembers = e.approvalMembers()
		body = marshalXML(q)
		h.Set("Content-Type", "text/xml")
		h.Set("X-Amzn-Requestid", requestID)
	case ProtocolEC2:
		var q ec2ErrorBody
		q.Errors.Error.Code, q.Errors.Error.Message, q.RequestID = code, e.Message, requestID
		q.Errors.Error.approvalMembers = e.approvalMembers()
		body = marshalXML(q)
		h.Set("Content-Type", "text/xml;charset=UTF-8")
	default:
		body = marshalXML(s3ErrorBody{Code: code, Message: e.Message, RequestID: requestID, approvalMembers: e.approvalMembers()})
		h.Set("Content-Type", "application/xml")
		h.Set("X-Amz-Request-Id", requestID)
	}
	return body, code
}

func marshalXML(v any) []byte {
	b, err := xml.Marshal(v)
	if err != nil { // cannot happen for these fixed types
		return nil
	}
	return append([]byte(xml.Header), b...)
}
