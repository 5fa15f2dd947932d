// Command replay shows recorded gatehouse sessions and verifies audit
// chains.
//
//	replay sessions DIR                       list the sessions recorded in DIR
//	replay timeline DIR SESSION               print a session call by call
//	replay html DIR SESSION [-o FILE]         write the session as one self-contained HTML page
//	replay verify [flags] FILE|DIR...         verify hash-chained audit files
//	replay keygen [-o DIR] NAME               make a checkpoint key pair
//
// DIR is an audit.FileRecorder directory. verify takes chain files or
// directories (every PREFIX-*.jsonl file in them); flags:
//
//	-prefix audit        file prefix inside directories
//	-key FILE            checkpoint verifier key(s), one per line (NAME.pub
//	                     from keygen): check the chain's end against its
//	                     signed checkpoints (the directory's PREFIX.checkpoint
//	                     and those given below)
//	-checkpoint FILE     a signed checkpoint kept outside the directory
//	                     (repeatable, oldest first); needs -key
//	-postgres DSN        also take the newest checkpoints of the chain from
//	                     the audit/pgsink checkpoint table (password from
//	                     PGPASSWORD or ~/.pgpass rather than the DSN); needs -key
//	-schema public       the PostgreSQL schema
//	-origin ORIGIN       the chain's checkpoint origin; every checkpoint must
//	                     name it (default for -postgres: KEYNAME/PREFIX)
//	-key-file FILE       the chain's HMAC key (FileConfig.Key), raw bytes
//	-head SEQ:HASH       an anchor the chain must reach (FileSink.Head)
//	-json                print the report as JSON
//
// keygen writes NAME.key (the private signer key, mode 0600, for the
// gateway's audit.checkpoint.key) and NAME.pub (the verifier key, for
// -key) into DIR (default the current directory); it never overwrites a
// file and never prints the private key.
//
// Exit status: 0 on success, 1 when verification finds a problem, the
// chain cannot be checked or a session cannot be read, 2 on usage errors
// (including unreadable key and checkpoint files).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  replay sessions DIR
  replay timeline DIR SESSION
  replay html DIR SESSION [-o FILE]
  replay verify [-prefix audit] [-key FILE] [-checkpoint FILE]... [-postgres DSN [-schema S]] [-origin O]
                [-key-file FILE] [-head SEQ:HASH] [-json] FILE|DIR...
  replay keygen [-o DIR] NAME
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "html: output file (default standard output); keygen: output directory (default the current one)")
	prefix := fs.String("prefix", "audit", "verify: file prefix inside directories")
	keyFile := fs.String("key-file", "", "verify: file holding the chain's HMAC key")
	head := fs.String("head", "", "verify: anchor SEQ:HASH the chain must reach")
	asJSON := fs.Bool("json", false, "verify: print the report as JSON")
	verifierKey := fs.String("key", "", "verify: checkpoint verifier key file")
	var checkpoints listFlag
	fs.Var(&checkpoints, "checkpoint", "verify: a signed checkpoint kept outside the directory (repeatable, oldest first)")
	pgDSN := fs.String("postgres", "", "verify: PostgreSQL holding the chain's checkpoints (audit/pgsink)")
	pgSchema := fs.String("schema", "public", "verify: PostgreSQL schema of -postgres")
	origin := fs.String("origin", "", "verify: the chain's checkpoint origin")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return 2
	}
	switch cmd {
	case "sessions":
		if len(pos) != 1 {
			break
		}
		return sessions(pos[0], stdout, stderr)
	case "timeline":
		if len(pos) != 2 {
			break
		}
		xs, err := audit.LoadSession(pos[0], pos[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		timeline(stdout, pos[1], xs)
		return 0
	case "html":
		if len(pos) != 2 {
			break
		}
		xs, err := audit.LoadSession(pos[0], pos[1])
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return writeHTML(*out, pos[1], xs, stdout, stderr)
	case "verify":
		if len(pos) == 0 {
			break
		}
		cfg := audit.VerifyConfig{}
		if *keyFile != "" {
			k, err := os.ReadFile(*keyFile)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 2
			}
			cfg.Key = k
		}
		if *head != "" {
			a, err := parseAnchor(*head)
			if err != nil {
				fmt.Fprintln(stderr, err)
				return 2
			}
			cfg.Head = &a
		}
		cp := checkpointFlags{key: *verifierKey, files: checkpoints, dsn: *pgDSN, schema: *pgSchema, origin: *origin, prefix: *prefix}
		if code := cp.apply(&cfg, stderr); code != 0 {
			return code
		}
		return verify(cfg, *prefix, pos, *asJSON, stdout, stderr)
	case "keygen":
		if len(pos) != 1 {
			break
		}
		return keygen(pos[0], *out, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return 2
}

// parseInterleaved parses flags that may come before, between or after
// the positional arguments.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func parseAnchor(s string) (audit.Anchor, error) {
	seq, hash, ok := strings.Cut(s, ":")
	n, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil || len(hash) != 64 {
		return audit.Anchor{}, fmt.Errorf("-head %q: want SEQ:HASH (a decimal sequence number and 64 hex digits)", s)
	}
	return audit.Anchor{Seq: n, Hash: hash}, nil
}

func sessions(dir string, stdout, stderr io.Writer) int {
	ss, err := audit.Sessions(dir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, s := range ss {
		fmt.Fprintf(stdout, "%-40s %4d call(s)  %s .. %s\n", s.ID, s.Exchanges, s.First.Format(time.RFC3339), s.Last.Format(time.RFC3339))
	}
	return 0
}

func verify(cfg audit.VerifyConfig, prefix string, paths []string, asJSON bool, stdout, stderr io.Writer) int {
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, prefix+"-*.jsonl"))
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		if len(m) == 0 {
			fmt.Fprintf(stderr, "replay: no %s-*.jsonl files in %s\n", prefix, p)
			return 1
		}
		files = append(files, m...)
		if code := dirCheckpoint(&cfg, p, prefix, stderr); code != 0 {
			return code
		}
	}
	rep, err := cfg.Verify(files...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, f := range rep.Files {
			fmt.Fprintf(stdout, "%s: records %d-%d (%d events)\n", f.Path, f.FirstSeq, f.LastSeq, f.Events)
		}
		for _, p := range rep.Problems {
			fmt.Fprintf(stdout, "PROBLEM %s\n", p)
		}
		if rep.MoreProblems > 0 {
			fmt.Fprintf(stdout, "... and %d more problem(s)\n", rep.MoreProblems)
		}
		if c := rep.Checkpoint; c != nil {
			fmt.Fprintf(stdout, "checkpoint: %d records of %s signed by %s (%s)", c.Size, c.Origin, strings.Join(c.Signers, ", "), c.Source)
			if c.After > 0 {
				fmt.Fprintf(stdout, "; the %d record(s) after it are not covered by a signature yet", c.After)
			}
			fmt.Fprintln(stdout)
		}
		verdict := "OK"
		if !rep.OK() {
			verdict = "FAILED"
		}
		fmt.Fprintf(stdout, "%s: %d file(s), %d records, %d events; head %d:%s\n", verdict, len(rep.Files), rep.Records, rep.Events, rep.Head.Seq, rep.Head.Hash)
	}
	if !rep.OK() {
		return 1
	}
	return 0
}

// call is the view of one exchange that both renderings use.
type call struct {
	N         int
	Time      time.Time
	Offset    time.Duration
	CallID    string
	Action    string
	Method    string
	URL       string
	Principal string
	Role      string
	Decision  string
	Effect    string // allow, deny, approve, or "" when no policy ran
	Matched   []string
	Approval  string
	Status    int
	Outcome   string // ok, refused, error
	Response  string
	AWSID     string
	Masks     []string
	ReqBody   audit.Body
	RespBody  audit.Body
	ReqHead   []string
	RespHead  []string
}

func calls(xs []audit.Exchange) []call {
	out := make([]call, 0, len(xs))
	for i, x := range xs {
		c := call{N: i + 1, Time: x.Time.UTC(), CallID: x.CallID, Method: x.Request.Method, URL: x.Request.URL,
			Status: x.Response.Status, ReqBody: x.Request.Body, RespBody: x.Response.Body, Outcome: "ok"}
		if len(xs) > 0 {
			c.Offset = x.Time.Sub(xs[0].Time)
		}
		for k, vs := range x.Request.Header {
			c.ReqHead = append(c.ReqHead, k+": "+strings.Join(vs, ", "))
		}
		for k, vs := range x.Response.Header {
			c.RespHead = append(c.RespHead, k+": "+strings.Join(vs, ", "))
		}
		slices.Sort(c.ReqHead)
		slices.Sort(c.RespHead)
		if e := x.Event; e != nil {
			c.Action = e.Request.Action
			if c.Action == "" {
				c.Action = e.Request.Service + ":" + e.Request.Operation
			}
			c.Principal = e.Principal.ID
			c.Role = e.Principal.Role
			if d := e.Decision; d != nil {
				c.Effect = d.Effect
				rule := d.Rule
				if d.Default {
					rule = "(default)"
				}
				c.Decision = fmt.Sprintf("%s by rule %s", d.Effect, rule)
				if d.Reason != "" {
					c.Decision += ": " + d.Reason
				}
				for _, m := range d.Matched {
					c.Matched = append(c.Matched, fmt.Sprintf("%s (%s, %s)", m.Rule, m.Effect, m.Source))
				}
			}
			if a := e.Approval; a != nil {
				c.Approval = fmt.Sprintf("%s %s", a.ID, a.State)
				var by []string
				for _, v := range a.Approvers {
					verb := "approved"
					if !v.Approve {
						verb = "denied"
					}
					by = append(by, fmt.Sprintf("%s by %s", verb, v.Principal))
				}
				if len(by) > 0 {
					c.Approval += "; " + strings.Join(by, ", ")
				}
			}
			if r := e.Response; r != nil {
				c.AWSID = r.AWSRequestID
				c.Response = fmt.Sprintf("%d in %v, %d B in / %d B out", r.Status, r.Duration, r.BytesIn, r.BytesOut)
				switch {
				case r.Refused:
					c.Outcome = "refused"
					c.Response += ", refused by the gateway"
				case r.Status >= 400:
					c.Outcome = "error"
				}
				if r.ErrorCode != "" {
					c.Response += ", " + r.ErrorCode
					if r.ErrorMessage != "" {
						c.Response += ": " + r.ErrorMessage
					}
				}
			}
			for _, m := range e.Masks {
				where := m.Path
				if where == "" {
					where = m.Detector
				}
				c.Masks = append(c.Masks, fmt.Sprintf("%s (%s, %d value(s), rule %s)", where, m.Strategy, m.Count, m.Rule))
			}
		}
		if c.Response == "" {
			c.Response = fmt.Sprintf("%d", c.Status)
		}
		if c.Status >= 400 && c.Outcome == "ok" {
			c.Outcome = "error"
		}
		out = append(out, c)
	}
	return out
}

// bodyText renders a recorded body for display.
func bodyText(b audit.Body) string {
	var s string
	switch {
	case b.Withheld != "":
		return fmt.Sprintf("(%d bytes, not recorded: %s)", b.Size, b.Withheld)
	case b.Base64 != "":
		s = fmt.Sprintf("(%d bytes of binary data)", len(b.Bytes()))
	default:
		s = b.Text
	}
	if b.Truncated {
		s += fmt.Sprintf("\n... (truncated: %d of %d bytes recorded)", len(b.Bytes()), b.Size)
	}
	return s
}

// oneLine shortens s for the terminal, removing control characters.
func oneLine(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len([]rune(s)) > max {
		s = string([]rune(s)[:max]) + "..."
	}
	return s
}

func timeline(w io.Writer, session string, xs []audit.Exchange) {
	cs := calls(xs)
	fmt.Fprintf(w, "session %s: %d call(s)\n", oneLine(session, 80), len(cs))
	if len(cs) > 0 {
		fmt.Fprintf(w, "from %s to %s\n", cs[0].Time.Format(time.RFC3339Nano), cs[len(cs)-1].Time.Format(time.RFC3339Nano))
	}
	for _, c := range cs {
		fmt.Fprintf(w, "\n[%d] +%-10v %-8s %s %s %s\n", c.N, c.Offset, strings.ToUpper(c.Outcome), oneLine(c.Action, 60), c.Method, oneLine(c.URL, 100))
		field := func(k, v string) {
			if v != "" {
				fmt.Fprintf(w, "    %-10s %s\n", k, oneLine(v, 160))
			}
		}
		field("call", c.CallID)
		p := c.Principal
		if c.Role != "" {
			p += " (role " + c.Role + ")"
		}
		field("principal", p)
		field("decision", c.Decision)
		field("matched", strings.Join(c.Matched, "; "))
		field("approval", c.Approval)
		field("response", c.Response)
		field("aws id", c.AWSID)
		field("masked", strings.Join(c.Masks, "; "))
		field("body", bodyText(c.RespBody))
	}
}

func writeHTML(path, session string, xs []audit.Exchange, stdout, stderr io.Writer) int {
	w := stdout
	var f *os.File
	if path != "" {
		var err error
		f, err = os.Create(path)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		w = f
	}
	err := renderHTML(w, session, xs)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
