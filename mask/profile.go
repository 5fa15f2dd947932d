package mask

import (
	"fmt"
	"sort"
	"strings"
)

// ProfileAWSSecrets is the name of the built-in profile that keeps secrets
// in AWS responses from reaching the caller; see the package doc.
const ProfileAWSSecrets = "aws-secrets"

// OperationRules are the rules a profile applies to one AWS operation.
type OperationRules struct {
	Service   string // signing name, such as "secretsmanager" or "cognito-identity"
	Operation string // API operation name, such as "GetSecretValue"
	Rules     []Rule
}

// Profiles lists the names of the built-in profiles.
func Profiles() []string { return []string{ProfileAWSSecrets} }

// Profile returns the rules of a built-in profile, one entry per
// operation, sorted by service and operation. The result is a fresh copy
// the caller may change.
func Profile(name string) ([]OperationRules, error) {
	switch name {
	case ProfileAWSSecrets:
		return awsSecrets(), nil
	}
	return nil, fmt.Errorf("mask: unknown profile %q (want one of %v)", name, Profiles())
}

// ProfileRules returns the rules a built-in profile applies to one
// operation, or nil when it has none (or there is no such profile). The
// service may be given as the signing name, the endpoint prefix or the
// model's service name ("cognito-identity", "Cognito Identity" and
// "cognitoidentity" are the same); the operation is the API operation name,
// compared without regard to case.
func ProfileRules(name, service, operation string) []Rule {
	ops, err := Profile(name)
	if err != nil {
		return nil
	}
	s, o := normService(service), strings.ToLower(operation)
	for _, op := range ops {
		if normService(op.Service) == s && strings.ToLower(op.Operation) == o {
			return op.Rules
		}
	}
	return nil
}

// normService folds the spellings of a service name together.
func normService(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// ProfileMaskers is a profile compiled once: a Masker per operation. It is
// immutable and safe for concurrent use.
type ProfileMaskers struct {
	name string
	ops  map[opKey]*Masker
}

type opKey struct{ service, operation string }

// CompileProfile compiles every operation of a built-in profile. cfg
// supplies HashKey and MaxBody; its Rules, if any, are added after the
// profile's rules for every operation of the profile.
func CompileProfile(name string, cfg Config) (*ProfileMaskers, error) {
	ops, err := Profile(name)
	if err != nil {
		return nil, err
	}
	p := &ProfileMaskers{name: name, ops: make(map[opKey]*Masker, len(ops))}
	for _, op := range ops {
		c := cfg
		c.Rules = append(append([]Rule(nil), op.Rules...), cfg.Rules...)
		m, err := New(c)
		if err != nil {
			return nil, fmt.Errorf("mask: profile %s, %s %s: %w", name, op.Service, op.Operation, err)
		}
		p.ops[opKey{normService(op.Service), strings.ToLower(op.Operation)}] = m
	}
	return p, nil
}

// Masker returns the Masker for an operation, or nil when the profile does
// not mask it (the response can then stream unbuffered). Names are matched
// as ProfileRules matches them.
func (p *ProfileMaskers) Masker(service, operation string) *Masker {
	return p.ops[opKey{normService(service), strings.ToLower(operation)}]
}

// Name returns the profile's name.
func (p *ProfileMaskers) Name() string { return p.name }

// stsCredentialRules mask the credentials STS XML responses return: the
// secret and token are redacted, the access key id keeps its last four
// characters for correlation with CloudTrail.
func stsCredentialRules(op string) OperationRules {
	return OperationRules{Service: "sts", Operation: op, Rules: []Rule{
		{Name: "sts-secret-access-key", XML: "*/Credentials/SecretAccessKey"},
		{Name: "sts-session-token", XML: "*/Credentials/SessionToken"},
		{Name: "sts-access-key-id", XML: "*/Credentials/AccessKeyId", Strategy: Partial, Keep: 4},
	}}
}

func lambdaEnvRules(op, prefix string) OperationRules {
	return OperationRules{Service: "lambda", Operation: op, Rules: []Rule{
		{Name: "lambda-environment", JSON: prefix + "Environment.Variables.*"},
	}}
}

func ssmListRules(op string) OperationRules {
	return OperationRules{Service: "ssm", Operation: op, Rules: []Rule{
		{Name: "ssm-securestring-values", JSON: `Parameters.#(Type=="SecureString")#.Value`},
	}}
}

func ecsTaskDefinitionRules(op string) OperationRules {
	return OperationRules{Service: "ecs", Operation: op, Rules: []Rule{
		{Name: "ecs-environment", JSON: "taskDefinition.containerDefinitions.#.environment.#.value"},
	}}
}

// objectContentRules mask AWS credentials in user content (an S3 object's
// body, whatever its format): they are detectors, so they read JSON and XML
// strings and text bodies alike, and a body they cannot read (binary, or
// an unknown media type) is refused unless the obligation opts out.
func objectContentRules(prefix string) []Rule {
	return []Rule{
		{Name: prefix + "-secret-access-key", Detect: DetectAWSSecretKey},
		{Name: prefix + "-session-token", Detect: DetectAWSSessionToken},
		{Name: prefix + "-access-key-id", Detect: DetectAWSAccessKeyID, Strategy: Partial, Keep: 4},
		{Name: prefix + "-private-key", Detect: DetectPrivateKey},
	}
}

// awsSecrets builds the aws-secrets profile afresh on every call (no
// package state).
func awsSecrets() []OperationRules {
	cognito := []Rule{
		{Name: "cognito-secret-key", JSON: "Credentials.SecretKey"},
		{Name: "cognito-session-token", JSON: "Credentials.SessionToken"},
		{Name: "cognito-access-key-id", JSON: "Credentials.AccessKeyId", Strategy: Partial, Keep: 4},
	}
	ops := []OperationRules{
		{Service: "secretsmanager", Operation: "GetSecretValue", Rules: []Rule{
			{Name: "secret-string", JSON: "SecretString"},
			{Name: "secret-binary", JSON: "SecretBinary", Strategy: Remove},
		}},
		{Service: "secretsmanager", Operation: "BatchGetSecretValue", Rules: []Rule{
			{Name: "secret-string", JSON: "SecretValues.#.SecretString"},
			{Name: "secret-binary", JSON: "SecretValues.#.SecretBinary", Strategy: Remove},
		}},
		{Service: "ssm", Operation: "GetParameter", Rules: []Rule{
			{Name: "ssm-securestring-value", JSON: "Parameter.Value", When: `Parameter.Type=="SecureString"`},
		}},
		ssmListRules("GetParameters"),
		ssmListRules("GetParametersByPath"),
		ssmListRules("GetParameterHistory"),
		stsCredentialRules("AssumeRole"),
		stsCredentialRules("AssumeRoleWithSAML"),
		stsCredentialRules("AssumeRoleWithWebIdentity"),
		stsCredentialRules("AssumeRoot"),
		stsCredentialRules("GetSessionToken"),
		stsCredentialRules("GetFederationToken"),
		{Service: "iam", Operation: "CreateAccessKey", Rules: []Rule{
			{Name: "iam-secret-access-key", XML: "*/AccessKey/SecretAccessKey"},
		}},
		{Service: "iam", Operation: "CreateServiceSpecificCredential", Rules: []Rule{
			{Name: "iam-service-password", XML: "*/ServiceSpecificCredential/ServicePassword"},
			{Name: "iam-service-credential-secret", XML: "*/ServiceSpecificCredential/ServiceCredentialSecret"},
		}},
		{Service: "iam", Operation: "ResetServiceSpecificCredential", Rules: []Rule{
			{Name: "iam-service-password", XML: "*/ServiceSpecificCredential/ServicePassword"},
			{Name: "iam-service-credential-secret", XML: "*/ServiceSpecificCredential/ServiceCredentialSecret"},
		}},
		lambdaEnvRules("GetFunction", "Configuration."),
		lambdaEnvRules("GetFunctionConfiguration", ""),
		lambdaEnvRules("CreateFunction", ""),
		lambdaEnvRules("UpdateFunctionConfiguration", ""),
		lambdaEnvRules("UpdateFunctionCode", ""),
		lambdaEnvRules("PublishVersion", ""),
		lambdaEnvRules("ListFunctions", "Functions.#."),
		lambdaEnvRules("ListVersionsByFunction", "Versions.#."),
		ecsTaskDefinitionRules("DescribeTaskDefinition"),
		ecsTaskDefinitionRules("RegisterTaskDefinition"),
		ecsTaskDefinitionRules("DeregisterTaskDefinition"),
		{Service: "ecs", Operation: "DescribeTasks", Rules: []Rule{
			{Name: "ecs-override-environment", JSON: "tasks.#.overrides.containerOverrides.#.environment.#.value"},
		}},
		{Service: "s3", Operation: "GetObject", Rules: objectContentRules("s3-object")},
		{Service: "ec2", Operation: "GetPasswordData", Rules: []Rule{
			{Name: "ec2-password-data", XML: "*/passwordData"},
		}},
		{Service: "ecr", Operation: "GetAuthorizationToken", Rules: []Rule{
			{Name: "ecr-authorization-token", JSON: "authorizationData.#.authorizationToken"},
		}},
		{Service: "ecr-public", Operation: "GetAuthorizationToken", Rules: []Rule{
			{Name: "ecr-public-authorization-token", JSON: "authorizationData.authorizationToken"},
		}},
		{Service: "cognito-identity", Operation: "GetCredentialsForIdentity", Rules: cognito},
		{Service: "cognito-identity", Operation: "GetOpenIdToken", Rules: []Rule{
			{Name: "cognito-openid-token", JSON: "Token"},
		}},
		{Service: "cognito-identity", Operation: "GetOpenIdTokenForDeveloperIdentity", Rules: []Rule{
			{Name: "cognito-openid-token", JSON: "Token"},
		}},
	}
	sort.SliceStable(ops, func(a, b int) bool {
		if ops[a].Service != ops[b].Service {
			return ops[a].Service < ops[b].Service
		}
		return ops[a].Operation < ops[b].Operation
	})
	return ops
}
