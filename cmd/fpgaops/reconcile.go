package main

import (
	"context"
	"fmt"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/spf13/cobra"
)

func newReconcileCommand(s streams) *cobra.Command {
	var (
		f       adminFlags
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reconcile --server URL [--admin-token-file FILE] [--wait [--timeout D]]",
		Short: "Make a running controller run now",
		Long: `Reconcile asks a running controller to fetch, validate and apply its
repository now instead of at its next scheduled run. A suspended controller
refuses (exit 1). With --wait it then follows the controller's status until
the run it asked for has finished, prints the run's revision and outcome,
and exits 1 unless the revision was applied. The admin token is read from
--admin-token-file or FPGAOPS_ADMIN_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if !wait {
				if err := c.Reconcile(ctx); err != nil {
					return err
				}
				fmt.Fprintf(s.out, "Run triggered on %s.\n", c.Server)
				return nil
			}
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			before, err := c.Status(ctx)
			if err != nil {
				return err
			}
			if err := c.Reconcile(ctx); err != nil {
				return err
			}
			var last uint64
			if before.LastRun != nil {
				last = before.LastRun.ID
			}
			run, err := c.WaitRun(ctx, last, controller.RunsToWaitFor(before), 200*time.Millisecond)
			if err != nil {
				return err
			}
			return reportRun(s, c.Server, run)
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the run to finish; exit 1 if it did not apply")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "with --wait, how long to wait")
	return cmd
}

// reportRun prints a finished run and fails unless it applied.
func reportRun(s streams, server string, run state.Run) error {
	rev := run.Revision
	if rev == "" {
		rev = "(none fetched)"
	}
	if run.Outcome == state.OutcomeApplied {
		fmt.Fprintf(s.out, "Run %d applied revision %s: %d change(s), %d violation(s).\n",
			run.ID, rev, run.Results.Applied, run.Violations)
		return nil
	}
	fmt.Fprintf(s.out, "Run %d on revision %s: %s.\n", run.ID, rev, run.Outcome)
	return fmt.Errorf("controller %s: run %d %s: %s", server, run.ID, run.Outcome, run.Error)
}
