// Package catalog is gatehouse's operation catalog: for any request a
// stock AWS SDK sends to any of the 384 AWS services, it names the
// operation, the IAM action a policy author would write, the resource ARNs
// the request touches, its parameters, and whether it only reads, issues
// credentials or returns secrets. Policy, approvals, masking and audit key
// on its answers.
//
// # The model
//
// The catalog is generated from the service models (models/apis/*/*/api-2.json,
// newest API version per service) of the github.com/aws/aws-sdk-go module
// at v1.55.8, fetched through the Go module proxy into the module cache.
// The generator (internal/gen) reads them as data, so aws-sdk-go is no
// dependency of this package, and writes table.gz: per service its
// endpoint prefix, signing name, protocol, global endpoint and JSON target
// prefix; per operation its name, HTTP method, request-URI template, host
// prefix and where each top-level input member lives (URI label, query
// string, header, body). Regenerate it with
//
//	go generate ./awsproxy/catalog
//
// which runs `go run ./internal/gen -o table.gz`; the output is
// byte-identical from run to run, and a test checks it against the module.
// Default decodes the embedded table once, on first use, and compiles
// every lookup structure then: nothing is compiled per request.
//
// A [Catalog] is immutable and safe for concurrent use. The [Service] and
// [Operation] values it returns are shared and must not be modified.
//
// # Signing names and services
//
// A SigV4 credential scope names only the signing name, and 34 signing
// names are shared by several models: "bedrock" by bedrock,
// bedrock-agent, bedrock-agent-runtime and bedrock-runtime (four endpoint
// prefixes); "s3" by s3 and s3control; "rds" by rds, docdb and neptune;
// "ses" by email, sesv2, pinpoint-email and mailmanager; "dynamodb" by
// dynamodb and streams.dynamodb. [Catalog.Classify] picks the service from
// the request itself and returns it in Classification.Service; the
// gateway routes with its EndpointPrefix. Among services that cannot be
// told apart on the wire, the preferred one wins: the service named like
// the signing name, then the one whose endpoint prefix is the signing
// name, then by name ([Catalog.Candidates] lists them in that order).
//
// # Classification
//
// Classify reads the protocol markers a request carries, in this order:
//
//   - X-Amz-Target (JSON protocols): an exact "Prefix.Operation" lookup. A
//     target whose prefix is unknown but whose operation name exists in
//     the group resolves by name (services that moved from the query
//     protocol to JSON after the models were cut).
//   - Smithy-Protocol: rpc-v2-cbor with POST /service/S/operation/Op (the
//     current SDKs speak it to CloudWatch): by operation name.
//   - Action (query and EC2 protocols, and JSON services that still accept
//     the query protocol, like SQS), from the query string or a form body;
//     Version picks between services sharing action names (ELB and ELBv2).
//   - Method and URI template (rest-json, rest-xml). The templates of a
//     signing name are compiled into one trie per method; a request is
//     matched in one walk whose cost depends on the path, not on the
//     number of services. The most specific match wins: literal path
//     segments beat labels, labels beat greedy labels ({Key+}, which may be
//     followed by literal segments); then more query literals (?tagging,
//     ?list-type=2); then more required query parameters and headers
//     present (uploadId makes GET /{Bucket}/{Key+} ListParts, not
//     GetObject; x-amz-copy-source makes a PUT CopyObject); then the
//     operation the SDK names in its x-id parameter; then not deprecated,
//     then the preferred service. Templates whose required query
//     parameters or headers are missing only match when nothing else does.
//     A trailing slash present on one side only is tolerated but ranks
//     below an exact match. S3 virtual-hosted requests pass the bucket in
//     Request.Bucket; it is matched as the first path segment.
//
// A request that matches nothing classifies as an unknown operation
// (Operation "", Action "<IAMPrefix>:Unknown") of the service it most
// likely addresses, never as an error, so that policies can deny it. A
// marker given several times with different values (two X-Amz-Target
// headers, two Action parameters, Action in the URL and the body) makes
// the request ambiguous: it classifies as unknown rather than as either.
// A request for an unknown signing name gets a zero Classification.
//
// # IAM actions
//
// The action is "<prefix>:<Operation>". The prefix is the signing name,
// except where IAM uses another (monitoring -> cloudwatch, tagging -> tag,
// awsssoportal -> sso, iotdata -> iot, cloudcontrolapi -> cloudformation,
// mturk-requester -> mechanicalturk, ...). An exceptions table names the
// actions that differ from the operation: S3's (ListObjectsV2 ->
// s3:ListBucket, HeadObject -> s3:GetObject, multipart and copy operations
// -> s3:PutObject, lifecycle, notification, CORS, encryption, replication
// and public-access-block renames, Delete*Configuration -> Put...),
// S3 Control's Outposts buckets (s3-outposts:), DynamoDB's transactions,
// Lambda's Invoke -> lambda:InvokeFunction, Bedrock's Converse ->
// bedrock:InvokeModel, Keyspaces' cassandra: verbs, Budgets, Neptune data
// and a few dozen renames elsewhere. API Gateway management actions are
// the HTTP method (apigateway:GET); API Gateway WebSocket management is
// execute-api:ManageConnections. Every generated action is checked against
// the IAM service authorization reference (testdata/iam-actions.txt); the
// few services IAM does not authorise are listed in the test.
//
// Some actions depend on the request: S3 object operations with a
// versionId become their Version form (s3:GetObjectVersion,
// s3:DeleteObjectVersion, ...); DynamoDB PartiQL operations become
// dynamodb:PartiQLSelect/Insert/Update/Delete after the statements' first
// keyword, the strongest one when there are several (and PartiQLDelete
// when the statement cannot be read); TransactWriteItems becomes the
// strongest of its items (DeleteItem > UpdateItem > PutItem >
// ConditionCheckItem). Neptune data queries map to
// neptune-db:WriteDataViaQuery (their text is not analysed). Where IAM
// checks several actions (CopyObject reads the source too), Action is the
// primary one and Resources name every resource.
//
// # Flags
//
// ReadOnly: the operation name is one of, or starts with one of (followed
// by an upper-case letter or a digit), Get, List, Describe, Head,
// BatchGet, BatchDescribe, TransactGet, Query, Scan, Search, Select,
// Lookup, Filter, Check, Simulate, Estimate, Validate, Preview, View; and
// it is neither credential-issuing nor one of the look-alikes that change
// state (cognito-identity GetId, waf GetChangeToken, sqs ReceiveMessage,
// kinesis-video-media GetMedia, license-manager CheckInLicense). DynamoDB
// PartiQL requests whose statements are all SELECTs are read-only too.
//
// CredentialIssuing: operations that hand out credentials or key material
// granting access: sts AssumeRole, AssumeRoleWithSAML,
// AssumeRoleWithWebIdentity, GetSessionToken, GetFederationToken; iam
// CreateAccessKey, Create/ResetServiceSpecificCredential,
// Create/UpdateLoginProfile, UploadSSHPublicKey; ecr, ecr-public and
// codeartifact GetAuthorizationToken; sso GetRoleCredentials; sso-oidc
// CreateToken(WithIAM); cognito-identity GetCredentialsForIdentity,
// GetOpenIdToken(ForDeveloperIdentity); cognito-idp (Admin)InitiateAuth,
// (Admin)RespondToAuthChallenge; redshift GetClusterCredentials(WithIAM);
// redshift-serverless GetCredentials; eks-auth AssumeRoleForPodIdentity;
// EMR session credentials; Lake Formation temporary credentials;
// DataZone environment credentials; ec2-instance-connect
// Send(Serial Console)SSHPublicKey; ec2 CreateKeyPair; Lightsail access
// details and key pairs; ssm StartSession; ecs ExecuteCommand; iot
// CreateKeysAndCertificate; connect GetFederationToken; GameLift, MWAA,
// Grafana and License Manager tokens. A credential-issuing operation is
// never read-only and always returns secrets.
//
// ReturnsSecrets: every credential-issuing operation, plus secretsmanager
// GetSecretValue, BatchGetSecretValue, GetRandomPassword; ssm
// GetParameter(s), GetParametersByPath, GetParameterHistory; lambda
// GetFunction, GetFunctionConfiguration, ListFunctions,
// ListVersionsByFunction (environment variables); kms Decrypt,
// GenerateDataKey(Pair), GenerateRandom, DeriveSharedSecret; ec2
// GetPasswordData; iam CreateVirtualMFADevice; glue GetConnection(s);
// API Gateway and AppSync API keys; Lightsail database passwords and
// bucket keys.
//
// # Resources
//
// ARNs are built from the request's parameters, the region of the
// credential scope (its partition: aws, aws-cn, aws-us-gov, ...) and
// Request.Account, the account the call will run in (from configuration or
// the mapped role's ARN; empty leaves the account field empty). A
// parameter that already holds an ARN is used as is. Per service:
//
//   - S3: arn:aws:s3:::bucket for bucket operations, arn:aws:s3:::bucket/key
//     for object operations, plus the copy source of CopyObject and
//     UploadPartCopy. DeleteObjects names the bucket (its keys are in the
//     XML body, which is not read).
//   - DynamoDB: table/T, table/T/index/I with IndexName; every table of
//     BatchGetItem, BatchWriteItem (RequestItems) and the Transact*
//     operations; the table of each PartiQL statement.
//   - Lambda: function:F (function:F:Qualifier when qualified; full and
//     partial ARNs resolved), layer:L[:version], event-source-mapping:UUID.
//   - Secrets Manager: secret:Name (a name, not the ARN with AWS's random
//     suffix: policies match it with secret:Name-*). SSM: parameter/...
//     for parameter operations, document/... for document operations, the
//     EC2 instance of StartSession and instance ids.
//   - SQS: from QueueUrl (its account) or QueueName. SNS: topic ARNs from
//     TopicArn/TargetArn/SubscriptionArn, or CreateTopic's Name. KMS:
//     key/ID or alias/NAME for KeyId, SourceKeyId, DestinationKeyId,
//     TargetKeyId, AliasName.
//   - EC2: instance, volume, security-group, subnet, vpc,
//     network-interface, key-pair, launch-template, and (without account)
//     image and snapshot ARNs from the id parameters.
//   - IAM: role/, user/, group/, instance-profile/ by name (without path),
//     policy ARNs as given. RDS: db:, cluster:, snapshot:,
//     cluster-snapshot:, subgrp:, pg:, cluster-pg:. CloudFormation:
//     stack/NAME/* and stackset/NAME:*. ECS: cluster/, service/C/,
//     task/C/, container-instance/C/, task-definition/. CloudWatch Logs:
//     log-group:G[:log-stream:S]. Bedrock: foundation-model/ (no account)
//     or inference-profile/ for model ids, agent/, knowledge-base/.
//   - Every service: a parameter whose name ends in Arn/ARN (or Arns) and
//     whose value is an ARN, except roles and KMS keys passed to another
//     service (a role ARN is a resource of sts and iam only).
//
// Resources is nil when nothing names a resource (ListBuckets; IAM's "*").
//
// # Parameters
//
// Params maps model member names to values (Params["TableName"],
// Params["Bucket"], Params["Key"]): URI labels (unescaped), query
// parameters, headers, the top-level members of JSON bodies (JSON and
// rest-json protocols) and of form bodies (query and EC2 protocols, where
// Name.member.N and Name.N elements form lists). Scalars keep their text
// (numbers and booleans as sent); lists of scalars are joined with ",";
// map members give their keys (RequestItems -> the table names);
// structures, blobs and payloads are left out, as are sensitive members
// (Member.Sensitive: the model flags a secret in the member at any depth,
// or it is named like MasterUserPassword, AuthToken, ApiKey; a map whose
// values the model flags gives no keys either). A value repeated on the wire keeps every value, so an
// ambiguous request shows them all. XML and CBOR bodies are not read.
//
// # Bounds
//
// Classify reads at most MaxBody (64 KiB) of a body and at most 1000 form
// pairs; skipping nested JSON counts brackets instead of recursing; path
// matching looks at no more than 64 segments; at most MaxParams (32)
// parameters of MaxListValues (16) values, each cut to MaxParamValue (256)
// bytes, and MaxResources (32) ARNs are kept. Past a bound the answer is
// still given, from what was read, with Truncated set. Its work is linear
// in the size of the request and independent of the number of services.
package catalog
