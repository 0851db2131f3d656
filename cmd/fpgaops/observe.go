package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

func newObserveCommand(s streams) *cobra.Command {
	var repo, out string
	f := newEngineFlags()
	cmd := &cobra.Command{
		Use:   "observe --repo DIR --out FILE",
		Short: "Save what the fleet runs now as a snapshot that plan --observed reads",
		Long: `Observe reaches every node the repository's Node documents name, as plan
does (their agents at their endpoints, their VMs through their backend),
and saves what it found: each node's cards (PR interface, AFU, VFs, health)
and its VMs with the PCI functions they hold, or why the node is unknown.
'fpgaops plan --repo DIR --observed FILE' plans against the snapshot
without reaching the fleet. The format is in docs/observed.md. With
--out -, the snapshot goes to stdout. Nothing on the fleet is changed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var errs []error
			if repo == "" {
				errs = append(errs, errors.New("--repo is required"))
			}
			if out == "" {
				errs = append(errs, errors.New("--out is required (- for stdout)"))
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			desired, err := spec.Load(repo)
			if err != nil {
				return err
			}
			obs, err := f.observe(cmd.Context(), s, desired)
			if err != nil {
				return err
			}
			if out == "-" {
				return writeIndented(s.out, obs)
			}
			var buf bytes.Buffer
			if err := writeIndented(&buf, obs); err != nil {
				return err
			}
			if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(s.out, "Observed %s. Saved to %s; plan against it with: fpgaops plan --repo %s --observed %s\n",
				render.ObservedSummary(obs), out, repo, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&repo, "repo", "", "fleet repository directory: the nodes to observe")
	cmd.Flags().StringVar(&out, "out", "", "file to write the snapshot to (- for stdout)")
	f.register(cmd.Flags(), "")
	return cmd
}

// observe observes the desired fleet's nodes, with the observation's
// progress on a terminal: what observe and import do.
func (f *engineFlags) observe(ctx context.Context, s streams, desired *spec.Fleet) (*observed.Fleet, error) {
	e := f.engine(nil, warnings(s))
	done := observing(s, e, len(desired.Nodes))
	defer done()
	return e.Observe(ctx, desired)
}
