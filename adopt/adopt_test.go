package adopt_test

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/fpgaops/fpgaops/adopt"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	ifaceA = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"
	ifaceB = "9d7324a15c0e4f62b6e83a41f07c2d95"
	afuFW  = "aa11b2c3d4e5f60718293a4b5c6d7e01"
	afuNew = "bb22c3d4e5f60718293a4b5c6d7e8f02"
)

// card is an observed card whose port runs afu ("" unknown), with its
// VFs on.
func card(pci, iface, afu string, vfs ...string) fpga.Device {
	d := fpga.Device{PCI: pci, InterfaceID: iface, NumVFs: len(vfs), TotalVFs: 1, Ports: []fpga.Port{{ID: 0, AFUID: afu, OnVF: len(vfs) > 0}}}
	for i, v := range vfs {
		d.VFs = append(d.VFs, fpga.Function{Index: i, PCI: v, Driver: "vfio-pci"})
	}
	return d
}

func vm(name string, running bool, hostdevs ...observed.Hostdev) observed.VM {
	return observed.VM{Name: name, Running: running, Hostdevs: hostdevs}
}

func live(pci string) observed.Hostdev   { return observed.Hostdev{PCI: pci, Live: true, Config: true} }
func config(pci string) observed.Hostdev { return observed.Hostdev{PCI: pci, Config: true} }

func fleet() (*spec.Fleet, *observed.Fleet) {
	fpgas := func(n int) []spec.FPGA {
		slots := []spec.FPGA{
			{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000, VFs: 1},
			{Slot: "pac1", PCI: "0000:af:00.0", Board: spec.BoardN3000, VFs: 1},
			{Slot: "pac2", PCI: "0000:d8:00.0", Board: spec.BoardN3000},
		}
		return slots[:n]
	}
	desired := &spec.Fleet{
		Nodes: []spec.Node{
			{Name: "compute-01", FPGAs: fpgas(3)},
			{Name: "compute-02", FPGAs: fpgas(3)},
			{Name: "compute-03", FPGAs: fpgas(1)},
			{Name: "compute-04", FPGAs: fpgas(2)},
		},
		Bitstreams: []spec.Bitstream{
			// The same AFU for two PR interfaces: the card's is chosen.
			{Name: "fw-for-b", AFUID: afuFW, InterfaceID: ifaceB},
			{Name: "fw-v1", AFUID: afuFW, InterfaceID: ifaceA},
		},
		Bindings: []spec.Binding{
			{Name: "db", Node: "compute-02", FPGA: "pac0", Function: spec.VF(0), VM: "db-old", Bitstream: "fw-v1"},
			// A name import would choose is taken.
			{Name: "compute-02-pac1-vf0", Node: "compute-04", FPGA: "pac1", Function: spec.VF(0), VM: "x", Bitstream: "fw-v1"},
		},
	}
	obs := &observed.Fleet{Version: observed.Version, Nodes: []observed.Node{
		{Name: "compute-01", State: observed.NodeOK,
			FPGAs: []fpga.Device{
				card("0000:5e:00.0", ifaceA, afuFW, "0000:5e:00.1"),
				card("0000:af:00.0", ifaceA, afuNew),
				card("0000:d8:00.0", ifaceA, afuFW),
			},
			VMs: []observed.VM{
				vm("vnf-a", true, live("0000:5e:00.1")),
				vm("whole", false, config("0000:af:00.0")),
				vm("other", true, live("0000:3b:00.0")), // not a managed card
			}},
		{Name: "compute-02", State: observed.NodeOK,
			FPGAs: []fpga.Device{
				card("0000:5e:00.0", ifaceA, afuFW, "0000:5e:00.1"),
				card("0000:af:00.0", ifaceA, afuNew, "0000:af:00.1"),
				card("0000:d8:00.0", ifaceA, ""),
			},
			VMs: []observed.VM{
				vm("db", true, live("0000:5e:00.1")),
				vm("a-stopped", false, config("0000:af:00.1")),
				vm("b-running", true, live("0000:af:00.1")),
				vm("blind", true, live("0000:d8:00.0")),
			}},
		{Name: "compute-03", State: observed.NodeUnknown, Reason: "cards: connection refused"},
		{Name: "compute-04", State: observed.NodeOK, FPGAs: []fpga.Device{card("0000:5e:00.0", ifaceB, afuFW, "0000:5e:00.1")},
			VMs: []observed.VM{vm("vnf-b", true, live("0000:5e:00.1"))}},
	}}
	return desired, obs
}

func TestAdopt(t *testing.T) {
	desired, obs := fleet()
	got := adopt.Adopt(desired, obs)
	want := &adopt.Result{
		Bindings: []spec.Binding{
			{Name: "compute-01-pac0-vf0", Node: "compute-01", FPGA: "pac0", Function: spec.VF(0), VM: "vnf-a", Bitstream: "fw-v1"},
			{Name: "compute-01-pac1-pf", Node: "compute-01", FPGA: "pac1", Function: spec.PF, VM: "whole", Bitstream: "fill-in-afu-" + afuNew},
			{Name: "compute-02-pac1-vf0-2", Node: "compute-02", FPGA: "pac1", Function: spec.VF(0), VM: "b-running", Bitstream: "fill-in-afu-" + afuNew},
			{Name: "compute-04-pac0-vf0", Node: "compute-04", FPGA: "pac0", Function: spec.VF(0), VM: "vnf-b", Bitstream: "fw-for-b"},
		},
		Stubs: []adopt.Stub{{Name: "fill-in-afu-" + afuNew, AFUID: afuNew, InterfaceID: ifaceA,
			Cards: []string{"node/compute-01/fpga/pac1", "node/compute-02/fpga/pac1"}}},
		Notes: []string{
			"node/compute-01/fpga/pac2: runs AFU " + afuFW + " and no VM holds it: not adopted (a binding without a vm keeps a card programmed)",
			"node/compute-02/fpga/pac1 vf0: held by VMs a-stopped and b-running; adopted for b-running, which holds it live",
			"node/compute-02/fpga/pac0 vf0: held by VM db, but binding db gives it to db-old: left as declared",
			"node/compute-02/fpga/pac2 pf: held by VM blind, but what the card runs is unknown (the host cannot read it and its agent does not recall it): write its binding by hand",
			"node compute-03: unknown (cards: connection refused); nothing adopted",
			"node/compute-04/fpga/pac1: no card at 0000:af:00.0 on the node; nothing adopted",
		},
	}
	if !reflect.DeepEqual(got.Bindings, want.Bindings) {
		t.Errorf("bindings:\n%+v\nwant\n%+v", got.Bindings, want.Bindings)
	}
	if !reflect.DeepEqual(got.Stubs, want.Stubs) {
		t.Errorf("stubs:\n%+v\nwant\n%+v", got.Stubs, want.Stubs)
	}
	if !reflect.DeepEqual(got.Notes, want.Notes) {
		t.Errorf("notes:\n%q\nwant\n%q", got.Notes, want.Notes)
	}
}

// The files import writes, compared with testdata: run with -update after
// a deliberate change.
func TestYAML(t *testing.T) {
	desired, obs := fleet()
	r := adopt.Adopt(desired, obs)
	bindings, err := r.BindingsYAML()
	if err != nil {
		t.Fatal(err)
	}
	stubs, err := r.StubsYAML("bindings/imported.yaml")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "bindings.yaml", bindings)
	golden(t, "stubs.yaml", stubs)
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from %s (go test -update to accept):\n%s", name, path, got)
	}
}
