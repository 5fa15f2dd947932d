package awsproxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gatehouse-dev/gatehouse/mask"
	"github.com/gatehouse-dev/gatehouse/policy"
)

// CodeResponseWithheld is the AWS error code of a response the gateway
// withholds because a mask obligation cannot be applied to it (see the
// package doc, "Masking"). The call was made upstream; the status is 403
// for an upstream success, so that no SDK retries it.
const CodeResponseWithheld = "ResponseWithheld"

// maskers compiles the mask obligations of decisions into maskers, once
// per distinct (obligations, service, operation), and keeps them.
type maskers struct {
	cfg   mask.Config
	cache boundedCache[string, *mask.Masker]
}

const maxCachedMaskers = 1024

// forCall returns the masker for c's obligations, nil when there is
// nothing to mask for this operation (a profile without rules for it).
//
// Every obligation becomes rules that read the body by its media type: a
// policy path (Rule.Path) applies to JSON and XML alike, whatever the
// service's protocol; a profile brings its rules for this operation. An
// obligation with onUnmaskable: pass makes its rules SkipUnmaskable.
func (ms *maskers) forCall(c *Call) (*mask.Masker, error) {
	if c.Decision == nil || len(c.Decision.Obligations.Masks) == 0 {
		return nil, nil
	}
	svc, op := c.Service, c.Classification.Operation
	var key strings.Builder
	key.WriteString(svc + "\x00" + op)
	for _, m := range c.Decision.Obligations.Masks {
		fmt.Fprintf(&key, "\x00%s\x01%s\x01%s\x01%d\x01%s", m.Profile, m.Path, m.Strategy, m.Keep, m.OnUnmaskable)
	}
	return ms.cache.get(key.String(), func() (*mask.Masker, error) {
		var rules []mask.Rule
		for _, m := range c.Decision.Obligations.Masks {
			skip := m.OnUnmaskable == policy.Pass
			if m.Profile != "" {
				for _, r := range mask.ProfileRules(m.Profile, svc, op) {
					r.SkipUnmaskable = skip
					rules = append(rules, r)
				}
				continue
			}
			rules = append(rules, mask.Rule{Path: m.Path, Strategy: mask.Strategy(m.Strategy), Keep: m.Keep, SkipUnmaskable: skip})
		}
		if len(rules) == 0 {
			return nil, nil
		}
		cfg := ms.cfg
		cfg.Rules = rules
		return mask.New(cfg)
	})
}

// checkMasks compiles c's mask obligations before anything is forwarded:
// a masker that cannot be built (a hash strategy without
// Config.MaskHashKey) refuses the call instead of failing after the call
// has run upstream.
func (h *Handler) checkMasks(c *Call) *Error {
	m, err := h.maskers.forCall(c)
	if err != nil {
		return newError(KindInternal, "the policy's mask obligations for this call cannot be applied by this gateway; the call was not made", err)
	}
	c.masker = m // maskResponse uses it: one lookup per call
	return nil
}

// maskResponse applies c's mask obligations to resp. A response they
// cannot be applied to is withheld (unless every such obligation says
// onUnmaskable: pass): it is never passed through unmasked by accident.
func (h *Handler) maskResponse(c *Call, resp *http.Response) error {
	m := c.masker
	if m == nil && c.Decision != nil && len(c.Decision.Obligations.Masks) > 0 {
		// A Stage or ModifyResponse path that skipped checkMasks.
		var err error
		if m, err = h.maskers.forCall(c); err != nil {
			return withheld(c, resp, fmt.Errorf("its mask rules do not compile: %w", err))
		}
	}
	if m == nil {
		return nil
	}
	rep, err := m.MaskResponse(resp)
	c.Masked = rep
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mask.ErrUnmaskable):
		return withheld(c, resp, err)
	}
	return newError(KindBadGateway, "the upstream response could not be read for masking", err)
}

// withheld is the error that replaces a response no mask obligation could
// be applied to. The call already ran upstream, so the status must not be
// one that SDKs retry (aws-sdk-go-v2 retries 500, 502, 503 and 504, 429
// and throttling and timeout codes; the other SDKs the same): an upstream
// success becomes 403 ResponseWithheld; an upstream error keeps its own
// status, so the client retries exactly when it would have retried the
// unmasked answer.
func withheld(c *Call, resp *http.Response, why error) *Error {
	status := http.StatusForbidden
	if resp.StatusCode >= 400 {
		status = resp.StatusCode
	}
	what := c.Classification.Action
	if what == "" {
		what = c.Service + " call"
	}
	return &Error{
		Kind: KindAccessDenied, Code: CodeResponseWithheld, Status: status,
		Message: fmt.Sprintf("gatehouse withheld the response to %s: the policy's mask obligations cannot be applied to it (%s); "+
			"the call was made upstream, and repeating it gets the same answer (a mask entry with onUnmaskable: pass lets such responses through unmasked)",
			what, unmaskableReason(why)),
		Err: why,
	}
}

// unmaskableReason says why a body could not be masked, in words that
// hold nothing of the body.
func unmaskableReason(err error) string {
	var se *mask.SyntaxError
	var te *mask.TooLargeError
	var ue *mask.UnsupportedError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("the %s body does not parse at offset %d", strings.ToUpper(string(se.Format)), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("the body is over the %d-byte masking limit", te.Limit)
	case errors.As(err, &ue):
		got := ue.Got
		if len(got) > 100 {
			got = got[:100] + "..."
		}
		switch ue.What {
		case "text":
			return fmt.Sprintf("a text body (%s) cannot be masked by the paths %q", got, ue.Rules)
		case "content type":
			return fmt.Sprintf("media type %q is neither JSON, XML nor text", got)
		case "content":
			return fmt.Sprintf("a %s cannot be read", got)
		}
		return fmt.Sprintf("unsupported %s %q", ue.What, got)
	}
	return strings.TrimPrefix(err.Error(), "mask: ")
}
