package render

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
)

// Status writes a controller's status for a reader: revisions, the next
// run, the conditions, the last run per node, and a rejected revision's
// problems.
func Status(w io.Writer, st controller.Status) {
	when := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return " at " + t.UTC().Format(time.RFC3339)
	}
	or := func(s, dflt string) string {
		if s == "" {
			return dflt
		}
		return s
	}
	fmt.Fprintf(w, "Source:     %s\n", st.Source)
	if l := st.Leader; l != nil {
		line := fmt.Sprintf("Leader:     %s%s (term %d) %s", or(l.Leader, "none"), strings.Replace(when(l.Since), "at", "since", 1), l.Term, l.Error)
		fmt.Fprintln(w, strings.TrimSpace(line))
	}
	if st.Suspended {
		fmt.Fprintln(w, "Suspended:  yes (no scheduled or triggered runs)")
	}
	fmt.Fprintf(w, "Applied:    %s%s\n", or(st.LastAppliedRevision, "none"), when(st.LastAppliedAt))
	fmt.Fprintf(w, "Attempted:  %s%s\n", or(st.LastAttemptedRevision, "none"), when(st.LastAttemptedAt))
	if st.NextRunAt != nil {
		fmt.Fprintf(w, "Next run:   %s\n", st.NextRunAt.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(w, "Violations: %d\nDrift:      %d\n\n", st.Violations, st.Drift)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONDITION\tSTATUS\tREASON\tMESSAGE")
	for _, c := range st.Conditions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	tw.Flush()
	if len(st.Nodes) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tSTATE\tCARDS\tCHANGED\tFAILED\tPENDING\tDRIFT")
		for _, n := range st.Nodes {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", n.Name, n.State, n.Cards, n.Changes, n.Failed, n.Pending, n.Drift)
		}
		tw.Flush()
	}
	if a := st.Awaiting; a != nil {
		fmt.Fprintf(w, "\nAwaiting approval: run %d holds %d disruptive change(s) of revision %s since %s; approve with: fpgaops approve %d\n",
			a.Run, a.Total, a.Revision, a.Since.UTC().Format(time.RFC3339), a.Run)
	}
	if a := st.Approved; a != nil {
		fmt.Fprintf(w, "\nApproved: run %d at %s; %d change(s) of revision %s still to make\n", a.Run, a.At.UTC().Format(time.RFC3339), a.Left, a.Revision)
	}
	if len(st.Held) > 0 {
		fmt.Fprintf(w, "\nHeld back (%d):\n", st.HeldTotal)
		writeChanges(w, st.Held, st.HeldTotal)
	}
	if f := st.LastFailure; f != nil {
		fmt.Fprintf(w, "\nLast failure: run %d at %s, %s", f.Run, f.At.UTC().Format(time.RFC3339), f.Outcome)
		if f.Revision != "" {
			fmt.Fprintf(w, ", revision %s", f.Revision)
		}
		fmt.Fprintln(w)
		if f.Error != "" {
			fmt.Fprintf(w, "  %s\n", f.Error)
		}
		writeChanges(w, f.Changes, f.Total)
	}
	if len(st.Degraded) > 0 {
		fmt.Fprintf(w, "\nDegraded VMs (%d): the next run gives them back what they lack\n", len(st.Degraded))
		for _, d := range st.Degraded {
			fmt.Fprintf(w, "  %s on %s lacks %s %s: %s\n", d.VM, d.Node, d.Card, d.Function, d.Reason)
		}
	}
	if st.LastRun != nil && len(st.LastRun.Problems) > 0 {
		fmt.Fprintf(w, "\nRevision %s was rejected:\n", st.LastRun.Revision)
		for _, p := range st.LastRun.Problems {
			fmt.Fprintf(w, "  %s\n", spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message})
		}
	}
}

// Quarantine lists quarantined cards.
func Quarantine(w io.Writer, qs []state.Quarantine) {
	if len(qs) == 0 {
		fmt.Fprintln(w, "No card is quarantined.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CARD\tSINCE\tREASON")
	for _, q := range qs {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", q.Card, q.Since.UTC().Format(time.RFC3339), q.Reason)
	}
	tw.Flush()
}

// Rollout shows the policy's rollout: where it is, each step, what failed.
func Rollout(w io.Writer, r *rollout.State, ctl state.RolloutControl) {
	if r == nil {
		fmt.Fprintln(w, "No rollout yet.")
		return
	}
	fmt.Fprintln(w, RolloutLine(r))
	if ctl.Paused {
		fmt.Fprintln(w, "Paused by an operator: no more cards are released until `fpgaops rollout resume`.")
	}
	if len(r.Steps) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nSTEP\tCARDS\tSTARTED\tBAKED\tSTATE")
	for i, st := range r.Steps {
		fmt.Fprintf(tw, "%d (%s)\t%d\t%s\t%s\t%s\n", i+1, st.Label, st.Cards, stamp(st.Started), stamp(st.Baked), r.StepState(i))
	}
	tw.Flush()
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
