package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

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
			w.observe() // builds every node; not what is measured
			rounds := (nodes + conc - 1) / conc
			floor := time.Duration(rounds) * latency
			b.ResetTimer()
			var obs *observed.Fleet
			for b.Loop() {
				var err error
				obs, err = w.engine.Observe(context.Background(), w.fleet)
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

// BenchmarkApply1000ReprogramsPRTime is BenchmarkApply1000Reprograms with
// the time the hardware takes (each PR 2 s, each VF change 100 ms, each
// attach and detach 250 ms) and at most 64 cards in flight. A card's
// chain is at most detach, VFs off, PR, VFs on, attach, so the critical
// path is ceil(1000/64) chains; x-critical is the measured time over it.
func BenchmarkApply1000ReprogramsPRTime(b *testing.B) {
	const cards, inFlight = 1000, 64
	timing := sim.Timing{Program: 2 * time.Second, VFs: 100 * time.Millisecond, Attach: 250 * time.Millisecond}
	chain := timing.Program + 2*timing.VFs + 2*timing.Attach
	critical := time.Duration((cards+inFlight-1)/inFlight) * chain
	for b.Loop() {
		b.StopTimer()
		w := newWorldOf(b, cards/4, 4, inFlight, sim.Options{})
		w.converge(1)
		w.rebind(1)
		w.fleet.Policy.Budget.MaxCardsInFlight = inFlight
		p := w.plan()
		if got := count(p, plans.ActionProgram); got != cards {
			b.Fatalf("plan programs %d cards; want %d", got, cards)
		}
		if err := w.sim.SetTiming(timing); err != nil {
			b.Fatal(err)
		}
		before := w.stats()
		b.StartTimer()
		start := time.Now()
		_, err := w.apply(p)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if st := w.stats(); st.Programs-before.Programs != cards || st.Violations != 0 {
			b.Fatalf("apply did %d programs with %d violations; want %d and none", st.Programs-before.Programs, st.Violations, cards)
		}
		b.ReportMetric(took.Seconds()/critical.Seconds(), "x-critical")
		b.ReportMetric(critical.Seconds(), "critical-s")
		b.ReportMetric(float64(p.Waves), "waves")
		b.StartTimer()
	}
}

// BenchmarkFirstPlan10kNodes observes a sim of 10,000 nodes of 4 cards
// that no request has touched yet, 64 at once, and plans them: what the
// first plan against a fresh sim costs, short of loading the repository.
// cpu-s is the CPU time of the sim and the controller together.
func BenchmarkFirstPlan10kNodes(b *testing.B) {
	var cpu time.Duration
	for b.Loop() {
		b.StopTimer()
		w := newWorldOf(b, 10_000, 4, 64, sim.Options{})
		cpu0, _ := cpuTime()
		b.StartTimer()
		p := w.plan()
		b.StopTimer()
		cpu1, _ := cpuTime()
		cpu += cpu1 - cpu0
		if st := w.stats(); st.NodesTouched != 10_000 || count(p, plans.ActionProgram) != 40_000 {
			b.Fatalf("%d nodes touched, %d programs planned; want 10000 and 40000", st.NodesTouched, count(p, plans.ActionProgram))
		}
		b.StartTimer()
	}
	if cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
	}
}
