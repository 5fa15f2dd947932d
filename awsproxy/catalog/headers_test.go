package catalog

import "testing"

func TestInputHeaders(t *testing.T) {
	c := Default()
	tests := []struct {
		service, header string
		in, sensitive   bool
	}{
		{"s3", "x-amz-bypass-governance-retention", true, false},
		{"s3", "X-Amz-Bypass-Governance-Retention", true, false},
		{"s3", "x-amz-acl", true, false},
		{"s3", "x-amz-copy-source", true, false},
		{"s3", "x-amz-mfa", true, false},
		{"s3", "x-amz-object-lock-mode", true, false},
		{"s3", "x-amz-object-lock-retain-until-date", true, false},
		{"s3", "x-amz-server-side-encryption", true, false},
		{"s3", "x-amz-server-side-encryption-customer-key", true, true},
		{"s3", "x-amz-meta-owner", true, false},
		{"s3", "Content-Type", true, false},
		{"s3", "Cache-Control", true, false},
		{"s3", "If-Match", true, false},
		{"s3", "Range", true, false},
		{"s3", "Authorization", false, false},
		{"s3", "User-Agent", false, false},
		{"s3", "Amz-Sdk-Invocation-Id", false, false},
		{"s3", "X-Amz-Date", false, false},
		{"s3", "x-amz-metadata", false, false}, // not the x-amz-meta- prefix
		{"lambda", "X-Amz-Invocation-Type", true, false},
		{"lambda", "X-Amz-Client-Context", true, false},
		{"dynamodb", "x-amz-acl", false, false},
	}
	for _, tt := range tests {
		svc := c.Service(tt.service)
		if svc == nil {
			t.Fatalf("no service %s", tt.service)
		}
		in, sens := svc.InputHeaders().Lookup(tt.header)
		if in != tt.in || sens != tt.sensitive {
			t.Errorf("%s %s: in=%v sensitive=%v, want %v %v", tt.service, tt.header, in, sens, tt.in, tt.sensitive)
		}
	}
	if n := c.Service("dynamodb").InputHeaders().Len(); n != 0 {
		t.Errorf("dynamodb reads %d headers as input, want none", n)
	}
}
