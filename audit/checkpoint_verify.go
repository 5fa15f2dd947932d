package audit

import (
	"strings"

	"github.com/gatehouse-dev/gatehouse/audit/internal/chain"
)

// checkpoints opens the checkpoints Verify checks the chain against, in
// the order given (oldest first), and reports those that do not verify
// and those that go backwards.
func (v *verifier) checkpoints(notes []CheckpointNote) {
	if len(v.cfg.Verifiers) == 0 {
		return
	}
	v.cpAt = map[uint64][]int{}
	v.cpNotes = len(notes)
	at := pos{fi: cpPos}
	newest := -1
	bySize := map[uint64]int{}
	for _, cn := range notes {
		at.file = cn.Source
		sc, err := OpenCheckpoint(cn.Note, v.cfg.Verifiers)
		if err != nil {
			v.problem(at, BadCheckpoint, 0, "checkpoint does not verify: %v", err)
			continue
		}
		if v.cfg.Origin != "" && sc.Origin != v.cfg.Origin {
			v.problem(at, BadCheckpoint, sc.Size, "checkpoint names the chain %q, not %q", sc.Origin, v.cfg.Origin)
			continue
		}
		c := vcheckpoint{src: cn.Source, SignedCheckpoint: sc}
		if newest >= 0 && sc.Size < v.cps[newest].Size {
			n := v.cps[newest]
			v.problem(at, Rollback, sc.Size, "checkpoint covers %d records, fewer than the earlier checkpoint %s (%d records): the chain was rolled back",
				sc.Size, n.src, n.Size)
		}
		if j, ok := bySize[sc.Size]; ok && v.cps[j].Hash != sc.Hash {
			v.problem(at, Rollback, sc.Size, "checkpoint and the checkpoint %s both cover %d records but sign different heads: the chain forked",
				v.cps[j].src, sc.Size)
		} else if !ok {
			bySize[sc.Size] = len(v.cps)
		}
		if newest < 0 || sc.Size > v.cps[newest].Size {
			newest = len(v.cps)
		}
		v.cpAt[sc.Size] = append(v.cpAt[sc.Size], len(v.cps))
		v.cps = append(v.cps, c)
	}
}

// finishCheckpoints checks that the chain reaches its newest checkpoint.
func (v *verifier) finishCheckpoints() {
	if v.cpAt == nil {
		return
	}
	if len(v.cps) == 0 {
		switch {
		case v.cpNotes > 0:
		case v.marked != "":
			v.problem(pos{fi: cpPos}, BadCheckpoint, 0, "no checkpoint was given, although the header of %s shows the chain was checkpointed: the checkpoint file was removed, and nothing shows where the chain ends", v.marked)
		default:
			v.problem(pos{fi: cpPos}, BadCheckpoint, 0, "no checkpoint was given: nothing shows where the chain ends (was the checkpoint file removed?)")
		}
		return
	}
	newest := v.cps[0]
	for _, c := range v.cps[1:] {
		if c.Size > newest.Size {
			newest = c
		}
	}
	head := v.rep.Head.Seq
	info := &CheckpointInfo{Checkpoint: newest.Checkpoint, Source: newest.src, Signers: newest.Signers}
	if head > newest.Size {
		info.After = head - newest.Size
	}
	v.rep.Checkpoint = info
	if newest.Size > head {
		v.problem(v.last, Truncated, head+1, "the chain ends at record %d but checkpoint %s (signed by %s) covers %d records: records were removed from the end, or the files were restored from an older copy",
			head, newest.src, strings.Join(newest.Signers, ", "), newest.Size)
	}
}

// header notes what a file's header says about checkpoints: that the
// chain is checkpointed, and whether the sink that wrote the file resumed
// it without its checkpoint (FileConfig.InsecureResumeWithoutCheckpoint),
// which is reported: from then on nothing in the files shows whether
// records were removed from the chain's end before that file.
func (v *verifier) header(at pos, seq uint64, h *chain.Header) {
	if v.cpAt == nil || h.Checkpointed == nil {
		return
	}
	if v.marked == "" {
		v.marked = at.file
	}
	if h.ResumedWithoutCheckpoint {
		v.problem(at, BadCheckpoint, seq, "the chain was resumed at record %d without its checkpoint (FileConfig.InsecureResumeWithoutCheckpoint): records removed from its end before then cannot be detected from the files", seq)
	}
}
