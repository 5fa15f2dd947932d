// Command gen writes the operation table that package catalog embeds.
//
// It reads models/apis/<service>/<version>/api-2.json from the
// github.com/aws/aws-sdk-go module at a pinned version, located in the Go
// module cache with `go mod download -json` (which fetches it through the
// module proxy when it is missing), and writes a compact, line-oriented
// table, gzip-compressed. The source module is only read as data: nothing
// imports it, so it is no dependency of the library.
//
// Run it from the catalog directory (go generate does):
//
//	go run ./internal/gen -o table.gz
//
// The output depends only on the module's content: services and
// operations are sorted, members are sorted by name, the gzip header
// carries no time stamp. Two runs yield identical bytes.
//
// # Table format
//
// The decompressed table is UTF-8 text, one record a line, fields
// separated by tabs. It starts with three header lines:
//
//	gatehouse-catalog 1
//	source github.com/aws/aws-sdk-go v1.55.8 h1:... models/apis/*/*/api-2.json
//	counts services=384 operations=15554
//
// then, for each service in name order, one S line followed by its O
// lines in operation-name order:
//
//	S  name apiVersion protocol endpointPrefix signingName targetPrefix jsonVersion globalEndpoint flags
//	O  name method requestUri hostPrefix flags members
//
// Service flags: q = awsQueryCompatible (a JSON service that also accepts
// the query protocol). Operation flags: d = deprecated, n = no SigV4 auth,
// u = unsigned payload. members is a space-separated list of input members,
// each encoded as <loc><kind><flags><Name>[=<wire>]:
//
//	loc   u uri label, q query string, h header, H header prefix (map),
//	      b body, p body payload (the member is the whole body)
//	kind  s scalar, l list of scalars, L list of structures, m map,
//	      o structure, B blob
//	flags ! required, * sensitive: the member, its shape or any shape
//	      reachable from it (members, list members, map keys and
//	      values, at any depth) is flagged sensitive in the model
//	wire  the name on the wire when it differs from Name: the URI label,
//	      query key, header name, JSON key or form key (query and ec2
//	      protocols, EC2 capitalisation applied)
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// The source module. Changing the version is a deliberate act: update the
// sum too (go mod download -json prints it).
const (
	sourceModule  = "github.com/aws/aws-sdk-go"
	sourceVersion = "v1.55.8"
	sourceSum     = "h1:JRmEUbU52aJQZ2AjX4q4Wu7t4uZjOu71uyNmaWlUkJQ="
)

func main() {
	out := flag.String("o", "table.gz", "output file")
	dir := flag.String("dir", "", "use this module directory instead of `go mod download` (tests)")
	flag.Parse()
	if err := run(*out, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out, dir string) error {
	if dir == "" {
		var err error
		if dir, err = moduleDir(); err != nil {
			return err
		}
	}
	data, err := generate(dir)
	if err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// generate returns the compressed table for the module in dir.
func generate(dir string) ([]byte, error) {
	text, err := build(filepath.Join(dir, "models", "apis"))
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.Comment = "gatehouse operation catalog from " + sourceModule + "@" + sourceVersion
	if _, err := zw.Write(text); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// moduleDir finds (and if needed downloads) the source module in the
// module cache. It runs in a temporary directory so that no go.mod is read
// or changed.
func moduleDir() (string, error) {
	tmp, err := os.MkdirTemp("", "catalog-gen")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	goBin := "go"
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			goBin = p
		}
	}
	cmd := exec.Command(goBin, "mod", "download", "-json", sourceModule+"@"+sourceVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %v: %s", sourceModule, sourceVersion, err, stderr.String())
	}
	var info struct{ Dir, Sum, Error string }
	if err := json.Unmarshal(raw, &info); err != nil {
		return "", fmt.Errorf("go mod download output: %v", err)
	}
	switch {
	case info.Error != "":
		return "", errors.New(info.Error)
	case info.Sum != sourceSum:
		return "", fmt.Errorf("%s@%s has sum %s, want %s", sourceModule, sourceVersion, info.Sum, sourceSum)
	case info.Dir == "":
		return "", errors.New("go mod download reported no directory")
	}
	return info.Dir, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

type model struct {
	Metadata struct {
		APIVersion         string          `json:"apiVersion"`
		EndpointPrefix     string          `json:"endpointPrefix"`
		SigningName        string          `json:"signingName"`
		Protocol           string          `json:"protocol"`
		JSONVersion        string          `json:"jsonVersion"`
		TargetPrefix       string          `json:"targetPrefix"`
		GlobalEndpoint     string          `json:"globalEndpoint"`
		AWSQueryCompatible json.RawMessage `json:"awsQueryCompatible"`
	} `json:"metadata"`
	Operations map[string]operation `json:"operations"`
	Shapes     map[string]shape     `json:"shapes"`

	secrets map[string]bool // secretShapes, computed once
}

func (m *model) secret() map[string]bool {
	if m.secrets == nil {
		m.secrets = secretShapes(m)
	}
	return m.secrets
}

type operation struct {
	HTTP struct {
		Method     string `json:"method"`
		RequestURI string `json:"requestUri"`
	} `json:"http"`
	Input      *ref     `json:"input"`
	Deprecated bool     `json:"deprecated"`
	AuthType   string   `json:"authtype"`
	Auth       []string `json:"auth"`
	Endpoint   *struct {
		HostPrefix string `json:"hostPrefix"`
	} `json:"endpoint"`
}

type ref struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
	QueryName    string `json:"queryName"`
	Sensitive    bool   `json:"sensitive"`
	Streaming    bool   `json:"streaming"`
}

type shape struct {
	Type      string         `json:"type"`
	Members   map[string]ref `json:"members"`
	Member    *ref           `json:"member"`
	Key       *ref           `json:"key"`
	Value     *ref           `json:"value"`
	Required  []string       `json:"required"`
	Payload   string         `json:"payload"`
	Sensitive bool           `json:"sensitive"`
}

// refs calls f for every shape reference of s: its members, a list's
// member, a map's key and value.
func (s *shape) refs(f func(ref)) {
	for _, r := range s.Members {
		f(r)
	}
	for _, r := range []*ref{s.Member, s.Key, s.Value} {
		if r != nil {
			f(*r)
		}
	}
}

// secretShapes returns the shapes from which a secret is reachable: a
// shape the model flags sensitive, one holding a reference the model
// flags sensitive (a member, a list's member, a map's key or value), and
// every shape that contains one of those at any depth. Lambda's
// Environment structure is one: its Variables map is sensitive. Models
// are recursive (DynamoDB's AttributeValue holds itself), so this walks
// the reversed reference graph from the secrets, each shape once.
func secretShapes(m *model) map[string]bool {
	names := make([]string, 0, len(m.Shapes))
	for n := range m.Shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	parents := map[string][]string{} // shape -> shapes that refer to it
	secret := map[string]bool{}
	var queue []string
	mark := func(n string) {
		if !secret[n] {
			secret[n] = true
			queue = append(queue, n)
		}
	}
	for _, n := range names {
		s := m.Shapes[n]
		if s.Sensitive {
			mark(n)
		}
		s.refs(func(r ref) {
			parents[r.Shape] = append(parents[r.Shape], n)
			if r.Sensitive {
				mark(n)
			}
		})
	}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		for _, p := range parents[n] {
			mark(p)
		}
	}
	return secret
}

// build reads every service model and returns the table text.
func build(apis string) ([]byte, error) {
	entries, err := os.ReadDir(apis)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	services, operations := 0, 0
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		file, err := newestModel(filepath.Join(apis, e.Name()))
		if err != nil {
			return nil, err
		}
		if file == "" {
			continue
		}
		raw, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		var m model
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		n, err := writeService(&body, e.Name(), &m)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", file, err)
		}
		services++
		operations += n
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "gatehouse-catalog 1\n")
	fmt.Fprintf(&out, "source %s %s %s models/apis/*/*/api-2.json\n", sourceModule, sourceVersion, sourceSum)
	fmt.Fprintf(&out, "counts services=%d operations=%d\n", services, operations)
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

// newestModel returns the api-2.json of the newest API version of a
// service directory ("" if there is none). Versions are dates, so the
// lexically greatest is the newest.
func newestModel(dir string) (string, error) {
	versions, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	best := ""
	for _, v := range versions {
		p := filepath.Join(dir, v.Name(), "api-2.json")
		if v.IsDir() && fileExists(p) && v.Name() > best {
			best = v.Name()
		}
	}
	if best == "" {
		return "", nil
	}
	return filepath.Join(dir, best, "api-2.json"), nil
}

func writeService(w io.Writer, name string, m *model) (int, error) {
	md := m.Metadata
	signing := md.SigningName
	if signing == "" {
		signing = md.EndpointPrefix
	}
	switch md.Protocol {
	case "json", "rest-json", "rest-xml", "query", "ec2":
	default:
		return 0, fmt.Errorf("unknown protocol %q", md.Protocol)
	}
	flags := ""
	if len(md.AWSQueryCompatible) > 0 {
		flags += "q"
	}
	if err := record(w, "S", name, md.APIVersion, md.Protocol, md.EndpointPrefix, signing, md.TargetPrefix, md.JSONVersion, md.GlobalEndpoint, flags); err != nil {
		return 0, err
	}
	names := make([]string, 0, len(m.Operations))
	for n := range m.Operations {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		op := m.Operations[n]
		members, err := inputMembers(m, md.Protocol, op.Input)
		if err != nil {
			return 0, fmt.Errorf("%s: %v", n, err)
		}
		if err := checkURI(op.HTTP.RequestURI); err != nil {
			return 0, fmt.Errorf("%s: %v", n, err)
		}
		f := ""
		if op.Deprecated {
			f += "d"
		}
		if op.AuthType == "none" || slices.Contains(op.Auth, "smithy.api#noAuth") {
			f += "n"
		}
		if op.AuthType == "v4-unsigned-body" {
			f += "u"
		}
		host := ""
		if op.Endpoint != nil {
			host = op.Endpoint.HostPrefix
		}
		if err := record(w, "O", n, strings.ToUpper(op.HTTP.Method), op.HTTP.RequestURI, host, f, strings.Join(members, " ")); err != nil {
			return 0, fmt.Errorf("%s: %v", n, err)
		}
	}
	return len(names), nil
}

// checkURI rejects request URIs the classifier could not match: every
// label must fill a whole path segment.
func checkURI(uri string) error {
	if !strings.HasPrefix(uri, "/") {
		return fmt.Errorf("requestUri %q does not start with /", uri)
	}
	path, _, _ := strings.Cut(uri, "?")
	for seg := range strings.SplitSeq(path, "/") {
		open, close := strings.Count(seg, "{"), strings.Count(seg, "}")
		if open+close == 0 {
			continue
		}
		if open != 1 || close != 1 || seg[0] != '{' || seg[len(seg)-1] != '}' {
			return fmt.Errorf("requestUri %q has a label that is not a whole segment", uri)
		}
	}
	return nil
}

func record(w io.Writer, fields ...string) error {
	for _, f := range fields {
		if strings.ContainsAny(f, "\t\n\r") {
			return fmt.Errorf("field %q contains a tab or newline", f)
		}
	}
	_, err := io.WriteString(w, strings.Join(fields, "\t")+"\n")
	return err
}

func inputMembers(m *model, protocol string, in *ref) ([]string, error) {
	if in == nil {
		return nil, nil
	}
	s, ok := m.Shapes[in.Shape]
	if !ok {
		return nil, fmt.Errorf("input shape %q missing", in.Shape)
	}
	secret := m.secret()
	required := map[string]bool{}
	for _, r := range s.Required {
		required[r] = true
	}
	names := make([]string, 0, len(s.Members))
	for n := range s.Members {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !isIdent(n) {
			return nil, fmt.Errorf("member name %q is not an identifier", n)
		}
		r := s.Members[n]
		ms, ok := m.Shapes[r.Shape]
		if !ok {
			return nil, fmt.Errorf("member shape %q missing", r.Shape)
		}
		var loc byte
		wire := n
		switch r.Location {
		case "uri":
			loc = 'u'
			wire = nonEmpty(r.LocationName, n)
		case "querystring":
			loc = 'q'
			wire = nonEmpty(r.LocationName, n)
		case "header":
			loc = 'h'
			wire = nonEmpty(r.LocationName, n)
		case "headers":
			loc = 'H'
			wire = r.LocationName
		case "", "body":
			loc = 'b'
			if s.Payload == n {
				loc = 'p'
			}
			switch protocol {
			case "ec2":
				wire = upperFirst(nonEmpty(r.QueryName, nonEmpty(r.LocationName, n)))
			default:
				wire = nonEmpty(r.LocationName, n)
			}
		case "statusCode":
			continue
		default:
			return nil, fmt.Errorf("member %s: unknown location %q", n, r.Location)
		}
		if strings.ContainsAny(wire, " \t=") {
			return nil, fmt.Errorf("member %s: wire name %q", n, wire)
		}
		var b strings.Builder
		b.WriteByte(loc)
		b.WriteByte(kind(m, ms))
		if required[n] {
			b.WriteByte('!')
		}
		if r.Sensitive || secret[r.Shape] {
			b.WriteByte('*')
		}
		b.WriteString(n)
		if wire != n {
			b.WriteByte('=')
			b.WriteString(wire)
		}
		out = append(out, b.String())
	}
	return out, nil
}

func kind(m *model, s shape) byte {
	switch s.Type {
	case "structure", "union":
		return 'o'
	case "map":
		return 'm'
	case "blob":
		return 'B'
	case "list":
		if s.Member != nil {
			switch m.Shapes[s.Member.Shape].Type {
			case "structure", "list", "map", "blob", "union":
				return 'L'
			}
		}
		return 'l'
	}
	return 's'
}

func nonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
