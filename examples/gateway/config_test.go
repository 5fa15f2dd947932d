package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse-dev/gatehouse/identity"
)

const minimalConfig = `
oidc:
  issuers:
    - url: https://idp.example
      audiences: [gatehouse]
sessions:
  keyFiles: [/run/secrets/session.key]
roles:
  - name: agents
    arn: arn:aws:iam::111122223333:role/agents
    when: "true"
policy:
  files: ["starter:mcp-agents"]
`

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig(strings.NewReader(minimalConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8443" || cfg.AWS.Credentials != "default" || cfg.Approvals.Store != "memory" ||
		cfg.Limits.ReadHeaderTimeout != 10*time.Second || cfg.Limits.ShutdownTimeout != 30*time.Second {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
}

// TestParseConfigErrors: every error names the field it is about.
func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		from    string // replaced in minimalConfig
		to      string
		wantErr string
	}{
		{"no audiences", "      audiences: [gatehouse]\n", "", "oidc.issuers[0].audiences: required"},
		{"unknown field", "      audiences: [gatehouse]\n", "      audience: [gatehouse]\n", "oidc.issuers[0].audience: unknown field"},
		{"unknown top-level field", "policy:\n", "polciy:\n", "polciy: unknown field"},
		{"issuer url", "https://idp.example", "idp.example", "oidc.issuers[0].url"},
		{"no issuers", "    - url: https://idp.example\n      audiences: [gatehouse]\n", "", "oidc.issuers: required"},
		{"no session keys", "  keyFiles: [/run/secrets/session.key]\n", "  keyFiles: []\n", "sessions.keyFiles: required"},
		{"bad duration", "sessions:\n", "sessions:\n  maxDuration: soon\n", `sessions.maxDuration: "soon" is not a valid duration`},
		{"role arn", "arn:aws:iam::111122223333:role/agents", "agents", "roles[0].arn: required"},
		{"role when", `    when: "true"` + "\n", "", "roles[0].when: required"},
		{"no policy", `  files: ["starter:mcp-agents"]` + "\n", "  files: []\n", "policy.files: required"},
		{"aws credentials", "policy:\n", "aws:\n  credentials: inline\npolicy:\n", `aws.credentials: "inline": want default or static`},
		{"static without env", "policy:\n", "aws:\n  credentials: static\npolicy:\n", "aws.static.accessKeyIdEnv: required"},
		{"inline secret refused", "policy:\n", "aws:\n  credentials: static\n  static:\n    secretAccessKey: abc\npolicy:\n", "aws.static.secretAccessKey: unknown field"},
		{"approval store", "policy:\n", "approvals:\n  store: redis\npolicy:\n", `approvals.store: "redis"`},
		{"postgres dsn", "policy:\n", "approvals:\n  store: postgres\npolicy:\n", "approvals.dsnEnv: required"},
		{"webhook secret", "policy:\n", "approvals:\n  notifiers:\n    webhook:\n      url: https://hooks.example/x\npolicy:\n", "approvals.notifiers.webhook.secretEnv: required"},
		{"audit sink", "policy:\n", "audit:\n  sinks: [s3]\npolicy:\n", `audit.sinks[0]: "s3"`},
		{"negative limit", "policy:\n", "limits:\n  maxBodyBuffer: -1\npolicy:\n", "limits.maxBodyBuffer: negative"},
		{"int limit", "policy:\n", "limits:\n  maxHeaderBytes: lots\npolicy:\n", `limits.maxHeaderBytes: "lots" is not a valid int`},
		{"tls half", "policy:\n", "tls:\n  cert: /c.pem\npolicy:\n", "tls.key: required"},
		{"upstream url", "policy:\n", "upstreams:\n  s3: localhost:9000\npolicy:\n", "upstreams.s3"},
		{"list where mapping", "policy:\n", "roles2: x\npolicy:\n", "roles2: unknown field"},
		{"mapping where list", `  files: ["starter:mcp-agents"]`, "  files: {a: b}", "policy.files: a mapping where slice was expected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(minimalConfig, tt.from) {
				t.Fatalf("test edit %q does not apply", tt.from)
			}
			_, err := ParseConfig(strings.NewReader(strings.Replace(minimalConfig, tt.from, tt.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ParseConfig = %v, want an error containing %q", err, tt.wantErr)
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %T is not a *FieldError", err)
			}
		})
	}
}

// TestShippedConfigs: the example configuration, the compose trial's and
// the Kubernetes ConfigMap's all pass validation, so the documentation
// cannot drift from the schema.
func TestShippedConfigs(t *testing.T) {
	for _, f := range []string{"gateway.example.yaml", "compose.gateway.yaml"} {
		cfg, err := LoadConfig(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		checkRoles(t, f, cfg)
	}
	raw, err := os.ReadFile("k8s.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	found := false
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("k8s.yaml: %v", err)
		}
		if doc.Kind == "ConfigMap" {
			found = true
			cfg, err := ParseConfig(strings.NewReader(doc.Data["gateway.yaml"]))
			if err != nil {
				t.Errorf("k8s.yaml ConfigMap gateway.yaml: %v", err)
				continue
			}
			checkRoles(t, "k8s.yaml", cfg)
		}
	}
	if !found {
		t.Error("k8s.yaml has no ConfigMap")
	}
}

// checkRoles compiles the roles' CEL conditions, which only start-up checks.
func checkRoles(t *testing.T, name string, cfg *Config) {
	t.Helper()
	var roles []identity.Role
	for _, r := range cfg.Roles {
		roles = append(roles, identity.Role{Name: r.Name, ARN: r.ARN, When: r.When, MaxDuration: r.MaxDuration})
	}
	if _, err := identity.NewRoleMapper(roles); err != nil {
		t.Errorf("%s: roles: %v", name, err)
	}
}
