package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newHistoryCommand(s streams) *cobra.Command {
	var (
		stateDir, output string
		limit            int
	)
	cmd := &cobra.Command{
		Use:   "history --state-dir DIR [-n N] [-o json]",
		Short: "List the controller's runs, newest first",
		Long: `History lists the controller's runs from its state directory, newest first:
when each started, what triggered it, the revision (a full commit hash in
JSON), how it ended, how long it took, what it changed and how many
differences were left. It works while the controller runs.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			if stateDir == "" {
				return fmt.Errorf("--state-dir is required")
			}
			store, err := state.Open(stateDir, state.Options{ReadOnly: true})
			if err != nil {
				return err
			}
			runs, err := store.Runs(limit)
			if err != nil {
				return err
			}
			if output == "json" {
				if runs == nil {
					runs = []state.Run{}
				}
				return writeIndented(s.out, runs)
			}
			printHistory(s.out, runs)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the controller's state directory")
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most N runs (0: all)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func printHistory(w io.Writer, runs []state.Run) {
	if len(runs) == 0 {
		fmt.Fprintln(w, "No runs yet.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tSTARTED\tTRIGGER\tREVISION\tOUTCOME\tDURATION\tCHANGED\tVIOLATIONS\tERROR")
	for _, r := range runs {
		rev := r.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if rev == "" {
			rev = "-"
		}
		msg := r.Error
		if len(msg) > 100 {
			msg = msg[:97] + "..."
		}
		// CHANGED counts the cloud's applied changes with the fleet's.
		changed := r.Results["applied"]
		if r.OpenStack != nil {
			changed += r.OpenStack.Results["applied"]
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", r.ID, r.StartedAt.UTC().Format(time.RFC3339), r.Trigger, rev,
			r.Outcome, time.Duration(r.DurationSeconds*float64(time.Second)).Round(time.Millisecond), changed, r.Violations, msg)
	}
	tw.Flush()
}
