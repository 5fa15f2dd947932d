package catalog

import (
	"cmp"
	"slices"
	"strings"
)

// group holds the lookup structures of the services sharing one signing
// name. Everything is built once, at load.
type group struct {
	name     string
	services []*Service // preferred first

	targets  map[string]*Operation   // "DynamoDB_20120810.GetItem"
	prefixes map[string]*Service     // "DynamoDB_20120810"
	actions  map[string][]*Operation // query Action -> candidates, preferred first
	rpc      map[string][]*Operation // operation name -> candidates of non-REST services
	rest     map[string]*node        // HTTP method -> URI template trie
}

func (g *group) build() error {
	slices.SortFunc(g.services, func(a, b *Service) int {
		return cmp.Or(cmp.Compare(rank(a, g.name), rank(b, g.name)), strings.Compare(a.Name, b.Name))
	})
	for i, s := range g.services {
		s.prio = i
	}
	for _, s := range g.services {
		switch s.Protocol {
		case ProtocolJSON:
			if g.targets == nil {
				g.targets, g.prefixes = map[string]*Operation{}, map[string]*Service{}
			}
			if _, dup := g.prefixes[s.TargetPrefix]; !dup {
				g.prefixes[s.TargetPrefix] = s
			}
			for _, op := range s.ops {
				key := s.TargetPrefix + "." + op.Name
				if _, dup := g.targets[key]; !dup {
					g.targets[key] = op
				}
			}
		case ProtocolRESTJSON, ProtocolRESTXML:
			if g.rest == nil {
				g.rest = map[string]*node{}
			}
			for _, op := range s.ops {
				if err := g.addRoute(op); err != nil {
					return err
				}
			}
		}
		if s.Protocol == ProtocolQuery || s.Protocol == ProtocolEC2 || s.QueryCompatible {
			if g.actions == nil {
				g.actions = map[string][]*Operation{}
			}
			for _, op := range s.ops {
				g.actions[op.Name] = append(g.actions[op.Name], op)
			}
		}
		if s.Protocol != ProtocolRESTJSON && s.Protocol != ProtocolRESTXML {
			if g.rpc == nil {
				g.rpc = map[string][]*Operation{}
			}
			for _, op := range s.ops {
				g.rpc[op.Name] = append(g.rpc[op.Name], op)
			}
		}
	}
	return nil
}

// rank orders the services of a group: the one named like the signing
// name, then the ones whose endpoint prefix is the signing name, then the
// rest.
func rank(s *Service, signing string) int {
	switch {
	case s.Name == signing:
		return 0
	case s.EndpointPrefix == signing:
		return 1
	}
	return 2
}

// byTarget resolves an X-Amz-Target header. A target whose prefix is
// unknown but whose operation name belongs to exactly one candidate
// service (a service that moved from the query protocol to JSON after the
// models were cut) resolves by name. It returns the service even when the
// operation is unknown, if the prefix names one.
func (g *group) byTarget(t string) (*Operation, *Service) {
	if op := g.targets[t]; op != nil {
		return op, op.svc
	}
	i := strings.LastIndexByte(t, '.')
	if i < 0 {
		return nil, nil
	}
	if s := g.prefixes[t[:i]]; s != nil {
		return nil, s
	}
	if ops := g.rpc[t[i+1:]]; len(ops) > 0 {
		return ops[0], ops[0].svc
	}
	return nil, nil
}

// byRPCPath resolves a Smithy RPC v2 CBOR request,
// POST /service/<ServiceShape>/operation/<Operation>, by operation name.
func (g *group) byRPCPath(raw string) (*Operation, *Service) {
	rest, ok := strings.CutPrefix(raw, "/service/")
	if !ok {
		return nil, nil
	}
	_, name, ok := strings.Cut(rest, "/operation/")
	if !ok || name == "" || strings.Contains(name, "/") {
		return nil, nil
	}
	if ops := g.rpc[name]; len(ops) > 0 {
		return ops[0], ops[0].svc
	}
	return nil, nil
}

// byAction resolves a query-protocol Action, preferring the service whose
// API version matches the request's Version (ELB and ELBv2 share action
// names). An unknown action still attributes the request to the group's
// first query service.
func (g *group) byAction(action, version string) (*Operation, *Service) {
	ops := g.actions[action]
	for _, op := range ops {
		if op.svc.APIVersion == version {
			return op, op.svc
		}
	}
	if len(ops) > 0 {
		return ops[0], ops[0].svc
	}
	for _, s := range g.services {
		if s.Protocol == ProtocolQuery || s.Protocol == ProtocolEC2 || s.QueryCompatible {
			return nil, s
		}
	}
	return nil, nil
}

// guess picks the service an unrecognised request most likely addresses:
// by protocol markers, else the preferred service.
func (g *group) guess(r *Request) *Service {
	want := ""
	switch {
	case len(r.Header["X-Amz-Target"]) > 0:
		want = ProtocolJSON
	case r.Query.Get("Action") != "" || isForm(r) && g.actions != nil:
		want = ProtocolQuery
	case g.rest != nil:
		want = ProtocolRESTJSON
	}
	for _, s := range g.services {
		switch {
		case want == ProtocolJSON && s.Protocol == ProtocolJSON,
			want == ProtocolQuery && (s.Protocol == ProtocolQuery || s.Protocol == ProtocolEC2 || s.QueryCompatible),
			want == ProtocolRESTJSON && (s.Protocol == ProtocolRESTJSON || s.Protocol == ProtocolRESTXML):
			return s
		}
	}
	return g.services[0]
}
