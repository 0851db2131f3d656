package dashboard_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/dashboard"
	"github.com/fpgaops/fpgaops/spec"
)

const iface = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"

// afu is bitstream k's AFU ID.
func afu(k int) string { return fmt.Sprintf("%032x", k+1) }

// mixedFleet is n nodes of four N3000 cards, each card's VF held by a VM
// that a binding names, and every state a card can be in: most cards
// run what their binding asks; every 7th card runs another bitstream
// under its running VM (the detach a closed window holds), every 11th
// under a stopped VM (the program runs: the test fails some), every
// 17th is unhealthy and every 13th node does not answer.
func mixedFleet(n int) (*spec.Fleet, *observed.Fleet) {
	desired := &spec.Fleet{Revision: strings.Repeat("8d1f5c2e", 5), Policy: spec.Policy{Name: "dc1", Drift: spec.DriftReport,
		Windows: []spec.Window{{Kind: spec.WindowAllow, Schedule: "0 2 * * 6", Duration: spec.Duration(time.Hour)}}}}
	for k := range 2 {
		desired.Bitstreams = append(desired.Bitstreams, spec.Bitstream{Name: fmt.Sprintf("fw-v%d", k+1), SHA256: fmt.Sprintf("%064x", k+1), InterfaceID: iface, AFUID: afu(k)})
	}
	obs := &observed.Fleet{Version: observed.Version}
	pcis := []string{"0000:3b:00.0", "0000:5e:00.0", "0000:af:00.0", "0000:d8:00.0"}
	for i := range n {
		name := fmt.Sprintf("compute-%05d", i)
		node := spec.Node{Name: name}
		on := observed.Node{Name: name, State: observed.NodeOK}
		if i%13 == 12 {
			on = observed.Node{Name: name, State: observed.NodeUnknown, Reason: "cards: dial tcp 10.0.3.7:9443: connection refused"}
		}
		for c, pci := range pcis {
			k := i*4 + c
			slot, vm, vf := fmt.Sprintf("pac%d", c), fmt.Sprintf("vnf-%05d-%d", i, c), pci[:len(pci)-1]+"1"
			node.FPGAs = append(node.FPGAs, spec.FPGA{Slot: slot, PCI: pci, Board: spec.BoardN3000, VFs: 1})
			desired.Bindings = append(desired.Bindings, spec.Binding{Name: vm, Node: name, FPGA: slot, Function: spec.VF(0), VM: vm, Bitstream: "fw-v2"})
			runs, running := afu(1), true
			if k%7 == 3 || k%11 == 5 {
				runs = afu(0)
			}
			if k%11 == 5 {
				running = false
			}
			dev := fpga.Device{PCI: pci, Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", Stack: fpga.StackDFL, InterfaceID: iface,
				NumVFs: 1, TotalVFs: 1, VFs: []fpga.Function{{Index: 0, PCI: vf}}, Ports: []fpga.Port{{ID: 0, AFUID: runs}}}
			if k%17 == 9 {
				dev.Health.Problems = []string{"fme errors/catfatal_errors: 0x2 (KTI CDC parity error)"}
			}
			on.FPGAs = append(on.FPGAs, dev)
			on.VMs = append(on.VMs, observed.VM{Name: vm, Running: running, Hostdevs: []observed.Hostdev{{PCI: vf, Live: running, Config: true}}})
		}
		desired.Nodes = append(desired.Nodes, node)
		obs.Nodes = append(obs.Nodes, on)
	}
	return desired, obs
}

// planned is a dashboard whose view is the mixed fleet's plan, with
// every third program failed and the rest applied.
func planned(t testing.TB, d *dashboard.Dashboard, n int) *plans.Plan {
	t.Helper()
	desired, obs := mixedFleet(n)
	p, err := reconcile.NewPlan(desired, obs, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Planned(desired, obs, p)
	results := make([]plans.Result, len(p.Changes))
	failedCard := map[string]bool{}
	programs := 0
	for i := range p.Changes {
		c := &p.Changes[i]
		results[i] = plans.Result{ID: c.ID, Status: plans.StatusNotRun}
		switch {
		case c.Held != nil:
			results[i].Status = plans.StatusHeld
		case !c.Runnable():
		case failedCard[c.Node+"/"+c.Card]:
			results[i] = plans.Result{ID: c.ID, Status: plans.StatusBlocked, Error: "blocked: " + c.Node + " program did not complete"}
		case c.Action == plans.ActionProgram && programs%3 == 0:
			programs++
			failedCard[c.Node+"/"+c.Card] = true
			results[i] = plans.Result{ID: c.ID, Status: plans.StatusFailed, Attempts: 4, Error: c.ID + ": program: PR error: EIO"}
		default:
			if c.Action == plans.ActionProgram {
				programs++
			}
			results[i] = plans.Result{ID: c.ID, Status: plans.StatusApplied, Attempts: 1}
		}
		if c.Runnable() {
			d.Started(c)
			d.Finished(c, results[i])
		}
	}
	d.Applied(p, results)
	return p
}

// fakeStatus is the controller's status as a test sets it.
type fakeStatus struct {
	mu sync.Mutex
	st controller.Status
}

func (f *fakeStatus) Status() controller.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeStatus) set(fn func(*controller.Status)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.st)
}
