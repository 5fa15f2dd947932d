package identity_test

import (
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/gatehouse-dev/gatehouse/identity"
)

// Principals verified from OIDC tokens are mapped to IAM roles by CEL
// conditions; the first role a principal may use, or the one it asks for,
// is chosen, and a principal no role admits is refused.
func ExampleRoleMapper() {
	mapper, err := identity.NewRoleMapper([]identity.Role{
		{Name: "agents", ARN: "arn:aws:iam::111122223333:role/mcp-agents", When: `"mcp-agents" in principal.groups`},
		{Name: "oncall", ARN: "arn:aws:iam::111122223333:role/oncall", When: `principal.subject.startsWith("oncall-")`},
	})
	if err != nil {
		log.Fatal(err)
	}
	agent := identity.Principal{Issuer: "https://idp.example", Subject: "report-agent", Groups: []string{"mcp-agents"}}
	role, err := mapper.Map(agent, "")
	fmt.Println(role.ARN, err)
	_, err = mapper.Map(agent, "arn:aws:iam::111122223333:role/oncall")
	fmt.Println(err != nil)
	_, err = mapper.Map(identity.Principal{Issuer: "https://idp.example", Subject: "visitor"}, "")
	fmt.Println(err != nil)
	// Output:
	// arn:aws:iam::111122223333:role/mcp-agents <nil>
	// true
	// true
}

// The gateway mints AWS-style credentials for a verified principal: any
// replica holding the session keys opens the token and derives the secret
// the caller's SigV4 signatures must verify against, with no shared store.
// A token presented with another access key id, or after it expires, is
// refused.
func ExampleSessions() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	key := identity.SessionKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}
	minter, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{key}, MaxDuration: 15 * time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	agent := identity.Principal{Issuer: "https://idp.example", Subject: "report-agent"}
	creds, err := minter.Mint(agent, "arn:aws:iam::111122223333:role/mcp-agents", time.Time{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid for", creds.Expires.Sub(now))

	// Another replica, already holding a newer key as well.
	newer := identity.SessionKey{ID: "k2", Secret: []byte("fedcba9876543210fedcba9876543210")}
	replica, err := identity.NewSessions(identity.SessionConfig{Keys: []identity.SessionKey{newer, key}, Now: func() time.Time { return now }})
	if err != nil {
		log.Fatal(err)
	}
	claims, secret, err := replica.Open(creds.AccessKeyID, creds.SessionToken)
	fmt.Println(claims.Principal, claims.Role, secret == creds.SecretAccessKey, err)

	_, _, err = replica.Open("ASIAOTHERKEY00000000", creds.SessionToken)
	fmt.Println(errors.Is(err, identity.ErrSessionInvalid))

	now = now.Add(time.Hour)
	_, _, err = replica.Open(creds.AccessKeyID, creds.SessionToken)
	fmt.Println(errors.Is(err, identity.ErrSessionExpired))
	// Output:
	// valid for 15m0s
	// https://idp.example#report-agent arn:aws:iam::111122223333:role/mcp-agents true <nil>
	// true
	// true
}
