package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestQuickstart(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out, false); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"client:  1 object(s): reports/hello.txt",
		`client:  read "quarterly numbers, signed by the gateway"`,
		"refused with InvalidAccessKeyId (upstream requests during the call: 0)",
		"refused with SignatureDoesNotMatch (upstream requests during the call: 0)",
		"by https://idp.example#mcp-agent-7",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q\n%s", want, got)
		}
	}
}
