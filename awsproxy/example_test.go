package awsproxy_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/rclone/gofakes3"
	"github.com/rclone/gofakes3/s3mem"

	"github.com/gatehouse-dev/gatehouse/awsproxy"
	"github.com/gatehouse-dev/gatehouse/identity"
)

// A stock AWS SDK client, holding only a key the gateway knows, uploads and
// downloads an object through the gateway. The upstream is an S3 that
// verifies SigV4 and knows only the gateway's own key: every call reaches it
// re-signed. Production gateways authenticate callers with
// identity.Sessions (SessionAuthenticator) and sign with AssumeRoleSource.
func Example() {
	ctx := context.Background()
	backend := s3mem.New()
	if err := backend.CreateBucket(ctx, "reports"); err != nil {
		log.Fatal(err)
	}
	upstream := httptest.NewServer(gofakes3.New(backend,
		gofakes3.WithV4Auth(map[string]string{"AKIDGATEWAY": "gateway-secret"})).Server())
	defer upstream.Close()

	calls := make(chan *awsproxy.Call, 8)
	gw, err := awsproxy.New(awsproxy.Config{
		Authenticator: awsproxy.StaticAuthenticator{"AKIDAGENT": {
			SecretAccessKey: "agent-secret",
			Principal:       identity.Principal{Subject: "report-agent"},
		}},
		Credentials: awsproxy.StaticCredentials(credentials.NewStaticCredentialsProvider("AKIDGATEWAY", "gateway-secret", "")),
		Upstreams:   map[string]string{"s3": upstream.URL}, // default: the AWS endpoints
		OnDone:      func(c *awsproxy.Call) { calls <- c },
	})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDAGENT", "agent-secret", ""),
	})
	report := func() {
		c := <-calls
		fmt.Printf("%s by %s: %d, forwarded %v\n", c.Classification.Action, c.Session.Principal.Subject, c.Status, c.Forwarded)
	}
	if _, err := client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String("reports"), Key: aws.String("q3.txt"), Body: strings.NewReader("revenue up"),
	}); err != nil {
		log.Fatal(err)
	}
	report()
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("reports"), Key: aws.String("q3.txt")})
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	report()
	fmt.Println(string(body))

	// A key the gateway does not know is refused before anything is sent.
	stranger := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDSTRANGER", "guess", ""),
	})
	_, err = stranger.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("reports")})
	c := <-calls
	fmt.Printf("stranger: unknown key %v, forwarded %v, SDK error mentions InvalidAccessKeyId: %v\n",
		c.Err.Kind == awsproxy.KindUnknownAccessKey, c.Forwarded, strings.Contains(fmt.Sprint(err), "InvalidAccessKeyId"))

	// Output:
	// s3:PutObject by report-agent: 200, forwarded true
	// s3:GetObject by report-agent: 200, forwarded true
	// revenue up
	// stranger: unknown key true, forwarded false, SDK error mentions InvalidAccessKeyId: true
}
