package kubernetes

import (
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/spec"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	shaSW    = "5a11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
	shaSW2   = "5b11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
	shaNLB   = "bb11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
	ifD5005  = "b41f3e6a2c8d47c5a0e91f72d6c3805b"
	ifN3000  = "9d7324a15c0e4f62b6e83a41f07c2d95"
	afuSW    = "2b6e9d41c7a34f05b8e13d92a6f7c04e"
	afuSW2   = "2b6e9d41c7a34f05b8e13d92a6f7c04f"
	afuNLB   = "c000c9660d824272a665ffffc7d00d01"
	afuOther = "0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f"
	pciA0    = "0000:3b:00.0"
	pciA1    = "0000:5e:00.0"
	pciA1VF  = "0000:5e:00.1"
)

// testFleet has one Kubernetes node: pac0 gives its whole card to pool
// genomics, pac1 its VF to pool proteomics; kvm-01 is not Kubernetes's.
func testFleet() *spec.Fleet {
	return &spec.Fleet{
		Nodes: []spec.Node{
			{Name: "kube-a", Endpoint: "http://127.0.0.1:1/nodes/kube-a", Kubernetes: "kube-a.example", FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: pciA0, Board: spec.BoardD5005},
				{Slot: "pac1", PCI: pciA1, Board: spec.BoardN3000, VFs: 1},
			}},
			{Name: "kvm-01", Libvirt: "qemu:///system", FPGAs: []spec.FPGA{{Slot: "pac0", PCI: pciA0, Board: spec.BoardD5005}}},
		},
		Bitstreams: []spec.Bitstream{
			{Name: "nlb", URL: "https://bitstreams.example.com/nlb.gbs", SHA256: shaNLB, InterfaceID: ifN3000, AFUID: afuNLB},
			{Name: "sw", URL: "https://bitstreams.example.com/sw.gbs", SHA256: shaSW, InterfaceID: ifD5005, AFUID: afuSW},
			{Name: "sw-v2", URL: "https://bitstreams.example.com/sw-v2.gbs", SHA256: shaSW2, InterfaceID: ifD5005, AFUID: afuSW2},
		},
		Bindings: []spec.Binding{
			{Name: "genomics-a", Node: "kube-a", FPGA: "pac0", Function: spec.PF, Pool: "genomics", Bitstream: "sw"},
			{Name: "kvm-sw", Node: "kvm-01", FPGA: "pac0", Function: spec.PF, VM: "guest", Bitstream: "sw"},
			{Name: "proteomics-a", Node: "kube-a", FPGA: "pac1", Function: spec.VF(0), Pool: "proteomics", Bitstream: "nlb"},
		},
		Policy: spec.Policy{Drift: spec.DriftReport},
	}
}

// owned are the test fleet's Kubernetes nodes.
func owned(f *spec.Fleet) []*spec.Node {
	var out []*spec.Node
	for i := range f.Nodes {
		if f.Nodes[i].Kubernetes != "" {
			out = append(out, &f.Nodes[i])
		}
	}
	return out
}

// publishedDevices are the devices a converged kube-a offers.
func publishedDevices() []Device {
	return []Device{
		{Name: "pci-0000-3b-00-0", Attrs: map[string]string{AttrPool: "genomics", AttrBitstream: "sw", AttrAFUID: afuSW, AttrInterfaceID: ifD5005,
			AttrBoard: "pac-d5005", AttrSlot: "pac0", AttrFunction: "pf", AttrHealth: HealthOK, AttrPCI: pciA0}},
		{Name: "pci-0000-5e-00-1", Attrs: map[string]string{AttrPool: "proteomics", AttrBitstream: "nlb", AttrAFUID: afuNLB, AttrInterfaceID: ifN3000,
			AttrBoard: "pac-n3000", AttrSlot: "pac1", AttrFunction: "vf0", AttrHealth: HealthOK, AttrPCI: pciA1VF}},
	}
}

// convergedState is a cluster that runs testFleet, with no pods.
func convergedState() *State {
	return &State{
		Classes: []Class{
			{Name: ClassName("genomics"), Selector: ClassSelector("genomics")},
			{Name: ClassName("proteomics"), Selector: ClassSelector("proteomics")},
		},
		Nodes: []Node{{
			Name: "kube-a", Kubernetes: "kube-a.example", State: observed.NodeOK, Registered: true,
			Cards: []Card{
				{PCI: pciA0, Board: "pac-d5005", InterfaceID: ifD5005, AFUID: afuSW},
				{PCI: pciA1, Board: "pac-n3000", InterfaceID: ifN3000, AFUID: afuNLB, NumVFs: 1, VFs: []Function{{Index: 0, PCI: pciA1VF, Driver: "dfl-pci"}}},
			},
			Slice: &Slice{Name: SliceName("kube-a.example"), Generation: 3, Devices: publishedDevices()},
		}},
	}
}

// holding adds a running pod whose claim holds the device.
func holding(st *State, pod, claim, device, class string) *Pod {
	ns, name, _ := strings.Cut(pod, "/")
	n := &st.Nodes[0]
	n.Allocations = append(n.Allocations, Allocation{Claim: ns + "/" + claim, ClaimUID: "uid-" + claim, Device: device, Request: "fpga", Class: class,
		Pods: []Pod{{Namespace: ns, Name: name, UID: "uid-" + name, Phase: "Running"}}})
	return &n.Allocations[len(n.Allocations)-1].Pods[0]
}

// observedFleet is what the engine observes of the cards (the core
// planner pairs them): kube-a's as State has them, kvm-01 unknown.
func observedFleet(st *State) *observed.Fleet {
	obs := &observed.Fleet{Version: observed.Version, Nodes: []observed.Node{
		{Name: "kvm-01", State: observed.NodeUnknown, Reason: "not in this test"},
	}}
	for _, n := range st.Nodes {
		on := observed.Node{Name: n.Name, State: observed.NodeOK}
		for _, c := range n.Cards {
			d := fpga.Device{PCI: c.PCI, Board: c.Board, InterfaceID: c.InterfaceID, NumVFs: c.NumVFs, Health: fpga.Health{Problems: c.Problems},
				Ports: []fpga.Port{{ID: 0, AFUID: c.AFUID}}}
			for _, vf := range c.VFs {
				d.VFs = append(d.VFs, fpga.Function{Index: vf.Index, PCI: vf.PCI, Driver: vf.Driver})
			}
			on.FPGAs = append(on.FPGAs, d)
		}
		obs.Nodes = append(obs.Nodes, on)
	}
	obs.Sort()
	return obs
}

// corePlan is the whole planner's plan: this backend's changes through
// JSON, as the engine passes them, gated by the core.
func corePlan(t *testing.T, f *spec.Fleet, st *State, now time.Time, opts reconcile.Options) *plans.Plan {
	t.Helper()
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{}
	changes, err := b.Plan(f, owned(f), data)
	if err != nil {
		t.Fatal(err)
	}
	opts.Owned, opts.Backend = map[string]string{"kube-a": Name}, changes
	p, err := reconcile.NewPlan(f, observedFleet(st), now, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func line(c plans.Change) string {
	s := string(c.Action) + " " + c.ID
	if c.Disruptive {
		s += " disruptive"
	}
	if c.Drift {
		s += " drift"
	}
	if c.Wave > 0 {
		s += fmt.Sprintf(" wave=%d", c.Wave)
	}
	if c.Held != nil {
		s += " held=" + string(c.Held.Gate) + ": " + c.Held.Why
	}
	return s
}

// listing is the changes one a line, with what each carries and waits for.
func listing(changes []plans.Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(line(c) + "\n")
		for i, v := range []*plans.Value{c.Before, c.After} {
			if v == nil {
				continue
			}
			side := [2]string{"before", "after"}[i]
			if v.VM != "" || v.AFUID != "" || v.Bitstream != "" {
				fmt.Fprintf(&b, "    %s: vm=%s bitstream=%s afu=%s\n", side, v.VM, v.Bitstream, v.AFUID)
			}
			for _, k := range slices.Sorted(maps.Keys(v.Attrs)) {
				fmt.Fprintf(&b, "    %s %s: %s\n", side, k, v.Attrs[k])
			}
		}
		for _, d := range c.DependsOn {
			b.WriteString("    after " + d + "\n")
		}
		if c.Reason != "" {
			b.WriteString("    # " + c.Reason + "\n")
		}
	}
	return b.String()
}

// golden compares got with testdata/name.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

var noon = time.Date(2026, 6, 3, 12, 0, 0, 0, time.UTC)

// TestPlan runs the backend's plan through the core planner for each
// situation of a Kubernetes node, and compares the listing with
// testdata/plan.golden.
func TestPlan(t *testing.T) {
	tests := []struct {
		name  string
		fleet func(*spec.Fleet)
		state func(*State)
	}{
		{"converged", nil, nil},
		{"fresh cluster and cards", nil, func(st *State) {
			st.Classes = nil
			st.Nodes[0].Slice = nil
			st.Nodes[0].Cards[0].AFUID = afuOther
			st.Nodes[0].Cards[1].AFUID, st.Nodes[0].Cards[1].NumVFs, st.Nodes[0].Cards[1].VFs = afuOther, 0, nil
		}},
		{"reprogram under a pod", func(f *spec.Fleet) { f.Bindings[0].Bitstream = "sw-v2" }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"a disruption budget refuses", func(f *spec.Fleet) { f.Bindings[0].Bitstream = "sw-v2" }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics")).Blocked =
				"PodDisruptionBudget lab/trainers allows no disruption now: it needs 1 healthy pod(s) and has 1"
		}},
		{"protected", func(f *spec.Fleet) { f.Bindings[0].Bitstream, f.Bindings[0].Protected = "sw-v2", true }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"outside the windows", func(f *spec.Fleet) {
			f.Bindings[0].Bitstream = "sw-v2"
			f.Policy.Windows = []spec.Window{{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(time.Hour)}}
		}, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"two pods exceed the budget", func(f *spec.Fleet) { f.Bindings[0].Bitstream = "sw-v2" }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
			holding(st, "lab/checker", "checker-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"two cards, one pod each, take two waves", func(f *spec.Fleet) {
			f.Bindings[0].Bitstream = "sw-v2"
			f.Bitstreams = append(f.Bitstreams, spec.Bitstream{Name: "nlb-v2", URL: "https://bitstreams.example.com/nlb2.gbs", SHA256: shaSW2, InterfaceID: ifN3000, AFUID: afuOther})
			f.Bindings[2].Bitstream = "nlb-v2"
		}, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
			holding(st, "lab/folder", "folder-fpga", "pci-0000-5e-00-1", ClassName("proteomics"))
		}},
		{"a rollout has not released the card", func(f *spec.Fleet) { f.Bindings[0].Bitstream = "sw-v2" }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"a quarantined card", func(f *spec.Fleet) { f.Bindings[0].Bitstream = "sw-v2" }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"VFs off", func(f *spec.Fleet) {
			f.Nodes[0].FPGAs[1].VFs = 0
			f.Bindings[2].Function = spec.PF
		}, nil},
		{"pool moved under a claim", func(f *spec.Fleet) { f.Bindings[0].Pool = "proteomics" }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
		}},
		{"claims hold what is not offered", func(f *spec.Fleet) { f.Bindings = f.Bindings[1:] }, func(st *State) {
			holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
			holding(st, "lab/stray", "stray-fpga", "pci-0000-99-00-0", "")
			holding(st, "lab/done", "done-fpga", "pci-0000-5e-00-1", ClassName("proteomics")).Gone = true
		}},
		{"sick card leaves the slice", nil, func(st *State) {
			st.Nodes[0].Cards[0].Problems = []string{"errors/catfatal_errors reads 0x1"}
		}},
		{"interface mismatch", func(f *spec.Fleet) { f.Bindings[0].Bitstream = "nlb" }, nil},
		{"unknown node and no Node", nil, func(st *State) {
			st.Nodes = append(st.Nodes, Node{Name: "kube-b", Kubernetes: "kube-b", State: observed.NodeUnknown, Reason: "agent: connection refused"})
			st.Nodes[0].Registered = false
		}},
		{"devices of a card the repository lost", nil, func(st *State) {
			st.Nodes[0].Slice.Devices = append(st.Nodes[0].Slice.Devices, Device{Name: "pci-0000-af-00-0", Attrs: map[string]string{AttrSlot: "pac9"}})
		}},
	}
	// What the engine learns of the policy's rollout and the quarantine.
	opts := map[string]reconcile.Options{
		"a rollout has not released the card": {Rollout: func(string) (int, string) { return 2, "rollout step 2 waits for step 1 to be healthy" }},
		"a quarantined card":                  {Quarantined: map[string]string{"node/kube-a/fpga/pac0": "errors/catfatal_errors read 0x1"}},
	}
	var out strings.Builder
	for _, tt := range tests {
		f, st := testFleet(), convergedState()
		if tt.fleet != nil {
			tt.fleet(f)
		}
		if tt.state != nil {
			tt.state(st)
		}
		if tt.name == "unknown node and no Node" {
			f.Nodes = append(f.Nodes, spec.Node{Name: "kube-b", Kubernetes: "kube-b", Endpoint: "http://127.0.0.1:1/nodes/kube-b"})
		}
		p := corePlan(t, f, st, noon, opts[tt.name])
		var mine []plans.Change
		for _, c := range p.Changes {
			if c.Backend == Name || c.Node == "kube-a" {
				mine = append(mine, c)
			}
		}
		fmt.Fprintf(&out, "=== %s\n%s", tt.name, listing(mine))
	}
	golden(t, "plan.golden", out.String())
}

// TestPlanIsPure: the same inputs give the same changes, byte for byte.
func TestPlanIsPure(t *testing.T) {
	f, st := testFleet(), convergedState()
	f.Bindings[0].Bitstream = "sw-v2"
	holding(st, "lab/trainer", "trainer-fpga", "pci-0000-3b-00-0", ClassName("genomics"))
	a, _ := json.Marshal(Plan(f, owned(f), st))
	b, _ := json.Marshal(Plan(f, owned(f), st))
	if string(a) != string(b) || len(a) < 100 {
		t.Errorf("plans differ or are empty:\n%s\n%s", a, b)
	}
}

// BenchmarkPlan plans a cluster of 1,000 Kubernetes nodes of two cards
// each, with a pod on every genomics card and a new bitstream for it:
// 1,000 reprogramming chains with their evictions, and 1,000 cards left
// alone.
func BenchmarkPlan(b *testing.B) {
	const nodes = 1000
	base := testFleet()
	f := &spec.Fleet{Bitstreams: base.Bitstreams, Policy: base.Policy}
	st := &State{Classes: convergedState().Classes}
	for i := range nodes {
		name := fmt.Sprintf("kube-%04d", i)
		n := base.Nodes[0]
		n.Name, n.Kubernetes = name, name+".example"
		f.Nodes = append(f.Nodes, n)
		for _, bd := range []spec.Binding{base.Bindings[0], base.Bindings[2]} {
			bd.Name, bd.Node = name+"-"+bd.Name, name
			if bd.FPGA == "pac0" {
				bd.Bitstream = "sw-v2"
			}
			f.Bindings = append(f.Bindings, bd)
		}
		sn := convergedState().Nodes[0]
		sn.Name, sn.Kubernetes, sn.Slice.Name = name, name+".example", SliceName(name+".example")
		sn.Allocations = []Allocation{{Claim: "lab/c-" + name, Device: "pci-0000-3b-00-0", Class: ClassName("genomics"),
			Pods: []Pod{{Namespace: "lab", Name: "p-" + name, UID: "u-" + name, Phase: "Running"}}}}
		st.Nodes = append(st.Nodes, sn)
	}
	own := owned(f)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if changes := Plan(f, own, st); len(changes) != 4*nodes {
			b.Fatalf("%d changes, want %d", len(changes), 4*nodes)
		}
	}
}
