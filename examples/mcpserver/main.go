// Command mcpserver is an MCP server exposing AWS tools (list buckets;
// list, get, put and delete objects; delete a bucket; get a secret;
// describe instances; create an IAM user) that holds no AWS key: the
// stock AWS SDK exchanges the workload's OIDC token at the gatehouse
// gateway (web identity) and sends every call there. Each call carries the MCP session id and tool
// name in signed headers, and calls the gateway holds for a human approval
// come back to the agent as an approval id it can wait on. The server
// itself is package examples/mcpserver/awstools.
//
// Run it with the same environment a stock SDK would use:
//
//	AWS_ROLE_ARN=arn:aws:iam::111122223333:role/mcp-agents \
//	AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/oidc/token \
//	AWS_ENDPOINT_URL=https://gatehouse.example \
//	go run ./examples/mcpserver -listen 127.0.0.1:8091
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"

	"github.com/gatehouse-dev/gatehouse/examples/mcpserver/awstools"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8091", "address to serve MCP (streamable HTTP) on, at /mcp")
	gateway := flag.String("gateway", os.Getenv("AWS_ENDPOINT_URL"), "gatehouse gateway URL (default $AWS_ENDPOINT_URL)")
	role := flag.String("role-arn", os.Getenv("AWS_ROLE_ARN"), "role to assume (default $AWS_ROLE_ARN)")
	tokenFile := flag.String("token-file", os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"), "OIDC token file (default $AWS_WEB_IDENTITY_TOKEN_FILE)")
	region := flag.String("region", envOr("AWS_REGION", "us-east-1"), "AWS region")
	flag.Parse()
	if *tokenFile == "" {
		fmt.Fprintln(os.Stderr, "mcpserver: set AWS_WEB_IDENTITY_TOKEN_FILE or -token-file")
		os.Exit(2)
	}
	srv, err := awstools.NewServer(awstools.Config{Gateway: *gateway, RoleARN: *role, Token: stscreds.IdentityTokenFile(*tokenFile), Region: *region})
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpserver:", err)
		os.Exit(2)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", awstools.Handler(srv))
	fmt.Fprintf(os.Stderr, "mcpserver: MCP endpoint http://%s/mcp, AWS through %s\n", *listen, *gateway)
	hs := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if err := hs.ListenAndServe(); err != nil {
		fmt.Fprintln(os.Stderr, "mcpserver:", err)
		os.Exit(1)
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
