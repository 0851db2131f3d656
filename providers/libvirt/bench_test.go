package libvirt_test

import (
	"fmt"
	"testing"

	"github.com/fpgaops/fpgaops/providers/libvirt"
	"github.com/fpgaops/fpgaops/providers/libvirt/libvirttest"
	"github.com/fpgaops/fpgaops/spec"
)

// BenchmarkObserveVMs observes a node of 64 domains, half of them
// running, each holding one VF, over one cached connection to a real
// libvirtd.
func BenchmarkObserveVMs(b *testing.B) {
	var f libvirttest.Fleet
	for i := range 64 {
		pci := fmt.Sprintf("0000:%02x:00.1", 0x10+i)
		f.Domains = append(f.Domains, libvirttest.Domain{
			Name: fmt.Sprintf("vm-%02d", i), Running: i%2 == 0, Hostdevs: []string{pci},
		})
		f.Devices = append(f.Devices, libvirttest.PCIDevice{Address: pci, Vendor: 0x8086, Product: 0x0b31, IOMMUGroup: i})
	}
	d := libvirttest.Start(b)
	uri, err := d.WriteFleet("bench", f)
	if err != nil {
		b.Fatal(err)
	}
	p := libvirt.New(libvirt.Options{Socket: d.Socket})
	defer p.Close()
	node := &spec.Node{Name: "compute-01", Libvirt: uri}
	if _, err := p.ObserveVMs(b.Context(), node); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		vms, err := p.ObserveVMs(b.Context(), node)
		if err != nil {
			b.Fatal(err)
		}
		if len(vms) != 64 {
			b.Fatalf("%d VMs", len(vms))
		}
	}
}
