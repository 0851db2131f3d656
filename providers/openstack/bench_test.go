package openstack

import (
	"fmt"
	"testing"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// bigFleet is n OpenStack nodes with two cards each: one for a VM, one in
// the preprogrammed pool; half of the VMs lack their accelerator.
func bigFleet(n int) (*spec.Fleet, *State) {
	f := &spec.Fleet{Bitstreams: []spec.Bitstream{
		{Name: "gzip", SHA256: shaGzip, InterfaceID: ifA10, AFUID: afuGzip},
		{Name: "nlb", SHA256: shaNLB, AFUID: afuNLB},
	}}
	st := &State{Images: []Image{{ID: imgGzip, Name: "fpgaops-gzip", Status: "active", SHA256: shaGzip}, {ID: imgNLB, Name: "fpgaops-nlb", Status: "active", SHA256: shaNLB}}}
	prof := ProfileName(f.Bitstreams[0], spec.BoardPACA10)
	st.Profiles = []Profile{{UUID: "dp", Name: prof, Groups: []map[string]string{withImage(ProfileGroup(f.Bitstreams[0], spec.BoardPACA10), imgGzip)}}}
	st.Flavors = []Flavor{{ID: "f", Name: FlavorName(2, 4096, 20, prof), VCPUs: 2, RAM: 4096, Disk: 20, DeviceProfile: prof}}
	for i := range n {
		name, host := fmt.Sprintf("compute-%05d", i), fmt.Sprintf("cmp-%05d", i)
		f.Nodes = append(f.Nodes, spec.Node{Name: name, Hostname: host, FPGAs: []spec.FPGA{
			{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10, InterfaceID: ifA10},
			{Slot: "pac1", PCI: "0000:be:00.0", Board: spec.BoardPACA10},
		}})
		vm := "vm-" + name
		f.Bindings = append(f.Bindings,
			spec.Binding{Name: vm, Node: name, FPGA: "pac0", Function: spec.PF, VM: vm, Bitstream: "gzip"},
			spec.Binding{Name: "pool-" + name, Node: name, FPGA: "pac1", Function: spec.PF, Bitstream: "nlb"})
		rp0, rp1 := host+"-rp0", host+"-rp1"
		srv := Server{ID: "s-" + name, Name: vm, FlavorName: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 20}
		if i%2 == 0 {
			srv.FlavorName, srv.DeviceProfile = st.Flavors[0].Name, prof
			srv.ARQs = []ARQ{{UUID: "q-" + name, State: "Bound", DeviceProfile: prof, RPUUID: rp0}}
		}
		st.Nodes = append(st.Nodes, Node{Name: name, Hostname: host, State: observed.NodeOK,
			Cards: []Card{
				{PCI: "0000:5e:00.0", RPUUID: rp0, FPGATotal: 1, Deployable: "d0-" + name, Bitstream: imgGzip, Traits: []string{TraitIntel, RegionTrait(ifA10), FunctionTrait(afuGzip)}},
				{PCI: "0000:be:00.0", RPUUID: rp1, FPGATotal: 1, Deployable: "d1-" + name},
			},
			Servers: []Server{srv}})
	}
	return f, st
}

func BenchmarkPlan1000Nodes(b *testing.B) {
	f, st := bigFleet(1000)
	nodes := owned(f)
	b.ReportAllocs()
	for b.Loop() {
		if len(Plan(f, nodes, st)) == 0 {
			b.Fatal("empty plan")
		}
	}
}
