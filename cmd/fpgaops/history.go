package main

import (
	"fmt"
	"strconv"

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
	// open opens the history for reading; done lets it go.
	open := func() (store state.Store, done func(), err error) {
		if err := checkOutput(output); err != nil {
			return nil, nil, err
		}
		switch {
		case stateDir != "" && etcd.on():
			return nil, nil, fmt.Errorf("give --state-dir or --etcd, not both")
		case etcd.on():
			shared, client, err := etcd.reader()
			if err != nil {
				return nil, nil, err
			}
			return shared, func() { client.Close() }, nil
		}
		dir, err := stateDirOr(stateDir)
		if err != nil {
			return nil, nil, err
		}
		local, err := state.Open(dir, state.Options{ReadOnly: true})
		if err != nil {
			return nil, nil, err
		}
		return local, func() { local.Close() }, nil
	}
	cmd := &cobra.Command{
		Use:   "history [--state-dir DIR | --etcd URLS [--etcd-prefix P]] [-n N] [-o json]",
		Short: "List the controller's runs, newest first",
		Long: `History lists the controller's runs from its state directory, newest first:
when each started, what triggered it, the revision (a full commit hash in
JSON), how it ended, how long it took, what it changed, failed and held
back, and how many differences were left. 'history show RUN' shows one run
change by change. It works while the controller runs. With --etcd it reads
the history that controllers sharing a fleet keep in etcd.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			store, done, err := open()
			if err != nil {
				return err
			}
			defer done()
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
	show := &cobra.Command{
		Use:   "show RUN [--state-dir DIR | --etcd URLS [--etcd-prefix P]] [-o json]",
		Short: "Show one run change by change",
		Long: `Show prints one run of the history: what triggered it, the revision, how it
ended, and each change that was not a no-op with its outcome, attempts and
time, why it was held back (the gate and its reason) or how it failed. The
history keeps up to 1000 changes of a run, those that failed or were held
first; the rest are counted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("run %q: want a run number, as 'fpgaops history' lists them", args[0])
			}
			store, done, err := open()
			if err != nil {
				return err
			}
			defer done()
			run, err := store.Run(id)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeIndented(s.out, run)
			}
			render.Run(s.out, run)
			return nil
		},
	}
	cmd.PersistentFlags().StringVar(&stateDir, "state-dir", "", "the controller's state directory\n"+defaultStateHelp)
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	etcd.register(cmd.PersistentFlags())
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "show at most N runs (0: all)")
	cmd.AddCommand(show)
	return cmd
}
