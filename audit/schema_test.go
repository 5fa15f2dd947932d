package audit_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// schemaNode is the subset of JSON Schema that event.schema.json uses.
type schemaNode struct {
	Ref                  string                 `json:"$ref"`
	Type                 string                 `json:"type"`
	Const                any                    `json:"const"`
	Enum                 []any                  `json:"enum"`
	Required             []string               `json:"required"`
	Properties           map[string]*schemaNode `json:"properties"`
	AdditionalProperties json.RawMessage        `json:"additionalProperties"`
	Items                *schemaNode            `json:"items"`
	Format               string                 `json:"format"`
	Minimum              *float64               `json:"minimum"`
	MinLength            *int                   `json:"minLength"`
	Description          string                 `json:"description"`
	Defs                 map[string]*schemaNode `json:"$defs"`
}

func loadSchema(t *testing.T) *schemaNode {
	t.Helper()
	var root schemaNode
	if err := json.Unmarshal(audit.Schema(), &root); err != nil {
		t.Fatalf("event.schema.json: %v", err)
	}
	return &root
}

// validate checks v against n, returning every violation with its path.
func (root *schemaNode) validate(n *schemaNode, v any, path string) []string {
	if n.Ref != "" {
		name, ok := strings.CutPrefix(n.Ref, "#/$defs/")
		if !ok || root.Defs[name] == nil {
			return []string{path + ": unresolvable $ref " + n.Ref}
		}
		return root.validate(root.Defs[name], v, path)
	}
	var errs []string
	bad := func(f string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(f, args...)) }
	if n.Const != nil && !reflect.DeepEqual(n.Const, v) {
		bad("want %v, got %v", n.Const, v)
	}
	if n.Enum != nil && !slices.ContainsFunc(n.Enum, func(e any) bool { return reflect.DeepEqual(e, v) }) {
		bad("%v is not one of %v", v, n.Enum)
	}
	switch n.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("not an object")
			return errs
		}
		for _, r := range n.Required {
			if _, ok := m[r]; !ok {
				bad("required member %q missing", r)
			}
		}
		for k, val := range m {
			if p, ok := n.Properties[k]; ok {
				errs = append(errs, root.validate(p, val, path+"."+k)...)
				continue
			}
			switch ap := strings.TrimSpace(string(n.AdditionalProperties)); {
			case ap == "false":
				bad("member %q is not in the schema", k)
			case strings.HasPrefix(ap, "{"):
				var sub schemaNode
				json.Unmarshal(n.AdditionalProperties, &sub)
				errs = append(errs, root.validate(&sub, val, path+"."+k)...)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("not an array")
			return errs
		}
		for i, item := range a {
			if n.Items != nil {
				errs = append(errs, root.validate(n.Items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case "string":
		s, ok := v.(string)
		if !ok {
			bad("not a string")
			return errs
		}
		if n.MinLength != nil && len(s) < *n.MinLength {
			bad("shorter than %d", *n.MinLength)
		}
		if n.Format == "date-time" {
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil || !strings.HasSuffix(s, "Z") {
				bad("%q is not an RFC 3339 UTC time", s)
			}
		}
	case "integer":
		f, ok := v.(float64)
		if !ok || f != float64(int64(f)) {
			bad("not an integer")
			return errs
		}
		if n.Minimum != nil && f < *n.Minimum {
			bad("below %v", *n.Minimum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("not a boolean")
		}
	}
	if n.Items != nil && n.Type == "" {
		if a, ok := v.([]any); ok {
			for i, item := range a {
				errs = append(errs, root.validate(n.Items, item, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	}
	return errs
}

func TestSchemaValidatesEvents(t *testing.T) {
	root := loadSchema(t)
	offset := time.FixedZone("X", 3600)
	minimal := &audit.Event{ID: "e1", Time: time.Date(2026, 1, 2, 3, 4, 5, 6, offset), Phase: audit.PhaseIntent}
	approval := &audit.Event{ID: "e2", Time: time.Unix(1, 0), Phase: audit.PhaseApproval,
		Approval: &audit.ApprovalInfo{ID: "A", State: "approved", Event: "approved", Actor: "i#alice"}}
	denied := audittest.NewEvent(9)
	denied.Decision = &audit.DecisionInfo{Effect: "deny", Default: true, Reason: "no rule matched"}
	denied.Approval = nil
	denied.Response = &audit.ResponseInfo{Status: 403, Refused: true, ErrorCode: "AccessDenied", ErrorMessage: "denied"}
	tests := []struct {
		name string
		e    *audit.Event
	}{
		{"full", audittest.NewEvent(1)},
		{"minimal intent", minimal},
		{"approval", approval},
		{"denied", denied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := audit.Encode(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			if errs := root.validate(root, v, "$"); len(errs) > 0 {
				t.Fatalf("event does not validate:\n%s\n%s", strings.Join(errs, "\n"), b)
			}
		})
	}
	t.Run("rejects unknown members", func(t *testing.T) {
		var v map[string]any
		b, _ := audit.Encode(minimal)
		json.Unmarshal(b, &v)
		v["secret"] = "x"
		v["version"] = 2.0
		if errs := root.validate(root, v, "$"); len(errs) != 2 {
			t.Fatalf("want 2 violations, got %q", errs)
		}
	})
}

// TestSchemaDocumentsEveryField walks the Go types of Event and checks
// that every JSON member they can write is in the schema, with a
// description at the top level, and that the schema names nothing the
// types lack: the documentation cannot fall behind the code.
func TestSchemaDocumentsEveryField(t *testing.T) {
	root := loadSchema(t)
	var walk func(n *schemaNode, typ reflect.Type, path string)
	walk = func(n *schemaNode, typ reflect.Type, path string) {
		for n.Ref != "" {
			n = root.Defs[strings.TrimPrefix(n.Ref, "#/$defs/")]
		}
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
			if n.Items != nil {
				n = n.Items
				for n.Ref != "" {
					n = root.Defs[strings.TrimPrefix(n.Ref, "#/$defs/")]
				}
			}
		}
		if typ.Kind() != reflect.Struct || typ == reflect.TypeFor[time.Time]() {
			return
		}
		var names []string
		for f := range typ.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				t.Errorf("%s.%s has no JSON name", path, f.Name)
				continue
			}
			names = append(names, name)
			p, ok := n.Properties[name]
			if !ok {
				t.Errorf("%s.%s is written but not in event.schema.json", path, name)
				continue
			}
			walk(p, f.Type, path+"."+name)
		}
		var documented []string
		for k := range n.Properties {
			documented = append(documented, k)
		}
		sort.Strings(documented)
		for _, k := range documented {
			if !slices.Contains(names, k) {
				t.Errorf("%s.%s is in event.schema.json but not in the Go type %s", path, k, typ)
			}
		}
	}
	walk(root, reflect.TypeFor[audit.Event](), "$")
	for k, p := range root.Properties {
		if p.Description == "" && p.Ref == "" {
			t.Errorf("top-level member %q has no description", k)
		}
	}
	if !regexp.MustCompile(`version 1`).MatchString(string(audit.Schema())) {
		t.Errorf("schema title does not name version %d", audit.Version)
	}
}
