package e2e

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/planfile"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers/sim"
)

// converge reruns apply, as an operator or the controller would, until a
// plan has nothing to do and every node was seen, at most runs times; it
// returns how many applies it took.
func (w *world) converge(runs int) int {
	w.t.Helper()
	for i := range runs {
		p := w.plan()
		if !p.HasChanges() {
			return i
		}
		if _, err := w.apply(p); err != nil {
			w.t.Logf("run %d: %v", i+1, err)
		}
	}
	if p := w.plan(); p.HasChanges() {
		w.t.Fatalf("not converged after %d runs; still planned: %s", runs, summary(p))
	}
	return runs
}

// settle stops injecting faults, so that the next plan sees the fleet as
// it is.
func (w *world) settle() {
	w.t.Helper()
	if err := w.sim.SetFailRate(0); err != nil {
		w.t.Fatal(err)
	}
}

// applyUntilQuiet reruns apply while a plan has something to run, at
// most runs times; nodes a fault hid count as work left.
func (w *world) applyUntilQuiet(runs int) int {
	w.t.Helper()
	for i := range runs {
		p := w.plan()
		if count(p, plans.ActionProgram)+count(p, plans.ActionSetVFs)+count(p, plans.ActionAttach)+count(p, plans.ActionDetach) == 0 && !unknownNodes(p) {
			return i
		}
		if _, err := w.apply(p); err != nil {
			w.t.Logf("apply %d: %v", i+1, err)
		}
	}
	return runs
}

func unknownNodes(p *plans.Plan) bool {
	for _, c := range p.Changes {
		if c.Action == plans.ActionReport && c.Card == "" {
			return true
		}
	}
	return false
}

func summary(p *plans.Plan) string {
	var ids []string
	for _, c := range p.Changes {
		if c.Action != plans.ActionNoop {
			ids = append(ids, c.ID+" ("+string(c.Action)+")")
		}
	}
	return strings.Join(ids, ", ")
}

func count(p *plans.Plan, a plans.Action) int {
	n := 0
	for _, c := range p.Changes {
		if c.Action == a && c.Runnable() {
			n++
		}
	}
	return n
}

func TestFreshFleetConverges(t *testing.T) {
	w := newWorld(t, 6, sim.Options{})
	p := w.plan()
	// Six nodes of three cards: every card is programmed, two VFs per
	// node turned on, two VMs per node attached.
	if got := [3]int{count(p, plans.ActionProgram), count(p, plans.ActionSetVFs), count(p, plans.ActionAttach)}; got != [3]int{18, 12, 12} {
		t.Fatalf("fresh plan programs, sets VFs, attaches %v; want [18 12 12]:\n%s", got, summary(p))
	}
	if count(p, plans.ActionDetach) != 0 {
		t.Fatalf("fresh plan detaches: %s", summary(p))
	}
	rep, err := w.apply(p)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Applied != 42 || rep.Failed != 0 {
		t.Fatalf("applied %d, failed %d; want 42 applied", rep.Applied, rep.Failed)
	}

	second := w.plan()
	if second.HasChanges() {
		t.Fatalf("second plan is not empty: %s", summary(second))
	}
	st := w.stats()
	if st.Violations != 0 || st.Programs != 18 || st.Attaches != 12 {
		t.Fatalf("sim stats %+v; want 18 programs, 12 attaches, no violation", st)
	}
	// The VMs hold what the bindings say.
	obs := w.observe()
	for _, b := range w.fleet.Bindings {
		if b.VM == "" {
			continue
		}
		n, _ := obs.Node(b.Node)
		if !holds(n, b.VM) {
			t.Errorf("binding %s: VM %s holds nothing", b.Name, b.VM)
		}
	}
}

func holds(n *observed.Node, vm string) bool {
	for _, v := range n.VMs {
		if v.Name == vm && len(v.Hostdevs) > 0 {
			return true
		}
	}
	return false
}

func TestRebindingConvergesWithoutViolations(t *testing.T) {
	w := newWorld(t, 6, sim.Options{})
	w.converge(1)
	before := w.stats()

	w.rebind(1)
	p := w.plan()
	// Every card changes bitstream: the VF and PF cards of each node are
	// detached from their running VMs, programmed and attached again.
	if got := [3]int{count(p, plans.ActionDetach), count(p, plans.ActionProgram), count(p, plans.ActionAttach)}; got != [3]int{12, 18, 12} {
		t.Fatalf("rebinding plan detaches, programs, attaches %v; want [12 18 12]:\n%s", got, summary(p))
	}
	for _, c := range p.Changes {
		if c.Action == plans.ActionDetach && !c.Disruptive {
			t.Errorf("%s takes a function from a running VM but is not marked disruptive", c.ID)
		}
	}
	if _, err := w.apply(p); err != nil {
		t.Fatal(err)
	}
	if p := w.plan(); p.HasChanges() {
		t.Fatalf("plan after rebinding is not empty: %s", summary(p))
	}
	st := w.stats()
	if st.Violations != 0 {
		t.Fatalf("%d violations while rebinding", st.Violations)
	}
	if st.Programs-before.Programs != 18 || st.Detaches-before.Detaches != 12 {
		t.Fatalf("rebinding did %d programs and %d detaches; want 18 and 12", st.Programs-before.Programs, st.Detaches-before.Detaches)
	}
}

func TestFaultsAndLatencyConvergeOnRerun(t *testing.T) {
	w := newWorld(t, 8, sim.Options{FailRate: 0.25, Latency: 2 * time.Millisecond, Seed: 42})
	// No retries within a run: a failed change stops its card's chain, and
	// only a rerun finishes it.
	w.engine.Retry.Attempts = 1
	runs := w.applyUntilQuiet(12)
	if runs < 2 {
		t.Fatalf("converged in %d apply; the faults should have left work for a rerun", runs)
	}
	w.settle()
	if p := w.plan(); p.HasChanges() {
		t.Fatalf("not converged after %d applies under faults: %s", runs, summary(p))
	}
	st := w.stats()
	if st.Faults == 0 {
		t.Fatal("no fault was injected; the test proves nothing")
	}
	if st.Violations != 0 {
		t.Fatalf("%d violations under faults", st.Violations)
	}
	t.Logf("converged in %d applies through %d injected faults of %d requests", runs, st.Faults, st.Requests)

	if err := w.sim.SetFailRate(0.25); err != nil {
		t.Fatal(err)
	}
	w.rebind(1)
	w.applyUntilQuiet(12)
	w.settle()
	if p := w.plan(); p.HasChanges() {
		t.Fatalf("rebinding not converged under faults: %s", summary(p))
	}
	if st := w.stats(); st.Violations != 0 {
		t.Fatalf("%d violations rebinding under faults", st.Violations)
	}
}

func TestVanishedNodeIsUnknownAndSpared(t *testing.T) {
	w := newWorld(t, 3, sim.Options{})
	w.converge(1)
	gone := w.fleet.Nodes[1].Name
	if err := w.sim.SetDown(gone, true); err != nil {
		t.Fatal(err)
	}
	w.rebind(1)

	obs := w.observe()
	n, _ := obs.Node(gone)
	if n.State != observed.NodeUnknown || n.Reason == "" {
		t.Fatalf("vanished node observed as %+v; want unknown with a reason", n)
	}
	p := w.plan()
	reported := false
	for _, c := range p.Changes {
		if c.Node != gone {
			continue
		}
		if c.Runnable() {
			t.Errorf("%s is planned for the vanished node", c.ID)
		}
		if c.Action == plans.ActionReport {
			reported = true
		}
	}
	if !reported {
		t.Fatalf("the plan does not report node %s as unknown:\n%s", gone, summary(p))
	}
	if count(p, plans.ActionProgram) != 6 {
		t.Fatalf("plan programs %d cards; want the 6 of the two nodes still there", count(p, plans.ActionProgram))
	}
	before := w.stats()
	if _, err := w.apply(p); err != nil {
		t.Fatal(err)
	}
	if st := w.stats(); st.Violations != 0 || st.Programs-before.Programs != 6 {
		t.Fatalf("stats %+v after the apply; want 6 programs and no violation", st)
	}

	// Back again, it converges too.
	if err := w.sim.SetDown(gone, false); err != nil {
		t.Fatal(err)
	}
	w.converge(2)
}

// A saved plan is applied only to the fleet it was made against: once
// another apply has changed the fleet, it is refused, and nothing changes.
func TestSavedPlanRefusedAfterTheFleetChanged(t *testing.T) {
	w := newWorld(t, 2, sim.Options{})
	var buf bytes.Buffer
	if err := planfile.Write(&buf, w.plan(), w.fleet, nil); err != nil {
		t.Fatal(err)
	}
	w.converge(1)
	before := w.stats()
	file, err := planfile.Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.engine.Saved(context.Background(), file); err == nil || !strings.Contains(err.Error(), "changed since") {
		t.Fatalf("a saved plan of a fleet that changed since: err = %v; want it refused", err)
	}
	if st := w.stats(); st.Programs != before.Programs || st.SetVFs != before.SetVFs || st.Attaches != before.Attaches {
		t.Fatalf("a refused plan changed the fleet: %+v, before %+v", st, before)
	}
}
