package awstools

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type noArgs struct{}

type bucketArgs struct {
	Bucket string `json:"bucket" jsonschema:"the bucket name"`
}

type listObjectsArgs struct {
	Bucket string `json:"bucket" jsonschema:"the bucket name"`
	Prefix string `json:"prefix,omitempty" jsonschema:"only keys that start with this prefix"`
}

type objectArgs struct {
	Bucket string `json:"bucket" jsonschema:"the bucket name"`
	Key    string `json:"key" jsonschema:"the object key"`
}

type putObjectArgs struct {
	Bucket string `json:"bucket" jsonschema:"the bucket name"`
	Key    string `json:"key" jsonschema:"the object key"`
	Body   string `json:"body" jsonschema:"the object's content (text)"`
}

type secretArgs struct {
	SecretID string `json:"secret_id" jsonschema:"the secret's name or ARN"`
}

type userArgs struct {
	UserName string `json:"user_name" jsonschema:"the IAM user name"`
}

type instancesArgs struct {
	InstanceIDs []string `json:"instance_ids,omitempty" jsonschema:"instance ids; all instances when empty"`
}

func (s *Server) addTools(srv *mcp.Server) {
	awsTool(s, srv, "list_buckets", "List the S3 buckets.", func(ctx context.Context, _ noArgs) (string, error) {
		res, err := s.s3.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			return "", err
		}
		names := []string{}
		for _, b := range res.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
		return jsonText(map[string]any{"buckets": names})
	})
	awsTool(s, srv, "list_objects", "List the objects of an S3 bucket (first 1000).", func(ctx context.Context, in listObjectsArgs) (string, error) {
		in2 := &s3.ListObjectsV2Input{Bucket: aws.String(in.Bucket)}
		if in.Prefix != "" {
			in2.Prefix = aws.String(in.Prefix)
		}
		res, err := s.s3.ListObjectsV2(ctx, in2)
		if err != nil {
			return "", err
		}
		type obj struct {
			Key  string `json:"key"`
			Size int64  `json:"size"`
		}
		objs := []obj{}
		for _, o := range res.Contents {
			objs = append(objs, obj{aws.ToString(o.Key), aws.ToInt64(o.Size)})
		}
		return jsonText(map[string]any{"bucket": in.Bucket, "objects": objs, "truncated": aws.ToBool(res.IsTruncated)})
	})
	awsTool(s, srv, "get_object", "Read an S3 object (text, bounded).", func(ctx context.Context, in objectArgs) (string, error) {
		res, err := s.s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(in.Bucket), Key: aws.String(in.Key)})
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, more, err := readBounded(res.Body, s.cfg.MaxObjectBytes)
		if err != nil {
			return "", err
		}
		if !utf8.Valid(b) {
			return fmt.Sprintf("s3://%s/%s is binary (%d bytes); not shown", in.Bucket, in.Key, aws.ToInt64(res.ContentLength)), nil
		}
		if more {
			return string(b) + fmt.Sprintf("\n[truncated at %d bytes]", s.cfg.MaxObjectBytes), nil
		}
		return string(b), nil
	})
	awsTool(s, srv, "put_object", "Write an S3 object.", func(ctx context.Context, in putObjectArgs) (string, error) {
		_, err := s.s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(in.Bucket), Key: aws.String(in.Key), Body: strings.NewReader(in.Body)})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("wrote s3://%s/%s (%d bytes)", in.Bucket, in.Key, len(in.Body)), nil
	})
	awsTool(s, srv, "delete_object", "Delete an S3 object.", func(ctx context.Context, in objectArgs) (string, error) {
		if _, err := s.s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(in.Bucket), Key: aws.String(in.Key)}); err != nil {
			return "", err
		}
		return fmt.Sprintf("deleted s3://%s/%s", in.Bucket, in.Key), nil
	})
	awsTool(s, srv, "delete_bucket", "Delete an empty S3 bucket.", func(ctx context.Context, in bucketArgs) (string, error) {
		if _, err := s.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(in.Bucket)}); err != nil {
			return "", err
		}
		return fmt.Sprintf("deleted bucket %s", in.Bucket), nil
	})
	awsTool(s, srv, "get_secret", "Read a Secrets Manager secret (the gateway masks secret values).", func(ctx context.Context, in secretArgs) (string, error) {
		res, err := s.secrets.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(in.SecretID)})
		if err != nil {
			return "", err
		}
		return jsonText(map[string]any{"name": aws.ToString(res.Name), "arn": aws.ToString(res.ARN), "secret_string": aws.ToString(res.SecretString), "version_id": aws.ToString(res.VersionId)})
	})
	awsTool(s, srv, "describe_instances", "Describe EC2 instances.", func(ctx context.Context, in instancesArgs) (string, error) {
		res, err := s.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: in.InstanceIDs})
		if err != nil {
			return "", err
		}
		type inst struct {
			ID    string `json:"instance_id"`
			Type  string `json:"instance_type"`
			State string `json:"state"`
		}
		list := []inst{}
		for _, r := range res.Reservations {
			for _, i := range r.Instances {
				st := ""
				if i.State != nil {
					st = string(i.State.Name)
				}
				list = append(list, inst{aws.ToString(i.InstanceId), string(i.InstanceType), st})
			}
		}
		return jsonText(map[string]any{"instances": list})
	})
	awsTool(s, srv, "create_iam_user", "Create an IAM user.", func(ctx context.Context, in userArgs) (string, error) {
		res, err := s.iam.CreateUser(ctx, &iam.CreateUserInput{UserName: aws.String(in.UserName)})
		if err != nil {
			return "", err
		}
		arn := in.UserName
		if res.User != nil {
			arn = aws.ToString(res.User.Arn)
		}
		return fmt.Sprintf("created IAM user %s", arn), nil
	})
	mcp.AddTool(srv, &mcp.Tool{
		Name: "wait_for_approval",
		Description: "Wait (bounded) for a human to approve a call that a previous tool result reported as approval_pending, " +
			"then make that identical call and return its result.",
	}, s.waitForApproval)
}
