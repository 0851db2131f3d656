package main

import (
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newHistoryCommand(s streams) *cobra.Command {
	var (
		stateDir, output string
		limit            int
	)
	cmd := &cobra.Command{
		Use:   "history [--state-dir DIR] [-n N] [-o json]",
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
			dir, err := stateDirOr(stateDir)
			if err != nil {
				return err
			}
			store, err := state.Open(dir, state.Options{ReadOnly: true})
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
			render.History(s.out, runs)
			return nil
		},
	}
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the controller's state directory\n"+defaultStateHelp)
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most N runs (0: all)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}
