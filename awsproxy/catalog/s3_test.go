package catalog

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// s3Actions is the IAM action of every S3 operation, written from the IAM
// service authorization reference for Amazon S3 (not from iam.go).
var s3Actions = map[string]string{
	"AbortMultipartUpload":                        "s3:AbortMultipartUpload",
	"CompleteMultipartUpload":                     "s3:PutObject",
	"CopyObject":                                  "s3:PutObject",
	"CreateBucket":                                "s3:CreateBucket",
	"CreateMultipartUpload":                       "s3:PutObject",
	"CreateSession":                               "s3express:CreateSession",
	"DeleteBucket":                                "s3:DeleteBucket",
	"DeleteBucketAnalyticsConfiguration":          "s3:PutAnalyticsConfiguration",
	"DeleteBucketCors":                            "s3:PutBucketCORS",
	"DeleteBucketEncryption":                      "s3:PutEncryptionConfiguration",
	"DeleteBucketIntelligentTieringConfiguration": "s3:PutIntelligentTieringConfiguration",
	"DeleteBucketInventoryConfiguration":          "s3:PutInventoryConfiguration",
	"DeleteBucketLifecycle":                       "s3:PutLifecycleConfiguration",
	"DeleteBucketMetricsConfiguration":            "s3:PutMetricsConfiguration",
	"DeleteBucketOwnershipControls":               "s3:PutBucketOwnershipControls",
	"DeleteBucketPolicy":                          "s3:DeleteBucketPolicy",
	"DeleteBucketReplication":                     "s3:PutReplicationConfiguration",
	"DeleteBucketTagging":                         "s3:PutBucketTagging",
	"DeleteBucketWebsite":                         "s3:DeleteBucketWebsite",
	"DeleteObject":                                "s3:DeleteObject",
	"DeleteObjectTagging":                         "s3:DeleteObjectTagging",
	"DeleteObjects":                               "s3:DeleteObject",
	"DeletePublicAccessBlock":                     "s3:PutBucketPublicAccessBlock",
	"GetBucketAccelerateConfiguration":            "s3:GetAccelerateConfiguration",
	"GetBucketAcl":                                "s3:GetBucketAcl",
	"GetBucketAnalyticsConfiguration":             "s3:GetAnalyticsConfiguration",
	"GetBucketCors":                               "s3:GetBucketCORS",
	"GetBucketEncryption":                         "s3:GetEncryptionConfiguration",
	"GetBucketIntelligentTieringConfiguration":    "s3:GetIntelligentTieringConfiguration",
	"GetBucketInventoryConfiguration":             "s3:GetInventoryConfiguration",
	"GetBucketLifecycle":                          "s3:GetLifecycleConfiguration",
	"GetBucketLifecycleConfiguration":             "s3:GetLifecycleConfiguration",
	"GetBucketLocation":                           "s3:GetBucketLocation",
	"GetBucketLogging":                            "s3:GetBucketLogging",
	"GetBucketMetricsConfiguration":               "s3:GetMetricsConfiguration",
	"GetBucketNotification":                       "s3:GetBucketNotification",
	"GetBucketNotificationConfiguration":          "s3:GetBucketNotification",
	"GetBucketOwnershipControls":                  "s3:GetBucketOwnershipControls",
	"GetBucketPolicy":                             "s3:GetBucketPolicy",
	"GetBucketPolicyStatus":                       "s3:GetBucketPolicyStatus",
	"GetBucketReplication":                        "s3:GetReplicationConfiguration",
	"GetBucketRequestPayment":                     "s3:GetBucketRequestPayment",
	"GetBucketTagging":                            "s3:GetBucketTagging",
	"GetBucketVersioning":                         "s3:GetBucketVersioning",
	"GetBucketWebsite":                            "s3:GetBucketWebsite",
	"GetObject":                                   "s3:GetObject",
	"GetObjectAcl":                                "s3:GetObjectAcl",
	"GetObjectAttributes":                         "s3:GetObjectAttributes",
	"GetObjectLegalHold":                          "s3:GetObjectLegalHold",
	"GetObjectLockConfiguration":                  "s3:GetBucketObjectLockConfiguration",
	"GetObjectRetention":                          "s3:GetObjectRetention",
	"GetObjectTagging":                            "s3:GetObjectTagging",
	"GetObjectTorrent":                            "s3:GetObjectTorrent",
	"GetPublicAccessBlock":                        "s3:GetBucketPublicAccessBlock",
	"HeadBucket":                                  "s3:ListBucket",
	"HeadObject":                                  "s3:GetObject",
	"ListBucketAnalyticsConfigurations":           "s3:GetAnalyticsConfiguration",
	"ListBucketIntelligentTieringConfigurations":  "s3:GetIntelligentTieringConfiguration",
	"ListBucketInventoryConfigurations":           "s3:GetInventoryConfiguration",
	"ListBucketMetricsConfigurations":             "s3:GetMetricsConfiguration",
	"ListBuckets":                                 "s3:ListAllMyBuckets",
	"ListDirectoryBuckets":                        "s3express:ListAllMyDirectoryBuckets",
	"ListMultipartUploads":                        "s3:ListBucketMultipartUploads",
	"ListObjectVersions":                          "s3:ListBucketVersions",
	"ListObjects":                                 "s3:ListBucket",
	"ListObjectsV2":                               "s3:ListBucket",
	"ListParts":                                   "s3:ListMultipartUploadParts",
	"PutBucketAccelerateConfiguration":            "s3:PutAccelerateConfiguration",
	"PutBucketAcl":                                "s3:PutBucketAcl",
	"PutBucketAnalyticsConfiguration":             "s3:PutAnalyticsConfiguration",
	"PutBucketCors":                               "s3:PutBucketCORS",
	"PutBucketEncryption":                         "s3:PutEncryptionConfiguration",
	"PutBucketIntelligentTieringConfiguration":    "s3:PutIntelligentTieringConfiguration",
	"PutBucketInventoryConfiguration":             "s3:PutInventoryConfiguration",
	"PutBucketLifecycle":                          "s3:PutLifecycleConfiguration",
	"PutBucketLifecycleConfiguration":             "s3:PutLifecycleConfiguration",
	"PutBucketLogging":                            "s3:PutBucketLogging",
	"PutBucketMetricsConfiguration":               "s3:PutMetricsConfiguration",
	"PutBucketNotification":                       "s3:PutBucketNotification",
	"PutBucketNotificationConfiguration":          "s3:PutBucketNotification",
	"PutBucketOwnershipControls":                  "s3:PutBucketOwnershipControls",
	"PutBucketPolicy":                             "s3:PutBucketPolicy",
	"PutBucketReplication":                        "s3:PutReplicationConfiguration",
	"PutBucketRequestPayment":                     "s3:PutBucketRequestPayment",
	"PutBucketTagging":                            "s3:PutBucketTagging",
	"PutBucketVersioning":                         "s3:PutBucketVersioning",
	"PutBucketWebsite":                            "s3:PutBucketWebsite",
	"PutObject":                                   "s3:PutObject",
	"PutObjectAcl":                                "s3:PutObjectAcl",
	"PutObjectLegalHold":                          "s3:PutObjectLegalHold",
	"PutObjectLockConfiguration":                  "s3:PutBucketObjectLockConfiguration",
	"PutObjectRetention":                          "s3:PutObjectRetention",
	"PutObjectTagging":                            "s3:PutObjectTagging",
	"PutPublicAccessBlock":                        "s3:PutBucketPublicAccessBlock",
	"RestoreObject":                               "s3:RestoreObject",
	"SelectObjectContent":                         "s3:GetObject",
	"UploadPart":                                  "s3:PutObject",
	"UploadPartCopy":                              "s3:PutObject",
	"WriteGetObjectResponse":                      "s3-object-lambda:WriteGetObjectResponse",
}

// s3Twins are S3 operations whose requests are identical on the wire to
// another's: the catalog answers with the one named here (the deprecated
// form loses; ListDirectoryBuckets differs only by endpoint and x-id).
var s3Twins = map[string]string{
	"GetBucketLifecycle":    "GetBucketLifecycleConfiguration",
	"GetBucketNotification": "GetBucketNotificationConfiguration",
	"PutBucketLifecycle":    "PutBucketLifecycleConfiguration",
	"PutBucketNotification": "PutBucketNotificationConfiguration",
	"ListDirectoryBuckets":  "ListBuckets",
}

// TestEveryS3Operation sends the request of each S3 operation in the
// model, path-style and virtual-hosted, without the SDK's x-id hint (as
// older SDKs and the CLI send them) and with it.
func TestEveryS3Operation(t *testing.T) {
	c := Default()
	s3 := c.Service("s3")
	ops := s3.Operations()
	if len(ops) != len(s3Actions) {
		t.Errorf("model has %d S3 operations, the test knows %d", len(ops), len(s3Actions))
	}
	iam := loadIAMActions(t)
	for _, op := range ops {
		want, ok := s3Actions[op.Name]
		if !ok {
			t.Errorf("%s: no expected action", op.Name)
			continue
		}
		if !iam[want] {
			t.Errorf("%s: expected action %s is not in the IAM reference", op.Name, want)
		}
		if op.Action != want {
			t.Errorf("%s: Action = %s, want %s", op.Name, op.Action, want)
		}
		wantOp := op.Name
		if tw := s3Twins[op.Name]; tw != "" {
			wantOp = tw
		}
		bucketOp := !strings.Contains(op.RequestURI, "{Key+}")
		for _, mode := range []string{"path", "virtual", "x-id"} {
			r := synth(op)
			r.RawPath = strings.Replace(r.RawPath, "lbl-bucket", "my-bucket", 1)
			r.RawPath = strings.Replace(r.RawPath, "lbl-key/sub", "dir/obj.txt", 1)
			wantOp := wantOp
			switch mode {
			case "virtual":
				if strings.HasPrefix(r.RawPath, "/my-bucket") {
					r.Bucket = "my-bucket"
					r.RawPath = strings.TrimPrefix(r.RawPath, "/my-bucket")
				}
			case "x-id":
				// The SDK's hint settles wire-identical twins.
				r.Query.Set("x-id", op.Name)
				wantOp = op.Name
			}
			got := c.Classify(r)
			if got.Service != s3 || got.Operation != wantOp {
				t.Errorf("%s (%s, %s %s?%s): classified as %s", op.Name, mode, r.Method, r.RawPath, r.Query.Encode(), got.Operation)
				continue
			}
			if got.Action != s3Actions[wantOp] {
				t.Errorf("%s (%s): action %s, want %s", op.Name, mode, got.Action, s3Actions[wantOp])
			}
			var wantRes []string
			switch {
			case !strings.Contains(op.RequestURI, "{Bucket}"):
			case bucketOp:
				wantRes = []string{"arn:aws:s3:::my-bucket"}
			default:
				wantRes = []string{"arn:aws:s3:::my-bucket/dir/obj.txt"}
			}
			if !equalStrings(got.Resources, wantRes) {
				t.Errorf("%s (%s): resources %q, want %q", op.Name, mode, got.Resources, wantRes)
			}
		}
	}
}

func TestS3VersionedActions(t *testing.T) {
	c := Default()
	tests := []struct {
		name, method, path string
		query              url.Values
		want               string
	}{
		{"GetObject", "GET", "/b/k", url.Values{"versionId": {"v1"}}, "s3:GetObjectVersion"},
		{"HeadObject", "HEAD", "/b/k", url.Values{"versionId": {"v1"}}, "s3:GetObjectVersion"},
		{"DeleteObject", "DELETE", "/b/k", url.Values{"versionId": {"v1"}}, "s3:DeleteObjectVersion"},
		{"GetObjectTagging", "GET", "/b/k", url.Values{"tagging": {""}, "versionId": {"v1"}}, "s3:GetObjectVersionTagging"},
		{"PutObjectAcl", "PUT", "/b/k", url.Values{"acl": {""}, "versionId": {"v1"}}, "s3:PutObjectVersionAcl"},
		{"unversioned", "GET", "/b/k", url.Values{}, "s3:GetObject"},
		{"bucket op ignores versionId", "GET", "/b", url.Values{"versioning": {""}, "versionId": {"v1"}}, "s3:GetBucketVersioning"},
	}
	iam := loadIAMActions(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := c.Classify(&Request{SigningName: "s3", Region: "us-east-1", Method: tt.method, RawPath: tt.path, Query: tt.query, Header: http.Header{}})
			if got.Action != tt.want {
				t.Errorf("Action = %s, want %s", got.Action, tt.want)
			}
			if !iam[got.Action] {
				t.Errorf("%s is not an IAM action", got.Action)
			}
		})
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
