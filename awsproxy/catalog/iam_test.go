package catalog

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// loadIAMActions reads testdata/iam-actions.txt.
func loadIAMActions(t testing.TB) map[string]bool {
	t.Helper()
	f, err := os.Open("testdata/iam-actions.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 10000 {
		t.Fatalf("only %d IAM actions in testdata", len(out))
	}
	return out
}

// iamExemptServices are services whose operations IAM does not authorise
// (or no longer lists): their generated actions are not checked.
var iamExemptServices = map[string]string{
	"connectparticipant":      "authorised by participant tokens, not IAM",
	"sso":                     "the portal API is authorised by an IAM Identity Center access token",
	"finspace-data":           "authorised by FinSpace permission groups (only GetProgrammaticAccessCredentials is an IAM action)",
	"applicationcostprofiler": "retired service; no longer in the IAM reference",
	"elastic-inference":       "retired service; no longer in the IAM reference",
	"iot1click-devices":       "retired service; no longer in the IAM reference",
	"iot1click-projects":      "retired service; no longer in the IAM reference",
	"iotthingsgraph":          "retired service; no longer in the IAM reference",
	"cloudhsm":                "CloudHSM Classic, retired; the cloudhsm prefix now belongs to cloudhsmv2",
}

// iamExemptOperations are single operations without a verified IAM
// action: unauthenticated calls and names the reference does not list.
var iamExemptOperations = map[string]string{
	"sso-oidc.CreateToken":                      "unauthenticated OAuth call",
	"sso-oidc.RegisterClient":                   "unauthenticated OAuth call",
	"sso-oidc.StartDeviceAuthorization":         "unauthenticated OAuth call",
	"comprehendmedical.DetectEntities":          "deprecated operation, dropped from the IAM reference (DetectEntitiesV2 replaces it)",
	"cloudtrail.ListInsightsMetricData":         "not listed in the IAM reference",
	"lakeformation.AssumeDecoratedRoleWithSAML": "not listed in the IAM reference",
	"models.lex.v2.ListUtteranceAnalyticsData":  "not listed in the IAM reference",
	"models.lex.v2.ListUtteranceMetrics":        "not listed in the IAM reference",
}

func TestIAMActionsExist(t *testing.T) {
	known := loadIAMActions(t)
	c := Default()
	checked, exempt := 0, 0
	for _, s := range c.Services() {
		if _, ok := iamExemptServices[s.Name]; ok {
			exempt += len(s.Operations())
			continue
		}
		for _, op := range s.Operations() {
			if _, ok := iamExemptOperations[s.Name+"."+op.Name]; ok {
				exempt++
				continue
			}
			checked++
			if !known[op.Action] {
				t.Errorf("%s.%s: action %q is not an IAM action", s.Name, op.Name, op.Action)
			}
		}
	}
	t.Logf("%d generated actions checked against the IAM reference, %d exempt", checked, exempt)
}
