package awsproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"mime"
	"net/url"
	"strings"
	"unicode"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
	"github.com/gatehouse-dev/gatehouse/mask"
)

// Artefacts the gateway writes (session recordings, approval previews)
// never hold a live credential, whatever the policy says: every body that
// goes into one is masked by the artefact rules first, and a body that
// cannot be masked is withheld (only its size is kept).
//
// The artefact rules are every detector of the mask package (access keys,
// secret keys, session tokens, private keys, JWTs, passwords), the
// aws-secrets profile's rules for the operation's response (STS, IAM and
// SSO credentials, Secrets Manager and SSM values, Lambda and ECS
// environments ...), including the gateway's own STS answers, and the
// operation's sensitive input members for its request.
type artefactMaskers struct {
	cfg   mask.Config
	cache boundedCache[artefactKey, *mask.Masker]
}

type artefactKey struct {
	service, operation string
	request            bool
}

const maxArtefactMaskers = 4096

func (a *artefactMaskers) get(c *Call, request bool) (*mask.Masker, error) {
	k := artefactKey{c.Service, c.Classification.Operation, request}
	return a.cache.get(k, func() (*mask.Masker, error) {
		rules := []mask.Rule{{Name: "secrets", Detect: mask.DetectAll}}
		if request {
			rules = append(rules, sensitiveInputRules(c)...)
		} else {
			rules = append(rules, mask.ProfileRules(mask.ProfileAWSSecrets, c.Service, c.Classification.Operation)...)
		}
		cfg := a.cfg
		cfg.Rules = rules
		return mask.New(cfg)
	})
}

// sensitiveInputRules masks the operation's sensitive body members (a
// password, a secret string, a structure with a secret inside) by name, at
// any depth of a JSON or XML body, and as the flattened keys of a query
// form ("LaunchSpecification.UserData").
func sensitiveInputRules(c *Call) []mask.Rule {
	op := classifiedOperation(c)
	if op == nil {
		return nil
	}
	var rules []mask.Rule
	for _, m := range op.Inputs {
		if !m.Sensitive || m.Location != catalog.LocationBody {
			continue
		}
		name := escapePathName(m.Wire)
		rules = append(rules,
			mask.Rule{Name: "sensitive " + m.Name, Path: name},
			mask.Rule{Name: "sensitive " + m.Name, Path: name + `\.*`})
	}
	return rules
}

// sensitivePayload reports whether the request body as a whole is a
// sensitive member (S3 PutBucketEncryption's configuration, say): such a
// body never goes into an artefact.
func sensitivePayload(c *Call) bool {
	op := classifiedOperation(c)
	if op == nil {
		return false
	}
	for _, m := range op.Inputs {
		if m.Sensitive && m.Location == catalog.LocationPayload {
			return true
		}
	}
	return false
}

func classifiedOperation(c *Call) *catalog.Operation {
	if svc := c.Classification.Service; svc != nil {
		return svc.Operation(c.Classification.Operation)
	}
	return nil
}

// escapePathName escapes a member name for one segment of a mask path
// (mask/maskpath: its reserved characters and white space).
func escapePathName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(".*?\\$#@![](){}|/,=\"':", r) || unicode.IsSpace(r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// errNotMaskable is returned for bodies an artefact cannot hold.
var errNotMaskable = errors.New("awsproxy: body cannot be checked for secrets")

// maskArtefact masks body for an artefact. JSON and XML bodies are masked
// as documents; form bodies (the query protocols) value by value, through
// a JSON object of their parameters, and re-encoded as a form. Anything
// else, and a compressed body, is errNotMaskable.
func maskArtefact(m *mask.Masker, contentType, contentEncoding string, body []byte) ([]byte, bool, error) {
	if len(body) == 0 {
		return body, false, nil
	}
	if ce := strings.TrimSpace(strings.ToLower(contentEncoding)); ce != "" && ce != "identity" {
		return nil, false, errNotMaskable
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "application/x-www-form-urlencoded" {
		return maskForm(m, body)
	}
	out, rep, err := m.Mask(contentType, body)
	if err != nil {
		return nil, false, errNotMaskable
	}
	return out, rep.Masked(), nil
}

func maskForm(m *mask.Masker, body []byte) ([]byte, bool, error) {
	var doc, keys bytes.Buffer
	doc.WriteByte('{')
	keys.WriteByte('[')
	for i, pair := range strings.Split(string(body), "&") {
		k, v, _ := strings.Cut(pair, "=")
		dk, err1 := url.QueryUnescape(k)
		dv, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			return nil, false, errNotMaskable
		}
		if i > 0 {
			doc.WriteByte(',')
			keys.WriteByte(',')
		}
		kb, _ := json.Marshal(dk)
		vb, _ := json.Marshal(dv)
		doc.Write(kb)
		doc.WriteByte(':')
		doc.Write(vb)
		keys.Write(kb)
	}
	doc.WriteByte('}')
	keys.WriteByte(']')
	// Masks apply to values; a name that holds a secret (a token sent
	// without "=") cannot be masked in place: the body is withheld.
	if _, rep, err := m.MaskJSON(keys.Bytes()); err != nil || rep.Masked() {
		return nil, false, errNotMaskable
	}
	out, rep, err := m.MaskJSON(doc.Bytes())
	if err != nil {
		return nil, false, errNotMaskable
	}
	if !rep.Masked() {
		return body, false, nil
	}
	// Read the masked object back in order and encode it as a form.
	dec := json.NewDecoder(bytes.NewReader(out))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false, errNotMaskable
	}
	var form strings.Builder
	for dec.More() {
		var k, v string
		kt, err := dec.Token()
		if err != nil {
			return nil, false, errNotMaskable
		}
		k, _ = kt.(string)
		if err := dec.Decode(&v); err != nil {
			return nil, false, errNotMaskable
		}
		if form.Len() > 0 {
			form.WriteByte('&')
		}
		form.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(v))
	}
	return []byte(form.String()), true, nil
}

// artefactBody is body as a recording may hold it: masked and cut to
// audit.DefaultMaxBody, or withheld with the reason. size is the body's
// full length; a body known only in part cannot be checked and is
// withheld.
func (h *Handler) artefactBody(c *Call, request bool, contentType, contentEncoding string, body []byte, size int64) audit.Body {
	switch {
	case size == 0 && len(body) == 0:
		return audit.Body{}
	case body == nil:
		return audit.WithheldBody(size, "streamed, not held by the gateway")
	case size > int64(len(body)):
		return audit.WithheldBody(size, "only part of the body was captured, which cannot be checked for secrets")
	}
	if request && sensitivePayload(c) {
		return audit.WithheldBody(size, "the body is a sensitive member of the operation")
	}
	m, err := h.artefacts.get(c, request)
	if err != nil {
		return audit.WithheldBody(size, "the artefact mask rules do not compile")
	}
	out, _, err := maskArtefact(m, contentType, contentEncoding, body)
	if err != nil {
		return audit.WithheldBody(size, "in a format that cannot be checked for secrets (binary, compressed, or a path rule on text)")
	}
	return audit.NewBody(out, int64(len(out)), audit.DefaultMaxBody)
}
