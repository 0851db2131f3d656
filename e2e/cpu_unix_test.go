//go:build unix

package e2e

import (
	"syscall"
	"time"
)

// cpuTime is the CPU time (user and system) the process has used: the
// sim and the controller together, in these benchmarks. A busy machine
// inflates it less than the wall time.
func cpuTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
