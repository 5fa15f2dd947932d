package mask

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time (user and system, all threads, GC included) the
// process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchMask runs fn in a benchmark loop and reports, besides MB/s (wall
// clock), cpu-MB/s: bytes per second of process CPU time, which stays
// meaningful when other work shares the machine's cores.
func benchMask(b *testing.B, doc []byte, fn func([]byte) error) {
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	start := cpuTime()
	n := 0
	for b.Loop() {
		if err := fn(doc); err != nil {
			b.Fatal(err)
		}
		n++
	}
	if cpu := cpuTime() - start; cpu > 0 {
		b.ReportMetric(float64(len(doc))*float64(n)/cpu.Seconds()/1e6, "cpu-MB/s")
	}
}

// benchJSON builds a JSON document of about size bytes: a page of records
// shaped like typical AWS list responses.
func benchJSON(size int) []byte {
	var b strings.Builder
	b.WriteString(`{"NextToken":"AAEAAdQ8bQqj0f1JtxRk6T3b2Xn0kq","Items":[`)
	for i := 0; b.Len() < size-300; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		kind := "user"
		if i%10 == 0 {
			kind = "admin"
		}
		fmt.Fprintf(&b, `{"id":"item-%06d","kind":%q,"user":{"name":"user %d","email":"user%d@example.com","password":"p@ss\"word-%d"},`+
			`"tokens":["tok-%d-a","tok-%d-b"],"meta":{"created":%d,"size":%d.5,"enabled":true,"tags":{"team":"blue","env":"prod"}},`+
			`"apiKey":"k-%08x","note":"Lorem ipsum dolor sit amet, consectetur adipiscing elit \u00e9 %d"}`,
			i, kind, i, i, i, i, i, 1700000000+i, i, i*2654435761, i)
	}
	b.WriteString(`],"Count":1}`)
	return []byte(b.String())
}

var benchJSONRules = []Rule{
	{JSON: "Items.#.user.password"},
	{JSON: "Items.#.user.email", Strategy: Partial, Keep: 4},
	{JSON: "Items.#.tokens"},
	{JSON: "Items.#.meta.tags.*"},
	{JSON: "Items.#.apiKey", Strategy: Hash},
	{JSON: `Items.#(kind=="admin")#.note`},
	{JSON: "Items.#.secret"},
	{JSON: "Items.#.user.ssn", Strategy: Remove},
	{JSON: "NextToken", Strategy: Partial, Keep: 4},
	{JSON: "Missing.path"},
}

func benchXML(size int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<ListItemsResponse xmlns="https://example.amazonaws.com/doc/2026-01-01/"><ListItemsResult><Items>`)
	for i := 0; b.Len() < size-300; i++ {
		fmt.Fprintf(&b, `<member><Id>item-%06d</Id><Kind>user</Kind><User><Name>user %d</Name><Email>user%d@example.com</Email><Password>p&amp;ss-%d</Password></User>`+
			`<Tokens><member>tok-%d-a</member><member>tok-%d-b</member></Tokens><Meta><Created>2026-11-25T12:00:00Z</Created><Tags><Team>blue</Team><Env>prod</Env></Tags></Meta>`+
			`<ApiKey>k-%08x</ApiKey><Note>Lorem ipsum dolor sit amet %d</Note></member>`, i, i, i, i, i, i, i*2654435761, i)
	}
	b.WriteString(`</Items><NextToken>AAEAAdQ8bQqj0f1JtxRk6T3b2Xn0kq</NextToken></ListItemsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListItemsResponse>`)
	return []byte(b.String())
}

var benchXMLRules = []Rule{
	{XML: "Items/member/User/Password"},
	{XML: "Items/member/User/Email", Strategy: Partial, Keep: 4},
	{XML: "*/Tokens/member"},
	{XML: "Meta/Tags/*"},
	{XML: "member/ApiKey", Strategy: Hash},
	{XML: "//Secret"},
	{XML: "/ListItemsResponse/ListItemsResult/NextToken", Strategy: Partial, Keep: 4},
	{XML: "User/Ssn", Strategy: Remove},
	{XML: "Missing/Path"},
	{XML: "Items/member/Note"},
}

func BenchmarkMaskJSON1MiB(b *testing.B) {
	doc := benchJSON(1 << 20)
	m, err := New(Config{Rules: benchJSONRules, HashKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	benchMask(b, doc, func(d []byte) error { _, _, err := m.MaskJSON(d); return err })
}

func BenchmarkMaskXML1MiB(b *testing.B) {
	doc := benchXML(1 << 20)
	m, err := New(Config{Rules: benchXMLRules, HashKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	benchMask(b, doc, func(d []byte) error { _, _, err := m.MaskXML(d); return err })
}

// BenchmarkMaskJSON1MiBDetectors adds every built-in detector, which then
// read every string of the document.
func BenchmarkMaskJSON1MiBDetectors(b *testing.B) {
	doc := benchJSON(1 << 20)
	m, err := New(Config{Rules: append(benchJSONRules[:len(benchJSONRules):len(benchJSONRules)], Rule{Detect: DetectAll}), HashKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	benchMask(b, doc, func(d []byte) error { _, _, err := m.MaskJSON(d); return err })
}

// TestBenchDocuments checks the benchmark documents are what they claim.
func TestBenchDocuments(t *testing.T) {
	m, _ := New(Config{Rules: benchJSONRules, HashKey: testKey})
	doc := benchJSON(1 << 20)
	_, rep, err := m.MaskJSON(doc)
	if err != nil || len(doc) < 1<<20-1000 || len(rep.Entries) != 7 {
		t.Fatalf("json: %d bytes, %+v, %v", len(doc), rep, err)
	}
	x, _ := New(Config{Rules: benchXMLRules, HashKey: testKey})
	doc = benchXML(1 << 20)
	_, rep, err = x.MaskXML(doc)
	if err != nil || len(doc) < 1<<20-1000 || len(rep.Entries) != 7 {
		t.Fatalf("xml: %d bytes, %+v, %v", len(doc), rep, err)
	}
}

// benchPathRules are policy paths (Rule.Path) selecting what
// benchJSONRules select; unanchored, so they are tried at every level.
var benchPathRules = []Rule{
	{Path: "user.password"},
	{Path: "tokens", Strategy: Partial, Keep: 2},
	{Path: "apiKey", Strategy: Hash},
	{Path: "$.NextToken"},
	{Path: "tags.*"},
	{Path: "missing.path"},
	{Path: "note", Strategy: Remove},
}

// BenchmarkMaskPath1MiB: policy paths on the JSON and XML documents.
func BenchmarkMaskPath1MiB(b *testing.B) {
	m, err := New(Config{Rules: benchPathRules, HashKey: testKey})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("json", func(b *testing.B) {
		doc := benchJSON(1 << 20)
		benchMask(b, doc, func(d []byte) error { _, _, err := m.MaskJSON(d); return err })
	})
	b.Run("xml", func(b *testing.B) {
		doc := benchXML(1 << 20)
		benchMask(b, doc, func(d []byte) error { _, _, err := m.MaskXML(d); return err })
	})
}

// BenchmarkMaskText1MiB: the aws-secrets profile's S3 object detectors on
// a 1 MiB text body (a log with a credential every 100 lines).
func BenchmarkMaskText1MiB(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < 1<<20; i++ {
		if i%100 == 0 {
			fmt.Fprintf(&sb, "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLE%03d\n", i%1000)
			continue
		}
		fmt.Fprintf(&sb, "2026-01-05T10:00:%02dZ INFO request %d served in %d ms by worker-%d\n", i%60, i, i%97, i%8)
	}
	doc := []byte(sb.String())
	m, err := New(Config{Rules: ProfileRules(ProfileAWSSecrets, "s3", "GetObject")})
	if err != nil {
		b.Fatal(err)
	}
	benchMask(b, doc, func(d []byte) error { _, _, err := m.Mask("text/plain", d); return err })
}
