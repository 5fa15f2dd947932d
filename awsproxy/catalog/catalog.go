package catalog

import (
	"cmp"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"sync"
)

// Wire protocols, as the service models name them.
const (
	ProtocolJSON     = "json"      // JSON 1.0/1.1, POST / with X-Amz-Target
	ProtocolRESTJSON = "rest-json" // method + URI template, JSON bodies
	ProtocolRESTXML  = "rest-xml"  // method + URI template, XML bodies (S3, Route 53, CloudFront)
	ProtocolQuery    = "query"     // form-encoded Action=...&Version=...
	ProtocolEC2      = "ec2"       // the query protocol with EC2's naming
)

// Locations of an operation's input members.
const (
	LocationURI     = "uri"         // a label of the request URI template
	LocationQuery   = "querystring" // a query-string parameter
	LocationHeader  = "header"      // a request header
	LocationHeaders = "headers"     // every header with a prefix (x-amz-meta-)
	LocationBody    = "body"        // a member of the JSON object or form body
	LocationPayload = "payload"     // the whole body (S3 PutObject's Body)
)

// Catalog is the operation catalog: every service of the embedded AWS
// models, how to recognise each of its operations on the wire, and what
// each operation means for a policy. A Catalog is immutable and safe for
// concurrent use. The *Service and *Operation values it hands out are
// shared: callers must not modify them.
type Catalog struct {
	source   string
	services []*Service // by name
	byName   map[string]*Service
	groups   map[string]*group // by signing name
	signing  []string
}

// Service is one AWS service model. Several services may share a signing
// name (bedrock, bedrock-runtime, bedrock-agent, bedrock-agent-runtime all
// sign as "bedrock"); the endpoint prefix tells them apart on the network.
type Service struct {
	// Name is the model's name (its directory in aws-sdk-go/models/apis):
	// "s3", "bedrock-runtime", "email".
	Name string
	// APIVersion is the model's version ("2006-03-01").
	APIVersion string
	// Protocol is one of the Protocol constants.
	Protocol string
	// EndpointPrefix is the first label of the regional host name
	// ("bedrock-runtime" in bedrock-runtime.us-east-1.amazonaws.com).
	EndpointPrefix string
	// SigningName is the service name of the SigV4 credential scope.
	SigningName string
	// TargetPrefix is the X-Amz-Target prefix of JSON services
	// ("DynamoDB_20120810"); empty for the other protocols.
	TargetPrefix string
	// JSONVersion is the model's JSON version ("1.0", "1.1"), which sets
	// the Content-Type of JSON services; some REST services carry one too.
	JSONVersion string
	// GlobalEndpoint is the model's partition-global host
	// ("iam.amazonaws.com"); empty for regional services.
	GlobalEndpoint string
	// IAMPrefix is the service prefix of IAM actions ("s3", "cloudwatch"
	// for signing name "monitoring").
	IAMPrefix string
	// QueryCompatible marks JSON services that still accept the query
	// protocol (SQS).
	QueryCompatible bool

	ops     []*Operation // by name
	unknown string       // the Action of its unknown operations
	byOp    map[string]*Operation
	prio    int // rank among the services sharing its signing name; 0 first

	headersOnce sync.Once
	headers     *InputHeaders
}

// Operation is one API operation of a service.
type Operation struct {
	// Name is the API operation name ("ListObjectsV2").
	Name string
	// Method and RequestURI are the HTTP binding ("GET",
	// "/{Bucket}?list-type=2"); JSON and query operations are POST /.
	Method, RequestURI string
	// HostPrefix is prepended to the service host for this operation
	// ("{AccountId}." for S3 Control); empty for most operations.
	HostPrefix string
	// Action is the IAM action a policy author writes for it
	// ("s3:ListBucket"). Classify may refine it per request (S3
	// versioned-object actions, DynamoDB PartiQL statements).
	Action string
	// ReadOnly, CredentialIssuing and ReturnsSecrets are the operation's
	// flags (see the package documentation for the rules).
	ReadOnly, CredentialIssuing, ReturnsSecrets bool
	// Deprecated is the model's deprecation mark.
	Deprecated bool
	// Unauthenticated marks operations that AWS serves without SigV4
	// (sts:AssumeRoleWithWebIdentity, cognito-identity:GetId).
	Unauthenticated bool
	// Inputs are the operation's top-level input members, by name.
	Inputs []Member

	svc        *Service
	order      []int32 // indexes into Inputs sorted by (location code, Wire)
	restParams bool    // has query or header members
	wireMask   uint64  // wireBit of every query and header member
}

// wireBit is a cheap one-in-64 filter on query keys and header names: a
// request key whose bit is not in an operation's wireMask is none of its
// members, without a lookup.
func wireBit(w string) uint64 {
	if w == "" {
		return 1
	}
	return 1 << ((uint(len(w))*31 + uint(w[0])*7 + uint(w[len(w)-1])) % 64)
}

// Service returns the service the operation belongs to.
func (o *Operation) Service() *Service { return o.svc }

// Member is one top-level input member of an operation and where it lives
// in a request.
type Member struct {
	// Name is the model's member name; it is the key of
	// Classification.Params.
	Name string
	// Wire is the name on the wire: the URI label, the query key, the
	// header name (canonical form for headers), the JSON key or the form key.
	Wire string
	// Location is one of the Location constants.
	Location string
	// Required is the model's required mark.
	Required bool
	// Sensitive marks members that hold secrets: the model flags the
	// member, its shape or any shape reachable from it as sensitive (at
	// any depth: Lambda's Environment, whose Variables map is sensitive),
	// or the member is named so ("MasterUserPassword", "AuthToken",
	// "ApiKey"; the models do not flag every one). They never appear in
	// Params, and whoever masks a request by member masks them whole.
	Sensitive bool

	kind memberKind
}

type memberKind uint8

const (
	kindScalar memberKind = iota
	kindList
	kindStructList
	kindMap
	kindStruct
	kindBlob
)

var defaultCatalog = sync.OnceValues(func() (*Catalog, error) { return decode(table) })

// Default returns the catalog embedded in the package, decoded on first
// use (about 30 ms and 10 MB). It panics if the embedded table is corrupt,
// which the package's tests rule out.
func Default() *Catalog {
	c, err := defaultCatalog()
	if err != nil {
		panic(err)
	}
	return c
}

// Source names the module and version the catalog was generated from
// ("github.com/aws/aws-sdk-go@v1.55.8").
func (c *Catalog) Source() string { return c.source }

// Services returns every service, sorted by name. The slice is a copy.
func (c *Catalog) Services() []*Service { return slices.Clone(c.services) }

// Service returns the service with the given model name, or nil.
func (c *Catalog) Service(name string) *Service { return c.byName[name] }

// SigningNames returns every signing name the catalog knows, sorted. The
// slice is a copy.
func (c *Catalog) SigningNames() []string { return slices.Clone(c.signing) }

// Candidates returns the services that sign with signingName, the
// preferred one first (the one whose name or endpoint prefix is the
// signing name), or nil if the name is unknown. The slice is a copy.
func (c *Catalog) Candidates(signingName string) []*Service {
	g := c.groups[signingName]
	if g == nil {
		return nil
	}
	return slices.Clone(g.services)
}

// Operations returns the service's operations sorted by name. The slice is
// a copy.
func (s *Service) Operations() []*Operation { return slices.Clone(s.ops) }

// Operation returns the named operation, or nil.
func (s *Service) Operation(name string) *Operation { return s.byOp[name] }

// build indexes the parsed services.
func (c *Catalog) build() error {
	c.byName = make(map[string]*Service, len(c.services))
	c.groups = map[string]*group{}
	for _, s := range c.services {
		if c.byName[s.Name] != nil {
			return fmt.Errorf("catalog: service %q twice", s.Name)
		}
		c.byName[s.Name] = s
		s.IAMPrefix = iamPrefix(s)
		s.unknown = s.IAMPrefix + ":" + UnknownOperation
		s.byOp = make(map[string]*Operation, len(s.ops))
		for _, op := range s.ops {
			if s.byOp[op.Name] != nil {
				return fmt.Errorf("catalog: %s.%s twice", s.Name, op.Name)
			}
			s.byOp[op.Name] = op
			op.index()
			op.Unauthenticated = op.Unauthenticated || listed(unauthenticatedOps, s, op)
			op.Action = iamAction(s, op)
			op.CredentialIssuing = credentialIssuing(s, op)
			op.ReturnsSecrets = op.CredentialIssuing || returnsSecrets(s, op)
			op.ReadOnly = !op.CredentialIssuing && readOnly(s, op)
		}
		g := c.groups[s.SigningName]
		if g == nil {
			g = &group{name: s.SigningName}
			c.groups[s.SigningName] = g
			c.signing = append(c.signing, s.SigningName)
		}
		g.services = append(g.services, s)
	}
	slices.Sort(c.signing)
	for _, g := range c.groups {
		if err := g.build(); err != nil {
			return err
		}
	}
	return nil
}

// index puts header names in canonical form and sorts the members by
// location and wire name for lookups.
func (o *Operation) index() {
	o.order = make([]int32, len(o.Inputs))
	for i := range o.Inputs {
		m := &o.Inputs[i]
		if m.Location == LocationHeader {
			m.Wire = textproto.CanonicalMIMEHeaderKey(m.Wire)
		}
		if m.Location == LocationHeader || m.Location == LocationQuery {
			o.restParams = true
			o.wireMask |= wireBit(m.Wire)
		}
		m.Sensitive = m.Sensitive || secretName(m.Name)
		o.order[i] = int32(i)
	}
	slices.SortFunc(o.order, func(a, b int32) int {
		ma, mb := &o.Inputs[a], &o.Inputs[b]
		return cmp.Or(cmp.Compare(locCode(ma.Location), locCode(mb.Location)), strings.Compare(ma.Wire, mb.Wire))
	})
}

// locCode is a one-byte code per location; body and payload share one.
func locCode(loc string) byte {
	switch loc {
	case LocationHeaders:
		return 'H'
	case LocationPayload:
		return 'b'
	}
	return loc[0]
}

// member finds the input member at a location code ('u', 'q', 'h', 'b')
// with the given wire name, or nil.
func (o *Operation) member(loc byte, wire string) *Member {
	if i := o.memberIndex(loc, wire); i >= 0 {
		return &o.Inputs[i]
	}
	return nil
}

// memberIndex is member's index in Inputs, or -1.
func (o *Operation) memberIndex(loc byte, wire string) int {
	lo, hi := 0, len(o.order)
	for lo < hi {
		h := int(uint(lo+hi) >> 1)
		m := &o.Inputs[o.order[h]]
		c := locCode(m.Location)
		if c < loc || c == loc && m.Wire < wire {
			lo = h + 1
		} else {
			hi = h
		}
	}
	if lo < len(o.order) {
		if m := &o.Inputs[o.order[lo]]; locCode(m.Location) == loc && m.Wire == wire {
			return int(o.order[lo])
		}
	}
	return -1
}
