package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

func newSimGenCommand(s streams) *cobra.Command {
	var opts fleetgen.Options
	cmd := &cobra.Command{
		Use:   "gen --nodes N [--fpgas-per-node K] [--seed S] [--endpoint URL] --out DIR",
		Short: "Write a synthetic, valid fleet repository",
		Long: `Gen writes a fleet repository of N nodes with K FPGA cards each (boards
mixed), a few shared GBS files, one binding per card and a policy that lets
every change through at any hour, so that a simulated fleet converges in one
apply.

The same N and K always give the same nodes, cards and VMs; the seed only
chooses which of its board's bitstreams each card runs, so regenerating with
the next seed changes every binding. Files gen owns in DIR are replaced.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := fleetgen.Generate(opts); err != nil {
				return err
			}
			k := opts.FPGAsPerNode
			if k == 0 {
				k = 4
			}
			fmt.Fprintf(s.out, "%s: %d nodes, %d FPGAs, %d bindings (seed %d)\n", opts.Dir, opts.Nodes, opts.Nodes*k, opts.Nodes*k, opts.Seed)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&opts.Nodes, "nodes", 0, "number of nodes")
	f.IntVar(&opts.FPGAsPerNode, "fpgas-per-node", 4, fmt.Sprintf("FPGA cards per node (1 to %d)", fleetgen.MaxFPGAsPerNode))
	f.Int64Var(&opts.Seed, "seed", 1, "chooses each binding's bitstream")
	f.StringVar(&opts.Endpoint, "endpoint", "", "URL written into every node's endpoint\n(default: https://<node>.fleet.example:9443)")
	f.StringVar(&opts.Dir, "out", "", "repository directory to write")
	_ = cmd.MarkFlagRequired("nodes")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}
