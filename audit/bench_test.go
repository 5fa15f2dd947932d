package audit_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/audit"
	"github.com/gatehouse-dev/gatehouse/audit/audittest"
)

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportRates adds events/s (wall) and CPU time per event.
func reportRates(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/event")
}

// BenchmarkFileSink measures the hash-chained file sink: encoding, chain
// hashing and writing, with a realistic fully populated event (about 1.3
// KiB of JSON). "sync" acknowledges each event after its write(2) (group
// commit across concurrent writers), "buffered" after queueing it
// (FlushInterval 100ms, 256 KiB batches); "parallel" runs 32 writers per
// GOMAXPROCS, like concurrent requests of a gateway.
func BenchmarkFileSink(b *testing.B) {
	cases := []struct {
		name     string
		cfg      audit.FileConfig
		parallel bool
	}{
		{"sync/1-writer", audit.FileConfig{}, false},
		{"sync/parallel", audit.FileConfig{}, true},
		{"sync+fsync/parallel", audit.FileConfig{Sync: true}, true},
		{"buffered/1-writer", audit.FileConfig{FlushInterval: 100 * time.Millisecond}, false},
		{"buffered/parallel", audit.FileConfig{FlushInterval: 100 * time.Millisecond}, true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			cfg := c.cfg
			cfg.Dir = b.TempDir()
			cfg.MaxBytes = 256 << 20
			s, err := audit.NewFileSink(cfg)
			if err != nil {
				b.Fatal(err)
			}
			e := audittest.NewEvent(1)
			ctx := context.Background()
			b.ReportAllocs()
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
				}
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			reportRates(b, cpu0)
		})
	}
}

// BenchmarkAsyncWrite measures what Async costs the request path: the
// time one Write call takes (validate, clone, enqueue), as a median and
// 99th percentile over every call, with a buffered FileSink or Discard
// behind it. The queue is large enough that writers do not wait on the
// back end; ns/op includes the sampling overhead (two clock reads).
func BenchmarkAsyncWrite(b *testing.B) {
	backends := []struct {
		name string
		open func(b *testing.B) audit.Sink
	}{
		{"discard", func(b *testing.B) audit.Sink { return audit.Discard }},
		{"file-buffered", func(b *testing.B) audit.Sink {
			s, err := audit.NewFileSink(audit.FileConfig{Dir: b.TempDir(), FlushInterval: 100 * time.Millisecond, MaxBytes: 256 << 20})
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			a, err := audit.NewAsync(be.open(b), audit.AsyncConfig{Queue: 1 << 16, CloseTimeout: time.Minute})
			if err != nil {
				b.Fatal(err)
			}
			e := audittest.NewEvent(1)
			ctx := context.Background()
			lat := make([]time.Duration, 0, 1<<20)
			var mu sync.Mutex
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				t0 := time.Now()
				if err := a.Write(ctx, e); err != nil {
					b.Fatal(err)
				}
				d := time.Since(t0)
				if len(lat) < cap(lat) {
					lat = append(lat, d)
				}
			}
			b.StopTimer()
			cpu := cpuTime() - cpu0
			if err := a.Close(); err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "median-ns")
			b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
			mu.Unlock()
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/event")
		})
	}
}

// BenchmarkVerify measures chain verification (parse, hash, link).
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	s, err := audit.NewFileSink(audit.FileConfig{Dir: dir, FlushInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	const n = 20000
	for i := range n {
		s.Write(context.Background(), audittest.NewEvent(i))
	}
	s.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "audit-*.jsonl"))
	b.ResetTimer()
	for b.Loop() {
		rep, err := audit.Verify(files...)
		if err != nil || !rep.OK() {
			b.Fatal(err, rep.Problems)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkEncode is the per-event JSON cost every sink pays.
func BenchmarkEncode(b *testing.B) {
	e := audittest.NewEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := audit.Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}
