package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The server's own tools. They know nothing of identity, policy or
// masking: the Guard middleware adds those around them.

type echoArgs struct {
	Text string `json:"text" jsonschema:"the text to echo back"`
}

type readConfigArgs struct {
	Service string `json:"service,omitempty" jsonschema:"the service whose configuration to read"`
}

type deleteArgs struct {
	Table string `json:"table" jsonschema:"the table to delete records from"`
	Where string `json:"where,omitempty" jsonschema:"which records"`
}

type dropArgs struct {
	Database string `json:"database" jsonschema:"the database to drop"`
}

// NewServer returns the MCP server with its tools and no guardrails.
func NewServer() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "gatehouse-embedded-example", Version: "0.1.0"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo", Description: "Echo the text back."},
		func(_ context.Context, _ *mcp.CallToolRequest, in echoArgs) (*mcp.CallToolResult, any, error) {
			return text(in.Text), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "read_config", Description: "Read a service's configuration (secrets are masked)."},
		func(_ context.Context, _ *mcp.CallToolRequest, in readConfigArgs) (*mcp.CallToolResult, any, error) {
			svc := in.Service
			if svc == "" {
				svc = "billing"
			}
			b, err := json.Marshal(map[string]any{
				"service": svc,
				"database": map[string]any{
					"host": "db.internal", "port": 5432, "user": "app", "password": "correct-horse-battery-staple",
				},
				"api_key": "sk_live_51HxQeRkZ9aV3bC7",
				"dsn":     "postgres://app:s3cr3t-pw@db.internal:5432/billing",
			})
			if err != nil {
				return nil, nil, err
			}
			return text(string(b)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "delete_records", Description: "Delete records from a table."},
		func(_ context.Context, _ *mcp.CallToolRequest, in deleteArgs) (*mcp.CallToolResult, any, error) {
			return text(fmt.Sprintf("deleted 3 records from %s", in.Table)), nil, nil
		})
	mcp.AddTool(s, &mcp.Tool{Name: "drop_database", Description: "Drop a database."},
		func(_ context.Context, _ *mcp.CallToolRequest, in dropArgs) (*mcp.CallToolResult, any, error) {
			return text("dropped " + in.Database), nil, nil
		})
	return s
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
