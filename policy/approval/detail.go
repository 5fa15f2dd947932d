package approval

import (
	"fmt"
	"maps"
	"slices"
	"unicode/utf8"
)

// Bounds on a Request's Detail. A Detail beyond them is refused with an
// *InvalidError; the proxy keeps within them by cutting previews.
const (
	MaxDetailHeaders     = 128
	MaxDetailHeaderValue = 8 << 10
	MaxDetailParams      = 64
	MaxDetailField       = 8 << 10 // path, query, service, operation, region, method
	// MaxBodyPreview bounds Body.Preview. Callers cut longer previews and
	// set Body.Truncated.
	MaxBodyPreview = 64 << 10
)

// Detail is the effective request an approval is bound to, as the
// approvers see it on the page and in the API: everything the request's
// fingerprint covers, in readable form. It is plain data; the caller (the
// proxy) fills it and masks anything secret in it before it is stored.
type Detail struct {
	Service   string `json:"service,omitempty"`
	Operation string `json:"operation,omitempty"`
	Region    string `json:"region,omitempty"`
	Method    string `json:"method,omitempty"`
	// Path is the request path exactly as it is forwarded (escaped).
	Path string `json:"path,omitempty"`
	// Query is the canonical query string as it is forwarded.
	Query string `json:"query,omitempty"`
	// Params are the request's parameters that the classifier read (never
	// sensitive members).
	Params map[string]string `json:"params,omitempty"`
	// Headers are the bound headers: every forwarded header that can
	// change what the upstream does, in the order the fingerprint covers
	// them.
	Headers []Header `json:"headers,omitempty"`
	// Body describes the request body the approval is bound to.
	Body *Body `json:"body,omitempty"`
	// Decision is the digest of the policy decision (policy.Decision.Digest)
	// that asked for the approval; a reload that changes the decision
	// changes the request's fingerprint, so the grant no longer applies.
	Decision string `json:"decision,omitempty"`
}

// Header is one bound request header.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
	// Digest reports that Value is "sha256:<hex>" of the real value, which
	// is secret (an SSE-C key, say) and is never shown.
	Digest bool `json:"digest,omitempty"`
}

// Body describes a request body: its size and SHA-256, which bind the
// approval, and a preview for approvers.
type Body struct {
	// Size is the body's length in bytes (the decoded payload for
	// aws-chunked bodies); -1 when unknown.
	Size int64 `json:"size"`
	// SHA256 is the hex SHA-256 of the body (the decoded payload). The
	// approval covers exactly this body.
	SHA256 string `json:"sha256"`
	// ContentType is the body's declared media type.
	ContentType string `json:"content_type,omitempty"`
	// Preview is the start of the body as text, with secrets masked; empty
	// when the body is empty or cannot be shown (PreviewNote says why).
	Preview string `json:"preview,omitempty"`
	// Truncated reports that Preview is only the start of the body.
	Truncated bool `json:"truncated,omitempty"`
	// Masked reports that masking changed something in Preview.
	Masked bool `json:"masked,omitempty"`
	// PreviewNote says why the preview is partial or absent ("binary body",
	// "body streams and is bound by its signed SHA-256").
	PreviewNote string `json:"preview_note,omitempty"`
}

// validate checks d against the Detail bounds.
func (d *Detail) validate() error {
	for name, v := range map[string]string{
		"Service": d.Service, "Operation": d.Operation, "Region": d.Region, "Method": d.Method,
		"Path": d.Path, "Query": d.Query, "Decision": d.Decision,
	} {
		if len(v) > MaxDetailField {
			return invalid("Request.Detail."+name, "longer than %d bytes", MaxDetailField)
		}
	}
	if len(d.Params) > MaxDetailParams {
		return invalid("Request.Detail.Params", "more than %d entries", MaxDetailParams)
	}
	for k, v := range d.Params {
		if len(k) > MaxDetailField || len(v) > MaxDetailHeaderValue {
			return invalid("Request.Detail.Params", "keys must be at most %d bytes and values %d", MaxDetailField, MaxDetailHeaderValue)
		}
	}
	if len(d.Headers) > MaxDetailHeaders {
		return invalid("Request.Detail.Headers", "more than %d headers", MaxDetailHeaders)
	}
	for i, h := range d.Headers {
		if h.Name == "" || len(h.Name) > MaxDetailField || len(h.Value) > MaxDetailHeaderValue {
			return invalid(fmt.Sprintf("Request.Detail.Headers[%d]", i), "names must be 1 to %d bytes and values at most %d", MaxDetailField, MaxDetailHeaderValue)
		}
	}
	if b := d.Body; b != nil {
		switch {
		case len(b.Preview) > MaxBodyPreview:
			return invalid("Request.Detail.Body.Preview", "longer than %d bytes", MaxBodyPreview)
		case !utf8.ValidString(b.Preview):
			return invalid("Request.Detail.Body.Preview", "not UTF-8 text")
		case len(b.SHA256) != 64:
			return invalid("Request.Detail.Body.SHA256", "must be 64 hex digits")
		case len(b.ContentType) > MaxDetailField || len(b.PreviewNote) > MaxDetailField:
			return invalid("Request.Detail.Body", "content type and note must be at most %d bytes", MaxDetailField)
		}
	}
	return nil
}

// clone returns a deep copy of d (nil for nil).
func (d *Detail) clone() *Detail {
	if d == nil {
		return nil
	}
	c := *d
	c.Params = maps.Clone(d.Params)
	c.Headers = slices.Clone(d.Headers)
	if d.Body != nil {
		b := *d.Body
		c.Body = &b
	}
	return &c
}
