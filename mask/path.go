package mask

import (
	"fmt"

	"github.com/gatehouse-dev/gatehouse/mask/maskpath"
)

// compilePath turns a maskpath path (Rule.Path, the syntax of policy
// files) into the matchers of both walkers.
//
// JSON: the segments become components matched one member at a time,
// with '**' as compDeep; the rule is flat, so arrays pass the path on to
// their elements. An unanchored path starts with compDeep.
//
// XML: the root element stands for the top-level JSON value, so an
// anchored path is "/*/seg/...", and an unanchored one "**/seg/..." (the
// XML walker's unanchored form, which may also match the root element
// itself: an XML document has one more name than the JSON one).
func compilePath(p maskpath.Path) (jsonPath, xmlPath, error) {
	var jp jsonPath
	var xp xmlPath
	if p.Anchored {
		xp.add("*")
	} else {
		jp = append(jp, jsonComp{kind: compDeep, index: -1})
		xp.add("**")
	}
	for _, s := range p.Segments {
		switch s.Kind {
		case maskpath.Deep:
			if len(jp) == 0 || jp[len(jp)-1].kind != compDeep {
				jp = append(jp, jsonComp{kind: compDeep, index: -1})
			}
			xp.add("**")
		case maskpath.Glob:
			jp = append(jp, jsonComp{kind: compGlob, key: s.Text, index: -1})
			xp.segs = append(xp.segs, s.Text)
			xp.literal = append(xp.literal, false)
		default:
			jp = append(jp, jsonComp{kind: compKey, key: s.Text, index: -1})
			xp.segs = append(xp.segs, s.Text)
			xp.literal = append(xp.literal, true)
		}
	}
	if len(xp.segs) > maxXMLSegs {
		return nil, xmlPath{}, fmt.Errorf("path has more than %d segments", maxXMLSegs-2)
	}
	return jp, xp, nil
}
