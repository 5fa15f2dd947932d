package catalog

import (
	"compress/gzip"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"strings"
)

// The table is generated from the aws-sdk-go v1 service models; see
// internal/gen for the format and the command.
//
//go:generate go run ./internal/gen -o table.gz
//go:embed table.gz
var table string

// Source is the module version the embedded table was generated from.
const Source = "github.com/aws/aws-sdk-go@v1.55.8"

// maxTable bounds the decompressed table (a corrupt or hostile table must
// not exhaust memory).
const maxTable = 32 << 20

// decode parses a gzip-compressed table.
func decode(gz string) (*Catalog, error) {
	zr, err := gzip.NewReader(strings.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("catalog: table: %w", err)
	}
	raw, err := io.ReadAll(io.LimitReader(zr, maxTable+1))
	if err != nil {
		return nil, fmt.Errorf("catalog: table: %w", err)
	}
	if len(raw) > maxTable {
		return nil, errors.New("catalog: table too large")
	}
	return parse(string(raw))
}

// parse reads the decompressed table text.
func parse(text string) (*Catalog, error) {
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != "gatehouse-catalog 1" {
		return nil, errors.New("catalog: table: not a version 1 catalog")
	}
	src := strings.Fields(lines[1])
	if len(src) < 3 || src[0] != "source" {
		return nil, errors.New("catalog: table: missing source line")
	}
	c := &Catalog{source: src[1] + "@" + src[2]}
	var svc *Service
	for i, line := range lines[3:] {
		f := strings.Split(line, "\t")
		bad := func(why string) error {
			return fmt.Errorf("catalog: table line %d: %s", i+4, why)
		}
		switch f[0] {
		case "S":
			if len(f) != 10 {
				return nil, bad("service record needs 10 fields")
			}
			svc = &Service{
				Name: f[1], APIVersion: f[2], Protocol: f[3], EndpointPrefix: f[4], SigningName: f[5],
				TargetPrefix: f[6], JSONVersion: f[7], GlobalEndpoint: f[8],
				QueryCompatible: strings.Contains(f[9], "q"),
			}
			if svc.Name == "" || svc.SigningName == "" || svc.EndpointPrefix == "" {
				return nil, bad("service without name, signing name or endpoint prefix")
			}
			switch svc.Protocol {
			case ProtocolJSON, ProtocolRESTJSON, ProtocolRESTXML, ProtocolQuery, ProtocolEC2:
			default:
				return nil, bad("unknown protocol " + svc.Protocol)
			}
			c.services = append(c.services, svc)
		case "O":
			if svc == nil || len(f) != 7 {
				return nil, bad("operation record needs 7 fields and a service")
			}
			op := &Operation{
				Name: f[1], Method: f[2], RequestURI: f[3], HostPrefix: f[4],
				Deprecated:      strings.Contains(f[5], "d"),
				Unauthenticated: strings.Contains(f[5], "n"),
				svc:             svc,
			}
			if op.Name == "" || op.Method == "" || !strings.HasPrefix(op.RequestURI, "/") {
				return nil, bad("operation without name, method or request URI")
			}
			if f[6] != "" {
				for tok := range strings.SplitSeq(f[6], " ") {
					m, err := parseMember(tok)
					if err != nil {
						return nil, bad(err.Error())
					}
					op.Inputs = append(op.Inputs, m)
				}
			}
			svc.ops = append(svc.ops, op)
		default:
			return nil, bad("unknown record type")
		}
	}
	if err := c.build(); err != nil {
		return nil, err
	}
	return c, nil
}

func parseMember(tok string) (Member, error) {
	if len(tok) < 3 {
		return Member{}, fmt.Errorf("member %q too short", tok)
	}
	var m Member
	switch tok[0] {
	case 'u':
		m.Location = LocationURI
	case 'q':
		m.Location = LocationQuery
	case 'h':
		m.Location = LocationHeader
	case 'H':
		m.Location = LocationHeaders
	case 'b':
		m.Location = LocationBody
	case 'p':
		m.Location = LocationPayload
	default:
		return m, fmt.Errorf("member %q: unknown location", tok)
	}
	switch tok[1] {
	case 's':
		m.kind = kindScalar
	case 'l':
		m.kind = kindList
	case 'L':
		m.kind = kindStructList
	case 'm':
		m.kind = kindMap
	case 'o':
		m.kind = kindStruct
	case 'B':
		m.kind = kindBlob
	default:
		return m, fmt.Errorf("member %q: unknown kind", tok)
	}
	rest := tok[2:]
	for len(rest) > 0 && (rest[0] == '!' || rest[0] == '*') {
		if rest[0] == '!' {
			m.Required = true
		} else {
			m.Sensitive = true
		}
		rest = rest[1:]
	}
	name, wire, ok := strings.Cut(rest, "=")
	if !ok {
		wire = name
	}
	if name == "" || wire == "" {
		return m, fmt.Errorf("member %q: empty name", tok)
	}
	m.Name, m.Wire = name, wire
	return m, nil
}
