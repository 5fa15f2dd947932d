package awsproxy

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// WebIdentityExchanger verifies a workload's identity token and mints
// gateway session credentials for it (identity.Exchanger implements it).
// Errors wrapping identity.ErrTokenInvalid, identity.ErrTokenExpired or
// identity.ErrRoleDenied are answered with STS's InvalidIdentityToken,
// ExpiredTokenException and AccessDenied.
type WebIdentityExchanger interface {
	Exchange(ctx context.Context, req identity.ExchangeRequest) (*identity.ExchangeResult, error)
}

// SessionAuthenticator accepts gateway session credentials opened by s:
// the access key id and session token minted by the STS endpoint.
//
// Opened tokens are remembered (bounded) so that a caller's repeated
// requests skip decryption and decoding; the handler still checks the
// session's expiry on every request.
func SessionAuthenticator(s *identity.Sessions) Authenticator {
	return &sessionAuth{s: s, cache: make(map[sessionCacheKey]*Session)}
}

type sessionAuth struct {
	s     *identity.Sessions
	mu    sync.Mutex
	cache map[sessionCacheKey]*Session
}

type sessionCacheKey struct{ akid, token string }

const maxCachedSessions = 16384

func (a *sessionAuth) Authenticate(_ context.Context, c Credential) (*Session, error) {
	if c.SessionToken == "" {
		return nil, fmt.Errorf("%w: gateway session credentials need their session token", ErrUnknownAccessKey)
	}
	key := sessionCacheKey{c.AccessKeyID, c.SessionToken}
	a.mu.Lock()
	cached := a.cache[key]
	a.mu.Unlock()
	if cached != nil {
		s := *cached
		return &s, nil
	}
	claims, secret, err := a.s.Open(c.AccessKeyID, c.SessionToken)
	switch {
	case errors.Is(err, identity.ErrSessionExpired):
		return nil, fmt.Errorf("%w: %v", ErrExpiredToken, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	sess := &Session{Principal: claims.Principal, SecretAccessKey: secret, Role: claims.Role, Expires: claims.Expires, ID: claims.AccessKeyID}
	a.mu.Lock()
	if len(a.cache) >= maxCachedSessions {
		clear(a.cache)
	}
	a.cache[key] = sess
	a.mu.Unlock()
	s := *sess
	return &s, nil
}

const (
	stsNamespace   = "https://sts.amazonaws.com/doc/2011-06-15/"
	maxSTSFormBody = 64 << 10
)

// isUnsignedSTS reports whether r looks like an unsigned STS query call
// (AssumeRoleWithWebIdentity is made without a signature).
func isUnsignedSTS(r *http.Request) bool {
	if r.Header.Get(headerAuthorization) != "" || strings.Contains(r.URL.RawQuery, "X-Amz-") {
		return false
	}
	if r.Method == http.MethodPost {
		return strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded")
	}
	return r.Method == http.MethodGet && r.URL.Query().Get("Action") != ""
}

// serveWebIdentity answers an unsigned STS call. Only
// AssumeRoleWithWebIdentity is accepted without a signature.
func (h *Handler) serveWebIdentity(w http.ResponseWriter, c *Call) {
	c.Service, c.Protocol = "sts", ProtocolQuery
	c.Classification.Operation, c.Classification.Action = "AssumeRoleWithWebIdentity", "sts:AssumeRoleWithWebIdentity"
	form, e := h.stsForm(c)
	if e != nil {
		h.refuse(w, c, e)
		return
	}
	if form.Get("Action") != "AssumeRoleWithWebIdentity" {
		h.refuse(w, c, newError(KindMissingAuth, "Request is missing Authentication Token", nil))
		return
	}
	if h.cfg.WebIdentity == nil {
		h.refuse(w, c, newError(KindUnknownService, "this gateway does not exchange web identity tokens", nil))
		return
	}
	req := identity.ExchangeRequest{Token: form.Get("WebIdentityToken"), Role: form.Get("RoleArn")}
	if req.Token == "" {
		h.refuse(w, c, &Error{Kind: KindBadRequest, Code: "MissingParameter", Message: "WebIdentityToken is required"})
		return
	}
	if d := form.Get("DurationSeconds"); d != "" {
		secs, err := strconv.Atoi(d)
		if err != nil || secs < 900 || secs > 43200 {
			h.refuse(w, c, &Error{Kind: KindBadRequest, Code: "ValidationError", Message: "DurationSeconds must be 900..43200"})
			return
		}
		req.Duration = time.Duration(secs) * time.Second
	}
	res, err := h.cfg.WebIdentity.Exchange(c.Request.Context(), req)
	if err != nil {
		h.refuse(w, c, webIdentityError(err))
		return
	}
	p := res.Token.Principal
	c.Session = &Session{Principal: p, Role: res.Role.ARN, Expires: res.Credentials.Expires, ID: res.Credentials.AccessKeyID}
	session := form.Get("RoleSessionName")
	if session == "" {
		session = RoleSessionName(p.String())
	}
	type assumedRoleUser struct {
		Arn           string `xml:"Arn"`
		AssumedRoleID string `xml:"AssumedRoleId"`
	}
	type credentials struct {
		AccessKeyID     string `xml:"AccessKeyId"`
		SecretAccessKey string `xml:"SecretAccessKey"`
		SessionToken    string `xml:"SessionToken"`
		Expiration      string `xml:"Expiration"`
	}
	var out struct {
		XMLName xml.Name `xml:"AssumeRoleWithWebIdentityResponse"`
		NS      string   `xml:"xmlns,attr"`
		Result  struct {
			Subject         string          `xml:"SubjectFromWebIdentityToken"`
			Audience        string          `xml:"Audience,omitempty"`
			AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
			Credentials     credentials     `xml:"Credentials"`
			SourceIdentity  string          `xml:"SourceIdentity,omitempty"`
			Provider        string          `xml:"Provider"`
		} `xml:"AssumeRoleWithWebIdentityResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	out.NS = stsNamespace
	r := &out.Result
	r.Subject, r.Audience, r.Provider = p.Subject, res.Token.Audience, p.Issuer
	r.SourceIdentity = p.Subject
	r.AssumedRoleUser = assumedRoleUser{Arn: assumedRoleARN(res.Role.ARN, "", session), AssumedRoleID: "AROA" + strings.ToUpper(res.Credentials.AccessKeyID[3:]) + ":" + session}
	r.Credentials = credentials{res.Credentials.AccessKeyID, res.Credentials.SecretAccessKey, res.Credentials.SessionToken, res.Credentials.Expires.UTC().Format(time.RFC3339)}
	out.RequestID = c.ID
	writeXML(w, out)
}

func (h *Handler) stsForm(c *Call) (url.Values, *Error) {
	r := c.Request
	if r.Method == http.MethodGet {
		return r.URL.Query(), nil
	}
	if r.ContentLength > maxSTSFormBody {
		return nil, newError(KindBodyTooLarge, "STS request body too large", nil)
	}
	b, err := io.ReadAll(io.LimitReader(h.deadlineBody(c, r.Body), maxSTSFormBody+1))
	if err != nil {
		return nil, newError(KindBadRequest, "STS request body could not be read", err)
	}
	if len(b) > maxSTSFormBody {
		return nil, newError(KindBodyTooLarge, "STS request body too large", nil)
	}
	c.BytesIn = int64(len(b))
	form, err := url.ParseQuery(string(b))
	if err != nil {
		return nil, &Error{Kind: KindBadRequest, Code: "MalformedQueryString", Message: "STS form body does not parse", Err: err}
	}
	return form, nil
}

// webIdentityError maps an exchange failure to STS's error codes.
func webIdentityError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, identity.ErrTokenExpired):
		return &Error{Kind: KindBadRequest, Code: "ExpiredTokenException", Message: "Token is expired", Err: err}
	case errors.Is(err, identity.ErrRoleDenied):
		return &Error{Kind: KindAccessDenied, Message: err.Error(), Err: err}
	case errors.Is(err, identity.ErrTokenInvalid):
		return &Error{Kind: KindBadRequest, Code: "InvalidIdentityToken", Message: err.Error(), Err: err}
	}
	return &Error{Kind: KindInternal, Code: "IDPCommunicationError", Message: "the identity token could not be verified", Err: err}
}

// assumedRoleARN builds arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION
// from a role ARN.
func assumedRoleARN(roleARN, roleName, session string) string {
	parts := strings.SplitN(roleARN, ":", 6)
	partition, account := "aws", "000000000000"
	if len(parts) == 6 {
		partition, account = parts[1], parts[4]
		if roleName == "" {
			roleName = parts[5][strings.LastIndex(parts[5], "/")+1:]
		}
	}
	if roleName == "" {
		roleName = "gatehouse"
	}
	return "arn:" + partition + ":sts::" + account + ":assumed-role/" + roleName + "/" + session
}

// isGetCallerIdentity reports whether a verified call is
// sts:GetCallerIdentity, which the gateway answers itself.
func isGetCallerIdentity(c *Call) bool {
	return c.Service == "sts" && c.Classification.Operation == "GetCallerIdentity"
}

// serveCallerIdentity answers sts:GetCallerIdentity for the verified
// session: the identity the gateway acts as, never the gateway's own.
func (h *Handler) serveCallerIdentity(w http.ResponseWriter, c *Call) {
	s := c.Session
	roleARN := s.Role
	if !strings.HasPrefix(roleARN, "arn:") {
		roleARN = ""
	}
	session := RoleSessionName(s.Principal.String())
	arn := assumedRoleARN(roleARN, roleNameOf(s.Role), session)
	account := strings.Split(arn, ":")[4]
	var out struct {
		XMLName xml.Name `xml:"GetCallerIdentityResponse"`
		NS      string   `xml:"xmlns,attr"`
		Result  struct {
			Arn     string `xml:"Arn"`
			UserID  string `xml:"UserId"`
			Account string `xml:"Account"`
		} `xml:"GetCallerIdentityResult"`
		RequestID string `xml:"ResponseMetadata>RequestId"`
	}
	out.NS = stsNamespace
	out.Result.Arn, out.Result.UserID, out.Result.Account = arn, s.ID+":"+session, account
	out.RequestID = c.ID
	writeXML(w, out)
}

func roleNameOf(role string) string {
	if i := strings.LastIndex(role, "/"); i >= 0 {
		return role[i+1:]
	}
	return role
}

func writeXML(w http.ResponseWriter, v any) {
	body := marshalXML(v)
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}
