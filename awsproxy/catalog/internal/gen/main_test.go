package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeModel puts an api-2.json under dir/models/apis/<svc>/<version>.
func writeModel(t *testing.T, dir, svc, version, body string) {
	t.Helper()
	p := filepath.Join(dir, "models", "apis", svc, version)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "api-2.json"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

const restModel = `{
 "metadata": {"apiVersion": "2021-01-01", "endpointPrefix": "thing", "protocol": "rest-json", "signingName": "things", "jsonVersion": "1.1"},
 "operations": {
  "PutThing": {"http": {"method": "put", "requestUri": "/things/{Name}?tagging"}, "input": {"shape": "PutThingRequest"}, "deprecated": true},
  "GetThing": {"http": {"method": "GET", "requestUri": "/things/{Name+}"}, "input": {"shape": "GetThingRequest"}, "authtype": "none"}
 },
 "shapes": {
  "PutThingRequest": {"type": "structure", "required": ["Name"], "payload": "Body", "members": {
   "Name": {"shape": "S", "location": "uri", "locationName": "Name"},
   "Token": {"shape": "Secret", "location": "header", "locationName": "x-thing-token"},
   "Body": {"shape": "B"},
   "Meta": {"shape": "M", "location": "headers", "locationName": "x-meta-"}
  }},
  "GetThingRequest": {"type": "structure", "members": {
   "Name": {"shape": "S", "location": "uri", "locationName": "Name"},
   "Ids": {"shape": "L", "location": "querystring", "locationName": "id"}
  }},
  "S": {"type": "string"}, "Secret": {"type": "string", "sensitive": true}, "B": {"type": "blob"},
  "M": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "S"}},
  "L": {"type": "list", "member": {"shape": "S"}}
 }
}`

const ec2Model = `{
 "metadata": {"apiVersion": "2016-11-15", "endpointPrefix": "ec2", "protocol": "ec2"},
 "operations": {"DescribeThings": {"http": {"method": "POST", "requestUri": "/"}, "input": {"shape": "R"}}},
 "shapes": {
  "R": {"type": "structure", "members": {
   "DryRun": {"shape": "Bool", "locationName": "dryRun"},
   "ThingIds": {"shape": "L", "locationName": "ThingId"},
   "Filters": {"shape": "FL", "locationName": "Filter"},
   "Plain": {"shape": "S", "queryName": "PlainQuery", "locationName": "plain"}
  }},
  "Bool": {"type": "boolean"}, "S": {"type": "string"},
  "L": {"type": "list", "member": {"shape": "S"}},
  "FL": {"type": "list", "member": {"shape": "F"}},
  "F": {"type": "structure", "members": {}}
 }
}`

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "thing", "2019-01-01", `{"metadata": {"protocol": "bogus"}}`) // older version: ignored
	writeModel(t, dir, "thing", "2021-01-01", restModel)
	writeModel(t, dir, "ec2", "2016-11-15", ec2Model)
	text, err := build(filepath.Join(dir, "models", "apis"))
	if err != nil {
		t.Fatal(err)
	}
	want := "gatehouse-catalog 1\n" +
		"source github.com/aws/aws-sdk-go v1.55.8 " + sourceSum + " models/apis/*/*/api-2.json\n" +
		"counts services=2 operations=3\n" +
		"S\tec2\t2016-11-15\tec2\tec2\tec2\t\t\t\t\n" +
		"O\tDescribeThings\tPOST\t/\t\t\tbsDryRun bLFilters=Filter bsPlain=PlainQuery blThingIds=ThingId\n" +
		"S\tthing\t2021-01-01\trest-json\tthing\tthings\t\t1.1\t\t\n" +
		"O\tGetThing\tGET\t/things/{Name+}\t\tn\tqlIds=id usName\n" +
		"O\tPutThing\tPUT\t/things/{Name}?tagging\t\td\tpBBody HmMeta=x-meta- us!Name hs*Token=x-thing-token\n"
	if string(text) != want {
		t.Errorf("got:\n%s\nwant:\n%s", text, want)
	}
	again, err := build(filepath.Join(dir, "models", "apis"))
	if err != nil || !bytes.Equal(text, again) {
		t.Errorf("second build differs (%v)", err)
	}
}

// nestedModel has secrets at several depths, reached through structures,
// lists, map keys and values and a recursive shape, and ordinary
// structures (one recursive) that hold none.
const nestedModel = `{
 "metadata": {"apiVersion": "2015-03-31", "endpointPrefix": "fn", "protocol": "rest-json"},
 "operations": {"Update": {"http": {"method": "PUT", "requestUri": "/fn"}, "input": {"shape": "Req"}}},
 "shapes": {
  "Req": {"type": "structure", "members": {
   "Environment": {"shape": "Environment"},
   "Vpc": {"shape": "Vpc"},
   "Tree": {"shape": "Node"},
   "Deep": {"shape": "Outer"},
   "Loop": {"shape": "LoopA"},
   "Named": {"shape": "KeyMap"},
   "Flagged": {"shape": "FlaggedList"},
   "Union": {"shape": "Choice"},
   "Plain": {"shape": "S"}
  }},
  "Environment": {"type": "structure", "members": {"Variables": {"shape": "Vars"}}},
  "Vars": {"type": "map", "key": {"shape": "S"}, "value": {"shape": "Val"}, "sensitive": true},
  "Val": {"type": "string"},
  "Vpc": {"type": "structure", "members": {"SubnetIds": {"shape": "SL"}, "Inner": {"shape": "Vpc"}}},
  "SL": {"type": "list", "member": {"shape": "S"}},
  "Node": {"type": "structure", "members": {"Children": {"shape": "NodeList"}, "Name": {"shape": "S"}}},
  "NodeList": {"type": "list", "member": {"shape": "Node"}},
  "Outer": {"type": "structure", "members": {"Mid": {"shape": "Mid"}}},
  "Mid": {"type": "structure", "members": {"Items": {"shape": "ItemList"}}},
  "ItemList": {"type": "list", "member": {"shape": "Item"}},
  "Item": {"type": "structure", "members": {"Token": {"shape": "S", "sensitive": true}}},
  "LoopA": {"type": "structure", "members": {"B": {"shape": "LoopB"}}},
  "LoopB": {"type": "structure", "members": {"A": {"shape": "LoopA"}, "Key": {"shape": "Secret"}}},
  "Secret": {"type": "string", "sensitive": true},
  "KeyMap": {"type": "map", "key": {"shape": "Secret"}, "value": {"shape": "S"}},
  "FlaggedList": {"type": "list", "member": {"shape": "S", "sensitive": true}},
  "Choice": {"type": "structure", "union": true, "members": {"A": {"shape": "S"}, "B": {"shape": "Item"}}},
  "S": {"type": "string"}
 }
}`

// TestSensitiveReachable: a member is sensitive when a secret is
// reachable from it at any depth, through recursion too, and not
// otherwise.
func TestSensitiveReachable(t *testing.T) {
	dir := t.TempDir()
	writeModel(t, dir, "fn", "2015-03-31", nestedModel)
	text, err := build(filepath.Join(dir, "models", "apis"))
	if err != nil {
		t.Fatal(err)
	}
	want := "O\tUpdate\tPUT\t/fn\t\t\tbo*Deep bo*Environment bl*Flagged bo*Loop bm*Named bsPlain boTree bo*Union boVpc\n"
	if !strings.HasSuffix(string(text), want) {
		t.Errorf("got:\n%s\nwant the operation line:\n%s", text, want)
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct{ name, model string }{
		{"unknown protocol", `{"metadata": {"endpointPrefix": "x", "protocol": "smoke"}, "operations": {}}`},
		{"partial label", `{"metadata": {"endpointPrefix": "x", "protocol": "rest-json"}, "operations": {"A": {"http": {"method": "GET", "requestUri": "/a-{B}"}}}}`},
		{"relative URI", `{"metadata": {"endpointPrefix": "x", "protocol": "rest-json"}, "operations": {"A": {"http": {"method": "GET", "requestUri": "a"}}}}`},
		{"tab in a field", `{"metadata": {"endpointPrefix": "x\ty", "protocol": "json"}, "operations": {}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeModel(t, dir, "x", "2020-01-01", tt.model)
			if _, err := build(filepath.Join(dir, "models", "apis")); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestTableUpToDate regenerates the table from the module cache and
// compares it with the committed one: the same text, and the same bytes
// from two runs. (The compressed bytes are compared as text so that a
// change in Go's compressor does not fail the test.) It needs the module
// (go mod download fetches it through the module proxy) and skips without
// it.
func TestTableUpToDate(t *testing.T) {
	if testing.Short() {
		t.Skip("regenerating the table reads 100 MB of models")
	}
	dir, err := moduleDir()
	if err != nil {
		t.Skipf("source module unavailable: %v", err)
	}
	got, err := generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	again, err := generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, again) {
		t.Error("two runs of the generator differ")
	}
	want, err := os.ReadFile("../../table.gz")
	if err != nil {
		t.Fatal(err)
	}
	gotText, comment := gunzip(t, got)
	wantText, _ := gunzip(t, want)
	if !bytes.Equal(gotText, wantText) {
		t.Fatal("table.gz is stale: run go generate ./awsproxy/catalog")
	}
	if !strings.Contains(comment, sourceModule+"@"+sourceVersion) {
		t.Errorf("gzip comment %q does not name the source", comment)
	}
}

func gunzip(t *testing.T, b []byte) ([]byte, string) {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	text, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return text, zr.Comment
}
