package main

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
)

func newApproveCommand(s streams) *cobra.Command {
	var f adminFlags
	cmd := &cobra.Command{
		Use:   "approve RUN --server URL [--admin-token-file FILE]",
		Short: "Approve the disruptive changes a controller's run holds back",
		Long: `Under the policy's approval: manual, the controller plans disruptive changes
(a VM loses a function, is restarted or replaced) but holds them back, with
gate approval, until a person approves the run that planned them. Approve
lets them go ahead and starts a run that makes them, within the windows and
the budget. Only the run that awaits approval, as 'fpgaops status' names
it, can be approved; a newer revision needs its own approval. The admin
token is read from --admin-token-file or FPGAOPS_ADMIN_TOKEN.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			run, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || run == 0 {
				return fmt.Errorf("run %q: want a run number, as 'fpgaops status' names it", args[0])
			}
			c, err := f.client()
			if err != nil {
				return err
			}
			st, err := c.Approve(cmd.Context(), run)
			if err != nil {
				return err
			}
			if a := st.Approved; a != nil {
				fmt.Fprintf(s.out, "Approved run %d: %d disruptive change(s) of revision %s go ahead.\n", a.Run, a.Left, a.Revision)
			}
			if st.Suspended {
				fmt.Fprintln(s.out, "The controller is suspended: they are made once it resumes.")
			}
			return nil
		},
	}
	f.register(cmd)
	return cmd
}
