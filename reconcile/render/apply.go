package render

import (
	"fmt"
	"io"

	"github.com/fpgaops/fpgaops/plans"
)

// Applied writes apply's closing lines: how the changes ended, and the
// changes that wait for a VM's restart (not failures, since the VMs'
// definitions are changed, but not done either: the next plan shows them
// again).
func Applied(w io.Writer, c plans.Counts, results []plans.Result, complete bool) {
	state := "complete"
	if !complete {
		state = "incomplete"
	}
	line := fmt.Sprintf("\nApply %s: %d applied, %d skipped (done before), %d failed, %d blocked, %d held back.",
		state, c.Applied, c.Skipped, c.Failed, c.Blocked, c.Held)
	if c.NotRun > 0 {
		line += fmt.Sprintf(" %d not started.", c.NotRun)
	}
	fmt.Fprintln(w, line)
	if c.PendingRestart == 0 {
		return
	}
	fmt.Fprintf(w, "%d change(s) wait for a VM's restart:\n", c.PendingRestart)
	for _, r := range results {
		if r.Status == plans.StatusPendingRestart {
			fmt.Fprintln(w, "  "+r.Error)
		}
	}
}

// Failures writes each failed change's error, one a line.
func Failures(w io.Writer, results []plans.Result) {
	for _, r := range results {
		if r.Status == plans.StatusFailed {
			fmt.Fprintln(w, "Error:", r.Error)
		}
	}
}
