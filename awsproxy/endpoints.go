package awsproxy

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gatehouse-dev/gatehouse/awsproxy/catalog"
)

// partition is an AWS partition: the DNS suffix of its endpoints and the
// hosts of its global services.
type partition struct {
	name   string
	suffix string
	global map[string]string // signing name -> host
}

var (
	partitionAWS = partition{name: "aws", suffix: "amazonaws.com", global: map[string]string{
		"iam":           "iam.amazonaws.com",
		"route53":       "route53.amazonaws.com",
		"cloudfront":    "cloudfront.amazonaws.com",
		"organizations": "organizations.us-east-1.amazonaws.com",
	}}
	partitionCN = partition{name: "aws-cn", suffix: "amazonaws.com.cn", global: map[string]string{
		"iam":           "iam.cn-north-1.amazonaws.com.cn",
		"route53":       "route53.amazonaws.com.cn",
		"cloudfront":    "cloudfront.cn-northwest-1.amazonaws.com.cn",
		"organizations": "organizations.cn-northwest-1.amazonaws.com.cn",
	}}
	partitionGov = partition{name: "aws-us-gov", suffix: "amazonaws.com", global: map[string]string{
		"iam":           "iam.us-gov.amazonaws.com",
		"route53":       "route53.us-gov.amazonaws.com",
		"organizations": "organizations.us-gov-west-1.amazonaws.com",
	}}
)

func partitionOf(region string) partition {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return partitionCN
	case strings.HasPrefix(region, "us-gov-"):
		return partitionGov
	}
	return partitionAWS
}

// validRegion checks ^[a-z]{2}(-[a-z]+)+-\d+$ without a regexp.
func validRegion(r string) bool {
	n := strings.Count(r, "-") + 1
	if n < 3 || len(r) > 32 {
		return false
	}
	i := 0
	for p := range strings.SplitSeq(r, "-") {
		switch i {
		case 0:
			if len(p) != 2 || !isLower(p) {
				return false
			}
		case n - 1:
			return isDigits(p)
		default:
			if !isLower(p) {
				return false
			}
		}
		i++
	}
	return false
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

// resolver builds upstream URLs from the catalog's services. It is
// immutable after New.
type resolver struct {
	cat       *catalog.Catalog
	overrides map[string]*url.URL
}

func newResolver(cat *catalog.Catalog, overrides map[string]string) (*resolver, error) {
	r := &resolver{cat: cat, overrides: make(map[string]*url.URL, len(overrides))}
	for svc, raw := range overrides {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("awsproxy: Config.Upstreams[%q] = %q: want an absolute http(s) URL without query, fragment or user info", svc, raw)
		}
		u.Path = strings.TrimSuffix(u.Path, "/")
		u.RawPath = ""
		r.overrides[svc] = u
	}
	return r, nil
}

// known reports whether the gateway routes a signing name at all: the
// catalog knows it, or configuration names an upstream for it.
func (r *resolver) known(signingName string) bool {
	_, over := r.overrides[signingName]
	return over || len(r.cat.Candidates(signingName)) > 0
}

// protocol is the wire protocol of a signing name's services when they all
// share one (used to shape errors before the operation is known).
func (r *resolver) protocol(signingName string) Protocol {
	p := ProtocolUnknown
	for i, s := range r.cat.Candidates(signingName) {
		sp := protocolOf(s)
		if i > 0 && sp != p {
			return ProtocolUnknown
		}
		p = sp
	}
	return p
}

func protocolOf(s *catalog.Service) Protocol {
	if s == nil {
		return ProtocolUnknown
	}
	switch s.Protocol {
	case catalog.ProtocolRESTXML:
		return ProtocolRESTXML
	case catalog.ProtocolRESTJSON:
		return ProtocolRESTJSON
	case catalog.ProtocolJSON:
		return ProtocolJSON
	case catalog.ProtocolQuery:
		return ProtocolQuery
	case catalog.ProtocolEC2:
		return ProtocolEC2
	}
	return ProtocolUnknown
}

// resolve returns the base URL (scheme and host, maybe a path prefix) for
// a validated signing name, the service the catalog chose for the request
// (nil if none) and a validated region. It never looks at anything else
// the client sent. Overrides are looked up by model name, then endpoint
// prefix, then signing name.
func (r *resolver) resolve(signingName string, svc *catalog.Service, region string) (base *url.URL, override bool, e *Error) {
	if !r.known(signingName) {
		return nil, false, newError(KindUnknownService, fmt.Sprintf("service %q is not served by this gateway", signingName), nil)
	}
	if !validRegion(region) {
		return nil, false, newError(KindUnknownService, fmt.Sprintf("region %q is not a valid AWS region", region), nil)
	}
	if svc != nil {
		for _, k := range []string{svc.Name, svc.EndpointPrefix} {
			if u, ok := r.overrides[k]; ok {
				return u, true, nil
			}
		}
	}
	if u, ok := r.overrides[signingName]; ok {
		return u, true, nil
	}
	if svc == nil {
		return nil, false, newError(KindUnknownService, fmt.Sprintf("no AWS service of %q matches this request", signingName), nil)
	}
	p := partitionOf(region)
	var host string
	switch {
	case p.global[signingName] != "":
		host = p.global[signingName]
	case signingName == "sts" && region == "us-east-1":
		host = "sts.amazonaws.com"
	case signingName == "s3" && svc.Name == "s3" && region == "us-east-1":
		host = "s3.amazonaws.com"
	case svc.GlobalEndpoint != "" && p.name == "aws" && signingName != "s3" && signingName != "sts":
		// Other global services of the aws partition as the model names
		// them (savingsplans, importexport).
		host = svc.GlobalEndpoint
	default:
		host = svc.EndpointPrefix + "." + region + "." + p.suffix
	}
	return &url.URL{Scheme: "https", Host: host}, false, nil
}

// withHostPrefix prepends an operation's host prefix ("{AccountId}." for
// S3 Control, "data." for others) to a base URL built by the endpoint
// rules. Labels are filled only from classified parameters that are plain
// DNS labels, so the host stays under the AWS domain the rules chose.
func withHostPrefix(base *url.URL, prefix string, params map[string]string) (*url.URL, *Error) {
	var b strings.Builder
	for rest := prefix; rest != ""; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			b.WriteString(rest)
			break
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, newError(KindInternal, "malformed host prefix in the catalog", nil)
		}
		b.WriteString(rest[:open])
		name := rest[open+1 : open+end]
		v := params[name]
		if !dnsLabel(v) {
			return nil, newError(KindBadRequest, fmt.Sprintf("parameter %s must be a DNS label to address this operation", name), nil)
		}
		b.WriteString(strings.ToLower(v))
		rest = rest[open+end+1:]
	}
	host := b.String() + base.Host
	for _, label := range strings.Split(strings.TrimSuffix(b.String(), "."), ".") {
		if label != "" && !dnsLabel(label) {
			return nil, newError(KindInternal, "host prefix is not a DNS name", nil)
		}
	}
	u := *base
	u.Host = host
	return &u, nil
}

// dnsLabel reports whether s is one DNS label of letters, digits and
// inner hyphens.
func dnsLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
