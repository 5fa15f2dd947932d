package pgsink

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
	"github.com/gatehouse-dev/gatehouse/internal/pgtest"
)

func checkpointKey(t *testing.T) (note.Signer, []note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, "gw-1")
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, []note.Verifier{v}
}

func writeN(t *testing.T, s audit.Sink, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if err := s.Write(context.Background(), audittest.NewEvent(i)); err != nil {
			t.Fatal(err)
		}
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	os.RemoveAll(to)
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(from)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(to, e.Name()), b, 0o600)
	}
}

// TestCheckpointStore: a FileSink keeps its checkpoints in PostgreSQL too,
// and the newest one there exposes a directory rolled back as a whole
// (files and checkpoint file), which nothing in the directory can show.
func TestCheckpointStore(t *testing.T) {
	schema := pgtest.Schema(t, "audit_test_")
	pool := newPool(t)
	ctx := context.Background()
	store, err := NewCheckpointStore(ctx, CheckpointStoreConfig{Pool: pool, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	signer, verifiers := checkpointKey(t)
	dir := t.TempDir()
	open := func() *audit.FileSink {
		s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, Signer: signer, CheckpointWriter: store, CheckpointOrigin: "gw-1/replica-a"})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	writeN(t, s, 0, 10)
	if _, err := s.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "backup")
	copyTree(t, dir, backup)
	writeN(t, s, 10, 10)
	head := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	newest, err := ReadCheckpoints(ctx, pool, schema, "gw-1/replica-a", 0)
	if err != nil || len(newest) != 1 {
		t.Fatalf("ReadCheckpoints: %v %v", newest, err)
	}
	local, _ := os.ReadFile(filepath.Join(dir, audit.CheckpointFileName("")))
	if string(newest[0].Note) != string(local) || !strings.Contains(newest[0].Source, schema+"."+CheckpointTable+" id ") {
		t.Fatalf("newest in PostgreSQL %+v, local %q", newest[0], local)
	}
	cfg := audit.VerifyConfig{Verifiers: verifiers, Checkpoints: newest}
	if rep, err := audit.VerifyDir(dir, "", cfg); err != nil || !rep.OK() || rep.Checkpoint.Size != head.Seq {
		t.Fatalf("intact: %+v %v", rep, err)
	}

	// Roll the whole directory back, then let the gateway run on: its
	// own checkpoint file agrees with the older copy, so it resumes.
	copyTree(t, backup, dir)
	if rep, _ := audit.VerifyDir(dir, "", audit.VerifyConfig{Verifiers: verifiers}); !rep.OK() {
		t.Fatalf("the older copy is consistent on its own, yet: %v", rep.Problems)
	}
	s = open()
	writeN(t, s, 100, 2)
	s.Close()
	check := func(want ...audit.ProblemKind) {
		t.Helper()
		history, err := ReadCheckpoints(ctx, pool, schema, "gw-1/replica-a", 100)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Checkpoints = history
		rep, err := audit.VerifyDir(dir, "", cfg)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []audit.ProblemKind
		for _, p := range rep.Problems {
			kinds = append(kinds, p.Kind)
		}
		for _, k := range want {
			if !containsKind(kinds, k) {
				t.Fatalf("no %s problem in %v", k, rep.Problems)
			}
		}
	}
	// The resumed chain is shorter than the newest checkpoint in
	// PostgreSQL, and its new checkpoints go backwards.
	check(audit.Truncated, audit.Rollback)
	// Extended past it, the chain forks from what was signed.
	s = open()
	writeN(t, s, 200, 10)
	s.Close()
	check(audit.Altered)
}

func containsKind(ks []audit.ProblemKind, k audit.ProblemKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

// TestCheckpointStoreTable: rows are append-only, a repeated checkpoint
// is stored once, and a note that does not carry its checkpoint is
// refused.
func TestCheckpointStoreTable(t *testing.T) {
	schema := pgtest.Schema(t, "audit_test_")
	pool := newPool(t)
	ctx := context.Background()
	store, err := NewCheckpointStore(ctx, CheckpointStoreConfig{Pool: pool, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := checkpointKey(t)
	sc, err := audit.Checkpoint{Origin: "o", Size: 3, Hash: strings.Repeat("ab", 32)}.Sign(signer)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := store.WriteCheckpoint(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := ReadCheckpoints(ctx, pool, schema, "o", 10); len(got) != 1 {
		t.Fatalf("%d rows for one checkpoint written twice", len(got))
	}
	other := sc
	other.Size = 4
	if err := store.WriteCheckpoint(ctx, other); err == nil {
		t.Fatal("stored a note that signs another size")
	}
	tbl := pgx.Identifier{schema, CheckpointTable}.Sanitize()
	for _, stmt := range []string{`UPDATE ` + tbl + ` SET size = 1`, `DELETE FROM ` + tbl, `TRUNCATE ` + tbl} {
		if _, err := pool.Exec(ctx, stmt); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", stmt, err)
		}
	}
	for _, bad := range []struct{ schema, origin string }{{"Bad;", "o"}, {schema, ""}} {
		if _, err := ReadCheckpoints(ctx, pool, bad.schema, bad.origin, 1); err == nil {
			t.Errorf("ReadCheckpoints(%q, %q) succeeded", bad.schema, bad.origin)
		}
	}
	if _, err := NewCheckpointStore(ctx, CheckpointStoreConfig{}); err == nil || !strings.Contains(err.Error(), "CheckpointStoreConfig.Pool") {
		t.Fatalf("no pool, no DSN: %v", err)
	}
	store.Close()
}

// TestMigrateFromVersion1: a schema at version 1 gains the checkpoint
// table and keeps its events.
func TestMigrateFromVersion1(t *testing.T) {
	schema := pgtest.Schema(t, "audit_test_")
	pool := newPool(t)
	ctx := context.Background()
	s := openSink(t, pool, schema, "r1")
	writeN(t, s, 0, 3)
	s.Close()
	pgtest.Exec(t, `DROP TABLE `+pgx.Identifier{schema, CheckpointTable}.Sanitize())
	pgtest.Exec(t, `DELETE FROM `+pgx.Identifier{schema, "gatehouse_audit_migrations"}.Sanitize()+` WHERE version = 2`)
	store, err := NewCheckpointStore(ctx, CheckpointStoreConfig{Pool: pool, Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if got, err := ReadCheckpoints(ctx, pool, schema, "o", 1); err != nil || len(got) != 0 {
		t.Fatalf("%v %v", got, err)
	}
	if rep := mustVerify(t, pool, schema, "r1"); !rep.OK() || rep.Events != 3 {
		t.Fatalf("%+v", rep)
	}
}
