//go:build !unix

package e2e

import "time"

// cpuTime is unknown where the system has no getrusage.
func cpuTime() (time.Duration, bool) { return 0, false }
