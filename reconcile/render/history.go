package render

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// History writes the runs, one line each, newest first as given.
func History(w io.Writer, runs []state.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "No runs yet.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tTRIGGER\tREVISION\tOUTCOME\tDURATION\tCHANGED\tFAILED\tHELD\tVIOLATIONS\tERROR")
	for _, r := range runs {
		rev := r.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev == "" {
			rev = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.StartedAt.UTC().Format(time.RFC3339), r.Trigger, rev,
			r.Outcome, seconds(r.DurationSeconds), r.Results.Applied, r.Results.Failed, r.Results.Held, r.Violations, clip(r.Error, 100))
	}
	tw.Flush()
}

// Run writes one run of the history change by change: what started it
// and how it ended, then each change with its outcome, and below it why
// it was held, or its error.
func Run(w io.Writer, r *state.Run) {
	fmt.Fprintf(w, "Run %d: %s, triggered by %s\n", r.ID, r.Outcome, r.Trigger)
	fmt.Fprintf(w, "Started:   %s (took %s)\n", r.StartedAt.UTC().Format(time.RFC3339), seconds(r.DurationSeconds))
	if r.Revision != "" {
		rev := r.Revision
		if r.Subject != "" {
			rev += " (" + r.Subject + ")"
		}
		fmt.Fprintf(w, "Revision:  %s\n", rev)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "Error:     %s\n", r.Error)
	}
	if r.Stopped != "" {
		fmt.Fprintf(w, "Stopped:   the apply %s\n", r.Stopped)
	}
	res := r.Results
	fmt.Fprintf(w, "Results:   %d applied, %d skipped, %d failed, %d blocked, %d held, %d wait for a restart, %d not run; %d violation(s), %d drifted\n",
		res.Applied, res.Skipped, res.Failed, res.Blocked, res.Held, res.PendingRestart, res.NotRun, r.Violations, r.Drift)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "Problem:   %s\n", spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message})
	}
	for _, c := range r.Compensations {
		if c.OK {
			fmt.Fprintf(w, "Put back:  after %s failed: %s\n", c.Change, c.What)
		} else {
			fmt.Fprintf(w, "Not put back: after %s failed: %s: %s\n", c.Change, c.What, c.Error)
		}
	}
	for _, d := range r.Degraded {
		fmt.Fprintf(w, "Degraded:  %s on %s lacks %s %s: %s\n", d.VM, d.Node, d.Card, d.Function, d.Reason)
	}
	if r.Scope > 0 {
		fmt.Fprintf(w, "Scope:     the %d node(s) the revision changed, observed fresh; the rest of the fleet waits for a full run\n", r.Scope)
	}
	if r.Rollout != "" {
		fmt.Fprintf(w, "Rollout:   %s\n", r.Rollout)
	}
	for _, ev := range r.RolloutEvents {
		fmt.Fprintf(w, "           %s\n", ev)
	}
	if len(r.Changes) == 0 {
		if r.ChangesOmitted == 0 {
			fmt.Fprintln(w, "\nNo changes.")
		}
		return
	}
	fmt.Fprintln(w)
	writeChanges(w, r.Changes, len(r.Changes)+r.ChangesOmitted)
}

// writeChanges writes changes as a table, each with a line below saying
// why it was held or how it failed, and how many of total are not shown.
// The columns are aligned by hand: a tabwriter would end its column
// block at each detail line.
func writeChanges(w io.Writer, changes []state.Change, total int) {
	rows := [][]string{{"CHANGE", "ACTION", "STATUS", "WAVE", "ATTEMPTS", "TOOK"}}
	for i := range changes {
		c := &changes[i]
		wave, attempts, took := "-", "-", "-"
		if c.Wave > 0 {
			wave = fmt.Sprint(c.Wave)
		}
		if c.Attempts > 0 {
			attempts = fmt.Sprint(c.Attempts)
		}
		if c.StartedAt != nil {
			took = seconds(c.DurationSeconds)
		}
		rows = append(rows, []string{c.ID, string(c.Action), status(c), wave, attempts, took})
	}
	width := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			width[i] = max(width[i], len(cell))
		}
	}
	for r, row := range rows {
		var b strings.Builder
		b.WriteString("  ")
		for i, cell := range row {
			if i == len(row)-1 {
				b.WriteString(cell)
				break
			}
			fmt.Fprintf(&b, "%-*s  ", width[i], cell)
		}
		fmt.Fprintln(w, b.String())
		if r == 0 {
			continue
		}
		if d := changeDetail(&changes[r-1]); d != "" {
			fmt.Fprintf(w, "      %s\n", d)
		}
	}
	if more := total - len(changes); more > 0 {
		fmt.Fprintf(w, "  ... and %d more\n", more)
	}
}

// status is how a change ended, or for a report that it only reports.
func status(c *state.Change) string {
	if c.Action == plans.ActionReport {
		return "reported"
	}
	return string(c.Status)
}

// changeDetail says why a change was held or how it failed; else why the
// plan has it.
func changeDetail(c *state.Change) string {
	switch {
	case c.Held != nil:
		return "held by " + string(c.Held.Gate) + ": " + c.Held.Why
	case c.Error != "":
		return "error: " + c.Error
	}
	return c.Reason
}

func seconds(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
}

func clip(s string, n int) string {
	if len(s) > n {
		return strings.TrimSpace(s[:n-3]) + "..."
	}
	return s
}
