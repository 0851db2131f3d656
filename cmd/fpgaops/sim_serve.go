package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"runtime/debug"
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
		timing                 sim.Timing
		faulty                 []string
	)
	c := &cobra.Command{
		Use:   "serve --repo DIR [--listen ADDR]",
		Short: "Serve every node of a fleet repository as a simulated fleet",
		Long: `Serve every node of the fleet in DIR through the node agent's API, from
one process: node NAME answers at http://ADDR/nodes/NAME (point the node's
endpoint there; 'fpgaops sim gen --endpoint' does), GET /sim/stats counts
programs, attaches, detaches and violations.

Each node has simulated FPGA cards, in memory, that behave like hardware,
and the VMs its bindings name, running and holding nothing at first.
Programming a card, or changing its VFs, while a running VM holds one of its
functions is refused and counted as a violation. --program-time and the
other times make each change take as long as on hardware, per card, so
that a schedule can be judged against the physical critical path. A card
running an AFU named by --faulty-afu reports an error on its port, so that
a rollout can be rehearsed. The sim serves plain HTTP, so only on loopback.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := sim.Options{
				StateDir: stateDir, Latency: latency, FailRate: failRate, Seed: seed, Timing: timing, FaultyAFUs: faulty,
				Log: slog.New(slog.NewTextHandler(s.err, nil)),
			}
			// Every mistake in the flags at once, before a long load.
			var errs []error
			if repo == "" {
				errs = append(errs, fmt.Errorf("--repo is required"))
			}
			errs = append(errs, agent.CheckListen(listen, nil, true), opts.Check())
			if err := errors.Join(errs...); err != nil {
				return err
			}
			fleet, err := spec.Load(repo)
			if err != nil {
				return err
			}
			// Loading a large repository peaks at several times what the
			// fleet keeps; give that back before serving for hours.
			debug.FreeOSMemory()
			// Until here a signal ends the process at once: nothing to
			// clean up. From here the state file is open.
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fs, err := sim.New(fleet, opts)
			if err != nil {
				return err
			}
			defer fs.Close()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			// On a signal the sim closes first, so that requests in their
			// modelled time end now instead of holding up the shutdown.
			go func() {
				<-ctx.Done()
				fs.Close()
			}()
			fmt.Fprintf(s.out, "Simulated fleet of %d nodes at http://%s (node NAME answers at http://%s/nodes/NAME;\n'fpgaops sim gen --endpoint http://%s/nodes/{node}' writes fleets that point here)\n",
				len(fleet.Nodes), ln.Addr(), ln.Addr(), ln.Addr())
			return agent.Serve(ctx, agent.NewHTTPServer(fs.Handler(), nil), ln)
		},
	}
	f := c.Flags()
	f.StringVar(&repo, "repo", "", "fleet repository whose nodes to serve")
	f.StringVar(&listen, "listen", "127.0.0.1:9440", "loopback address to serve on")
	f.StringVar(&stateDir, "state-dir", "", "keep the fleet's state here across restarts (default: in memory only)")
	f.DurationVar(&latency, "latency", 0, "delay added to every node request")
	f.Float64Var(&failRate, "fail-rate", 0, "share (0..1) of node requests answered 503, chosen from --seed")
	f.Int64Var(&seed, "seed", 1, "seed of the injected faults and the PR-time jitter")
	f.DurationVar(&timing.Program, "program-time", 0, "time one partial reconfiguration takes, per card")
	f.DurationVar(&timing.ProgramJitter, "program-jitter", 0, "up to this much more per PR, drawn from --seed")
	f.DurationVar(&timing.VFs, "vf-time", 0, "time turning a card's VFs on or off takes")
	f.DurationVar(&timing.Attach, "attach-time", 0, "time an attach or a detach takes")
	f.StringArrayVar(&faulty, "faulty-afu", nil, "a card running this AFU ID reports a port error from its next observation on (repeatable)")
	return c
}
