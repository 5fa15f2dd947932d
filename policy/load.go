package policy

import (
	"fmt"
	"io/fs"

	"go.yaml.in/yaml/v3"
)

// ruleSource remembers where a parsed rule's fields are in its file, so
// Compile can report problems with file:line:column.
type ruleSource struct {
	src    *source
	rule   *yaml.Node            // the rule's mapping
	fields map[string]*yaml.Node // value nodes by field path: "when", "approval.mode", "mask[1].keep"
}

// pos is the position of a field's value, falling back to the rule's.
func (s *ruleSource) pos(field string) Position {
	if s == nil {
		return Position{}
	}
	if n, ok := s.fields[field]; ok {
		return s.src.pos(n)
	}
	return s.src.pos(s.rule)
}

// Top-level and rule field names in policy files.
var (
	policyFields   = []string{"default", "rules"}
	ruleFields     = []string{"name", "description", "effect", "when", "reason", "approval", "mask", "audit"}
	approvalFields = []string{"approvers", "minApprovals", "mode", "holdTimeout", "grantTTL", "unavailable"}
	maskFields     = []string{"profile", "path", "strategy", "keep", "onUnmaskable"}
	auditFields    = []string{"bodies"}
)

// Parse reads one policy file. name is used in error positions. Syntax
// problems, unknown fields and values of the wrong kind are reported
// here, as an ErrorList; everything else (effects, conditions, approval
// ranges, mask profiles, duplicate names) is checked by Compile, which
// reports positions in this file too.
//
// The format:
//
//	default: deny            # optional; deny is the only default
//	rules:
//	  - name: approve-prod-deletes
//	    description: free text
//	    effect: approve       # allow | deny | approve
//	    when: request.action.iamLike("s3:Delete*") && request.resource.iamLike("arn:aws:s3:::prod-*")
//	    reason: deleting production data needs a second pair of eyes
//	    approval:
//	      approvers: [platform-oncall]
//	      minApprovals: 1
//	      mode: hold          # hold | queue | reject
//	      holdTimeout: 25s
//	      grantTTL: 10m
//	      unavailable: reject # reject | queue
//	    mask:
//	      - aws-secrets       # a profile name, or:
//	      - {path: SecretString, strategy: partial, keep: 4}
//	      - {path: aws.secret_access_key, strategy: redact, onUnmaskable: pass}
//	    audit:
//	      bodies: true
func Parse(name string, data []byte) (Config, error) {
	var e errs
	cfg := parse(newSource(name, data), &e)
	if err := e.err(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

func parse(src *source, e *errs) Config {
	d := &ydec{src: src, errs: e}
	var cfg Config
	root := d.parseDocument()
	if root == nil {
		return cfg
	}
	sawRules := false
	d.fields(root, "the policy", policyFields, func(key string, k, v *yaml.Node) {
		switch key {
		case "default":
			cfg.Default = Effect(d.str(v, "default"))
			if cfg.Default != Deny {
				d.fail(v, "default", "the only default is deny")
			}
		case "rules":
			sawRules = true
			if v.Kind != yaml.SequenceNode {
				if v.ShortTag() != "!!null" {
					d.fail(v, "rules", "want a list of rules")
				}
				return
			}
			for i, rn := range v.Content {
				cfg.Rules = append(cfg.Rules, parseRule(src, e, i, resolve(rn)))
			}
		}
	})
	if !sawRules && root.Kind == yaml.MappingNode {
		d.fail(root, "", "the policy has no rules field (write rules: [] for a policy that denies everything)")
	}
	return cfg
}

func parseRule(src *source, e *errs, i int, n *yaml.Node) Rule {
	rs := &ruleSource{src: src, rule: n, fields: map[string]*yaml.Node{}}
	r := Rule{Source: src.pos(n), src: rs}
	d := &ydec{src: src, errs: e, rule: fmt.Sprintf("rules[%d]", i)}
	// Read the name first so later errors can use it.
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if n.Content[j].Value == "name" {
				if v := resolve(n.Content[j+1]); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
					d.rule = fmt.Sprintf("%q", v.Value)
				}
			}
		}
	}
	d.fields(n, "a rule", ruleFields, func(key string, k, v *yaml.Node) {
		rs.fields[key] = v
		switch key {
		case "name":
			r.Name = d.str(v, key)
		case "description":
			r.Description = d.str(v, key)
		case "effect":
			r.Effect = Effect(d.str(v, key))
		case "when":
			r.When = d.str(v, key)
		case "reason":
			r.Reason = d.str(v, key)
		case "approval":
			r.Approval = parseApproval(d, rs, v)
		case "mask":
			r.Mask = parseMasks(d, rs, v)
		case "audit":
			r.Audit = &Audit{}
			d.fields(v, "audit", auditFields, func(key string, _, v *yaml.Node) {
				rs.fields["audit."+key] = v
				r.Audit.Bodies = d.boolean(v, "audit."+key)
			})
		}
	})
	return r
}

func parseApproval(d *ydec, rs *ruleSource, n *yaml.Node) *Approval {
	a := &Approval{}
	d.fields(n, "approval", approvalFields, func(key string, _, v *yaml.Node) {
		field := "approval." + key
		rs.fields[field] = v
		switch key {
		case "approvers":
			a.Approvers = d.strings(v, field)
		case "minApprovals":
			a.MinApprovals = d.integer(v, field)
			if a.MinApprovals < 1 {
				d.fail(v, field, "minApprovals must be at least 1")
			}
		case "mode":
			a.Mode = ApprovalMode(d.str(v, field))
		case "holdTimeout":
			a.HoldTimeout = d.duration(v, field)
		case "grantTTL":
			a.GrantTTL = d.duration(v, field)
		case "unavailable":
			a.Unavailable = ApprovalMode(d.str(v, field))
		}
	})
	return a
}

func parseMasks(d *ydec, rs *ruleSource, n *yaml.Node) []Mask {
	if n.Kind != yaml.SequenceNode {
		d.fail(n, "mask", "want a list of mask profiles or {path, strategy, keep, onUnmaskable} entries")
		return nil
	}
	out := make([]Mask, 0, len(n.Content))
	for i, c := range n.Content {
		c = resolve(c)
		field := fmt.Sprintf("mask[%d]", i)
		rs.fields[field] = c
		var m Mask
		if c.Kind == yaml.ScalarNode {
			m.Profile = d.str(c, field)
			rs.fields[field+".profile"] = c
		} else {
			d.fields(c, "a mask entry", maskFields, func(key string, _, v *yaml.Node) {
				rs.fields[field+"."+key] = v
				switch key {
				case "profile":
					m.Profile = d.str(v, field+"."+key)
				case "path":
					m.Path = d.str(v, field+"."+key)
				case "strategy":
					m.Strategy = MaskStrategy(d.str(v, field+"."+key))
				case "keep":
					m.Keep = d.integer(v, field+"."+key)
				case "onUnmaskable":
					m.OnUnmaskable = Unmaskable(d.str(v, field+"."+key))
				}
			})
		}
		out = append(out, m)
	}
	return out
}

// Load reads and merges policy files in order: the merged Config holds
// every file's rules, file by file. Rule names must be unique across the
// files; Compile reports a duplicate with both positions. A name of the
// form "starter:NAME" reads an embedded starter policy (see Starter).
func Load(paths ...string) (Config, error) {
	return LoadFS(nil, paths...)
}

// LoadFS is Load reading from fsys; nil means the operating system's file
// system (paths as given to os.ReadFile).
func LoadFS(fsys fs.FS, paths ...string) (Config, error) {
	cfg, _, err := loadFiles(fsys, paths)
	return cfg, err
}

// loadFiles parses and merges the files and also returns their contents,
// each followed by a NUL byte, for change detection.
func loadFiles(fsys fs.FS, paths []string) (Config, []byte, error) {
	var e errs
	var out Config
	var all []byte
	if len(paths) == 0 {
		e.add(&Error{Msg: "no policy files given"})
	}
	for _, p := range paths {
		data, err := readFile(fsys, p)
		if err != nil {
			e.add(&Error{Pos: Position{File: p}, Msg: err.Error()})
			continue
		}
		all = append(append(all, data...), 0)
		cfg := parse(newSource(p, data), &e)
		out.Rules = append(out.Rules, cfg.Rules...)
		if cfg.Default != "" {
			out.Default = cfg.Default
		}
	}
	if err := e.err(); err != nil {
		return Config{}, nil, err
	}
	return out, all, nil
}
