// Command embedded is an MCP server that carries gatehouse's guardrails
// in-process, with no AWS and no gateway: bearer authentication with
// protected-resource metadata (identity), rules over mcp.tool and
// mcp.arguments applied on tools/call and used to filter tools/list
// (policy), masked tool results (mask), and one structured audit line per
// tool call (log/slog, until the audit package lands). Calls an approve
// rule matches wait for a human, who decides through the approval API
// served at /approvals/ (in-memory store).
//
// Run it with:
//
//	go run ./examples/embedded -issuer https://idp.example -audience tools
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8090", "address to listen on")
	base := flag.String("base-url", "", "public origin of this server (default http://LISTEN)")
	issuer := flag.String("issuer", "", "OIDC issuer URL whose tokens are accepted (required)")
	audience := flag.String("audience", "gatehouse-embedded", "audience the tokens must carry")
	policyFile := flag.String("policy", "", "policy file (default: the embedded policy.yaml)")
	flag.Parse()
	if err := run(*listen, *base, *issuer, *audience, *policyFile); err != nil {
		fmt.Fprintln(os.Stderr, "embedded:", err)
		os.Exit(1)
	}
}

func run(listen, base, issuer, audience, policyFile string) error {
	if issuer == "" {
		return fmt.Errorf("-issuer is required")
	}
	ctx := context.Background()
	verifier, err := identity.NewVerifier(ctx, identity.VerifierConfig{Issuers: []identity.Issuer{{URL: issuer, Audiences: []string{audience}}}})
	if err != nil {
		return err
	}
	cfg := Config{Verifier: verifier, Issuers: []string{issuer}, Logger: slog.New(slog.NewJSONHandler(os.Stderr, nil))}
	if policyFile != "" {
		pc, err := policy.Load(policyFile)
		if err != nil {
			return err
		}
		if cfg.Policy, err = policy.Compile(pc, policy.Options{}); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if base == "" {
		base = "http://" + ln.Addr().String()
	}
	cfg.BaseURL = base
	store, err := approval.NewMemoryStore(approval.MemoryConfig{})
	if err != nil {
		return err
	}
	if cfg.Broker, err = approval.New(approval.Config{Store: store, URLBase: base + "/approvals/ui/"}); err != nil {
		return err
	}
	h, err := NewHandler(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "embedded: MCP endpoint %s/mcp, metadata %s%s\n", base, base, MetadataPath)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
