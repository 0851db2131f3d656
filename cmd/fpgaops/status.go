package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newStatusCommand(s streams) *cobra.Command {
	var stateDir, server, output string
	cmd := &cobra.Command{
		Use:   "status (--state-dir DIR | --server URL) [-o json]",
		Short: "Show the controller's status: revisions, conditions, nodes",
		Long: `Status shows what the controller last did: the revision in force (last
applied) and the last one attempted, as full commit hashes, the Ready,
Reconciling and Stalled conditions with their reasons, per node what the
last run changed and what remains, what is held back now and why, the last
failure with the changes that failed, the VMs left degraded, and a run that
awaits approval. It reads the state directory, which works while the
controller runs, or with --server asks a running controller.`,
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
			render.Status(s.out, st)
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
