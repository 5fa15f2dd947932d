package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the gateway's configuration file. Secrets never appear in it:
// fields ending in File name a file holding the secret, fields ending in
// Env name an environment variable holding it.
type Config struct {
	Listen    string            `yaml:"listen"`
	TLS       TLSConfig         `yaml:"tls"`
	OIDC      OIDCConfig        `yaml:"oidc"`
	Sessions  SessionsConfig    `yaml:"sessions"`
	Roles     []RoleConfig      `yaml:"roles"`
	AWS       AWSConfig         `yaml:"aws"`
	Upstreams map[string]string `yaml:"upstreams"`
	Policy    PolicyConfig      `yaml:"policy"`
	Masks     MasksConfig       `yaml:"masks"`
	Approvals ApprovalsConfig   `yaml:"approvals"`
	Audit     AuditConfig       `yaml:"audit"`
	Limits    LimitsConfig      `yaml:"limits"`
}

// TLSConfig names a PEM certificate chain and key; both or neither.
type TLSConfig struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// OIDCConfig lists the identity providers whose tokens the gateway trusts.
type OIDCConfig struct {
	Issuers []IssuerConfig `yaml:"issuers"`
}

// IssuerConfig is one trusted OIDC issuer.
type IssuerConfig struct {
	URL         string   `yaml:"url"`
	Audiences   []string `yaml:"audiences"`
	GroupsClaim string   `yaml:"groupsClaim"`
}

// SessionsConfig configures the gateway-minted session credentials.
type SessionsConfig struct {
	// KeyFiles, newest first: the first seals new sessions, all open them.
	KeyFiles    []string      `yaml:"keyFiles"`
	MaxDuration time.Duration `yaml:"maxDuration"`
}

// RoleConfig maps principals to an IAM role.
type RoleConfig struct {
	Name        string        `yaml:"name"`
	ARN         string        `yaml:"arn"`
	When        string        `yaml:"when"`
	MaxDuration time.Duration `yaml:"maxDuration"`
}

// AWSConfig says which credentials the gateway re-signs with.
type AWSConfig struct {
	// Credentials is "default" (the AWS SDK's default chain) or "static".
	Credentials string `yaml:"credentials"`
	// Static names the environment variables of a static key.
	Static StaticConfig `yaml:"static"`
	// AssumeRole makes the gateway assume each session's role through STS
	// with the base credentials above.
	AssumeRole bool   `yaml:"assumeRole"`
	Region     string `yaml:"region"`
	Account    string `yaml:"account"`
}

// StaticConfig names environment variables holding a static AWS key.
type StaticConfig struct {
	AccessKeyIDEnv     string `yaml:"accessKeyIdEnv"`
	SecretAccessKeyEnv string `yaml:"secretAccessKeyEnv"`
	SessionTokenEnv    string `yaml:"sessionTokenEnv"`
}

// PolicyConfig lists policy files, merged in order ("starter:NAME" loads an
// embedded starter policy).
type PolicyConfig struct {
	Files []string `yaml:"files"`
}

// MasksConfig configures response masking.
type MasksConfig struct {
	HashKeyFile string `yaml:"hashKeyFile"`
	MaxBody     int64  `yaml:"maxBody"`
}

// ApprovalsConfig configures the approval store and notifiers.
type ApprovalsConfig struct {
	Store       string          `yaml:"store"`
	DSNEnv      string          `yaml:"dsnEnv"`
	Schema      string          `yaml:"schema"`
	URLBase     string          `yaml:"urlBase"`
	CSRFKeyFile string          `yaml:"csrfKeyFile"`
	Notifiers   NotifiersConfig `yaml:"notifiers"`
}

// NotifiersConfig lists the optional approval notifiers.
type NotifiersConfig struct {
	Webhook *WebhookConfig `yaml:"webhook"`
	Slack   *SlackConfig   `yaml:"slack"`
}

// WebhookConfig is a generic signed webhook.
type WebhookConfig struct {
	URL       string `yaml:"url"`
	SecretEnv string `yaml:"secretEnv"`
}

// SlackConfig is a Slack incoming webhook; its URL is a secret.
type SlackConfig struct {
	URLEnv string `yaml:"urlEnv"`
}

// AuditConfig lists audit sinks: "slog" (one JSON line per call on the
// gateway's log) and "file" (a hash-chained JSON Lines trail in Dir that
// `go run ./examples/replay verify` checks); Sinks left out means [file],
// and Dir left out means DefaultAuditDir. Mode says what happens when the
// file trail cannot be written: "fail-closed" (the default: the call is
// refused; it needs the file sink) or "fail-open" (the call goes ahead;
// losses are counted in gatehouse_audit_dropped_total). RecordingsDir, if
// set, keeps each session's masked request/response pairs for
// examples/replay. Checkpoint, if set, makes the file trail write signed
// checkpoints.
type AuditConfig struct {
	Sinks         []string          `yaml:"sinks"`
	Mode          string            `yaml:"mode"`
	Dir           string            `yaml:"dir"`
	RecordingsDir string            `yaml:"recordingsDir"`
	Checkpoint    *CheckpointConfig `yaml:"checkpoint"`
}

// CheckpointConfig makes the file trail sign checkpoints (record count and
// head hash) with the key in KeyFile (replay keygen NAME writes NAME.key),
// every Interval while it grows, at every rotation and at shutdown, so
// that `replay verify -key NAME.pub` detects removed records. DSNEnv, if
// set, names the environment variable holding a PostgreSQL DSN where every
// checkpoint is also kept (audit/pgsink, Schema), out of reach of whoever
// can change the trail's files. InsecureResumeWithoutCheckpoint is
// audit.FileConfig.InsecureResumeWithoutCheckpoint: it lets the gateway
// start, once, on a checkpointed trail whose checkpoint file is missing,
// which it otherwise refuses; it must not stay set.
type CheckpointConfig struct {
	KeyFile                         string        `yaml:"keyFile"`
	Interval                        time.Duration `yaml:"interval"`
	Origin                          string        `yaml:"origin"`
	DSNEnv                          string        `yaml:"dsnEnv"`
	Schema                          string        `yaml:"schema"`
	InsecureResumeWithoutCheckpoint bool          `yaml:"insecureResumeWithoutCheckpoint"`
}

// LimitsConfig bounds the work a client can make the gateway do. Zero
// values mean the defaults documented in README.md.
type LimitsConfig struct {
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
	MaxBodyBuffer     int64         `yaml:"maxBodyBuffer"`
	BodyReadTimeout   time.Duration `yaml:"bodyReadTimeout"`
	MaxSkew           time.Duration `yaml:"maxSkew"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdownTimeout"`
}

// FieldError is a configuration error at a field path such as
// "oidc.issuers[0].audiences".
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return "gateway: config: " + e.Path + ": " + e.Msg }

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// maxConfigBytes bounds the configuration file.
const maxConfigBytes = 1 << 20

// ParseConfig decodes and validates a configuration document. Unknown
// fields are errors; so are missing required fields and invalid values,
// each reported with its field path.
func ParseConfig(r io.Reader) (*Config, error) {
	raw, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if len(raw) > maxConfigBytes {
		return nil, errors.New("gateway: config: larger than 1 MiB")
	}
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if err := checkKnown(&root, "", &Config{}); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("gateway: config: empty document")
		}
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gateway: config: %w", err)
	}
	defer f.Close()
	return ParseConfig(f)
}

// checkKnown walks the YAML tree against the Go type of v and reports the
// first unknown mapping key with its full path, which yaml's own
// KnownFields error does not give.
func checkKnown(n *yaml.Node, path string, v any) error {
	return walkKnown(n, path, typeOf(v))
}

func (c *Config) validate() error {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:8443"
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		if c.TLS.Cert == "" {
			return fieldErr("tls.cert", "required when tls.key is set")
		}
		return fieldErr("tls.key", "required when tls.cert is set")
	}
	if len(c.OIDC.Issuers) == 0 {
		return fieldErr("oidc.issuers", "required: at least one issuer")
	}
	for i, is := range c.OIDC.Issuers {
		p := fmt.Sprintf("oidc.issuers[%d]", i)
		if err := checkURL(p+".url", is.URL); err != nil {
			return err
		}
		if len(is.Audiences) == 0 {
			return fieldErr(p+".audiences", "required")
		}
		for j, a := range is.Audiences {
			if a == "" {
				return fieldErr(fmt.Sprintf("%s.audiences[%d]", p, j), "empty")
			}
		}
	}
	if len(c.Sessions.KeyFiles) == 0 {
		return fieldErr("sessions.keyFiles", "required: at least one key file")
	}
	for i, f := range c.Sessions.KeyFiles {
		if f == "" {
			return fieldErr(fmt.Sprintf("sessions.keyFiles[%d]", i), "empty")
		}
	}
	if c.Sessions.MaxDuration < 0 {
		return fieldErr("sessions.maxDuration", "negative")
	}
	if len(c.Roles) == 0 {
		return fieldErr("roles", "required: at least one role")
	}
	names := map[string]bool{}
	for i, r := range c.Roles {
		p := fmt.Sprintf("roles[%d]", i)
		switch {
		case r.Name == "":
			return fieldErr(p+".name", "required")
		case names[r.Name]:
			return fieldErr(p+".name", "duplicate role %q", r.Name)
		case !strings.HasPrefix(r.ARN, "arn:"):
			return fieldErr(p+".arn", "required: an IAM role ARN")
		case r.When == "":
			return fieldErr(p+".when", `required: a CEL condition ("true" admits every verified principal)`)
		case r.MaxDuration < 0:
			return fieldErr(p+".maxDuration", "negative")
		}
		names[r.Name] = true
	}
	switch c.AWS.Credentials {
	case "":
		c.AWS.Credentials = "default"
	case "default":
	case "static":
		if c.AWS.Static.AccessKeyIDEnv == "" {
			return fieldErr("aws.static.accessKeyIdEnv", "required with credentials: static")
		}
		if c.AWS.Static.SecretAccessKeyEnv == "" {
			return fieldErr("aws.static.secretAccessKeyEnv", "required with credentials: static")
		}
	default:
		return fieldErr("aws.credentials", "%q: want default or static", c.AWS.Credentials)
	}
	if c.AWS.Credentials != "static" && c.AWS.Static != (StaticConfig{}) {
		return fieldErr("aws.static", "only with credentials: static")
	}
	for svc, u := range c.Upstreams {
		if err := checkURL("upstreams."+svc, u); err != nil {
			return err
		}
	}
	if len(c.Policy.Files) == 0 {
		return fieldErr("policy.files", `required (for example "starter:mcp-agents")`)
	}
	for i, f := range c.Policy.Files {
		if f == "" {
			return fieldErr(fmt.Sprintf("policy.files[%d]", i), "empty")
		}
	}
	if c.Masks.MaxBody < 0 {
		return fieldErr("masks.maxBody", "negative")
	}
	a := &c.Approvals
	switch a.Store {
	case "":
		a.Store = "memory"
	case "memory":
	case "postgres":
		if a.DSNEnv == "" {
			return fieldErr("approvals.dsnEnv", "required with store: postgres")
		}
	default:
		return fieldErr("approvals.store", "%q: want memory or postgres", a.Store)
	}
	if a.Store != "postgres" && (a.DSNEnv != "" || a.Schema != "") {
		return fieldErr("approvals.store", "dsnEnv and schema need store: postgres")
	}
	if a.URLBase != "" {
		if err := checkURL("approvals.urlBase", a.URLBase); err != nil {
			return err
		}
	}
	if w := a.Notifiers.Webhook; w != nil {
		if err := checkURL("approvals.notifiers.webhook.url", w.URL); err != nil {
			return err
		}
		if w.SecretEnv == "" {
			return fieldErr("approvals.notifiers.webhook.secretEnv", "required")
		}
	}
	if s := a.Notifiers.Slack; s != nil && s.URLEnv == "" {
		return fieldErr("approvals.notifiers.slack.urlEnv", "required")
	}
	if c.Audit.Sinks == nil {
		c.Audit.Sinks = []string{"file"}
	}
	file := false
	for i, s := range c.Audit.Sinks {
		switch s {
		case "slog":
		case "file":
			file = true
		default:
			return fieldErr(fmt.Sprintf("audit.sinks[%d]", i), "%q: want slog or file", s)
		}
	}
	if file && c.Audit.Dir == "" {
		c.Audit.Dir = DefaultAuditDir()
	}
	if cp := c.Audit.Checkpoint; cp != nil {
		switch {
		case !file:
			return fieldErr("audit.checkpoint", "needs the file sink")
		case cp.KeyFile == "":
			return fieldErr("audit.checkpoint.keyFile", "required")
		case cp.Interval < 0:
			return fieldErr("audit.checkpoint.interval", "must not be negative")
		}
	}
	switch c.Audit.Mode {
	case "", "fail-closed":
		if !file {
			return fieldErr("audit.sinks", "fail-closed (audit.mode's default) needs the file sink: add file, or set audit.mode: fail-open to run without a trail that can refuse calls")
		}
	case "fail-open":
	default:
		return fieldErr("audit.mode", "%q: want fail-closed or fail-open", c.Audit.Mode)
	}
	l := &c.Limits
	for _, f := range []struct {
		path string
		neg  bool
	}{
		{"limits.maxHeaderBytes", l.MaxHeaderBytes < 0},
		{"limits.maxBodyBuffer", l.MaxBodyBuffer < 0},
		{"limits.bodyReadTimeout", l.BodyReadTimeout < 0},
		{"limits.maxSkew", l.MaxSkew < 0},
		{"limits.readHeaderTimeout", l.ReadHeaderTimeout < 0},
		{"limits.idleTimeout", l.IdleTimeout < 0},
		{"limits.shutdownTimeout", l.ShutdownTimeout < 0},
	} {
		if f.neg {
			return fieldErr(f.path, "negative")
		}
	}
	if l.ReadHeaderTimeout == 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = 2 * time.Minute
	}
	if l.ShutdownTimeout == 0 {
		l.ShutdownTimeout = 30 * time.Second
	}
	return nil
}

// DefaultAuditDir is audit.dir when the configuration names none:
// "audit" in the service's state directory, $STATE_DIRECTORY (set by
// systemd's StateDirectory=; the first one if several) or else
// /var/lib/gatehouse.
func DefaultAuditDir() string {
	state, _, _ := strings.Cut(os.Getenv("STATE_DIRECTORY"), ":")
	if state == "" {
		state = "/var/lib/gatehouse"
	}
	return filepath.Join(state, "audit")
}

func checkURL(path, s string) error {
	if s == "" {
		return fieldErr(path, "required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fieldErr(path, "%q: want an absolute http or https URL", s)
	}
	return nil
}

// secretFromFile reads a key file: hex (whitespace trimmed) if it decodes,
// raw bytes otherwise; at least min bytes.
func secretFromFile(path, file string, min int) ([]byte, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fieldErr(path, "%v", err)
	}
	key := raw
	if h, err := hex.DecodeString(strings.TrimSpace(string(raw))); err == nil {
		key = h
	}
	if len(key) < min {
		return nil, fieldErr(path, "key shorter than %d bytes", min)
	}
	return key, nil
}

// secretFromEnv reads a secret from the environment variable name.
func secretFromEnv(path, name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fieldErr(path, "environment variable %s is empty or unset", name)
	}
	return v, nil
}

// keyID names a session key inside tokens: derived from the key itself, so
// every replica agrees without configuration and rotation needs no ids.
func keyID(secret []byte) string {
	sum := sha256.Sum256(secret)
	return "k" + hex.EncodeToString(sum[:6])
}

func typeOf(v any) reflect.Type { return reflect.TypeOf(v) }

// walkKnown reports the first mapping key of n that has no field in t.
func walkKnown(n *yaml.Node, path string, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := walkKnown(c, path, t); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		switch t.Kind() {
		case reflect.Struct:
			for i := 0; i+1 < len(n.Content); i += 2 {
				key := n.Content[i].Value
				f, ok := fieldByTag(t, key)
				p := join(path, key)
				if !ok {
					return fieldErr(p, "unknown field (line %d)", n.Content[i].Line)
				}
				if err := walkKnown(n.Content[i+1], p, f.Type); err != nil {
					return err
				}
			}
		case reflect.Map:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if err := walkKnown(n.Content[i+1], join(path, n.Content[i].Value), t.Elem()); err != nil {
					return err
				}
			}
		default:
			return fieldErr(orRoot(path), "a mapping where %s was expected (line %d)", t.Kind(), n.Line)
		}
	case yaml.SequenceNode:
		if t.Kind() != reflect.Slice {
			return fieldErr(orRoot(path), "a list where %s was expected (line %d)", t.Kind(), n.Line)
		}
		for i, c := range n.Content {
			if err := walkKnown(c, fmt.Sprintf("%s[%d]", path, i), t.Elem()); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return nil
		}
		switch t.Kind() {
		case reflect.Struct, reflect.Map, reflect.Slice:
			return fieldErr(orRoot(path), "%q where a %s was expected (line %d)", n.Value, t.Kind(), n.Line)
		}
		var err error
		switch {
		case t == reflect.TypeFor[time.Duration]():
			_, err = time.ParseDuration(n.Value)
		case t.Kind() == reflect.Bool, t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
			err = n.Decode(reflect.New(t).Interface())
		}
		if err != nil {
			return fieldErr(orRoot(path), "%q is not a valid %s (line %d)", n.Value, kindName(t), n.Line)
		}
	case yaml.AliasNode:
		return fieldErr(orRoot(path), "YAML aliases are not accepted (line %d)", n.Line)
	}
	return nil
}

func fieldByTag(t reflect.Type, key string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func kindName(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return `duration ("30s", "1h")`
	}
	return t.Kind().String()
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}
