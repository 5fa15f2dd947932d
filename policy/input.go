package policy

import (
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// Input is everything a policy decides on: who is calling, what is being
// called and, for calls made on behalf of an MCP tool, the tool call. It is
// plain data; the policy never sees HTTP or AWS wire formats. Decide does
// not modify it and does not keep it.
type Input struct {
	// Principal is the verified caller.
	Principal identity.Principal
	// Role is the gateway role the principal acts as ("" when none was
	// chosen). CEL conditions see it as principal.role.
	Role string
	// Request describes the AWS call.
	Request Request
	// MCP describes the MCP tool call behind the request; nil when there is
	// none (CEL then sees mcp.present == false and empty fields).
	MCP *MCP
}

// Request is the classified AWS call as CEL conditions see it (variable
// request). The cel tags are the CEL field names.
type Request struct {
	// Service is the signing name from the credential scope ("s3",
	// "monitoring"). It may differ from the IAM prefix of Action.
	Service string `cel:"service"`
	// Region is the region from the credential scope.
	Region string `cel:"region"`
	// Operation is the API operation name ("ListObjectsV2").
	Operation string `cel:"operation"`
	// Action is the IAM action ("s3:ListBucket").
	Action string `cel:"action"`
	// ReadOnly reports that the operation only reads.
	ReadOnly bool `cel:"readOnly"`
	// CredentialIssuing reports that the operation mints credentials
	// (sts:AssumeRole, iam:CreateAccessKey, ...).
	CredentialIssuing bool `cel:"credentialIssuing"`
	// ReturnsSecrets reports that the response carries secret material
	// (secretsmanager:GetSecretValue, ssm:GetParameter with decryption, ...).
	ReturnsSecrets bool `cel:"returnsSecrets"`
	// Resource is the primary resource ARN ("" when the call has none).
	Resource string `cel:"resource"`
	// Resources lists every resource ARN the call names, Resource first.
	Resources []string `cel:"resources"`
	// Params holds the classified request parameters (bucket, key, ...).
	Params map[string]any `cel:"params"`
	// Method and Path are the HTTP method and path of the call.
	Method string `cel:"method"`
	Path   string `cel:"path"`
	// SourceIP is the caller's address without port.
	SourceIP string `cel:"sourceIp"`
	// UserAgent is the caller's User-Agent header.
	UserAgent string `cel:"userAgent"`
	// Time is when the request arrived. Policies never read the clock: time
	// windows are evaluated against this value.
	Time time.Time `cel:"time"`
}

// MCP is the MCP tool call behind a request (variable mcp).
type MCP struct {
	// SessionID is the MCP session id.
	SessionID string
	// Tool is the name of the tool being called.
	Tool string
	// Arguments are the tool call's arguments.
	Arguments map[string]any
}

// celPrincipal declares the principal as CEL conditions see it (variable
// principal); values are served by evalState.
type celPrincipal struct {
	Subject  string         `cel:"subject"`
	Issuer   string         `cel:"issuer"`
	ClientID string         `cel:"clientId"`
	Email    string         `cel:"email"`
	Groups   []string       `cel:"groups"`
	Claims   map[string]any `cel:"claims"`
	Role     string         `cel:"role"`
}

// celMCP declares the MCP context as CEL conditions see it (variable mcp);
// values are served by evalState.
type celMCP struct {
	Present   bool           `cel:"present"`
	SessionID string         `cel:"sessionId"`
	Tool      string         `cel:"tool"`
	Arguments map[string]any `cel:"arguments"`
}
