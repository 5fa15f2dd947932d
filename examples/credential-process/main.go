// Command credential-process is a credential_process helper for tools that
// cannot read a web identity token file. It obtains an OAuth 2.0
// client-credentials token from the workload's identity provider,
// exchanges it at the gatehouse gateway's STS endpoint
// (sts:AssumeRoleWithWebIdentity) and prints the session credentials in
// the JSON shape AWS SDKs and the AWS CLI expect from credential_process.
//
// In ~/.aws/config:
//
//	[profile agent]
//	credential_process = credential-process -token-url https://idp.example/oauth2/token -client-id agent -audience gatehouse -gateway https://gatehouse.example -role arn:aws:iam::123456789012:role/mcp-agents
//	endpoint_url = https://gatehouse.example
//
// The client secret is read from the environment variable named by
// -client-secret-env (default GATEHOUSE_CLIENT_SECRET), never from a flag.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// options are the helper's inputs.
type options struct {
	TokenURL, ClientID, ClientSecret, Audience string
	Scopes                                     []string
	Gateway, Role, SessionName, Region         string
	HTTPClient                                 *http.Client
}

// processCredentials is the credential_process output format (Version 1).
type processCredentials struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

func main() {
	var o options
	var scopes, secretEnv string
	flag.StringVar(&o.TokenURL, "token-url", "", "the identity provider's OAuth 2.0 token endpoint (required)")
	flag.StringVar(&o.ClientID, "client-id", "", "OAuth client id of the workload (required)")
	flag.StringVar(&secretEnv, "client-secret-env", "GATEHOUSE_CLIENT_SECRET", "environment variable holding the client secret")
	flag.StringVar(&o.Audience, "audience", "", "audience to request (sent as the 'audience' parameter when set)")
	flag.StringVar(&scopes, "scopes", "", "space-separated scopes to request")
	flag.StringVar(&o.Gateway, "gateway", "", "base URL of the gatehouse gateway (required)")
	flag.StringVar(&o.Role, "role", "", "role ARN or name to request; empty for the first permitted")
	flag.StringVar(&o.SessionName, "session-name", "", "role session name; empty lets the gateway derive one")
	flag.StringVar(&o.Region, "region", "us-east-1", "region for the STS call's credential scope")
	flag.Parse()
	o.ClientSecret = os.Getenv(secretEnv)
	o.Scopes = strings.Fields(scopes)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "credential-process:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options, out io.Writer) error {
	switch {
	case o.TokenURL == "":
		return errors.New("-token-url is required")
	case o.ClientID == "":
		return errors.New("-client-id is required")
	case o.ClientSecret == "":
		return errors.New("the client secret environment variable is empty")
	case o.Gateway == "":
		return errors.New("-gateway is required")
	}
	client := o.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 20 * time.Second}
	}
	cc := clientcredentials.Config{ClientID: o.ClientID, ClientSecret: o.ClientSecret, TokenURL: o.TokenURL, Scopes: o.Scopes}
	if o.Audience != "" {
		cc.EndpointParams = map[string][]string{"audience": {o.Audience}}
	}
	tok, err := cc.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	if err != nil {
		return fmt.Errorf("client-credentials token: %w", err)
	}
	// Prefer an id_token if the provider returns one; otherwise the access
	// token must itself be a JWT.
	raw := tok.AccessToken
	if id, ok := tok.Extra("id_token").(string); ok && id != "" {
		raw = id
	}
	stsClient := sts.New(sts.Options{Region: o.Region, BaseEndpoint: aws.String(o.Gateway), HTTPClient: client})
	in := &sts.AssumeRoleWithWebIdentityInput{WebIdentityToken: aws.String(raw), RoleSessionName: aws.String(o.SessionName)}
	if o.SessionName == "" {
		in.RoleSessionName = aws.String("credential-process")
	}
	if o.Role != "" {
		in.RoleArn = aws.String(o.Role)
	} else {
		in.RoleArn = aws.String("")
	}
	res, err := stsClient.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		return fmt.Errorf("exchange at %s: %w", o.Gateway, err)
	}
	c := res.Credentials
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(processCredentials{
		Version: 1, AccessKeyID: aws.ToString(c.AccessKeyId), SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken: aws.ToString(c.SessionToken), Expiration: aws.ToTime(c.Expiration).UTC().Format(time.RFC3339),
	})
}
