package render

import (
	"fmt"
	"io"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/execute"
)

// Applied writes apply's closing lines: how the changes ended; why the
// run stopped early, if it did; what was put back after a failure and the
// VMs left without a function they had; and the changes that wait for a
// VM's restart (not failures, since the VMs' definitions are changed, but
// not done either: the next plan shows them again).
func Applied(w io.Writer, rep *execute.Report, complete bool) {
	c := rep.Counts
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
	if rep.Stopped != "" {
		fmt.Fprintln(w, "The apply "+rep.Stopped+".")
	}
	for _, p := range rep.Compensations {
		if p.OK {
			fmt.Fprintf(w, "Put back after %s failed: %s.\n", p.Change, p.What)
		} else {
			fmt.Fprintf(w, "Could not put back after %s failed: %s: %s\n", p.Change, p.What, p.Error)
		}
	}
	for _, d := range rep.Degraded {
		fmt.Fprintf(w, "DEGRADED: %s on %s is left without %s %s: %s. The next run puts it back.\n", d.VM, d.Node, d.Card, d.Function, d.Reason)
	}
	if c.PendingRestart == 0 {
		return
	}
	fmt.Fprintf(w, "%d change(s) wait for a VM's restart:\n", c.PendingRestart)
	for _, r := range rep.Results {
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
