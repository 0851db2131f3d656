package main

import (
	"fmt"

	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newHistoryCommand(s streams) *cobra.Command {
	var (
		stateDir, output string
		limit            int
		etcd             etcdFlags
	)
	cmd := &cobra.Command{
		Use:   "history [--state-dir DIR | --etcd URLS [--etcd-prefix P]] [-n N] [-o json]",
		Short: "List the controller's runs, newest first",
		Long: `History lists the controller's runs from its state directory, newest first:
when each started, what triggered it, the revision (a full commit hash in
JSON), how it ended, how long it took, what it changed and how many
differences were left. It works while the controller runs. With --etcd it
reads the history that controllers sharing a fleet keep in etcd.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var store state.Store
			switch {
			case stateDir != "" && etcd.on():
				return fmt.Errorf("give --state-dir or --etcd, not both")
			case etcd.on():
				shared, client, err := etcd.reader()
				if err != nil {
					return err
				}
				defer client.Close()
				store = shared
			default:
				dir, err := stateDirOr(stateDir)
				if err != nil {
					return err
				}
				local, err := state.Open(dir, state.Options{ReadOnly: true})
				if err != nil {
					return err
				}
				store = local
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
	etcd.register(cmd.Flags())
	return cmd
}
