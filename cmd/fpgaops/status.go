package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

func newStatusCommand(s streams) *cobra.Command {
	var stateDir, server, output string
	cmd := &cobra.Command{
		Use:   "status (--state-dir DIR | --server URL) [-o json]",
		Short: "Show the controller's status: revisions, conditions, nodes",
		Long: `Status shows what the controller last did: the revision in force (last
applied) and the last one attempted, as full commit hashes, the Ready,
Reconciling and Stalled conditions with their reasons, and per node what the
last run changed and what remains. It reads the state directory, which works
while the controller runs, or with --server asks a running controller.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			st, err := readStatus(cmd.Context(), stateDir, server)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(s.out, st)
			}
			printStatus(s.out, st)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the controller's state directory")
	cmd.Flags().StringVar(&server, "server", "", "a running controller's URL (http://ADDR)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func checkOutput(o string) error {
	switch o {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", o)
}

func readStatus(ctx context.Context, stateDir, server string) (controller.Status, error) {
	var st controller.Status
	switch {
	case stateDir != "" && server != "":
		return st, fmt.Errorf("give --state-dir or --server, not both")
	case server != "":
		return controller.NewClient(server, nil).Status(ctx)
	case stateDir != "":
		store, err := state.Open(stateDir, state.Options{ReadOnly: true})
		if err != nil {
			return st, err
		}
		found, err := store.Status(&st)
		if err == nil && !found {
			err = fmt.Errorf("state dir %s: %w", stateDir, state.ErrNoState)
		}
		return st, err
	}
	return st, fmt.Errorf("give --state-dir or --server")
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatus(w io.Writer, st controller.Status) {
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
	if st.LastRun != nil && len(st.LastRun.Problems) > 0 {
		fmt.Fprintf(w, "\nRevision %s was rejected:\n", st.LastRun.Revision)
		for _, p := range st.LastRun.Problems {
			fmt.Fprintf(w, "  %s\n", spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message})
		}
	}
}
