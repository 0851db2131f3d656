package sim_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	ifaceN3000 = "69528db6eb31577a8c3668f9faa081f6"
	afuNLB     = "d8424dc4a4a3c413f89e433683f9040b"
	afuDMA     = "331db30c98834a2d6a1d7e0a8b6b4a60"
)

// image builds a small GBS for the N3000's PR interface.
func image(t *testing.T, name, afu string) providers.Image {
	t.Helper()
	return imageFor(t, ifaceN3000, name, afu)
}

// imageFor builds a small GBS for a PR interface.
func imageFor(t *testing.T, iface, name, afu string) providers.Image {
	t.Helper()
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{
		MagicNo: bitstream.MagicNo, InterfaceUUID: iface,
		AcceleratorClusters: []bitstream.Cluster{{Name: name, TotalContexts: 1, AcceleratorTypeUUID: afu}},
	}}
	data, err := bitstream.Build(md, bytes.Repeat([]byte(name), 512))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return providers.Image{Data: data, Bitstream: spec.Bitstream{
		Name: name, SHA256: hex.EncodeToString(sum[:]), InterfaceID: iface, AFUID: afu, Size: int64(len(data)),
	}}
}

func testFleet() *spec.Fleet {
	return &spec.Fleet{
		Nodes: []spec.Node{{
			Name: "compute-01",
			FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000, VFs: 1, InterfaceID: ifaceN3000},
				{Slot: "pac1", PCI: "0000:af:00.0", Board: spec.BoardPACA10},
			},
		}},
		Bitstreams: []spec.Bitstream{{Name: "nlb", InterfaceID: ifaceN3000, AFUID: afuNLB}},
		Bindings: []spec.Binding{
			{Name: "db-01-accel", Node: "compute-01", FPGA: "pac0", Function: spec.VF(0), VM: "db-01", Bitstream: "nlb"},
		},
	}
}

// fixture is a sim behind an HTTP server and the clients that reach it.
type fixture struct {
	sim   *sim.Sim
	url   string
	cards *agent.Client
	vms   *sim.VMClient
	node  *spec.Node
}

func start(t *testing.T, fleet *spec.Fleet, opts sim.Options) *fixture {
	t.Helper()
	s, err := sim.New(fleet, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		// The sim first: closing it ends the modelled time of requests in
		// flight, which the server waits for.
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		srv.Close()
	})
	c := agent.NewClient(srv.Client())
	return &fixture{sim: s, url: srv.URL, cards: c, vms: sim.NewVMClient(c),
		node: &spec.Node{Name: "compute-01", Endpoint: srv.URL + "/nodes/compute-01"}}
}

func (f *fixture) card(t *testing.T, pci string) fpga.Device {
	t.Helper()
	devs, err := f.cards.ObserveCards(context.Background(), f.node)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.PCI == pci {
			return d
		}
	}
	t.Fatalf("no card %s in %+v", pci, devs)
	return fpga.Device{}
}

func TestFreshNode(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	devs, err := f.cards.ObserveCards(ctx, f.node)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 2 {
		t.Fatalf("%d cards; want the 2 the node declares", len(devs))
	}
	byPCI := map[string]fpga.Device{}
	for _, d := range devs {
		byPCI[d.PCI] = d
	}
	n3000, a10 := byPCI["0000:5e:00.0"], byPCI["0000:af:00.0"]
	if n3000.Board != string(spec.BoardN3000) || n3000.Stack != fpga.StackDFL || n3000.InterfaceID != ifaceN3000 || n3000.NumVFs != 0 {
		t.Errorf("N3000 = %+v; want a DFL pac-n3000 with the declared interface and VFs off", n3000)
	}
	if a10.Board != string(spec.BoardPACA10) || a10.Stack != fpga.StackIntelFPGA {
		t.Errorf("A10 = %+v; want a pac-a10 on the intel-fpga stack", a10)
	}
	if n3000.AFUID() == "" || n3000.AFUID() == afuNLB {
		t.Errorf("fresh N3000 runs %q; want a factory AFU, not the fleet's", n3000.AFUID())
	}
	vms, err := f.vms.ObserveVMs(ctx, f.node)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 1 || vms[0].Name != "db-01" || !vms[0].Running || len(vms[0].Hostdevs) != 0 {
		t.Fatalf("VMs = %+v; want db-01 running with no hostdevs", vms)
	}
}

func TestRefusesToProgramUnderARunningVM(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	if err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	if err := f.cards.SetVFs(ctx, f.node, pci, 1); err != nil {
		t.Fatal(err)
	}
	vf := f.card(t, pci).VFs[0].PCI
	if err := f.vms.Attach(ctx, f.node, "db-01", vf); err != nil {
		t.Fatal(err)
	}
	if d := f.card(t, pci); d.VFs[0].Driver != "vfio-pci" || d.AFUID() != afuNLB {
		t.Errorf("attached VF has driver %q, card runs %q; want vfio-pci, and the AFU recalled", d.VFs[0].Driver, d.AFUID())
	}

	for _, step := range []struct {
		name string
		do   func() error
	}{
		{"program", func() error { return f.cards.Program(ctx, f.node, pci, image(t, "dma", afuDMA)) }},
		{"VFs off", func() error { return f.cards.SetVFs(ctx, f.node, pci, 0) }},
	} {
		err := step.do()
		var apiErr *agentapi.Error
		if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeConflict {
			t.Fatalf("%s under a running VM: err = %v; want a conflict", step.name, err)
		}
	}
	if d := f.card(t, pci); d.AFUID() != afuNLB {
		t.Fatalf("card runs %s after a refused program; want %s still", d.AFUID(), afuNLB)
	}
	st := f.sim.Stats()
	if st.Violations != 2 || st.Programs != 1 || st.Attaches != 1 {
		t.Fatalf("stats = %+v; want 2 violations, 1 program, 1 attach", st)
	}

	// The safe order goes through.
	if err := f.vms.Detach(ctx, f.node, "db-01", vf); err != nil {
		t.Fatal(err)
	}
	if err := f.cards.SetVFs(ctx, f.node, pci, 0); err != nil {
		t.Fatal(err)
	}
	if err := f.cards.Program(ctx, f.node, pci, image(t, "dma", afuDMA)); err != nil {
		t.Fatal(err)
	}
	st = f.sim.Stats()
	if st.Violations != 2 || st.Programs != 2 || st.Detaches != 1 || st.SetVFs != 2 {
		t.Fatalf("stats = %+v; want no new violation, 2 programs, 1 detach, 2 VF changes", st)
	}
}

func TestHostdevs(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	tests := []struct {
		name     string
		attach   bool
		vm, pci  string
		wantCode string
	}{
		{"attach the PF", true, "db-01", "0000:5e:00.0", ""},
		{"attach it again (idempotent)", true, "db-01", "0000:5e:00.0", ""},
		{"attach to a VM that does not exist", true, "web-09", "0000:af:00.0", agentapi.CodeNotFound},
		{"attach a function that does not exist", true, "db-01", "0000:5e:00.1", agentapi.CodeNotFound},
		{"detach the PF", false, "db-01", "0000:5e:00.0", ""},
		{"detach it again (idempotent)", false, "db-01", "0000:5e:00.0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := f.vms.Detach
			if tt.attach {
				op = f.vms.Attach
			}
			err := op(ctx, f.node, tt.vm, tt.pci)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var apiErr *agentapi.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tt.wantCode {
				t.Fatalf("err = %v; want code %s", err, tt.wantCode)
			}
		})
	}
	if st := f.sim.Stats(); st.Attaches != 1 || st.Detaches != 1 || st.Violations != 0 {
		t.Fatalf("stats = %+v; want 1 attach and 1 detach", st)
	}
}

func TestStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	f := start(t, testFleet(), sim.Options{StateDir: dir})
	if err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	if err := f.vms.Attach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Close(); err != nil {
		t.Fatal(err)
	}

	g := start(t, testFleet(), sim.Options{StateDir: dir})
	if d := g.card(t, pci); d.AFUID() != afuNLB {
		t.Fatalf("after restart the card runs %q; want %s", d.AFUID(), afuNLB)
	}
	vms, err := g.vms.ObserveVMs(ctx, g.node)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 1 || !vms[0].Holds(pci) {
		t.Fatalf("after restart VMs = %+v; want db-01 holding %s", vms, pci)
	}
	if st := g.sim.Stats(); st.Programs != 1 || st.Attaches != 1 {
		t.Fatalf("after restart stats = %+v; want the counts from before", st)
	}
}

func TestStatsEndpoint(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	if err := f.cards.Program(context.Background(), f.node, "0000:5e:00.0", image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(f.url + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]int64
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"programs", "attaches", "detaches", "violations"} {
		if _, ok := got[k]; !ok {
			t.Errorf("/sim/stats has no %q: %v", k, got)
		}
	}
	if got["programs"] != 1 || got["nodes"] != 1 {
		t.Errorf("/sim/stats = %v; want 1 program on 1 node", got)
	}
}

// faults runs n inventory requests and records which failed.
func faults(t *testing.T, opts sim.Options, n int) []bool {
	t.Helper()
	f := start(t, testFleet(), opts)
	f.cards.ReadAttempts = 1 // see every fault, not just those a retry misses
	out := make([]bool, n)
	for i := range out {
		_, err := f.cards.ObserveCards(context.Background(), f.node)
		if err != nil && !providers.IsTransient(err) {
			t.Fatalf("request %d: %v; want an injected fault to be transient", i, err)
		}
		out[i] = err != nil
	}
	return out
}

func TestFailRate(t *testing.T) {
	a := faults(t, sim.Options{FailRate: 0.3, Seed: 7}, 200)
	b := faults(t, sim.Options{FailRate: 0.3, Seed: 7}, 200)
	c := faults(t, sim.Options{FailRate: 0.3, Seed: 8}, 200)
	failed := 0
	for _, x := range a {
		if x {
			failed++
		}
	}
	if failed < 30 || failed > 90 {
		t.Errorf("%d of 200 requests failed at rate 0.3", failed)
	}
	if !equal(a, b) {
		t.Error("the same seed failed different requests")
	}
	if equal(a, c) {
		t.Error("another seed failed the very same requests")
	}
	if none := faults(t, sim.Options{}, 50); contains(none, true) {
		t.Error("requests failed with no fail rate")
	}
}

func equal(a, b []bool) bool { return bytes.Equal(pack(a), pack(b)) }

func pack(v []bool) []byte {
	out := make([]byte, len(v))
	for i, x := range v {
		if x {
			out[i] = 1
		}
	}
	return out
}

func contains(v []bool, x bool) bool {
	for _, y := range v {
		if y == x {
			return true
		}
	}
	return false
}

func TestNodeDown(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	if err := f.sim.SetDown("compute-01", true); err != nil {
		t.Fatal(err)
	}
	_, err := f.cards.ObserveCards(ctx, f.node)
	if err == nil || !providers.IsTransient(err) {
		t.Fatalf("a node that is down answered (err = %v); want a dropped connection", err)
	}
	if err := f.sim.SetDown("compute-01", false); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cards.ObserveCards(ctx, f.node); err != nil {
		t.Fatalf("the node is up again, but: %v", err)
	}
	_, err = f.cards.ObserveCards(ctx, &spec.Node{Name: "ghost", Endpoint: f.url + "/nodes/ghost"})
	var apiErr *agentapi.Error
	if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeNotFound {
		t.Fatalf("a node the fleet lacks: err = %v; want not_found", err)
	}
}

func TestNodesBuildOnceUnderConcurrentFirstTouch(t *testing.T) {
	fleet := testFleet()
	fleet.Nodes = append(fleet.Nodes, spec.Node{Name: "compute-02", FPGAs: fleet.Nodes[0].FPGAs})
	f := start(t, fleet, sim.Options{})
	nodes := []*spec.Node{f.node, {Name: "compute-02", Endpoint: f.url + "/nodes/compute-02"}}
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := f.cards.ObserveCards(context.Background(), nodes[i%2])
			errs <- err
		}()
	}
	for range 20 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if st := f.sim.Stats(); st.NodesTouched != 2 || st.Requests != 20 {
		t.Fatalf("stats %+v; want 2 nodes built and 20 requests", st)
	}
}

// A PF handed to a VM is bound to vfio-pci and shows no FPGA features;
// the AFU ID the node's agent read before is what the inventory reports.
func TestPFInAVMShowsNoFeatures(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	if err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	if err := f.vms.Attach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatal(err)
	}
	d := f.card(t, pci)
	if d.Driver != "vfio-pci" || d.Stack != "" || d.InterfaceID != "" || d.BitstreamID != 0 || d.BBSVersion != "" {
		t.Errorf("PF in a VM reads %+v; want vfio-pci and no FME", d)
	}
	if len(d.Ports) != 1 || d.Ports[0].ID != 0 || d.Ports[0].AFUID != afuNLB || d.Ports[0].Dev != "" {
		t.Errorf("PF in a VM has ports %+v; want port 0 alone, its AFU recalled, no device node", d.Ports)
	}
	if err := f.vms.Detach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatal(err)
	}
	if d := f.card(t, pci); d.Driver != "dfl-pci" || d.InterfaceID != ifaceN3000 || d.Ports[0].Dev == "" {
		t.Errorf("PF back on the host reads %+v; want dfl-pci with its FME and port", d)
	}
}
