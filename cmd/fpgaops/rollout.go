package main

import (
	"errors"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newRolloutCommand(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Show, pause, resume or abort the policy's rollout",
		Long: `A Policy with a rollout takes each revision's new bitstreams to the fleet in
steps, each step's cards healthy for the bake time before the next
(docs/policy.md, "Rollouts"). These commands show where it is and act on
a running controller: pause releases no more cards, resume goes on, abort
stops the revision's rollout for good (its cards wait for a new commit).
Each takes effect at once: the controller makes a run.`,
	}
	cmd.AddCommand(newRolloutStatusCommand(s))
	for _, a := range []struct{ name, short string }{
		{"pause", "Release no more cards until resume"},
		{"resume", "Release cards again"},
		{"abort", "Stop the revision's rollout: its cards wait for a new commit"},
	} {
		cmd.AddCommand(newRolloutActionCommand(s, a.name, a.short))
	}
	return cmd
}

func newRolloutStatusCommand(s streams) *cobra.Command {
	var (
		f      stateOrServer
		output string
	)
	cmd := &cobra.Command{
		Use:   "status (--state-dir DIR | --server URL) [-o json]",
		Short: "Where the rollout is: each step, its cards, what failed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(checkOutput(output), f.check()); err != nil {
				return err
			}
			var a controller.RolloutAnswer
			if f.admin.server != "" {
				var err error
				if a, err = controller.NewClient(f.admin.server, nil).Rollout(cmd.Context()); err != nil {
					return err
				}
			} else {
				store, err := state.Open(f.stateDir, state.Options{ReadOnly: true})
				if err != nil {
					return err
				}
				if a.Rollout, err = store.Rollout(); err != nil {
					return err
				}
				if a.Control, err = store.RolloutControl(); err != nil {
					return err
				}
			}
			if output == "json" {
				return writeIndented(s.out, a)
			}
			render.Rollout(s.out, a.Rollout, a.Control)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newRolloutActionCommand(s streams, action, short string) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   action + " --server URL",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			a, err := c.RolloutAction(cmd.Context(), action)
			if err != nil {
				return err
			}
			render.Rollout(s.out, a.Rollout, a.Control)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
