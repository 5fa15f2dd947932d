package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/pgsink"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// pgCheckpoints is how many of the newest checkpoints -postgres reads:
// enough history to see checkpoints going backwards.
const pgCheckpoints = 1000

// checkpointFlags are verify's checkpoint settings.
type checkpointFlags struct {
	key, dsn, schema, origin, prefix string
	files                            []string
}

// apply loads the verifier keys and the external checkpoints into cfg,
// oldest first: the -checkpoint files, then those from PostgreSQL. It
// returns an exit status, 0 to go on.
func (c checkpointFlags) apply(cfg *audit.VerifyConfig, stderr io.Writer) int {
	if c.key == "" {
		if len(c.files) > 0 || c.dsn != "" || c.origin != "" {
			fmt.Fprintln(stderr, "replay: -checkpoint, -postgres and -origin need -key (the checkpoint verifier key)")
			return 2
		}
		return 0
	}
	vs, err := audit.LoadVerifiers(c.key)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	cfg.Verifiers, cfg.Origin = vs, c.origin
	for _, f := range c.files {
		n, err := audit.ReadCheckpointFile(f)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		cfg.Checkpoints = append(cfg.Checkpoints, n)
	}
	if c.dsn == "" {
		return 0
	}
	origin := c.origin
	if origin == "" {
		origin = vs[0].Name() + "/" + c.prefix
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, c.dsn)
	if err != nil {
		fmt.Fprintf(stderr, "replay: -postgres: %v\n", err)
		return 2
	}
	defer pool.Close()
	notes, err := pgsink.ReadCheckpoints(ctx, pool, c.schema, origin, pgCheckpoints)
	if err != nil {
		fmt.Fprintf(stderr, "replay: cannot read checkpoints from PostgreSQL: %v\n", err)
		return 1
	}
	if len(notes) == 0 {
		fmt.Fprintf(stderr, "replay: PostgreSQL (schema %s) holds no checkpoint of origin %q: check -origin and -schema\n", c.schema, origin)
		return 1
	}
	cfg.Checkpoints = append(cfg.Checkpoints, notes...)
	return 0
}

// dirCheckpoint adds a directory's own checkpoint file, which comes last
// (the gateway writes it before any other copy). Without -key it only
// says that the file is there.
func dirCheckpoint(cfg *audit.VerifyConfig, dir, prefix string, stderr io.Writer) int {
	n, ok, err := audit.ReadDirCheckpoint(dir, prefix)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if !ok {
		return 0
	}
	if len(cfg.Verifiers) == 0 {
		fmt.Fprintf(stderr, "replay: %s holds a signed checkpoint: pass -key VERIFIER-KEY-FILE to check where the chain ends\n", n.Source)
		return 0
	}
	cfg.Checkpoints = append(cfg.Checkpoints, n)
	return 0
}

var keyNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// keygen writes a checkpoint key pair: dir/NAME.pub, then dir/NAME.key
// (0600). It never overwrites a file and never prints the private key.
func keygen(name, dir string, stdout, stderr io.Writer) int {
	if !keyNameRE.MatchString(name) {
		fmt.Fprintf(stderr, "replay: keygen: name %q must match %s\n", name, keyNameRE)
		return 2
	}
	if dir == "" {
		dir = "."
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		fmt.Fprintf(stderr, "replay: keygen: %v\n", err)
		return 1
	}
	pub, priv := filepath.Join(dir, name+".pub"), filepath.Join(dir, name+".key")
	if err := writeNew(pub, vkey+"\n", 0o644); err != nil {
		fmt.Fprintf(stderr, "replay: keygen: %v\n", err)
		return 1
	}
	if err := writeNew(priv, skey+"\n", 0o600); err != nil {
		os.Remove(pub)
		fmt.Fprintf(stderr, "replay: keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: the private signer key; give it to the gateway only (audit.checkpoint.key)\n", priv)
	fmt.Fprintf(stdout, "wrote %s: the verifier key, for replay verify -key %s\n", pub, pub)
	fmt.Fprintln(stdout, vkey)
	return 0
}

// writeNew creates path with content; it refuses to replace a file.
func writeNew(path, content string, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.WriteString(content)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}
