//go:build unix

package policy

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time the process has used. The
// benchmarks report it per operation next to wall time, because wall time
// is unreliable on machines shared with other work.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
