package main

import "github.com/spf13/cobra"

func newSimCommand(s streams) *cobra.Command {
	c := &cobra.Command{
		Use:   "sim",
		Short: "Generate and serve simulated FPGA fleets",
	}
	c.AddCommand(newSimGenCommand(s), newSimServeCommand(s))
	return c
}
