package awsproxy

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/gatehouse-dev/gatehouse/mask"
)

// maskers compiles the mask obligations of decisions into maskers, once
// per distinct (obligations, service, operation), and keeps them.
type maskers struct {
	cfg mask.Config
	mu  sync.Mutex
	m   map[string]*mask.Masker
}

const maxCachedMaskers = 1024

// forCall returns the masker for c's obligations, nil when there is
// nothing to mask for this operation.
func (ms *maskers) forCall(c *Call) (*mask.Masker, error) {
	if c.Decision == nil || len(c.Decision.Obligations.Masks) == 0 {
		return nil, nil
	}
	svc, op := c.Service, c.Classification.Operation
	var key strings.Builder
	key.WriteString(svc + "\x00" + op)
	for _, m := range c.Decision.Obligations.Masks {
		fmt.Fprintf(&key, "\x00%s\x01%s\x01%s\x01%d", m.Profile, m.Path, m.Strategy, m.Keep)
	}
	ms.mu.Lock()
	cached, ok := ms.m[key.String()]
	ms.mu.Unlock()
	if ok {
		return cached, nil
	}
	var rules []mask.Rule
	xml := false
	switch protocolOf(c.Classification.Service) {
	case ProtocolRESTXML, ProtocolQuery, ProtocolEC2:
		xml = true
	}
	for _, m := range c.Decision.Obligations.Masks {
		if m.Profile != "" {
			rules = append(rules, mask.ProfileRules(m.Profile, svc, op)...)
			continue
		}
		r := mask.Rule{Name: "policy", Strategy: mask.Strategy(m.Strategy), Keep: m.Keep}
		if xml {
			r.XML = m.Path
		} else {
			r.JSON = m.Path
		}
		rules = append(rules, r)
	}
	var out *mask.Masker
	if len(rules) > 0 {
		cfg := ms.cfg
		cfg.Rules = rules
		var err error
		if out, err = mask.New(cfg); err != nil {
			return nil, err
		}
	}
	ms.mu.Lock()
	if ms.m == nil || len(ms.m) >= maxCachedMaskers {
		ms.m = make(map[string]*mask.Masker)
	}
	ms.m[key.String()] = out
	ms.mu.Unlock()
	return out, nil
}

// maskResponse applies c's mask obligations to resp. Failures refuse the
// response: it is never passed through unmasked.
func (h *Handler) maskResponse(c *Call, resp *http.Response) error {
	m, err := h.maskers.forCall(c)
	if err != nil {
		return newError(KindInternal, "the response's mask rules do not compile", err)
	}
	if m == nil {
		return nil
	}
	rep, err := m.MaskResponse(resp)
	c.Masked = rep
	var syn *mask.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mask.ErrTooLarge):
		return newError(KindBadGateway, "the response is too large to mask and is withheld", err)
	case errors.As(err, &syn):
		return newError(KindBadGateway, "the upstream response could not be parsed for masking and is withheld", err)
	}
	return newError(KindBadGateway, "the upstream response could not be masked and is withheld", err)
}
