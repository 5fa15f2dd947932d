package approval_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
	"github.com/gatehouse-dev/gatehouse/policy/approval"
)

// A held request is released by an approver; the grant is used once.
func Example() {
	ctx := context.Background()
	store, _ := approval.NewMemoryStore(approval.MemoryConfig{})
	broker, _ := approval.New(approval.Config{Store: store, URLBase: "https://gw.example/approvals/ui/"})

	agent := identity.Principal{Issuer: "https://idp.example", Subject: "mcp-server"}
	oncall := identity.Principal{Issuer: "https://idp.example", Subject: "alice", Groups: []string{"platform-oncall"}}
	req := approval.Request{
		Principal:   agent,
		Action:      "s3:DeleteBucket",
		Resources:   []string{"arn:aws:s3:::prod-logs"},
		Fingerprint: "sha256-of-the-exact-request",
		Requirements: []approval.Requirement{{
			Rule: "prod-deletes", Reason: "deleting production data", Groups: []string{"platform-oncall"},
		}},
	}

	// An approver acts while the request is held.
	go func() {
		for {
			if pending, _ := broker.List(ctx, approval.Filter{State: approval.Pending}); len(pending) == 1 {
				if _, err := broker.Approve(ctx, pending[0].ID, agent, ""); err != nil {
					fmt.Println("requester:", err)
				}
				broker.Approve(ctx, pending[0].ID, oncall, "ticket OPS-42")
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	res, err := broker.Gate(ctx, req, approval.GateOptions{Hold: 10 * time.Second})
	fmt.Println(res.Outcome, res.Record.State, err)

	// The same request again needs a new approval: queue mode answers at once.
	res, _ = broker.Gate(ctx, req, approval.GateOptions{})
	fmt.Println(res.Outcome, strings.HasPrefix(res.URL, "https://gw.example/approvals/ui/"))
	// Output:
	// requester: approval: a requester cannot approve or deny its own request
	// granted consumed <nil>
	// pending true
}

// The approver API is mounted behind bearer-token middleware. Here a stand-in
// authenticates with identity.WithPrincipal.
func ExampleNewHandler() {
	ctx := context.Background()
	store, _ := approval.NewMemoryStore(approval.MemoryConfig{})
	broker, _ := approval.New(approval.Config{Store: store})
	h, _ := approval.NewHandler(approval.HandlerConfig{Broker: broker})

	alice := identity.Principal{Issuer: "https://idp.example", Subject: "alice", Groups: []string{"ops"}}
	auth := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { // use identity.Bearer in production
		h.ServeHTTP(w, r.WithContext(identity.WithPrincipal(r.Context(), alice)))
	})
	srv := httptest.NewServer(http.StripPrefix("/approvals-api", auth))
	defer srv.Close()

	rec, _, _ := broker.Request(ctx, approval.Request{
		Principal:    identity.Principal{Issuer: "https://idp.example", Subject: "mcp-server"},
		Action:       "iam:DeleteRole",
		Fingerprint:  "fp",
		Requirements: []approval.Requirement{{Rule: "iam", Groups: []string{"ops"}}},
	})
	resp, _ := http.Post(srv.URL+"/approvals-api/approvals/"+rec.ID+"/approve", "application/json", strings.NewReader(`{"reason":"expected"}`))
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Println(resp.StatusCode, strings.Contains(string(body), `"state":"approved"`))
	// Output: 200 true
}
