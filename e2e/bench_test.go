package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/engine"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers/sim"
)

// BenchmarkObserve1000Nodes50ms observes 1,000 simulated nodes that each
// answer after 50 ms. Observing a node asks for its cards and its VMs at
// once, so the floor is 50 ms per round of `concurrency` nodes; x-floor is
// the measured time over that floor.
func BenchmarkObserve1000Nodes50ms(b *testing.B) {
	const (
		nodes   = 1000
		latency = 50 * time.Millisecond
	)
	for _, conc := range []int{64, 250} {
		b.Run(fmt.Sprintf("concurrency=%d", conc), func(b *testing.B) {
			w := newWorldOf(b, nodes, 4, conc, sim.Options{Latency: latency})
			w.observe() // builds every node's fake tree; not what is measured
			rounds := (nodes + conc - 1) / conc
			floor := time.Duration(rounds) * latency
			b.ResetTimer()
			var obs *observed.Fleet
			for b.Loop() {
				var err error
				obs, err = engine.Observe(context.Background(), w.fleet, w.provider, conc, 30*time.Second)
				if err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			for _, n := range obs.Nodes {
				if n.State != observed.NodeOK {
					b.Fatalf("node %s unknown: %s", n.Name, n.Reason)
				}
			}
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(perOp)/float64(floor), "x-floor")
			b.ReportMetric(float64(floor.Milliseconds()), "floor-ms")
			b.ReportMetric(float64(perOp.Milliseconds()), "ms/observe")
		})
	}
}

// BenchmarkApply1000Reprograms rebinds every card of a converged fleet of
// 250 nodes with 4 cards each: 1,000 programs, with the detaches, VF
// changes and attaches around them, through the sim's HTTP API.
func BenchmarkApply1000Reprograms(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		w := newWorldOf(b, 250, 4, 64, sim.Options{})
		w.converge(1)
		w.rebind(1)
		p := w.plan()
		if got := count(p, plans.ActionProgram); got != 1000 {
			b.Fatalf("plan programs %d cards; want 1000", got)
		}
		before := w.stats()
		b.StartTimer()
		rep, err := w.apply(p)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		st := w.stats()
		if st.Programs-before.Programs != 1000 || st.Violations != 0 {
			b.Fatalf("apply did %d programs with %d violations; want 1000 and none", st.Programs-before.Programs, st.Violations)
		}
		b.ReportMetric(float64(rep.Applied), "changes")
		b.StartTimer()
	}
}
