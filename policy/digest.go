package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// Digest identifies what d asks of the pipeline: the effect, the deciding
// rule, every approval requirement (rule, approvers, count, mode, timeouts)
// and the obligations (masks, body recording). Two decisions with equal
// digests ask for the same thing, whatever policy revision made them and
// whatever the rules' reasons say; a reload that changes any of these for
// a request changes its digest. Approval grants are bound to it, so such a
// reload voids them. The digest is 64 lower-case hex digits.
func (d *Decision) Digest() string {
	v := struct {
		Version      int
		Effect       Effect
		Rule         string
		Approvals    []Requirement
		Masks        []Mask
		RecordBodies bool
	}{1, d.Effect, d.Rule, d.Approvals, d.Obligations.Masks, d.Obligations.RecordBodies}
	b, err := json.Marshal(v)
	if err != nil {
		// Every field is plain data: Marshal cannot fail. Should it ever,
		// the digest must still never match a real decision's.
		return "unencodable-decision"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
