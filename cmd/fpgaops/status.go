package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/ha"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newStatusCommand(s streams) *cobra.Command {
	var (
		stateDir, server, output string
		etcd                     etcdFlags
	)
	cmd := &cobra.Command{
		Use:   "status [--state-dir DIR | --server URL | --etcd URLS [--etcd-prefix P]] [-o json]",
		Short: "Show the controller's status: revisions, conditions, nodes",
		Long: `Status shows what the controller last did: the revision in force (last
applied) and the last one attempted, as full commit hashes, the Ready,
Reconciling and Stalled conditions with their reasons, per node what the
last run changed and what remains, what is held back now and why, the last
failure with the changes that failed, the VMs left degraded, the rollout,
and a run that awaits approval. It reads the state directory, which works
while the controller runs, or with --server asks a running controller, or
with --etcd reads the state that controllers sharing a fleet keep in etcd,
and says which of them leads. Without any, it reads the default state
directory, as plan and apply do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			st, err := readStatus(cmd.Context(), stateDir, server, &etcd)
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
	cmd.Flags().StringVar(&stateDir, "state-dir", "", "the controller's state directory\n"+defaultStateHelp)
	cmd.Flags().StringVar(&server, "server", "", "a running controller's URL (http://ADDR)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	etcd.register(cmd.Flags())
	return cmd
}

func checkOutput(o string) error {
	switch o {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", o)
}

func readStatus(ctx context.Context, stateDir, server string, etcd *etcdFlags) (controller.Status, error) {
	var st controller.Status
	given := 0
	for _, on := range []bool{stateDir != "", server != "", etcd.on()} {
		if on {
			given++
		}
	}
	switch {
	case given > 1:
		return st, fmt.Errorf("give one of --state-dir, --server and --etcd")
	case etcd.on():
		return etcdStatus(ctx, etcd)
	case server != "":
		return controller.NewClient(server, nil).Status(ctx)
	}
	dir, err := stateDirOr(stateDir)
	if err != nil {
		return st, err
	}
	store, err := state.Open(dir, state.Options{ReadOnly: true})
	if err != nil {
		return st, err
	}
	found, err := store.Status(&st)
	if err == nil && !found {
		err = fmt.Errorf("state dir %s: %w", dir, state.ErrNoState)
	}
	return st, err
}

// etcdStatus reads the leader's status from etcd, and who leads now.
func etcdStatus(ctx context.Context, etcd *etcdFlags) (controller.Status, error) {
	var st controller.Status
	store, client, err := etcd.reader()
	if err != nil {
		return st, err
	}
	defer client.Close()
	found, err := store.Status(&st)
	if err == nil && !found {
		err = fmt.Errorf("etcd %s: %w", etcd.prefix, state.ErrNoState)
	}
	if err != nil {
		return st, err
	}
	term, err := ha.CurrentLeader(ctx, client, etcd.prefix)
	if err != nil {
		return st, err
	}
	leader := term.Status()
	st.Leader = &leader
	return st, nil
}

func writeIndented(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
