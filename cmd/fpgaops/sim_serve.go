package main

import (
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

func newSimServeCommand(s streams) *cobra.Command {
	var (
		repo, listen, stateDir string
		latency                time.Duration
		failRate               float64
		seed                   int64
	)
	c := &cobra.Command{
		Use:   "serve --repo DIR [--listen ADDR]",
		Short: "Serve every node of a fleet repository as a simulated fleet",
		Long: `Serve every node of the fleet in DIR through the node agent's API, from
one process: node NAME answers at http://ADDR/nodes/NAME (point the node's
endpoint there; 'fpgaops sim gen --endpoint' does), GET /sim/stats counts
programs, attaches, detaches and violations.

Each node has fake FPGA cards that behave like hardware, and the VMs its
bindings name, running and holding nothing at first. Programming a card, or
changing its VFs, while a running VM holds one of its functions is refused
and counted as a violation. The sim serves plain HTTP, so only on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if repo == "" {
				return fmt.Errorf("--repo is required")
			}
			if err := agent.CheckListen(listen, nil, true); err != nil {
				return err
			}
			fleet, err := spec.Load(repo)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(s.err, nil))
			fs, err := sim.New(fleet, sim.Options{
				StateDir: stateDir, Latency: latency, FailRate: failRate, Seed: seed, Log: log,
			})
			if err != nil {
				return err
			}
			defer fs.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(s.out, "Simulated fleet of %d nodes at http://%s (node NAME answers at http://%s/nodes/NAME;\n'fpgaops sim gen --endpoint http://%s/nodes/{node}' writes fleets that point here)\n",
				len(fleet.Nodes), ln.Addr(), ln.Addr(), ln.Addr())
			return agent.Serve(ctx, agent.NewHTTPServer(fs.Handler(), nil), ln)
		},
	}
	f := c.Flags()
	f.StringVar(&repo, "repo", "", "fleet repository whose nodes to serve")
	f.StringVar(&listen, "listen", "127.0.0.1:9440", "loopback address to serve on")
	f.StringVar(&stateDir, "state-dir", "", "keep the fleet's state here across restarts (default: a temporary directory)")
	f.DurationVar(&latency, "latency", 0, "delay added to every node request")
	f.Float64Var(&failRate, "fail-rate", 0, "share (0..1) of node requests answered 503, chosen from --seed")
	f.Int64Var(&seed, "seed", 1, "seed of the injected faults")
	return c
}
