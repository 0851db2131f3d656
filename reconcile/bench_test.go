package reconcile_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// bigFleet is nodes nodes with four N3000 cards each, every card bound to
// a VM's VF, against a fresh observation: blank cards, VFs off, VMs that
// hold nothing (half of them running).
func bigFleet(nodes int) (*spec.Fleet, *observed.Fleet) {
	const iface = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"
	desired := &spec.Fleet{Revision: "bench", Policy: spec.Policy{Name: "default", Drift: spec.DriftReport}}
	for b := 0; b < 4; b++ {
		desired.Bitstreams = append(desired.Bitstreams, spec.Bitstream{
			Name: fmt.Sprintf("afu-%d", b), SHA256: fmt.Sprintf("%064x", b+1), InterfaceID: iface, AFUID: fmt.Sprintf("%032x", b+1)})
	}
	obs := &observed.Fleet{Version: observed.Version}
	pcis := []string{"0000:3b:00.0", "0000:5e:00.0", "0000:af:00.0", "0000:d8:00.0"}
	for i := 0; i < nodes; i++ {
		name := fmt.Sprintf("node-%05d", i)
		n := spec.Node{Name: name}
		on := observed.Node{Name: name, State: observed.NodeOK}
		for c, pci := range pcis {
			slot := fmt.Sprintf("pac%d", c)
			vm := fmt.Sprintf("vm-%05d-%d", i, c)
			n.FPGAs = append(n.FPGAs, spec.FPGA{Slot: slot, PCI: pci, Board: spec.BoardN3000, VFs: 1})
			desired.Bindings = append(desired.Bindings, spec.Binding{Name: vm, Node: name, FPGA: slot, Function: spec.VF(0), VM: vm, Bitstream: fmt.Sprintf("afu-%d", (i+c)%4)})
			on.FPGAs = append(on.FPGAs, fpga.Device{PCI: pci, Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", Stack: fpga.StackDFL,
				InterfaceID: iface, TotalVFs: 1, Ports: []fpga.Port{{ID: 0}}})
			on.VMs = append(on.VMs, observed.VM{Name: vm, Running: c%2 == 0})
		}
		desired.Nodes = append(desired.Nodes, n)
		obs.Nodes = append(obs.Nodes, on)
	}
	return desired, obs
}

// freshObservation is what a fleet looks like before fpgaops touched it:
// every desired card present and healthy with nothing loaded and VFs off,
// and every VM a binding names, running and holding nothing.
func freshObservation(desired *spec.Fleet) *observed.Fleet {
	iface := map[string]string{} // card -> interface of its bindings' bitstream
	vms := map[string][]observed.VM{}
	for _, b := range desired.Bindings {
		if bs, ok := desired.Bitstream(b.Bitstream); ok {
			iface[b.Node+"/"+b.FPGA] = bs.InterfaceID
		}
		if b.VM != "" {
			vms[b.Node] = append(vms[b.Node], observed.VM{Name: b.VM, Running: true})
		}
	}
	obs := &observed.Fleet{Version: observed.Version}
	for _, n := range desired.Nodes {
		on := observed.Node{Name: n.Name, State: observed.NodeOK, VMs: vms[n.Name]}
		for _, c := range n.FPGAs {
			info, _ := spec.LookupBoard(c.Board)
			id := c.InterfaceID
			if id == "" {
				id = iface[n.Name+"/"+c.Slot]
			}
			on.FPGAs = append(on.FPGAs, fpga.Device{PCI: c.PCI, Vendor: info.Vendor, DeviceID: info.PFDevice, Board: string(c.Board),
				Stack: fpga.StackDFL, InterfaceID: id, TotalVFs: info.MaxVFs, Ports: []fpga.Port{{ID: 0}}})
		}
		obs.Nodes = append(obs.Nodes, on)
	}
	obs.Sort()
	return obs
}

// BenchmarkPlan10k plans the generated 10,000-node fleet (40,000 cards,
// one binding each) against a fresh observation.
func BenchmarkPlan10k(b *testing.B) {
	dir := b.TempDir()
	if err := fleetgen.Generate(fleetgen.Options{Dir: dir, Nodes: 10000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	desired, err := spec.Load(dir)
	if err != nil {
		b.Fatal(err)
	}
	obs := freshObservation(desired)
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := reconcile.NewPlan(desired, obs, now, reconcile.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if p.Summary.Program != 40000 || p.Summary.Held != 0 {
			b.Fatalf("summary %+v, want 40000 programs and nothing held", p.Summary)
		}
	}
}

// BenchmarkPlan10kInMemory is the same size built in Go, without the
// loader: four N3000 cards per node, half the VMs running.
func BenchmarkPlan10kInMemory(b *testing.B) {
	desired, obs := bigFleet(10000)
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		p, err := reconcile.NewPlan(desired, obs, now, reconcile.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if p.Summary.Program != 40000 || p.Summary.Attach != 40000 {
			b.Fatalf("summary %+v, want 40000 programs and attaches", p.Summary)
		}
	}
}
