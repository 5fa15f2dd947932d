package approval

import (
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// Bounds on what a caller can make the broker store. A Request beyond any
// of them is refused with an *InvalidError (the proxy then fails closed).
const (
	MaxActionLen      = 256
	MaxFingerprintLen = 512
	MaxResources      = 1000 // S3 DeleteObjects names up to 1000 keys
	MaxResourceLen    = 2048
	MaxRequirements   = 16
	MaxGroups         = 64 // per requirement
	MaxGroupLen       = 256
	MaxMinApprovals   = 10
	MaxRuleLen        = 256
	MaxReasonLen      = 1024 // rule reasons and vote reasons
	MaxSummaryEntries = 32
	MaxSummaryKeyLen  = 64
	MaxSummaryValLen  = 1024
	DefaultListLimit  = 100
	MaxListLimit      = 1000
)

// Request is what the proxy asks approval for: plain data, filled from the
// policy decision and the classified AWS request.
type Request struct {
	// Principal is the caller. Required (a non-empty Subject).
	Principal identity.Principal
	// Action is the IAM action, e.g. "s3:DeleteBucket". Required.
	Action string
	// Resources are the resource ARNs.
	Resources []string
	// Fingerprint identifies the effective request: the caller derives it
	// from everything that decides what the request does (awsproxy: the
	// principal, action, resources, method, path and query, bound headers,
	// body digest and policy decision digest; see awsproxy.Fingerprint).
	// Required. A grant is only ever consumed by the same Principal
	// presenting the same Fingerprint.
	Fingerprint string
	// Requirements lists what each matching approve rule asks for; all must
	// be met. At least one.
	Requirements []Requirement
	// PendingTTL is how long the record waits for a decision; 0 means
	// Config.PendingTTL.
	PendingTTL time.Duration
	// GrantTTL is how long an approval stays usable; 0 means
	// Config.GrantTTL.
	GrantTTL time.Duration
	// Summary describes the request for approvers (bucket, region, method,
	// path, ...). Keep it small and free of secrets.
	Summary map[string]string
	// Detail shows approvers the effective request the Fingerprint covers:
	// bound headers, the body's digest and a masked preview. Optional (an
	// MCP tool call has no HTTP request), bounded (see MaxDetailHeaders and
	// the other Detail bounds) and free of secrets.
	Detail *Detail
	// PolicyRevision names the policy the decision was made under
	// (policy.Decision.Revision); the record keeps it for approvers and
	// the audit trail.
	PolicyRevision string
}

// record validates req and builds the pending record it asks for.
func (b *Broker) record(req Request, id string, now time.Time) (Record, error) {
	switch {
	case req.Principal.Subject == "":
		return Record{}, invalid("Request.Principal", "empty subject")
	case req.Action == "" || len(req.Action) > MaxActionLen:
		return Record{}, invalid("Request.Action", "must be 1 to %d bytes", MaxActionLen)
	case req.Fingerprint == "" || len(req.Fingerprint) > MaxFingerprintLen:
		return Record{}, invalid("Request.Fingerprint", "must be 1 to %d bytes", MaxFingerprintLen)
	case len(req.Resources) > MaxResources:
		return Record{}, invalid("Request.Resources", "more than %d", MaxResources)
	case len(req.Requirements) == 0 || len(req.Requirements) > MaxRequirements:
		return Record{}, invalid("Request.Requirements", "must hold 1 to %d requirements", MaxRequirements)
	case len(req.Summary) > MaxSummaryEntries:
		return Record{}, invalid("Request.Summary", "more than %d entries", MaxSummaryEntries)
	case req.PendingTTL < 0 || req.PendingTTL > b.cfg.MaxPendingTTL:
		return Record{}, invalid("Request.PendingTTL", "must be between 0 and %s", b.cfg.MaxPendingTTL)
	case req.GrantTTL < 0 || req.GrantTTL > b.cfg.MaxGrantTTL:
		return Record{}, invalid("Request.GrantTTL", "must be between 0 and %s", b.cfg.MaxGrantTTL)
	}
	for i, r := range req.Resources {
		if len(r) > MaxResourceLen {
			return Record{}, invalid(fmt.Sprintf("Request.Resources[%d]", i), "longer than %d bytes", MaxResourceLen)
		}
	}
	if len(req.PolicyRevision) > MaxDetailField {
		return Record{}, invalid("Request.PolicyRevision", "longer than %d bytes", MaxDetailField)
	}
	if req.Detail != nil {
		if err := req.Detail.validate(); err != nil {
			return Record{}, err
		}
	}
	for k, v := range req.Summary {
		if k == "" || len(k) > MaxSummaryKeyLen || len(v) > MaxSummaryValLen {
			return Record{}, invalid("Request.Summary", "keys must be 1 to %d bytes and values at most %d", MaxSummaryKeyLen, MaxSummaryValLen)
		}
	}
	reqs := make([]Requirement, len(req.Requirements))
	for i, q := range req.Requirements {
		field := fmt.Sprintf("Request.Requirements[%d]", i)
		switch {
		case len(q.Rule) > MaxRuleLen:
			return Record{}, invalid(field+".Rule", "longer than %d bytes", MaxRuleLen)
		case len(q.Reason) > MaxReasonLen:
			return Record{}, invalid(field+".Reason", "longer than %d bytes", MaxReasonLen)
		case len(q.Groups) > MaxGroups:
			return Record{}, invalid(field+".Groups", "more than %d groups", MaxGroups)
		case q.MinApprovals < 0 || q.MinApprovals > MaxMinApprovals:
			return Record{}, invalid(field+".MinApprovals", "must be between 1 and %d, not %d", MaxMinApprovals, q.MinApprovals)
		}
		for _, g := range q.Groups {
			if g == "" || len(g) > MaxGroupLen {
				return Record{}, invalid(field+".Groups", "group names must be 1 to %d bytes", MaxGroupLen)
			}
		}
		q.Groups = slices.Clone(q.Groups)
		q.MinApprovals = max(q.MinApprovals, 1)
		reqs[i] = q
	}
	pendingTTL, grantTTL := req.PendingTTL, req.GrantTTL
	if pendingTTL == 0 {
		pendingTTL = b.cfg.PendingTTL
	}
	if grantTTL == 0 {
		grantTTL = b.cfg.GrantTTL
	}
	rec := Record{
		ID:           id,
		State:        Pending,
		Principal:    req.Principal.String(),
		Requester:    requesterOf(req.Principal),
		Action:       req.Action,
		Resources:    slices.Clone(req.Resources),
		Fingerprint:  req.Fingerprint,
		Requirements: reqs,
		CreatedAt:    now,
		UpdatedAt:    now,
		ExpiresAt:    now.Add(pendingTTL),
		GrantTTL:     grantTTL,
		Detail:       req.Detail.clone(),
		Policy:       req.PolicyRevision,
	}
	if len(req.Summary) > 0 {
		rec.Summary = make(map[string]string, len(req.Summary))
		for k, v := range req.Summary {
			rec.Summary[k] = v
		}
	}
	return rec, nil
}
