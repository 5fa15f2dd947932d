package catalog

import "strings"

// readOnlyVerbs are the leading words of operation names that only read.
// An operation is read-only when its name is one of these words or starts
// with one followed by an upper-case letter or a digit ("GetObject",
// "ListObjectsV2", "Query"; not "Checkout..."), and it is not
// credential-issuing and not in notReadOnly.
var readOnlyVerbs = []string{
	"Get", "List", "Describe", "Head", "BatchGet", "BatchDescribe", "TransactGet",
	"Query", "Scan", "Search", "Select", "Lookup", "Filter", "Check", "Simulate",
	"Estimate", "Validate", "Preview", "View",
}

// notReadOnly lists operations whose names look read-only but that change
// state or consume something.
var notReadOnly = map[string]map[string]bool{
	// GetId creates an identity in the pool.
	"cognito-identity": {"GetId": true},
	// Each GetChangeToken call issues a token that later updates consume.
	"waf":          {"GetChangeToken": true},
	"waf-regional": {"GetChangeToken": true},
	// Receiving changes message visibility.
	"sqs": {"ReceiveMessage": true},
	// Starts streaming work on the server.
	"kinesis-video-media": {"GetMedia": true},
	// Returns a checked-out license.
	"license-manager": {"CheckInLicense": true},
}

func readOnly(s *Service, op *Operation) bool {
	if notReadOnly[s.Name][op.Name] {
		return false
	}
	return hasReadOnlyVerb(op.Name)
}

func hasReadOnlyVerb(name string) bool {
	for _, v := range readOnlyVerbs {
		if len(name) < len(v) || name[:len(v)] != v {
			continue
		}
		if len(name) == len(v) {
			return true
		}
		if c := name[len(v)]; 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' {
			return true
		}
	}
	return false
}

// credentialOps are the operations that issue credentials: temporary AWS
// credentials, access keys, tokens, passwords or key material that grant
// access to AWS or to resources.
var credentialOps = map[string][]string{
	"sts": {"AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot",
		"GetSessionToken", "GetFederationToken"},
	"iam": {"CreateAccessKey", "CreateServiceSpecificCredential", "ResetServiceSpecificCredential",
		"CreateLoginProfile", "UpdateLoginProfile", "UploadSSHPublicKey"},
	"ecr":                  {"GetAuthorizationToken"},
	"ecr-public":           {"GetAuthorizationToken"},
	"codeartifact":         {"GetAuthorizationToken"},
	"sso":                  {"GetRoleCredentials"},
	"sso-oidc":             {"CreateToken", "CreateTokenWithIAM"},
	"cognito-identity":     {"GetCredentialsForIdentity", "GetOpenIdToken", "GetOpenIdTokenForDeveloperIdentity"},
	"cognito-idp":          {"InitiateAuth", "AdminInitiateAuth", "RespondToAuthChallenge", "AdminRespondToAuthChallenge"},
	"redshift":             {"GetClusterCredentials", "GetClusterCredentialsWithIAM"},
	"redshift-serverless":  {"GetCredentials"},
	"eks-auth":             {"AssumeRoleForPodIdentity"},
	"elasticmapreduce":     {"GetClusterSessionCredentials"},
	"emr-containers":       {"GetManagedEndpointSessionCredentials"},
	"lakeformation":        {"GetTemporaryGluePartitionCredentials", "GetTemporaryGlueTableCredentials", "AssumeDecoratedRoleWithSAML"},
	"datazone":             {"GetEnvironmentCredentials"},
	"finspace-data":        {"GetProgrammaticAccessCredentials"},
	"ec2-instance-connect": {"SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"},
	"ec2":                  {"CreateKeyPair"},
	"lightsail":            {"GetInstanceAccessDetails", "CreateBucketAccessKey", "CreateKeyPair", "DownloadDefaultKeyPair", "CreateGUISessionAccessDetails"},
	"ssm":                  {"StartSession"},
	"ecs":                  {"ExecuteCommand"},
	"iot":                  {"CreateKeysAndCertificate"},
	"connect":              {"GetFederationToken"},
	"gamelift":             {"GetComputeAuthToken", "RequestUploadCredentials"},
	"mwaa":                 {"CreateCliToken", "CreateWebLoginToken"},
	"grafana":              {"CreateWorkspaceApiKey", "CreateWorkspaceServiceAccountToken"},
	"license-manager":      {"GetAccessToken"},
}

// secretOps are the operations whose responses carry secret values, in
// addition to every credential-issuing operation.
var secretOps = map[string][]string{
	"secretsmanager":     {"GetSecretValue", "BatchGetSecretValue", "GetRandomPassword"},
	"ssm":                {"GetParameter", "GetParameters", "GetParametersByPath", "GetParameterHistory"},
	"lambda":             {"GetFunction", "GetFunctionConfiguration", "ListFunctions", "ListVersionsByFunction"},
	"kms":                {"Decrypt", "GenerateDataKey", "GenerateDataKeyPair", "GenerateRandom", "DeriveSharedSecret"},
	"ec2":                {"GetPasswordData"},
	"iam":                {"CreateVirtualMFADevice"},
	"glue":               {"GetConnection", "GetConnections"},
	"lightsail":          {"GetRelationalDatabaseMasterUserPassword", "GetBucketAccessKeys"},
	"apigateway":         {"GetApiKey", "GetApiKeys", "CreateApiKey"},
	"appsync":            {"CreateApiKey", "ListApiKeys"},
	"pca-connector-scep": {"GetChallengePassword"},
}

func credentialIssuing(s *Service, op *Operation) bool { return listed(credentialOps, s, op) }

func returnsSecrets(s *Service, op *Operation) bool { return listed(secretOps, s, op) }

func listed(m map[string][]string, s *Service, op *Operation) bool {
	for _, n := range m[s.Name] {
		if n == op.Name {
			return true
		}
	}
	return false
}

// unauthenticatedOps are operations AWS serves without a signature that
// the models do not mark (the SDKs' customisations send them unsigned).
var unauthenticatedOps = map[string][]string{
	"sts": {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"},
}

// secretWords mark member names that hold secrets even where the model
// does not flag them sensitive (RDS MasterUserPassword, ElastiCache
// AuthToken). Matching is on the lower-cased name.
var secretWords = []string{
	"password", "passphrase", "privatekey", "secretkey", "secretaccesskey",
	"authtoken", "sessiontoken", "apikey", "secretstring", "secretbinary",
}

// secretName reports whether a member's name says it holds a secret.
func secretName(name string) bool {
	lower := strings.ToLower(name)
	for _, w := range secretWords {
		if strings.Contains(lower, w) {
			return true
		}
	}
	return lower == "credential" || lower == "credentials" || strings.HasSuffix(lower, "authenticationcredential")
}
