// Package mask rewrites JSON and XML bodies so that secrets never reach the
// caller: GetSecretValue answers with a redacted SecretString,
// credential-issuing calls return no usable credentials, Lambda and ECS
// environments are hidden, and the AWS SDKs still parse every masked
// response. It works on any body, not only AWS responses: an MCP server can
// mask its tool results with the same rules.
//
// # Model
//
// Rules are plain data ([Rule]): a path, a content detector, or both, and a
// [Strategy]. [New] checks every rule (paths, conditions, regular
// expressions, strategies, the hash key) and compiles them into a [Masker];
// a bad entry is a *[ConfigError] naming the rule and field. A Masker is
// immutable and safe for concurrent use: compile once, mask many bodies.
//
// Each call masks one document in one pass ([Masker.MaskJSON],
// [Masker.MaskXML], [Masker.MaskText], [Masker.Mask] by media type,
// [Masker.MaskResponse] for an *http.Response) and returns a [Report]:
// per rule, the strategy and the number of values masked, never the
// values, so it can go to an audit trail as it is. Documents that are not
// well-formed are refused with a *[SyntaxError]: masking fails closed and
// returns nothing of the document. When nothing matched, the input is
// returned unchanged (the same slice).
//
// # The body's media type picks the walker
//
// Mask and MaskResponse read a body the way its Content-Type says, never
// the way the service that sent it usually answers: application/json,
// the x-amz-json types and +json go to the JSON walker; text/xml,
// application/xml and +xml to the XML walker; other text types (text/*,
// and application types that hold text such as x-sh, yaml, toml, csv,
// x-ndjson) are read as UTF-8 text, where only detectors apply. A body
// with no type, application/octet-stream or binary/octet-stream is
// sniffed: binary content (invalid UTF-8 or a NUL byte) is unreadable,
// text that parses as JSON or XML is masked as such, other text as text.
// Any other type (images, archives, PDF, CBOR, event streams) is
// unreadable. So an S3 object holding JSON is masked by path whatever the
// bucket's service speaks, and the aws-secrets profile finds credentials
// in a text object.
//
// # A body that cannot be masked is withheld
//
// A rule cannot be applied to a body that is unreadable (binary or of an
// unknown type, text in a charset that is not ASCII-compatible, a content
// encoding other than gzip or deflate, JSON or XML that does not parse,
// more than Config.MaxBody bytes, or a partial 206 response that is not
// the whole representation), and a rule with a path cannot be applied to
// text. Then the body is refused with an error matching [ErrUnmaskable]
// (*[UnsupportedError], *[TooLargeError] or *[SyntaxError]) and nothing
// of it is returned: the caller answers with an error of its own. A rule
// may opt out with Rule.SkipUnmaskable: when every rule that cannot be
// applied skips, the body goes on without them (a text body's detectors
// still apply) and [Report].Skipped and Report.SkipReason say which rules
// were skipped and why, for the audit trail. A Masker without rules
// passes every body. Rules written for one format (Rule.JSON, Rule.XML)
// are simply not used on the other: pair them, or use Rule.Path.
//
// # Policy paths (Rule.Path)
//
// Rule.Path takes the one path syntax of policy files, defined by package
// maskpath and valid for JSON and XML bodies alike:
//
//	aws.secret_access_key    secret_access_key directly inside aws, at any depth
//	$.Credentials.SecretKey  '$.' anchors at the top-level value (the XML root element's children)
//	Environment.Variables.*  '*': one member or element of any name; Secret* globs a name
//	**.password              '**': zero or more levels
//
// Arrays are transparent (a segment that meets a JSON array applies to
// each element, as to repeated XML elements); the XML root element stands
// for the top-level JSON value. Array indexes, conditions and attributes
// are not part of it: Rule.JSON and Rule.XML keep them for Go callers and
// the profiles.
//
// # JSON paths
//
// JSON paths use gjson syntax (github.com/tidwall/gjson), anchored at the
// document root, components separated by '.':
//
//	SecretString                         a member of the root object
//	Credentials.SecretKey                nested members
//	Parameters.#.Value                   '#': every element of an array
//	authorizationData.0.authorizationToken   a digit component: array index (or member "0")
//	Environment.Variables.*              '*' and '?' wildcards in member names
//	Parameters.#(Type=="SecureString")#.Value   a query: every element where the condition holds
//	Parameters.#(Type=="SecureString").Value    a query without the trailing '#': the first such element
//	a\.b                                 '\' escapes '.', '*', '?' and itself
//
// A query condition is `path op value`: path is a member path inside the
// element (empty for the element itself, as in #(=="x")), op is one of ==
// != < <= > >= and, for strings, % and !% (glob match); value is a JSON
// string, number, true, false or null. A missing value never matches; a
// value of another type matches only != and !%. Rule.When takes the same
// kind of condition, evaluated on the whole document, to make a rule
// conditional (ssm GetParameter masks Parameter.Value only when
// Parameter.Type is SecureString).
//
// Refused at load, with the reason: modifiers (@reverse), multipaths
// ([a,b] {a,b}), pipes (|), literals (!true), nested queries, JSON-lines
// (..) and a trailing '#' (in gjson it counts elements; to mask every
// element, name the array itself). Paths are at most [MaxPattern] bytes.
//
// A path that selects a string replaces the string. A path that selects an
// object or array applies its strategy to every string inside it (numbers,
// booleans and null are left as they are, so the document keeps its
// types); Remove removes whatever the path selects. When several rules
// select the same value, Remove wins; otherwise the rule that selects the
// innermost value wins, and among rules selecting the same value the first
// in Config.Rules. Duplicate member names are all masked.
//
// The JSON masker is a single-pass scanner written for this package: it
// validates the document (RFC 8259 grammar, nesting up to [MaxDepth]),
// matches all paths together and records byte-range edits, then builds the
// output in one copy. It does not call gjson or sjson per path: sjson
// rewrites one concrete path per call, copying the whole document each
// time, and cannot expand '#' or wildcards, so a page of 1,000 parameters
// would cost 1,000 copies. gjson itself evaluates query conditions and
// Rule.When; the fuzz tests check that every string gjson selects with a
// rule's path is masked in the output, and a test checks that on concrete
// paths Redact and Remove give the same document as sjson's Set and Delete.
//
// Paths do not descend into JSON held inside a string (SecretString is a
// JSON document in a string): the aws-secrets profile masks such strings
// whole. Detectors do read the text of such strings, and the password
// detector recognises "password": "..." pairs in it.
//
// # XML paths
//
// XML paths name elements by local name (namespaces and prefixes are
// ignored; a prefix written in a path is dropped), separated by '/':
//
//	Credentials/SecretAccessKey          unanchored: matches at any depth (the
//	                                     path must match the innermost elements)
//	*/Credentials/SecretAccessKey        '*': exactly one element of any name
//	/AssumeRoleResponse/AssumeRoleResult/Credentials/SecretAccessKey
//	                                     a leading '/': anchored at the root element
//	//SecretAccessKey                    a leading '//': any depth (same as unanchored)
//	AssumeRoleResponse/**/SessionToken   '**' (or '//' inside a path): zero or more elements
//	Credentials/Secret*                  '*' and '?' wildcards inside a name
//
// A path must end with a name or '*'. An element selected by a path has its
// text replaced (entities are decoded before a strategy sees the text, and
// the result is escaped again, so the output stays well-formed); the
// content of a selected element that has no child elements is replaced
// whole, comments and CDATA sections included; in a selected element with
// children, every non-blank run of text between tags is masked, and so is
// the text of every descendant. Attributes are never changed. Remove
// deletes the element, from its start tag to its end tag; the root element
// cannot be removed, and a Remove that selects it redacts its text
// instead. Empty elements are left as they are. The document must be
// UTF-8, have one root element and matching tags; it is checked with
// encoding/xml's strict tokenizer plus tag matching.
//
// # Detectors
//
// Detectors read the text of string values (JSON strings after
// unescaping, XML text after entity decoding, and a whole text body as
// one string) and mask only what they recognise; see the Detect* constants for exactly what each one matches:
// AWS access key ids, secret access keys (40-character runs only next to a
// name or label containing "secret", or as a whole value that looks random:
// conservative, to keep hex digests and identifiers readable), STS session
// tokens, PEM and PGP private keys, JWTs, and passwords in connection
// strings (scheme://user:password@host, password=... pairs and
// "password": "..." pairs). Rule.Pattern adds a user regular expression
// (Go syntax, at most [MaxPattern] bytes, refused at load if it does not
// compile or matches the empty string); when it has a capturing group only
// the first group is masked. A detector rule without a path reads every
// string; with a path, only the strings under it. A path rule without a
// detector takes precedence over detectors on the strings it selects. A
// detector rule with Remove removes the member, element or array element
// whose string it matched; in a text body it deletes the match.
//
// # Strategies
//
//   - [Redact] writes [Marker] ("****").
//   - [Partial] writes Marker followed by the last Rule.Keep characters
//     (default [DefaultKeep], at most [MaxKeep]); a value of at most 2*Keep
//     characters is hidden entirely.
//   - [Hash] writes [HashPrefix] ("hmac-sha256:") and the first 16 hex
//     digits of HMAC-SHA256(Config.HashKey, value): equal values give equal
//     tokens under one key, so masked values can be correlated. A rule
//     with Hash is refused when Config.HashKey is empty (it must have at
//     least [MinHashKey] bytes).
//   - [Remove] deletes the JSON member or array element, or the XML
//     element; JSON commas are kept right.
//
// Blob fields (base64 in JSON, such as SecretBinary) must use Remove: the
// SDKs decode them, and a marker is not base64.
//
// # The aws-secrets profile
//
// [Profile] returns the built-in profile's rules per operation and
// [ProfileRules] looks up one (service, operation); services may be named
// by signing name, endpoint prefix or model name ("cognito-identity",
// "Cognito Identity", "cognitoidentity"). [CompileProfile] compiles one
// Masker per operation; its Masker method returns nil for operations the
// profile leaves alone, whose responses can then stream unbuffered.
//
//	secretsmanager  GetSecretValue             SecretString (redact), SecretBinary (remove)
//	secretsmanager  BatchGetSecretValue        SecretValues.#.SecretString, SecretValues.#.SecretBinary (remove)
//	ssm             GetParameter               Parameter.Value when Parameter.Type=="SecureString"
//	ssm             GetParameters, GetParametersByPath, GetParameterHistory
//	                                           Parameters.#(Type=="SecureString")#.Value
//	sts             AssumeRole, AssumeRoleWithSAML, AssumeRoleWithWebIdentity, AssumeRoot,
//	                GetSessionToken, GetFederationToken
//	                                           */Credentials/SecretAccessKey, */Credentials/SessionToken,
//	                                           */Credentials/AccessKeyId (partial, last 4)
//	iam             CreateAccessKey            */AccessKey/SecretAccessKey
//	iam             CreateServiceSpecificCredential, ResetServiceSpecificCredential
//	                                           */ServiceSpecificCredential/ServicePassword and /ServiceCredentialSecret
//	lambda          GetFunction                Configuration.Environment.Variables.*
//	lambda          GetFunctionConfiguration, CreateFunction, UpdateFunctionConfiguration,
//	                UpdateFunctionCode, PublishVersion
//	                                           Environment.Variables.*
//	lambda          ListFunctions              Functions.#.Environment.Variables.*
//	lambda          ListVersionsByFunction     Versions.#.Environment.Variables.*
//	ecs             DescribeTaskDefinition, RegisterTaskDefinition, DeregisterTaskDefinition
//	                                           taskDefinition.containerDefinitions.#.environment.#.value
//	ecs             DescribeTasks              tasks.#.overrides.containerOverrides.#.environment.#.value
//	ec2             GetPasswordData            */passwordData
//	ecr             GetAuthorizationToken      authorizationData.#.authorizationToken
//	ecr-public      GetAuthorizationToken      authorizationData.authorizationToken
//	cognito-identity GetCredentialsForIdentity Credentials.SecretKey, Credentials.SessionToken,
//	                                           Credentials.AccessKeyId (partial, last 4)
//	cognito-identity GetOpenIdToken, GetOpenIdTokenForDeveloperIdentity   Token
//	s3              GetObject                  detectors: secret access keys, session tokens,
//	                                           private keys (redact), access key ids (partial, last 4)
//
// S3 object content is user data in any format, so the profile reads it
// with detectors, which apply to JSON, XML and text alike; a binary object
// cannot be read and is withheld unless the obligation opts out.
//
// Every entry is tested with the AWS SDK for Go v2 client of its service
// (package mask/sdktest): the SDK parses the masked response and sees the
// masked values.
//
// # HTTP responses and bounds
//
// [Masker.MaskResponse] masks an *http.Response in place, for a reverse
// proxy's ModifyResponse hook. It reads the body whole, up to
// Config.MaxBody ([DefaultMaxBody], 10 MiB) before and after
// decompression; past the bound it returns a *[TooLargeError] (matching
// [ErrTooLarge]). It decodes Content-Encoding gzip, x-gzip and deflate
// (zlib or raw); other encodings are an *[UnsupportedError]. A 206
// response is masked only when its Content-Range is the whole
// representation (bytes 0-(N-1)/N; its Content-Range is then rewritten
// for the masked length): any other part is refused, because a fragment
// does not parse and a secret cut at a part boundary escapes the
// detectors. It then masks by Content-Type as above. With every rule
// skipping (Rule.SkipUnmaskable), an unreadable response goes on as it
// came, a body over the bound streamed past the bytes already read.
//
// A masked body is sent decoded: Content-Encoding is removed (every client
// accepts an identity body), Content-Length is set and Transfer-Encoding
// cleared. X-Amz-Crc32, which DynamoDB sends and its SDK checks, is
// recomputed as the decimal CRC-32 (IEEE) of the new body;
// x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1 and -sha256 are
// recomputed; composite (multipart) and unknown x-amz-checksum-* headers,
// Content-MD5 and checksum trailers are removed. When nothing was masked
// the original bytes, still encoded, go back with their headers.
//
// On every error the body is closed and replaced by http.NoBody, so an
// unmasked body cannot be passed on by mistake: the caller answers with an
// error of its own (an AWS-shaped one, in a gateway). Other bounds: paths
// and patterns [MaxPattern] bytes, nesting [MaxDepth], XML paths 62
// segments. Memory for one call is about three times the body.
//
// # Performance
//
// On a 2-core machine, masking a 1 MiB JSON document with 10 paths takes
// about 4 ms of CPU (over 200 MB/s) and 8 allocations; the XML masker,
// built on encoding/xml, is about ten times slower. See BENCHMARKS.md.
package mask
