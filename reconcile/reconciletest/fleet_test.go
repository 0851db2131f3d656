package reconciletest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	pf    = "0000:5e:00.0"
	vf    = "0000:5e:00.1"
	iface = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"
)

var node = &spec.Node{Name: "compute-01"}

func start(vfs int, vms ...observed.VM) *reconciletest.Fleet {
	return reconciletest.New(&observed.Fleet{Version: 1, Nodes: []observed.Node{{
		Name: "compute-01", State: observed.NodeOK,
		FPGAs: []fpga.Device{{PCI: pf, InterfaceID: iface, NumVFs: vfs, TotalVFs: 1, Ports: []fpga.Port{{ID: 0, AFUID: "old"}}}},
		VMs:   vms,
	}}})
}

func image(afu string) providers.Image {
	return providers.Image{Bitstream: spec.Bitstream{Name: "nfv", InterfaceID: iface, AFUID: afu}}
}

func TestHardwareRules(t *testing.T) {
	ctx := context.Background()
	running := observed.VM{Name: "vnf-a", Running: true, Hostdevs: []observed.Hostdev{{PCI: vf, Live: true, Config: true}}}
	stopped := observed.VM{Name: "vnf-a", Hostdevs: []observed.Hostdev{{PCI: vf, Config: true}}}
	tests := []struct {
		name      string
		fleet     *reconciletest.Fleet
		do        func(*reconciletest.Fleet) error
		violation string // "" when the call must succeed
		refused   string // an error that is not a violation
	}{
		{"program with VFs off", start(0), func(f *reconciletest.Fleet) error { return f.Program(ctx, node, pf, image("new")) }, "", ""},
		{"program with VFs on", start(1), func(f *reconciletest.Fleet) error { return f.Program(ctx, node, pf, image("new")) }, "with 1 VF(s) on", ""},
		{"program under a running VM's PF", start(0, observed.VM{Name: "vnf-a", Running: true, Hostdevs: []observed.Hostdev{{PCI: pf, Live: true}}}),
			func(f *reconciletest.Fleet) error { return f.Program(ctx, node, pf, image("new")) }, "while vnf-a holds 0000:5e:00.0", ""},
		{"program for another interface", start(0), func(f *reconciletest.Fleet) error {
			img := image("new")
			img.Bitstream.InterfaceID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
			return f.Program(ctx, node, pf, img)
		}, "built for", ""},
		{"program with a wrong digest", start(0), func(f *reconciletest.Fleet) error {
			img := image("new")
			img.Data, img.Bitstream.SHA256 = []byte("gbs"), strings.Repeat("0", 64)
			return f.Program(ctx, node, pf, img)
		}, "whose digest is not", ""},
		{"VFs off under a running VM", start(1, running), func(f *reconciletest.Fleet) error { return f.SetVFs(ctx, node, pf, 0) }, "while vnf-a holds 0000:5e:00.1", ""},
		{"VFs off under a stopped VM", start(1, stopped), func(f *reconciletest.Fleet) error { return f.SetVFs(ctx, node, pf, 0) }, "", ""},
		{"VF count changes through zero only", start(1), func(f *reconciletest.Fleet) error { return f.SetVFs(ctx, node, pf, 2) }, "", "supports 1 VFs"},
		{"attach a held function", start(1, running, observed.VM{Name: "vnf-b", Running: true}),
			func(f *reconciletest.Fleet) error { return f.Attach(ctx, node, "vnf-b", vf) }, "while vnf-a holds it", ""},
		{"attach a VF that is off", start(0, observed.VM{Name: "vnf-b", Running: true}),
			func(f *reconciletest.Fleet) error { return f.Attach(ctx, node, "vnf-b", vf) }, "", "no PCI function"},
		{"detach what the VM does not hold", start(1, observed.VM{Name: "vnf-b", Running: true}),
			func(f *reconciletest.Fleet) error { return f.Detach(ctx, node, "vnf-b", vf) }, "", "does not hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do(tt.fleet)
			v := tt.fleet.Violations()
			switch {
			case tt.violation != "":
				if err == nil || len(v) != 1 || !strings.Contains(v[0], tt.violation) {
					t.Fatalf("err %v, violations %q; want one violation %q", err, v, tt.violation)
				}
				if len(tt.fleet.Calls()) != 0 {
					t.Errorf("a refused call took effect: %q", tt.fleet.Calls())
				}
			case tt.refused != "":
				if err == nil || !strings.Contains(err.Error(), tt.refused) || len(v) != 0 {
					t.Fatalf("err %v, violations %q; want a refusal %q", err, v, tt.refused)
				}
			default:
				if err != nil || len(v) != 0 {
					t.Fatalf("err %v, violations %q; want success", err, v)
				}
			}
		})
	}
}

func TestStateFollowsCalls(t *testing.T) {
	ctx := context.Background()
	f := start(1, observed.VM{Name: "vnf-a", Running: true}, observed.VM{Name: "vnf-s"})
	steps := []func() error{
		func() error { return f.SetVFs(ctx, node, pf, 0) },
		func() error { return f.Program(ctx, node, pf, image("new")) },
		func() error { return f.SetVFs(ctx, node, pf, 1) },
		func() error { return f.Attach(ctx, node, "vnf-a", vf) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	snap := f.Snapshot()
	n, _ := snap.Node("compute-01")
	d := n.FPGAs[0]
	if d.AFUID() != "new" || d.NumVFs != 1 || len(d.VFs) != 1 || d.VFs[0].PCI != vf {
		t.Errorf("card after the steps: %+v", d)
	}
	if h := n.VMs[0].Hostdevs; n.VMs[0].Name != "vnf-a" || len(h) != 1 || h[0] != (observed.Hostdev{PCI: vf, Live: true, Config: true}) {
		t.Errorf("vnf-a after attach: %+v", n.VMs[0])
	}
	if err := f.Attach(ctx, node, "vnf-s", pf); err != nil {
		t.Fatal(err)
	}
	snap = f.Snapshot()
	n, _ = snap.Node("compute-01")
	if h := n.VMs[1].Hostdevs; len(h) != 1 || h[0].Live || !h[0].Config {
		t.Errorf("a stopped VM's attach is config only: %+v", n.VMs[1])
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	f := start(0)
	f.Fail("program", "compute-01", pf, providers.Transient(errors.New("timeout")), 1)
	if err := f.Program(ctx, node, pf, image("new")); !providers.IsTransient(err) {
		t.Fatalf("first call: %v, want the transient fault", err)
	}
	if err := f.Program(ctx, node, pf, image("new")); err != nil {
		t.Fatalf("second call: %v, want success once the fault is spent", err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	f.KillAfter(1, cancel)
	if err := f.SetVFs(ctx2, node, pf, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.SetVFs(ctx2, node, pf, 0); err == nil || ctx2.Err() == nil {
		t.Fatalf("after the kill: %v, ctx %v", err, ctx2.Err())
	}
	// A killed process makes no call, even on a context the kill did not
	// end; the next one does.
	if _, err := f.ObserveCards(ctx, node); err == nil {
		t.Fatal("a read after the kill succeeded")
	}
	f.Revive()
	if err := f.SetVFs(ctx, node, pf, 0); err != nil {
		t.Fatalf("after Revive: %v", err)
	}
	if got := f.Calls(); len(got) != 3 {
		t.Errorf("calls %q, want the program and two VF changes", got)
	}
}
