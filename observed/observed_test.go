package observed

import (
	"reflect"
	"sync"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
)

func unsorted() *Fleet {
	return &Fleet{Version: Version, Nodes: []Node{
		{Name: "n2", State: NodeOK},
		{Name: "n1", State: NodeOK,
			FPGAs: []fpga.Device{{PCI: "0000:af:00.0"}, {PCI: "0000:5e:00.0"}},
			VMs: []VM{
				{Name: "vm-b", Hostdevs: []Hostdev{{PCI: "0000:af:00.2"}, {PCI: "0000:af:00.1"}}},
				{Name: "vm-a", Hostdevs: []Hostdev{{PCI: "0000:5e:00.1"}}},
			}},
	}}
}

// Fingerprint reads its fleet and writes nothing of it, so that it may
// run beside the planner that reads the same fleet (go test -race); its
// value is that of the sorted fleet.
func TestFingerprintLeavesItsFleetAlone(t *testing.T) {
	f := unsorted()
	want := unsorted()
	sorted := unsorted()
	sorted.Sort()

	var wg sync.WaitGroup
	var got string
	wg.Go(func() { got = f.Fingerprint() })
	for range 100 { // a reader beside it, as the planner is
		for i := range f.Nodes {
			for j := range f.Nodes[i].VMs {
				_ = f.Nodes[i].VMs[j].Hostdevs[0].PCI
			}
		}
	}
	wg.Wait()
	if !reflect.DeepEqual(f, want) {
		t.Errorf("Fingerprint changed its fleet:\n%+v\nwant\n%+v", f, want)
	}
	if got != sorted.Fingerprint() {
		t.Error("the fingerprint of a fleet differs from that of the same fleet sorted")
	}
}
