package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newSuspendCommand(s streams) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "suspend --server URL [--admin-token-file FILE]",
		Short: "Suspend a running controller's scheduled and triggered runs",
		Long: `Suspend stops a running controller from starting runs, on its schedule,
on webhooks or by hand, until resume. A run in flight finishes. The
controller keeps the suspension in its state directory, so it holds across
restarts. The admin token is read from --admin-token-file or FPGAOPS_ADMIN_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			st, err := c.Suspend(cmd.Context())
			if err != nil {
				return err
			}
			if !st.Suspended {
				return fmt.Errorf("controller %s: still not suspended", c.Server)
			}
			fmt.Fprintf(s.out, "Suspended %s.\n", st.Source)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
