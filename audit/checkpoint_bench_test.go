package audit_test

import (
	"context"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// BenchmarkCheckpoint measures what a checkpoint costs a FileSink. Each
// op of the "1-writer" cases writes one event (synchronous mode, the
// default) and, except in "no-checkpoint", writes a checkpoint of it:
// fsync of the chain file, Ed25519 signature, the checkpoint file written
// to a temporary name, fsynced, renamed, and the directory fsynced
// ("fsync", the default), or the same without the three fsyncs
// ("skip-sync"). The difference to "no-checkpoint" is the price of one
// checkpoint. "parallel" runs 32 writers per GOMAXPROCS with a checkpoint
// every 100ms (600 times the default rate) or none, to show what
// checkpoints cost concurrent writers, who wait while one is written.
func BenchmarkCheckpoint(b *testing.B) {
	k := newTestKey(b, "bench")
	cases := []struct {
		name       string
		cfg        audit.FileConfig
		checkpoint bool
		parallel   bool
	}{
		{"1-writer/no-checkpoint", audit.FileConfig{}, false, false},
		{"1-writer/checkpoint-fsync", audit.FileConfig{Signer: k.signer, CheckpointInterval: time.Hour}, true, false},
		{"1-writer/checkpoint-skip-sync", audit.FileConfig{Signer: k.signer, CheckpointInterval: time.Hour, SkipCheckpointSync: true}, true, false},
		{"parallel/no-checkpoint", audit.FileConfig{}, false, true},
		{"parallel/checkpoint-fsync-every-100ms", audit.FileConfig{Signer: k.signer, CheckpointInterval: 100 * time.Millisecond}, false, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Dir, cfg.MaxBytes = b.TempDir(), 256<<20
			s, err := audit.NewFileSink(cfg)
			if err != nil {
				b.Fatal(err)
			}
			e := audittest.NewEvent(1)
			ctx := context.Background()
			cpu0 := cpuTime()
			b.ResetTimer()
			if c.parallel {
				b.SetParallelism(32)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := s.Write(ctx, e); err != nil {
							b.Error(err)
							return
						}
					}
				})
			} else {
				for b.Loop() {
					if err := s.Write(ctx, e); err != nil {
						b.Fatal(err)
					}
					if c.checkpoint {
						if _, err := s.Checkpoint(); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.StopTimer()
			if c.parallel {
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			if st := s.Stats(); c.checkpoint && st.Checkpoints < uint64(b.N) {
				b.Fatalf("%d checkpoints for %d ops", st.Checkpoints, b.N)
			}
		})
	}
}

// BenchmarkCheckpointSignOpen is the signature work alone: signing a
// checkpoint, and opening (verifying and parsing) one.
func BenchmarkCheckpointSignOpen(b *testing.B) {
	k := newTestKey(b, "bench")
	c := audit.Checkpoint{Origin: "bench/audit", Size: 123456, Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	b.Run("sign", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Sign(k.signer); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("open", func(b *testing.B) {
		sc, _ := c.Sign(k.signer)
		known := []note.Verifier{k.verifier}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := audit.OpenCheckpoint(sc.Note, known); err != nil {
				b.Fatal(err)
			}
		}
	})
}
