package main

import (
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/spec"
)

// TestSavedPlanRestartIsRefusedOutsideItsWindow: a saved plan that
// restarts a VM to attach a function (vmRestart, planned inside the
// window) is refused once the window has closed, though nothing is held
// by the window then: the re-plan would only wait for the restart.
func TestSavedPlanRestartIsRefusedOutsideItsWindow(t *testing.T) {
	afu := strings.Repeat("b", 32)
	desired := &spec.Fleet{
		Nodes:      []spec.Node{{Name: "compute-01", FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000, VFs: 1}}}},
		Bitstreams: []spec.Bitstream{{Name: "v2", SHA256: strings.Repeat("2", 64), InterfaceID: testIface, AFUID: afu}},
		Bindings:   []spec.Binding{{Name: "vnf-a", Node: "compute-01", FPGA: "pac0", Function: spec.VF(0), VM: "vnf-a", Bitstream: "v2"}},
		Policy: spec.Policy{Name: "default", VMRestart: true, Windows: []spec.Window{
			{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(4 * time.Hour)}}},
	}
	obs := &observed.Fleet{Version: 1, Nodes: []observed.Node{{Name: "compute-01", State: observed.NodeOK,
		FPGAs: []fpga.Device{{PCI: "0000:5e:00.0", Board: "pac-n3000", InterfaceID: testIface, NumVFs: 1, TotalVFs: 1,
			VFs: []fpga.Function{{Index: 0, PCI: "0000:5e:00.1"}}, Ports: []fpga.Port{{ID: 0, AFUID: afu, OnVF: true}}}},
		VMs: []observed.VM{{Name: "vnf-a", Running: true, RestartToChange: true}}}}}
	inside := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	p, err := reconcile.NewPlan(desired, obs, inside, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	const attach = "node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach"
	if c, ok := p.Change(attach); !ok || c.Restart != reconcile.RestartVM {
		t.Fatalf("the plan inside the window does not restart vnf-a: %+v", c)
	}
	file := &planfile.File{Plan: p, Desired: desired}
	if err := file.WindowsStillOpen(obs, inside.Add(time.Hour)); err != nil {
		t.Errorf("inside the window: %v", err)
	}
	err = file.WindowsStillOpen(obs, inside.Add(4*time.Hour))
	if err == nil || !strings.Contains(err.Error(), attach+" may no longer restart vnf-a: no maintenance window allows it now") {
		t.Errorf("after the window closed: err = %v", err)
	}
}
