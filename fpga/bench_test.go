package fpga_test

import (
	"context"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

// fleetHost builds a node with two cards: a DFL N3000 with its VF held by
// a VM and an intel-fpga PAC A10, the mix the simulated fleet uses.
func fleetHost(b *testing.B) *fpgatest.Tree {
	b.Helper()
	tr := fpgatest.NewTree(b.TempDir())
	for _, c := range []fpgatest.Card{
		{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB, NumVFs: 1, VFDrivers: []string{"vfio-pci"}},
		{PCI: "0000:3b:00.0", Board: spec.BoardPACA10, Stack: fpga.StackIntelFPGA, InterfaceID: ifaceA10, AFUID: afuDMA},
	} {
		if err := tr.AddCard(c); err != nil {
			b.Fatal(err)
		}
	}
	return tr
}

// BenchmarkDiscover is one node's discovery: the cost the simulated fleet
// pays per node and observation.
func BenchmarkDiscover(b *testing.B) {
	h := fpga.NewSysfsHost(fleetHost(b).Root(), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		devs, err := h.Discover(ctx)
		if err != nil || len(devs) != 2 {
			b.Fatalf("Discover: %d cards, %v", len(devs), err)
		}
	}
}

// BenchmarkProgram is a full careful program on the fake kernel, VFs off
// and on included, alternating between two images.
func BenchmarkProgram(b *testing.B) {
	tr := fpgatest.NewTree(b.TempDir())
	if err := tr.AddCard(fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB, NumVFs: 1}); err != nil {
		b.Fatal(err)
	}
	h := tr.Host()
	type image struct {
		data []byte
		sum  string
	}
	var imgs []image
	for _, afu := range []string{afuDMA, afuNLB} {
		d, s := gbs(b, ifaceN3000, afu, []byte("payload for "+afu))
		imgs = append(imgs, image{d, s})
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		img := imgs[i%2]
		i++
		if err := h.Program(ctx, "0000:5e:00.0", img.data, fpga.ProgramOptions{SHA256: img.sum}); err != nil {
			b.Fatal(err)
		}
	}
}
