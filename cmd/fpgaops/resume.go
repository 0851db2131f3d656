package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newResumeCommand(s streams) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "resume --server URL [--admin-token-file FILE]",
		Short: "Resume a suspended controller's runs",
		Long: `Resume lets a suspended controller run again on its schedule, on webhooks
and by hand; its next scheduled run comes as the schedule says. To run at
once, follow with reconcile. The admin token is read from --admin-token-file or
FPGAOPS_ADMIN_TOKEN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client()
			if err != nil {
				return err
			}
			st, err := c.Resume(cmd.Context())
			if err != nil {
				return err
			}
			if st.Suspended {
				return fmt.Errorf("controller %s: still suspended", c.Server)
			}
			fmt.Fprintf(s.out, "Resumed %s.\n", st.Source)
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
