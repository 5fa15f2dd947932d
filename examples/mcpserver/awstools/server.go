// Package awstools is an MCP server exposing AWS tools (list buckets;
// list, get, put and delete objects; delete a bucket; get a secret;
// describe instances; create an IAM user) that holds no AWS key: the stock
// AWS SDK exchanges the workload's OIDC token at the gatehouse gateway (web
// identity) and sends every call there. Each call carries the MCP session
// id and tool name in signed headers, and calls the gateway holds for a
// human approval come back to the agent as an approval id it can wait on
// (wait_for_approval).
//
// examples/mcpserver is the command serving it; examples/quickstart drives
// it with an MCP client.
package awstools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
)

// Headers the server adds to every AWS call, before SigV4 signing, so the
// gateway (and its audit trail) can tie each AWS call to the MCP tool call
// behind it. They are covered by the signature, so they cannot be altered
// on the way.
const (
	HeaderSession = "X-Gatehouse-Mcp-Session"
	HeaderTool    = "X-Gatehouse-Mcp-Tool"
)

// Config configures the MCP server.
type Config struct {
	// Gateway is the gatehouse gateway's URL: the SDK sends the
	// web-identity exchange and every AWS call there. Required.
	Gateway string
	// Region is the AWS region. Default us-east-1.
	Region string
	// RoleARN is the role the gateway maps the workload's token to.
	// Required.
	RoleARN string
	// Token returns the workload's OIDC token; use
	// stscreds.IdentityTokenFile(path) for a token file. Required.
	Token stscreds.IdentityTokenRetriever
	// HTTPClient, if set, is the SDK's HTTP client.
	HTTPClient aws.HTTPClient
	// MaxApprovalWait bounds wait_for_approval. Default one minute.
	MaxApprovalWait time.Duration
	// PollInterval is how often a waiting call is retried. Default one
	// second.
	PollInterval time.Duration
	// MaxObjectBytes bounds the object get_object returns. Default 1 MiB.
	MaxObjectBytes int64
}

// Server is the AWS tools server.
type Server struct {
	cfg     Config
	s3      *s3.Client
	secrets *secretsmanager.Client
	ec2     *ec2.Client
	iam     *iam.Client

	mu      sync.Mutex
	pending map[string]*pendingCall // by session id + "\x00" + approval id
}

// pendingCall is a call the gateway is holding for an approval: the exact
// call, ready to be repeated.
type pendingCall struct {
	tool    string
	created time.Time
	retry   func(ctx context.Context) (*mcp.CallToolResult, error)
}

const maxPending = 256

// AWSConfig is the stock SDK configuration the server uses: the workload's
// OIDC token is exchanged at the gateway's STS endpoint for short-lived
// session credentials, and every call goes to the gateway carrying the MCP
// session and tool headers.
func AWSConfig(cfg Config) aws.Config {
	region := cfg.Region
	if region == "" {
		region = "us-east-1"
	}
	stsClient := sts.New(sts.Options{Region: region, BaseEndpoint: aws.String(cfg.Gateway), HTTPClient: cfg.HTTPClient})
	c := aws.Config{
		Region:       region,
		BaseEndpoint: aws.String(cfg.Gateway),
		Credentials:  aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(stsClient, cfg.RoleARN, cfg.Token)),
		APIOptions:   []func(*middleware.Stack) error{addToolHeaders},
	}
	if cfg.HTTPClient != nil {
		c.HTTPClient = cfg.HTTPClient
	}
	return c
}

type toolCallKey struct{}

type toolCall struct{ session, tool string }

func withToolCall(ctx context.Context, session, tool string) context.Context {
	return context.WithValue(ctx, toolCallKey{}, toolCall{session, tool})
}

// addToolHeaders adds the MCP headers in the Build step, which runs before
// the Finalize step where the SDK signs the request: SigV4 covers them.
func addToolHeaders(stack *middleware.Stack) error {
	return stack.Build.Add(middleware.BuildMiddlewareFunc("GatehouseMCPHeaders",
		func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (middleware.BuildOutput, middleware.Metadata, error) {
			if req, ok := in.Request.(*smithyhttp.Request); ok {
				if tc, ok := ctx.Value(toolCallKey{}).(toolCall); ok {
					if tc.session != "" {
						req.Header.Set(HeaderSession, tc.session)
					}
					req.Header.Set(HeaderTool, tc.tool)
				}
			}
			return next.HandleBuild(ctx, in)
		}), middleware.After)
}

// NewServer returns the MCP server with its AWS tools.
func NewServer(cfg Config) (*mcp.Server, error) {
	if cfg.Gateway == "" || cfg.RoleARN == "" || cfg.Token == nil {
		return nil, errors.New("awstools: Gateway, RoleARN and Token are required")
	}
	if cfg.MaxApprovalWait <= 0 {
		cfg.MaxApprovalWait = time.Minute
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.MaxObjectBytes <= 0 {
		cfg.MaxObjectBytes = 1 << 20
	}
	ac := AWSConfig(cfg)
	s := &Server{
		cfg:     cfg,
		s3:      s3.NewFromConfig(ac, func(o *s3.Options) { o.UsePathStyle = true }),
		secrets: secretsmanager.NewFromConfig(ac),
		ec2:     ec2.NewFromConfig(ac),
		iam:     iam.NewFromConfig(ac),
		pending: map[string]*pendingCall{},
	}
	srv := mcp.NewServer(&mcp.Implementation{Name: "gatehouse-aws-tools", Version: "0.1.0"}, nil)
	s.addTools(srv)
	return srv, nil
}

// Handler serves srv over MCP's streamable HTTP transport.
func Handler(srv *mcp.Server) http.Handler {
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, nil)
}

// awsTool registers a tool whose body makes AWS calls. The body runs with
// the MCP session id and tool name in its context; an ApprovalPending
// answer is turned into a result that tells the agent the approval id,
// and the call is kept so that wait_for_approval can repeat it.
func awsTool[In any](s *Server, srv *mcp.Server, name, desc string, body func(ctx context.Context, in In) (string, error)) {
	mcp.AddTool(srv, &mcp.Tool{Name: name, Description: desc},
		func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, any, error) {
			session := req.Session.ID()
			var run func(ctx context.Context) (*mcp.CallToolResult, error)
			run = func(ctx context.Context) (*mcp.CallToolResult, error) {
				out, err := body(withToolCall(ctx, session, name), in)
				if err == nil {
					return textResult(out), nil
				}
				if id, url, ok := approvalPending(err); ok {
					s.remember(session, id, &pendingCall{tool: name, created: time.Now(), retry: run})
					return pendingResult(name, id, url, s.cfg.MaxApprovalWait), nil
				}
				return errorResult(err), nil
			}
			res, err := run(ctx)
			return res, nil, err
		})
}

// approvalPending recognises the gateway's answer to a call held for a
// human approval, from the approval headers of the response (the message
// text is for people and is never parsed).
func approvalPending(err error) (id, url string, ok bool) {
	p, ok := awsproxy.PendingApprovalOf(err)
	return p.ID, p.URL, ok
}

func (s *Server) remember(session, id string, p *pendingCall) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range s.pending {
		if time.Since(v.created) > time.Hour {
			delete(s.pending, k)
		}
	}
	if len(s.pending) >= maxPending {
		var oldest string
		for k, v := range s.pending {
			if oldest == "" || v.created.Before(s.pending[oldest].created) {
				oldest = k
			}
		}
		delete(s.pending, oldest)
	}
	s.pending[session+"\x00"+id] = p
}

func (s *Server) take(session, id string) *pendingCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending[session+"\x00"+id]
}

func (s *Server) forget(session, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pending, session+"\x00"+id)
}

type waitArgs struct {
	ApprovalID     string `json:"approval_id" jsonschema:"the approval id a previous tool result reported"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"how long to wait for the approval, in seconds (bounded by the server)"`
}

// waitForApproval repeats the held call (the identical request, which the
// gateway binds the approval to) every PollInterval until it is no longer
// pending or the bounded wait is over.
func (s *Server) waitForApproval(ctx context.Context, req *mcp.CallToolRequest, in waitArgs) (*mcp.CallToolResult, any, error) {
	session := req.Session.ID()
	p := s.take(session, in.ApprovalID)
	if p == nil {
		return errorText(fmt.Sprintf("no call of this session is waiting for approval %q", in.ApprovalID)), nil, nil
	}
	wait := time.Duration(in.TimeoutSeconds) * time.Second
	if wait <= 0 || wait > s.cfg.MaxApprovalWait {
		wait = s.cfg.MaxApprovalWait
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		res, err := p.retry(ctx)
		if err != nil {
			return nil, nil, err
		}
		if !isPending(res) {
			if res.IsError && ctx.Err() != nil {
				// The wait ended during the call (the gateway may hold
				// it): the approval is still pending.
				return s.stillPending(p.tool, in.ApprovalID), nil, nil
			}
			s.forget(session, in.ApprovalID)
			return res, nil, nil
		}
		select {
		case <-ctx.Done():
			return res, nil, nil // still pending: the agent may wait again
		case <-time.After(s.cfg.PollInterval):
		}
	}
}

func (s *Server) stillPending(tool, id string) *mcp.CallToolResult {
	return pendingResult(tool, id, "", s.cfg.MaxApprovalWait)
}

// pendingStatus is the result of a call held for approval.
type pendingStatus struct {
	Status      string `json:"status"`
	Tool        string `json:"tool"`
	ApprovalID  string `json:"approval_id"`
	ApprovalURL string `json:"approval_url,omitempty"`
	Next        string `json:"next"`
}

func pendingResult(tool, id, url string, maxWait time.Duration) *mcp.CallToolResult {
	b, _ := json.Marshal(pendingStatus{
		Status: "approval_pending", Tool: tool, ApprovalID: id, ApprovalURL: url,
		Next: fmt.Sprintf("The call was NOT made: it needs a human approval. Ask an approver to approve %s, "+
			"then call wait_for_approval with approval_id %q (it waits up to %d seconds and makes the identical call "+
			"as soon as the approval is granted), or call %s again with the same arguments once approved.",
			id, id, int(maxWait/time.Second), tool),
	})
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: string(b)}}, Meta: mcp.Meta{"gatehouse/approvalPending": id}}
}

func isPending(res *mcp.CallToolResult) bool {
	_, ok := res.Meta["gatehouse/approvalPending"]
	return ok
}

func textResult(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

func errorText(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}

// errorResult reports an AWS error to the agent as a tool error, so the
// model sees it and can adjust.
func errorResult(err error) *mcp.CallToolResult {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return errorText(ae.ErrorCode() + ": " + ae.ErrorMessage())
	}
	return errorText(err.Error())
}

func jsonText(v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return string(b), err
}

// readBounded reads at most n bytes of r and reports whether there was more.
func readBounded(r io.Reader, n int64) ([]byte, bool, error) {
	b, err := io.ReadAll(io.LimitReader(r, n+1))
	if err != nil {
		return nil, false, err
	}
	if int64(len(b)) > n {
		return b[:n], true, nil
	}
	return b, false, nil
}
