package approval

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Webhook header names.
const (
	SignatureHeader = "X-Gatehouse-Signature" // "sha256=" + hex HMAC-SHA256 of the body
	EventHeader     = "X-Gatehouse-Event"     // "approval.requested"
	DeliveryHeader  = "X-Gatehouse-Delivery"  // the approval id, the same on every retry
)

// MinSecretLen is the shortest webhook secret NewWebhook accepts.
const MinSecretLen = 16

// WebhookConfig configures a generic webhook notifier.
type WebhookConfig struct {
	// URL receives a POST per new record. Required, http or https.
	URL string
	// Secret keys the HMAC-SHA256 signature of each body. Required, at
	// least MinSecretLen bytes.
	Secret []byte
	// Client sends the requests; nil means a client with a
	// DefaultHTTPTimeout per attempt.
	Client *http.Client
	// Retry bounds the attempts.
	Retry Retry
	// Header holds extra request headers (authorization for the receiver,
	// say). It cannot override Content-Type or the X-Gatehouse headers.
	Header http.Header
}

// Webhook posts a signed JSON WebhookPayload for every new record.
// Receivers verify it with VerifySignature and may deduplicate retries by
// the X-Gatehouse-Delivery header.
type Webhook struct {
	cfg    WebhookConfig
	client *http.Client
}

// WebhookPayload is the JSON body a Webhook sends.
type WebhookPayload struct {
	Type         string            `json:"type"` // "approval.requested"
	ID           string            `json:"id"`
	URL          string            `json:"url,omitempty"`
	Principal    string            `json:"principal"`
	Requester    Requester         `json:"requester"`
	Action       string            `json:"action"`
	Resources    []string          `json:"resources,omitempty"`
	Summary      map[string]string `json:"summary,omitempty"`
	Requirements []Requirement     `json:"requirements"`
	CreatedAt    time.Time         `json:"created_at"`
	ExpiresAt    time.Time         `json:"expires_at"`
}

// NewWebhook validates cfg.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if err := checkHTTPURL("WebhookConfig.URL", cfg.URL); err != nil {
		return nil, err
	}
	if len(cfg.Secret) < MinSecretLen {
		return nil, invalid("WebhookConfig.Secret", "at least %d bytes required", MinSecretLen)
	}
	r, err := cfg.Retry.check("WebhookConfig.Retry")
	if err != nil {
		return nil, err
	}
	cfg.Retry = r
	cfg.Secret = append([]byte(nil), cfg.Secret...)
	cfg.Header = cfg.Header.Clone()
	return &Webhook{cfg: cfg, client: httpClient(cfg.Client)}, nil
}

// Notify implements Notifier.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	r := n.Record
	body, err := json.Marshal(WebhookPayload{
		Type: "approval.requested", ID: r.ID, URL: n.URL, Principal: r.Principal, Requester: r.Requester,
		Action: r.Action, Resources: r.Resources, Summary: r.Summary, Requirements: r.Requirements,
		CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt,
	})
	if err != nil {
		return err
	}
	h := w.cfg.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "gatehouse-approval")
	h.Set(SignatureHeader, Sign(w.cfg.Secret, body))
	h.Set(EventHeader, "approval.requested")
	h.Set(DeliveryHeader, r.ID)
	return post(ctx, w.client, w.cfg.Retry, w.cfg.URL, body, h)
}

// Sign returns the X-Gatehouse-Signature value for body:
// "sha256=" followed by the hex HMAC-SHA256 of body keyed with secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports, in constant time, whether header is the
// X-Gatehouse-Signature of body under secret.
func VerifySignature(secret, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

func checkHTTPURL(field, raw string) error {
	u, err := url.Parse(raw)
	switch {
	case raw == "":
		return invalid(field, "required")
	case err != nil:
		return invalid(field, "not a valid URL") // the URL may be a secret: not quoted
	case u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
		return invalid(field, "must be an absolute http or https URL")
	}
	return nil
}
