package awsproxy

import (
	"fmt"
	"net/url"
	"strings"
)

// Service describes what the gateway needs to know about an AWS service to
// route to it: the host prefix of its endpoints and its wire protocol.
// Services are keyed by SigV4 signing name, the name a client puts in its
// credential scope.
type Service struct {
	// EndpointPrefix is the first label of the service's host name
	// ("email" for signing name "ses").
	EndpointPrefix string
	Protocol       Protocol
	// Global marks services with one endpoint per partition (IAM, Route 53,
	// CloudFront, Organizations).
	Global bool
}

// builtinServices lists the services the gateway routes to when
// Config.Services is nil. It is hand-kept until the generated operation
// catalog replaces it.
var builtinServices = map[string]Service{
	"s3":                      {"s3", ProtocolRESTXML, false},
	"sts":                     {"sts", ProtocolQuery, false},
	"iam":                     {"iam", ProtocolQuery, true},
	"ec2":                     {"ec2", ProtocolEC2, false},
	"dynamodb":                {"dynamodb", ProtocolJSON, false},
	"secretsmanager":          {"secretsmanager", ProtocolJSON, false},
	"ssm":                     {"ssm", ProtocolJSON, false},
	"kms":                     {"kms", ProtocolJSON, false},
	"lambda":                  {"lambda", ProtocolRESTJSON, false},
	"sqs":                     {"sqs", ProtocolJSON, false},
	"sns":                     {"sns", ProtocolQuery, false},
	"logs":                    {"logs", ProtocolJSON, false},
	"monitoring":              {"monitoring", ProtocolQuery, false},
	"events":                  {"events", ProtocolJSON, false},
	"kinesis":                 {"kinesis", ProtocolJSON, false},
	"firehose":                {"firehose", ProtocolJSON, false},
	"ecs":                     {"ecs", ProtocolJSON, false},
	"ecr":                     {"api.ecr", ProtocolJSON, false},
	"eks":                     {"eks", ProtocolRESTJSON, false},
	"rds":                     {"rds", ProtocolQuery, false},
	"cloudformation":          {"cloudformation", ProtocolQuery, false},
	"elasticache":             {"elasticache", ProtocolQuery, false},
	"autoscaling":             {"autoscaling", ProtocolQuery, false},
	"elasticloadbalancing":    {"elasticloadbalancing", ProtocolQuery, false},
	"route53":                 {"route53", ProtocolRESTXML, true},
	"cloudfront":              {"cloudfront", ProtocolRESTXML, true},
	"organizations":           {"organizations", ProtocolJSON, true},
	"apigateway":              {"apigateway", ProtocolRESTJSON, false},
	"states":                  {"states", ProtocolJSON, false},
	"glue":                    {"glue", ProtocolJSON, false},
	"athena":                  {"athena", ProtocolJSON, false},
	"codebuild":               {"codebuild", ProtocolJSON, false},
	"ses":                     {"email", ProtocolQuery, false},
	"cognito-idp":             {"cognito-idp", ProtocolJSON, false},
	"cognito-identity":        {"cognito-identity", ProtocolJSON, false},
	"acm":                     {"acm", ProtocolJSON, false},
	"bedrock":                 {"bedrock-runtime", ProtocolRESTJSON, false},
	"sagemaker":               {"api.sagemaker", ProtocolJSON, false},
	"elasticmapreduce":        {"elasticmapreduce", ProtocolJSON, false},
	"redshift":                {"redshift", ProtocolQuery, false},
	"cloudtrail":              {"cloudtrail", ProtocolJSON, false},
	"config":                  {"config", ProtocolJSON, false},
	"tagging":                 {"tagging", ProtocolJSON, false},
	"xray":                    {"xray", ProtocolRESTJSON, false},
	"batch":                   {"batch", ProtocolRESTJSON, false},
	"elasticfilesystem":       {"elasticfilesystem", ProtocolRESTJSON, false},
	"es":                      {"es", ProtocolRESTJSON, false},
	"appconfig":               {"appconfig", ProtocolRESTJSON, false},
	"codecommit":              {"codecommit", ProtocolJSON, false},
	"codepipeline":            {"codepipeline", ProtocolJSON, false},
	"servicequotas":           {"servicequotas", ProtocolJSON, false},
	"pricing":                 {"api.pricing", ProtocolJSON, false},
	"securityhub":             {"securityhub", ProtocolRESTJSON, false},
	"guardduty":               {"guardduty", ProtocolRESTJSON, false},
	"access-analyzer":         {"access-analyzer", ProtocolRESTJSON, false},
	"scheduler":               {"scheduler", ProtocolRESTJSON, false},
	"application-autoscaling": {"application-autoscaling", ProtocolJSON, false},
}

// partition is an AWS partition: the DNS suffix of its endpoints and the
// hosts of its global services.
type partition struct {
	suffix string
	global map[string]string // signing name -> host
}

var (
	partitionAWS = partition{suffix: "amazonaws.com", global: map[string]string{
		"iam":           "iam.amazonaws.com",
		"route53":       "route53.amazonaws.com",
		"cloudfront":    "cloudfront.amazonaws.com",
		"organizations": "organizations.us-east-1.amazonaws.com",
	}}
	partitionCN = partition{suffix: "amazonaws.com.cn", global: map[string]string{
		"iam":           "iam.cn-north-1.amazonaws.com.cn",
		"route53":       "route53.amazonaws.com.cn",
		"cloudfront":    "cloudfront.cn-northwest-1.amazonaws.com.cn",
		"organizations": "organizations.cn-northwest-1.amazonaws.com.cn",
	}}
	partitionGov = partition{suffix: "amazonaws.com", global: map[string]string{
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
	parts := strings.Split(r, "-")
	if len(parts) < 3 || len(r) > 32 {
		return false
	}
	if len(parts[0]) != 2 || !isLower(parts[0]) {
		return false
	}
	for _, p := range parts[1 : len(parts)-1] {
		if p == "" || !isLower(p) {
			return false
		}
	}
	return isDigits(parts[len(parts)-1])
}

func isLower(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

// resolver builds upstream URLs. It is immutable after New.
type resolver struct {
	services  map[string]Service
	overrides map[string]*url.URL
}

func newResolver(services map[string]Service, overrides map[string]string) (*resolver, error) {
	if services == nil {
		services = builtinServices
	}
	r := &resolver{services: services, overrides: make(map[string]*url.URL, len(overrides))}
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

// service returns the known service for a signing name.
func (r *resolver) service(name string) (Service, bool) {
	s, ok := r.services[name]
	if !ok {
		if _, over := r.overrides[name]; over {
			return Service{EndpointPrefix: name}, true
		}
	}
	return s, ok
}

// resolve returns the base URL (scheme and host, maybe a path prefix) for a
// validated service and region. It never looks at anything the client sent
// other than those two validated values.
func (r *resolver) resolve(name, region string) (*url.URL, *Error) {
	svc, ok := r.service(name)
	if !ok {
		return nil, newError(KindUnknownService, fmt.Sprintf("service %q is not served by this gateway", name), nil)
	}
	if !validRegion(region) {
		return nil, newError(KindUnknownService, fmt.Sprintf("region %q is not a valid AWS region", region), nil)
	}
	if u, ok := r.overrides[name]; ok {
		return u, nil
	}
	p := partitionOf(region)
	var host string
	switch {
	case svc.Global && p.global[name] != "":
		host = p.global[name]
	case name == "sts" && region == "us-east-1":
		host = "sts.amazonaws.com"
	case name == "s3" && region == "us-east-1":
		host = "s3.amazonaws.com"
	default:
		host = svc.EndpointPrefix + "." + region + "." + p.suffix
	}
	return &url.URL{Scheme: "https", Host: host}, nil
}
