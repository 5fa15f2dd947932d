// Command quickstart runs a small, real gatehouse flow on 127.0.0.1 and
// prints what happened at each step:
//
//   - an S3 upstream that verifies SigV4 signatures (gofakes3) and knows
//     only the gateway's own key;
//   - the awsproxy gateway, which holds that key;
//   - a stock AWS SDK for Go v2 client, which holds only a gateway key tied
//     to a workload identity, pointed at the gateway.
//
// The client creates a bucket, uploads, lists and reads an object; then a
// caller with an unknown key and a caller with a forged signature are
// refused before anything reaches the upstream.
//
// Run it with: go run ./examples/quickstart
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
)

// Demo keys. The agent's key is only good at the gateway; the upstream key
// never leaves the gateway.
const (
	agentKey      = "GHAGENTDEMO0000001"
	agentSecret   = "agent-secret-valid-only-at-the-gateway"
	upstreamKey   = "AKIADEMOUPSTREAM01"
	upstreamSec   = "upstream-secret-held-by-the-gateway"
	region        = "us-east-1"
	demoBucket    = "demo-bucket"
	demoObjectKey = "reports/hello.txt"
)

func main() {
	serve := flag.Bool("serve", false, "keep the gateway running after the demo and print how to use it by hand")
	flag.Parse()
	if err := run(context.Background(), os.Stdout, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, serve bool) error {
	// 1. The upstream: an in-memory S3 that checks every SigV4 signature
	// against the one key it knows.
	var upstreamHits atomic.Int64
	fake := gofakes3.New(s3mem.New(), gofakes3.WithV4Auth(map[string]string{upstreamKey: upstreamSec}))
	s3Handler := fake.Server()
	upstreamURL, stopUpstream, err := listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHits.Add(1)
		s3Handler.ServeHTTP(w, r)
	}))
	if err != nil {
		return err
	}
	defer stopUpstream()

	// 2. The gateway: authenticates the agent, re-signs with its own key.
	agent := identity.Principal{Issuer: "https://idp.example", Subject: "mcp-agent-7", ClientID: "reporting-agent", Groups: []string{"mcp-agents"}}
	gw, err := awsproxy.New(awsproxy.Config{
		Authenticator: awsproxy.StaticAuthenticator{agentKey: {SecretAccessKey: agentSecret, Principal: agent}},
		Credentials:   awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider(upstreamKey, upstreamSec, "")),
		Upstreams:     map[string]string{"s3": upstreamURL},
		OnDone: func(c *awsproxy.Call) {
			who := "unauthenticated"
			if c.Session != nil {
				who = c.Session.Principal.String()
			}
			verdict := "forwarded"
			if c.Err != nil {
				verdict = "refused: " + c.Err.Message
			}
			fmt.Fprintf(out, "   gateway: %-6s %-40s by %-34s -> %d %s\n", c.Request.Method, trim(c.Request.URL.RequestURI(), 40), who, c.Status, verdict)
		},
	})
	if err != nil {
		return err
	}
	gatewayURL, stopGateway, err := listen(gw)
	if err != nil {
		return err
	}
	defer stopGateway()
	fmt.Fprintf(out, "gatehouse quickstart\n  upstream S3 (verifies SigV4, knows only the gateway key): %s\n  gateway (holds the only upstream key):                   %s\n\n", upstreamURL, gatewayURL)

	client, err := s3Client(ctx, gatewayURL, agentKey, agentSecret)
	if err != nil {
		return err
	}
	step := func(name string, f func() (string, error)) error {
		fmt.Fprintf(out, "-> %s\n", name)
		msg, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		fmt.Fprintf(out, "   client:  %s\n", msg)
		return nil
	}
	steps := []struct {
		name string
		f    func() (string, error)
	}{
		{"agent creates bucket " + demoBucket, func() (string, error) {
			_, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(demoBucket)})
			return "bucket created", err
		}},
		{"agent uploads " + demoObjectKey, func() (string, error) {
			_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(demoObjectKey), Body: strings.NewReader("quarterly numbers, signed by the gateway\n")})
			return "object uploaded", err
		}},
		{"agent lists the bucket", func() (string, error) {
			res, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(demoBucket)})
			if err != nil {
				return "", err
			}
			var keys []string
			for _, o := range res.Contents {
				keys = append(keys, aws.ToString(o.Key))
			}
			return fmt.Sprintf("%d object(s): %s", len(keys), strings.Join(keys, ", ")), nil
		}},
		{"agent reads the object back", func() (string, error) {
			res, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(demoBucket), Key: aws.String(demoObjectKey)})
			if err != nil {
				return "", err
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			return fmt.Sprintf("read %q", strings.TrimSpace(string(b))), err
		}},
	}
	for _, s := range steps {
		if err := step(s.name, s.f); err != nil {
			return err
		}
	}

	// 3. Callers the gateway must refuse before anything reaches AWS.
	for _, bad := range []struct{ name, key, secret string }{
		{"a caller with an unknown key lists buckets", "AKIASTOLENKEY00001", "whatever"},
		{"a caller with a forged signature lists buckets", agentKey, "guessed-secret"},
		{"a caller using the upstream key directly lists buckets", upstreamKey, upstreamSec},
	} {
		before := upstreamHits.Load()
		fmt.Fprintf(out, "-> %s\n", bad.name)
		c, err := s3Client(ctx, gatewayURL, bad.key, bad.secret)
		if err != nil {
			return err
		}
		_, err = c.ListBuckets(ctx, &s3.ListBucketsInput{})
		var ae smithy.APIError
		if !errors.As(err, &ae) {
			return fmt.Errorf("%s: expected an AWS error, got %v", bad.name, err)
		}
		fmt.Fprintf(out, "   client:  refused with %s (upstream requests during the call: %d)\n", ae.ErrorCode(), upstreamHits.Load()-before)
	}
	fmt.Fprintln(out, "\ndone: every allowed call was verified, tied to", agent.String(), "and re-signed with the gateway's key.")

	if serve {
		fmt.Fprintf(out, "\nThe gateway keeps running. Try it with the AWS CLI v2:\n\n"+
			"  export AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_REGION=%s\n"+
			"  aws --endpoint-url %s s3 ls s3://%s --recursive\n\nPress Ctrl-C to stop.\n", agentKey, agentSecret, region, gatewayURL, demoBucket)
		select {}
	}
	return nil
}

// s3Client builds a stock SDK client aimed at the gateway. No custom HTTP
// client is passed, so AWS_CA_BUNDLE in the environment keeps working.
func s3Client(ctx context.Context, endpoint, key, secret string) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(key, secret, "")),
		config.WithBaseEndpoint(endpoint),
		config.WithRetryMaxAttempts(1),
		config.WithLogger(logging.Nop{}),
	)
	if err != nil {
		return nil, err
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), nil
}

// listen serves h on a free port of 127.0.0.1 with the timeouts a
// gateway should have against slow clients.
func listen(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 1 << 20}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

func trim(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-3] + "..."
}
