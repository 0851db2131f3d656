package openstack

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/openstack/openstacktest"
	"github.com/fpgaops/fpgaops/spec"
)

// The tests here run the backend against a cloud that behaves as Cyborg
// and Nova do where it matters (openstacktest: program leaves
// bitstream_id alone, a bind needs accel:function_id, cards named after
// their VFs and after the node's own host name), with the real Placement.

// TestSecondRunPlansNothing: a fleet converged against the cloud plans no
// change on the next run, whether or not Cyborg's agents have reported
// the cards since; the pool cards were programmed once.
func TestSecondRunPlansNothing(t *testing.T) {
	e := newE2E(t, "c")
	// Without the card a tenant's server holds, the fleet can converge.
	e.fleet.Bindings = slices.DeleteFunc(e.fleet.Bindings, func(b spec.Binding) bool { return b.Name == "pool-nlb-2" })
	b := e.backend(Options{})
	first := e.plan(t, b)
	if len(first) == 0 {
		t.Fatal("the first run plans nothing")
	}
	e.applyClean(t, b, first)
	if got := e.lines(t, b); len(got) != 0 {
		t.Errorf("second run plans:\n  %s", strings.Join(got, "\n  "))
	}
	e.cloud.ReportAgents()
	if got := e.lines(t, b); len(got) != 0 {
		t.Errorf("after the agents reported, the run plans:\n  %s", strings.Join(got, "\n  "))
	}
	for _, d := range e.cloud.Deployables() {
		if d.UUID == e.deps["compute-02/pac0"] && (len(d.Programmed) != 1 || d.BitstreamID != "") {
			t.Errorf("pool card: programmed %d times, bitstream_id %q: want once, and none recorded by Cyborg", len(d.Programmed), d.BitstreamID)
		}
	}
	// The images carry the function ID a bind reads.
	for _, im := range e.cloud.Images() {
		bs, _ := e.fleet.Bitstream(strings.TrimPrefix(im.Name, "fpgaops-"))
		if bs == nil || im.Properties["accel:function_id"] != bs.AFUID {
			t.Errorf("image %s: accel:function_id %q", im.Name, im.Properties["accel:function_id"])
		}
	}
}

// TestBindNeedsTheFunctionID: Cyborg's bind programs the card and then
// reads accel:function_id from the image; without it the server goes to
// ERROR. The backend's images carry it, and an image that lacks it is
// updated before a server boots with it.
func TestBindNeedsTheFunctionID(t *testing.T) {
	t.Run("the cloud fails a bind without it", func(t *testing.T) {
		e := newE2E(t, "1")
		img := e.cloud.AddImage("bare", e.gzipData, nil)
		e.cloud.AddProfile(openstacktest.Profile{Name: "bare-gzip", Groups: []map[string]string{{"resources:FPGA": "1", "accel:bitstream_id": img}}})
		e.cloud.AddFlavor(openstacktest.Flavor{Name: "bare.fpga", VCPUs: 1, RAM: 1024, Disk: 1, ExtraSpecs: map[string]string{"accel:device_profile": "bare-gzip"}})
		changes := []plans.Change{{ID: "node/compute-01/vm/vm-a:replace", Object: "node/compute-01/vm/vm-a", Action: plans.ActionReplace, Step: plans.StepReplace, Backend: Name,
			Before: &plans.Value{VM: "vm-a", Attrs: map[string]string{attrServer: e.vmA, attrHost: e.fleet.Nodes[0].Hostname, attrImage: "6b0c5b5e-0000-4000-8000-00000000cafe"}},
			After:  &plans.Value{VM: "vm-a", Attrs: map[string]string{attrFlavor: "bare.fpga"}}}}
		res := applyAll(t, e.backend(Options{}), e.fleet, changes, nil)
		if got := res[changes[0].ID]; !strings.Contains(got, "went to ERROR") || !strings.Contains(got, "accel:function_id") {
			t.Errorf("boot with an image lacking accel:function_id: %q", got)
		}
	})
	t.Run("an image lacking it is updated first", func(t *testing.T) {
		e := newE2E(t, "2")
		// The gzip image exists, uploaded before fpgaops set the property.
		e.cloud.AddImage("fpgaops-gzip", e.gzipData, map[string]string{PropertySHA256: sha(e.gzipData), PropertyBitstream: "gzip"})
		b := e.backend(Options{})
		changes := e.plan(t, b)
		byID := map[string]plans.Change{}
		for _, c := range changes {
			byID[c.ID] = c
		}
		up, ok := byID["image/gzip:update"]
		if !ok || up.After.Attrs[attrFunctionID] != afuGzip {
			t.Fatalf("no update of the gzip image's accel:function_id: %v", lines(changes))
		}
		if r := byID["node/compute-01/vm/vm-a:replace"]; !slices.Contains(r.DependsOn, up.ID) {
			t.Errorf("vm-a's replacement does not wait for the image update: %v", r.DependsOn)
		}
		e.applyClean(t, b, changes)
		for _, s := range e.cloud.Servers() {
			if s.Name == "vm-a" && (s.ID == e.vmA || s.Status != "ACTIVE") {
				t.Errorf("vm-a after apply: %+v", s)
			}
		}
	})
}

// TestBoardsCyborgCannotExpose: a D5005 or N3000 on a node OpenStack owns
// gets one report naming the node, the card, the board and Cyborg's
// limitation, and nothing else: no invented traits, profiles or programs.
func TestBoardsCyborgCannotExpose(t *testing.T) {
	f := testFleet()
	f.Nodes[1].FPGAs = []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000}, {Slot: "pac1", PCI: "0000:3b:00.0", Board: spec.BoardD5005}}
	f.Bindings = append(f.Bindings, spec.Binding{Name: "vm-d", Node: "compute-02", FPGA: "pac1", Function: spec.PF, VM: "vm-d", Bitstream: "gzip"})
	st := convergedState()
	st.Nodes[1].Cards = nil
	var out strings.Builder
	for _, c := range plan(f, st) {
		out.WriteString(line(c) + "\n    " + c.Reason + "\n")
	}
	golden(t, "unsupported_boards.golden", out.String())

	// The kvm node's board is not OpenStack's business.
	for _, c := range plan(f, st) {
		if c.Node == "kvm-01" {
			t.Errorf("a change for a node OpenStack does not own: %s", c.ID)
		}
	}
	if BoardTrait(spec.BoardN3000) != "" || BoardTrait(spec.BoardD5005) != "" || BoardTrait(spec.BoardPACA10) != "CUSTOM_FPGA_INTEL_PAC_ARRIA10" {
		t.Error("board traits for boards Cyborg does not report")
	}
}

// TestBoardsCyborgCannotExposeAgainstTheCloud: the cloud reports nothing
// for an N3000, and the plan says why instead of a missing provider.
func TestBoardsCyborgCannotExposeAgainstTheCloud(t *testing.T) {
	e := newE2E(t, "3")
	h := openstacktest.Host{Nova: "e2e-cmp-03-3"}
	e.cloud.AddHost(h)
	if d := e.cloud.AddCard(h, openstacktest.Card{PCI: "0000:b1:00.0", Product: "0x0b30"}); d != "" {
		t.Fatalf("the cloud reported an N3000: deployable %s", d)
	}
	e.fleet.Nodes = append(e.fleet.Nodes, spec.Node{Name: "compute-03", Hostname: h.Nova, FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:b1:00.0", Board: spec.BoardN3000}}})
	e.fleet.Bindings = append(e.fleet.Bindings, spec.Binding{Name: "pool-n3000", Node: "compute-03", FPGA: "pac0", Function: spec.PF, Bitstream: "nlb"})
	var got []plans.Change
	for _, c := range e.plan(t, e.backend(Options{})) {
		if c.Node == "compute-03" {
			got = append(got, c)
		}
	}
	if len(got) != 1 || got[0].Action != plans.ActionReport || !strings.Contains(got[0].Reason, "board pac-n3000 (PCI ID 8086:0b30) cannot be managed through OpenStack") ||
		!strings.Contains(got[0].Reason, "cyborg/accelerator/drivers/fpga/intel/sysinfo.py") {
		t.Errorf("compute-03: %v", lines(got))
	}
}

// TestCardWithVFs: with a VF on, Cyborg names the card's deployable and
// provider after the VF and hands the VF to servers; the card is found by
// its PF all the same, its server holds the VF, and nothing is drift.
func TestCardWithVFs(t *testing.T) {
	e := newE2E(t, "9")
	h := openstacktest.Host{Nova: "e2e-cmp-vf-9"}
	e.cloud.AddHost(h)
	dep := e.cloud.AddCard(h, openstacktest.Card{PCI: "0000:5e:00.0", Product: openstacktest.ProductPACA10, VFs: 1, InterfaceID: ifA10})
	for _, d := range e.cloud.Deployables() {
		if d.UUID == dep && (d.Name != h.Nova+"_0000:5e:00.1" || len(d.Handles) != 1 || d.Handles[0].PCI != "0000:5e:00.1") {
			t.Fatalf("the cloud did not name the card after its VF: %+v", d)
		}
	}
	node := spec.Node{Name: "compute-vf", Hostname: h.Nova, FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10, VFs: 1, InterfaceID: ifA10}}}
	e.fleet.Nodes = append(e.fleet.Nodes, node)
	e.fleet.Bindings = append(e.fleet.Bindings, spec.Binding{Name: "vm-v", Node: "compute-vf", FPGA: "pac0", Function: spec.VF(0), VM: "vm-v", Bitstream: "gzip"})
	e.cloud.AddServer(openstacktest.Server{Name: "vm-v", Host: h.Nova, ImageID: "6b0c5b5e-0000-4000-8000-00000000cafe", Networks: []string{"net-1"}}, "m1.medium")
	b := e.backend(Options{})
	e.applyClean(t, b, e.plan(t, b))
	for _, c := range e.plan(t, b) {
		if c.Node == "compute-vf" {
			t.Errorf("a card with a VF on: %s (%s)", line(c), c.Reason)
		}
	}
	vms, err := b.ObserveVMs(context.Background(), &node)
	if err != nil {
		t.Fatal(err)
	}
	want := []observed.VM{{Name: "vm-v", Running: true, Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.1", Live: true, Config: true}}}}
	if !reflect.DeepEqual(vms, want) {
		t.Errorf("VMs %+v, want vm-v holding the VF", vms)
	}
}

// TestHostNamesSplit: Cyborg finds the compute node's provider by the
// agent's configured host and names the cards after the machine's own
// host name; Nova knows the node by a third. A node that declares them is
// found; one that does not is told where fpgaops looked.
func TestHostNamesSplit(t *testing.T) {
	e := newE2E(t, "7")
	h := openstacktest.Host{Nova: "cmp-split-7", Provider: "cmp-split-7.dc1.example", Hostname: "node-split-7"}
	e.cloud.AddHost(h)
	e.cloud.AddCard(h, openstacktest.Card{PCI: "0000:5e:00.0", Product: openstacktest.ProductPACA10})
	e.fleet.Bindings = append(e.fleet.Bindings, spec.Binding{Name: "pool-split", Node: "compute-split", FPGA: "pac0", Function: spec.PF, Bitstream: "nlb"})
	tests := []struct {
		name     string
		node     spec.Node
		want     []string
		wantWhy  string
		converge bool
	}{
		{"declared", spec.Node{ResourceProvider: h.Provider, DeviceHostname: h.Hostname},
			[]string{"program node/compute-split/fpga/pac0:program"}, "", true},
		{"provider not declared", spec.Node{DeviceHostname: h.Hostname},
			[]string{"report node/compute-split:report"}, "no resource provider named cmp-split-7", false},
		{"device host name not declared", spec.Node{ResourceProvider: h.Provider},
			[]string{"report node/compute-split/fpga/pac0:report"}, "no FPGA resource provider cmp-split-7_0000:5e:00.0 (or named after a VF of the card) under cmp-split-7.dc1.example", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.node
			n.Name, n.Hostname = "compute-split", h.Nova
			n.FPGAs = []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10}}
			fleet := *e.fleet
			fleet.Nodes = append(slices.Clone(e.fleet.Nodes), n)
			b := e.backend(Options{})
			nodes := []*spec.Node{&fleet.Nodes[len(fleet.Nodes)-1]}
			data, err := b.ObservePlatform(context.Background(), &fleet, nodes)
			if err != nil {
				t.Fatal(err)
			}
			changes, err := b.Plan(&fleet, nodes, data)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range changes {
				if c.Node == "compute-split" {
					got = append(got, line(c))
					if tc.wantWhy != "" && !strings.Contains(c.Reason, tc.wantWhy) {
						t.Errorf("%s: reason %q lacks %q", c.ID, c.Reason, tc.wantWhy)
					}
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan for the node:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestVMsFollowNovasAttachHandleRule: Nova gives a server its
// accelerators only when every attach handle is of type PCI; Cyborg's
// fake driver's TEST_PCI handles are no hostdevs, and a server with one
// holds nothing.
func TestVMsFollowNovasAttachHandleRule(t *testing.T) {
	cloud := openstacktest.NewCloud(t, placementURL)
	cloud.Token = openstacktest.PlacementToken
	h := openstacktest.Host{Nova: "cmp-handles"}
	cloud.AddHost(h)
	pac := openstacktest.ProductPACA10
	pci := cloud.AddCard(h, openstacktest.Card{PCI: "0000:5e:00.0", Product: pac})
	pci2 := cloud.AddCard(h, openstacktest.Card{PCI: "0000:5f:00.0", Product: pac})
	fake := cloud.AddCard(h, openstacktest.Card{PCI: "0000:be:00.0", Product: pac, AttachType: "TEST_PCI"})
	fake2 := cloud.AddCard(h, openstacktest.Card{PCI: "0000:bf:00.0", Product: pac, AttachType: "TEST_PCI"})
	cloud.AddFlavor(openstacktest.Flavor{Name: "m1.small", VCPUs: 1, RAM: 2048, Disk: 20})
	for name, deps := range map[string][]string{"real": {pci}, "fake": {fake}, "mixed": {pci2, fake2}} {
		id := cloud.AddServer(openstacktest.Server{Name: name, Host: h.Nova}, "m1.small")
		for _, d := range deps {
			cloud.BindARQ(id, d, "p")
		}
	}
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(cloud.CloudsYAML("lab")), 0o600); err != nil {
		t.Fatal(err)
	}
	b := NewBackend(Options{Cloud: "lab", CloudsFile: clouds}, nil)
	got, err := b.ObserveVMs(context.Background(), &spec.Node{Name: "compute-h", Hostname: h.Nova})
	if err != nil {
		t.Fatal(err)
	}
	want := []observed.VM{
		{Name: "fake", Running: true},
		{Name: "mixed", Running: true},
		{Name: "real", Running: true, Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.0", Live: true, Config: true}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ObserveVMs = %+v, want %+v", got, want)
	}
}
