package e2e

import (
	"slices"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
)

// The promise: a run never leaves a running VM worse off than before it,
// and a run that fails leaves a fleet the next run finishes from. Each
// test below is a failure sequence that broke it once, played against the
// simulated fleet through the engine every command uses.

// hostdevs maps each VM of the node to the functions it holds.
func (w *world) hostdevs(node string) map[string][]string {
	w.t.Helper()
	return w.holdings()[node]
}

// holdings maps each node to what hostdevs says of it, from one
// observation.
func (w *world) holdings() map[string]map[string][]string {
	w.t.Helper()
	out := map[string]map[string][]string{}
	for _, n := range w.observe().Nodes {
		if n.State != observed.NodeOK {
			w.t.Fatalf("node %s not observed: %s", n.Name, n.Reason)
		}
		vms := map[string][]string{}
		for _, vm := range n.VMs {
			for _, h := range vm.Hostdevs {
				vms[vm.Name] = append(vms[vm.Name], h.PCI)
			}
		}
		out[n.Name] = vms
	}
	return out
}

// binding returns the fleet's binding of node's card slot.
func (w *world) binding(node, slot string) *spec.Binding {
	w.t.Helper()
	for i := range w.fleet.Bindings {
		if b := &w.fleet.Bindings[i]; b.Node == node && b.FPGA == slot {
			return b
		}
	}
	w.t.Fatalf("no binding of %s %s", node, slot)
	return nil
}

// bitstream adds bs to the fleet unless it is there.
func (w *world) bitstream(bs spec.Bitstream) {
	if !slices.ContainsFunc(w.fleet.Bitstreams, func(b spec.Bitstream) bool { return b.Name == bs.Name }) {
		w.fleet.Bitstreams = append(w.fleet.Bitstreams, bs)
		sortFleet(w.fleet)
	}
}

// clone copies the fleet's slices, so that a test can change the desired
// state and keep the old one for a revert.
func clone(f *spec.Fleet) *spec.Fleet {
	c := *f
	c.Nodes = slices.Clone(f.Nodes)
	for i := range c.Nodes {
		c.Nodes[i].FPGAs = slices.Clone(f.Nodes[i].FPGAs)
	}
	c.Bitstreams = slices.Clone(f.Bitstreams)
	c.Bindings = slices.Clone(f.Bindings)
	return &c
}

func (w *world) noViolations() {
	w.t.Helper()
	if st := w.stats(); st.Violations != 0 {
		w.t.Fatalf("%d violations", st.Violations)
	}
}

// held returns the change, which must be held by gate.
func held(t *testing.T, p *plans.Plan, id string, gate plans.Gate) *plans.Change {
	t.Helper()
	c, ok := p.Change(id)
	if !ok {
		t.Fatalf("no change %s in the plan: %s", id, summary(p))
	}
	if c.Held == nil || c.Held.Gate != gate {
		t.Fatalf("%s held by %+v, want gate %s", id, c.Held, gate)
	}
	return c
}

// A PF binding moved to a bitstream built for another FIM, on a node that
// declares no interfaceID, while a running VM holds the PF: the program is
// held before the VM loses anything.
func TestForeignBitstreamNeverTakesThePF(t *testing.T) {
	w := newWorld(t, 2, sim.Options{})
	w.converge(1)
	node := w.fleet.Nodes[0].Name
	before := w.hostdevs(node)
	for i := range w.fleet.Nodes[0].FPGAs {
		w.fleet.Nodes[0].FPGAs[i].InterfaceID = ""
	}
	board := w.fleet.Nodes[0].FPGAs[0].Board
	var foreign spec.Bitstream
	for b, imgs := range w.images {
		if b != board {
			foreign = imgs[0]
		}
	}
	w.bitstream(foreign)
	w.binding(node, "pac1").Bitstream = foreign.Name

	p := w.plan()
	prog := held(t, p, plans.CardID(node, "pac1")+":program", plans.GateInterface)
	if c, ok := p.Change(plans.AttachmentID(node, "pac1", "pf", "vm-"+node+"-b") + ":detach"); ok && c.Held == nil {
		t.Fatalf("the detach of the PF runs while the program is held (%s)", prog.Held.Why)
	}
	if _, err := w.apply(p); err != nil {
		t.Fatal(err)
	}
	if after := w.hostdevs(node); !equalHolds(before, after) {
		t.Fatalf("VMs hold %v after the run, %v before", after, before)
	}
	w.noViolations()
}

// A binding names a VM that is not on the node (a typo): the attach is
// held, and so is the detach of the running VM that holds the function.
func TestMissingVMDoesNotCostTheHolderItsFunction(t *testing.T) {
	w := newWorld(t, 2, sim.Options{})
	w.converge(1)
	node := w.fleet.Nodes[0].Name
	before := w.hostdevs(node)
	w.binding(node, "pac1").VM = "vm-" + node + "-typo"

	p := w.plan()
	held(t, p, plans.AttachmentID(node, "pac1", "pf", "vm-"+node+"-typo")+":attach", plans.GateMissing)
	held(t, p, plans.AttachmentID(node, "pac1", "pf", "vm-"+node+"-b")+":detach", plans.GateDependency)
	w.apply(p)
	if after := w.hostdevs(node); !equalHolds(before, after) {
		t.Fatalf("VMs hold %v after the run, %v before", after, before)
	}
	w.noViolations()
}

// A program fails after the VM gave up its function: the run gives it
// back, or says the VM is degraded; never silently empty. With the region
// left empty, the previous bitstream is programmed again first.
func TestFailedProgramGivesTheFunctionBack(t *testing.T) {
	for _, empty := range []bool{false, true} {
		t.Run(map[bool]string{false: "region-kept", true: "region-emptied"}[empty], func(t *testing.T) {
			w := newWorld(t, 2, sim.Options{})
			w.converge(1)
			node := w.fleet.Nodes[0].Name
			before := w.hostdevs(node)
			w.rebind(1)
			pci := w.fleet.Nodes[0].FPGAs[0].PCI // pac0: a VF vm-…-a holds
			if err := w.sim.InjectFault(node, sim.Fault{Op: sim.FaultProgram, PCI: pci, EmptyRegion: empty}); err != nil {
				t.Fatal(err)
			}
			p := w.plan()
			rep, err := w.apply(p)
			if err == nil {
				t.Fatal("the apply succeeded despite the fault")
			}
			if len(rep.Degraded) != 0 {
				t.Fatalf("degraded %+v; the sim could give the function back", rep.Degraded)
			}
			if len(rep.Compensations) == 0 {
				t.Fatal("no compensation reported")
			}
			after := w.hostdevs(node)
			vm := "vm-" + node + "-a"
			if len(after[vm]) != len(before[vm]) {
				t.Fatalf("%s holds %v after the failed run, %v before", vm, after[vm], before[vm])
			}
			w.noViolations()
			w.converge(2)
			w.noViolations()
		})
	}
}

// A failed run that could not give the VM its function back (the attach
// failed too) reports it degraded; reverting the repository's change then
// restores it under the default drift mode report: fpgaops's own half-done
// work is not taken for drift.
func TestRevertRestoresADegradedVM(t *testing.T) {
	w := newWorld(t, 2, sim.Options{})
	w.fleet.Policy.Drift = spec.DriftReport
	w.converge(1)
	node := w.fleet.Nodes[0].Name
	before := w.hostdevs(node)
	good := clone(w.fleet)

	b := w.binding(node, "pac1")
	board := w.fleet.Nodes[0].FPGAs[1].Board
	for _, img := range w.images[board] {
		if img.Name != b.Bitstream {
			w.bitstream(img)
			b.Bitstream = img.Name
			break
		}
	}
	pci := w.fleet.Nodes[0].FPGAs[1].PCI
	for _, op := range []sim.FaultOp{sim.FaultProgram, sim.FaultAttach} {
		if err := w.sim.InjectFault(node, sim.Fault{Op: op, PCI: pci}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := w.apply(w.plan())
	if err == nil {
		t.Fatal("the apply succeeded despite the faults")
	}
	vm := "vm-" + node + "-b"
	if len(rep.Degraded) != 1 || rep.Degraded[0].VM != vm {
		t.Fatalf("degraded %+v, want %s", rep.Degraded, vm)
	}
	if got := w.hostdevs(node)[vm]; len(got) != 0 {
		t.Fatalf("%s holds %v: the faults did not bite", vm, got)
	}

	w.fleet = good // git revert
	p := w.plan()
	if c, ok := p.Change(plans.AttachmentID(node, "pac1", "pf", vm) + ":attach"); !ok || !c.Runnable() {
		t.Fatalf("the revert does not give %s its PF back: %s", vm, summary(p))
	}
	if _, err := w.apply(p); err != nil {
		t.Fatal(err)
	}
	if after := w.hostdevs(node); !equalHolds(before, after) {
		t.Fatalf("VMs hold %v after the revert, %v before", after, before)
	}
	w.noViolations()
}

func equalHolds(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for vm, fns := range a {
		if !slices.Equal(fns, b[vm]) {
			return false
		}
	}
	return true
}

// A full rebinding of 200 nodes through a fault rate of 10% and 50 ms of
// latency on every request converges by reruns, with no violation and no
// needless reprogram: programs equal the cards whose image changed, since
// a retried or rerun program reads the card first.
func TestRebindingUnderFaultsProgramsEachChangedCardOnce(t *testing.T) {
	const nodes = 200
	w := newWorldOf(t, nodes, 3, 64, sim.Options{FailRate: 0.1, Latency: 50 * time.Millisecond, Seed: 7})
	start := time.Now()
	fresh := w.applyUntilQuiet(12)
	w.settle()
	w.converge(2)
	if err := w.sim.SetFailRate(0.1); err != nil {
		t.Fatal(err)
	}
	old := clone(w.fleet)
	w.rebind(1)
	changed := 0
	for i, b := range w.fleet.Bindings {
		if old.Bindings[i].Name != b.Name {
			t.Fatal("bindings out of order")
		}
		if old.Bindings[i].Bitstream != b.Bitstream {
			changed++
		}
	}
	before := w.stats()
	rebound := time.Now()
	runs := w.applyUntilQuiet(12)
	w.settle()
	if p := w.plan(); p.HasChanges() {
		t.Fatalf("not converged after %d runs: %s", runs, summary(p))
	}
	st := w.stats()
	if st.Violations != 0 {
		t.Fatalf("%d violations", st.Violations)
	}
	if got := st.Programs - before.Programs; got != int64(changed) {
		t.Fatalf("%d programs for %d cards whose image changed", got, changed)
	}
	if st.Faults-before.Faults == 0 {
		t.Fatal("no fault injected during the rebinding; the test proves nothing")
	}
	t.Logf("%d nodes, %d cards: fresh fleet converged in %d runs; rebinding of %d cards in %d runs, %s, through %d faults of %d requests; %s in all",
		nodes, nodes*3, fresh, changed, runs, time.Since(rebound).Round(time.Millisecond), st.Faults-before.Faults, st.Requests-before.Requests,
		time.Since(start).Round(time.Millisecond))
}
