package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCheckRefusesBadMaskPath: a mask path that does not parse stops
// `gateway -check` (and start-up) with the file:line:column of the
// mistake, instead of failing every matching call once it has run.
func TestCheckRefusesBadMaskPath(t *testing.T) {
	e := newEnv(t)
	bad := e.write("bad-mask.yaml", `rules:
  - name: scratch-writes-masked
    effect: allow
    when: request.action == "s3:PutObject"
    mask:
      - {path: "a..b[", strategy: redact}
`)
	cfg := strings.Replace(e.config(), e.policy, bad, 1)
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"-config", e.write("bad.yaml", cfg), "-check"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "bad-mask.yaml:6:19") || !strings.Contains(err.Error(), `bad mask path "a..b[": empty segment`) {
		t.Fatalf("-check = %v (stdout %q), want the path refused at bad-mask.yaml:6:19", err, out.String())
	}
}
