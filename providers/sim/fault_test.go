package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/sim"
)

// failsWith checks that err is a non-transient API error whose message
// holds want.
func failsWith(t *testing.T, what string, err error, want string) {
	t.Helper()
	var apiErr *agentapi.Error
	switch {
	case err == nil:
		t.Fatalf("%s succeeded; want it to fail with %q", what, want)
	case providers.IsTransient(err):
		t.Fatalf("%s: %v; want a fault a retry does not cure", what, err)
	case !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeInternal || !strings.Contains(err.Error(), want):
		t.Fatalf("%s: %v; want an internal error saying %q", what, err, want)
	}
}

func TestTargetedFaults(t *testing.T) {
	const (
		pci = "0000:5e:00.0"
		vf  = "0000:5e:00.1"
	)
	ctx := context.Background()
	zero := strings.Repeat("0", 32)
	tests := []struct {
		name  string
		setup func(f *fixture) // the card's state before the fault
		fault sim.Fault
		do    func(f *fixture) error
		// check looks at the card and VMs after the failed change.
		check func(t *testing.T, f *fixture)
	}{
		{
			name:  "program fails and the region keeps its AFU",
			fault: sim.Fault{Op: sim.FaultProgram, PCI: pci, Message: "PR error"},
			do:    func(f *fixture) error { return f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)) },
			check: func(t *testing.T, f *fixture) {
				if d := f.card(t, pci); d.AFUID() == afuNLB || d.AFUID() == zero {
					t.Errorf("card runs %s after a failed PR; want the factory AFU still", d.AFUID())
				}
			},
		},
		{
			name: "program fails halfway and leaves the region empty, VFs off",
			setup: func(f *fixture) {
				if err := f.cards.SetVFs(ctx, f.node, pci, 1); err != nil {
					t.Fatal(err)
				}
			},
			fault: sim.Fault{Op: sim.FaultProgram, PCI: pci, Message: "PR error", EmptyRegion: true},
			do:    func(f *fixture) error { return f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)) },
			check: func(t *testing.T, f *fixture) {
				if d := f.card(t, pci); d.AFUID() != zero || d.NumVFs != 0 {
					t.Errorf("card runs %s with %d VFs after a failed PR; want %s and VFs off", d.AFUID(), d.NumVFs, zero)
				}
			},
		},
		{
			name:  "VFs on fails and changes nothing",
			fault: sim.Fault{Op: sim.FaultSetVFs, PCI: pci, Message: "sriov_numvfs: I/O error"},
			do:    func(f *fixture) error { return f.cards.SetVFs(ctx, f.node, pci, 1) },
			check: func(t *testing.T, f *fixture) {
				if d := f.card(t, pci); d.NumVFs != 0 {
					t.Errorf("card has %d VFs after a failed change; want 0", d.NumVFs)
				}
			},
		},
		{
			name:  "attach fails and the VM holds nothing",
			fault: sim.Fault{Op: sim.FaultAttach, PCI: pci, Message: "hotplug failed"},
			do:    func(f *fixture) error { return f.vms.Attach(ctx, f.node, "db-01", pci) },
			check: func(t *testing.T, f *fixture) {
				vms, _ := f.vms.ObserveVMs(ctx, f.node)
				if d := f.card(t, pci); len(vms[0].Hostdevs) != 0 || d.Driver == "vfio-pci" {
					t.Errorf("after a failed attach: VM %+v, PF driver %s; want nothing held", vms[0], d.Driver)
				}
			},
		},
		{
			name: "detach fails and the VM keeps its VF",
			setup: func(f *fixture) {
				if err := f.cards.SetVFs(ctx, f.node, pci, 1); err != nil {
					t.Fatal(err)
				}
				if err := f.vms.Attach(ctx, f.node, "db-01", vf); err != nil {
					t.Fatal(err)
				}
			},
			fault: sim.Fault{Op: sim.FaultDetach, PCI: pci, Message: "guest ignored the unplug"},
			do:    func(f *fixture) error { return f.vms.Detach(ctx, f.node, "db-01", vf) },
			check: func(t *testing.T, f *fixture) {
				vms, _ := f.vms.ObserveVMs(ctx, f.node)
				if d := f.card(t, pci); !vms[0].Holds(vf) || d.VFs[0].Driver != "vfio-pci" {
					t.Errorf("after a failed detach: VM %+v, VF driver %s; want the VF still held", vms[0], d.VFs[0].Driver)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, testFleet(), sim.Options{})
			if tt.setup != nil {
				tt.setup(f)
			}
			before := f.sim.Stats()
			if err := f.sim.InjectFault("compute-01", tt.fault); err != nil {
				t.Fatal(err)
			}
			failsWith(t, "the faulted change", tt.do(f), tt.fault.Message)
			tt.check(t, f)
			st := f.sim.Stats()
			if st.Failed != 1 || st.Refused != before.Refused || st.Violations != 0 {
				t.Fatalf("stats %+v; want 1 failed, nothing refused", st)
			}
			// One fault, one failure: the same change goes through now.
			if err := tt.do(f); err != nil {
				t.Fatalf("the change after the fault: %v", err)
			}
		})
	}
}

func TestFaultCountAndNoOps(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	if err := f.sim.InjectFault("compute-01", sim.Fault{Op: sim.FaultAttach, PCI: pci, Count: 2}); err != nil {
		t.Fatal(err)
	}
	// A program is another kind of change: the attach fault stays armed.
	if err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		failsWith(t, "attach", f.vms.Attach(ctx, f.node, "db-01", pci), "injected fault")
	}
	if err := f.vms.Attach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatalf("third attach: %v; want the two faults used up", err)
	}
	// A detach that changes nothing leaves a fault armed.
	if err := f.vms.Detach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.InjectFault("compute-01", sim.Fault{Op: sim.FaultDetach, PCI: pci}); err != nil {
		t.Fatal(err)
	}
	if err := f.vms.Detach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatalf("a detach of what the VM does not hold: %v; want the no-op to succeed", err)
	}
	if err := f.vms.Attach(ctx, f.node, "db-01", pci); err != nil {
		t.Fatal(err)
	}
	failsWith(t, "detach", f.vms.Detach(ctx, f.node, "db-01", pci), "injected fault")
	if st := f.sim.Stats(); st.Failed != 3 || st.Attaches != 2 || st.Detaches != 1 {
		t.Fatalf("stats %+v; want 3 failed, 2 attaches, 1 detach", st)
	}
}

func TestFaultsEndpoint(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	post := func(node, body string) (int, string) {
		t.Helper()
		resp, err := http.Post(f.url+"/sim/nodes/"+node+"/faults", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	code, body := post("compute-01", `{"op":"program","pci":"0000:5e:00.0","count":2,"error":"PR error","emptyRegion":true}`)
	var ans sim.FaultsAnswer
	if err := json.Unmarshal([]byte(body), &ans); code != http.StatusOK || err != nil {
		t.Fatalf("POST a fault: %d %s", code, body)
	}
	want := sim.Fault{Op: sim.FaultProgram, PCI: "0000:5e:00.0", Count: 2, Message: "PR error", EmptyRegion: true}
	if len(ans.Pending) != 1 || ans.Pending[0] != want {
		t.Fatalf("pending faults %+v; want [%+v]", ans.Pending, want)
	}
	err := f.cards.Program(context.Background(), f.node, "0000:5e:00.0", image(t, "nlb", afuNLB))
	failsWith(t, "program", err, "PR error")

	tests := []struct {
		name, node, body string
		status           int
		want             []string
	}{
		{"every mistake at once", "compute-01", `{"op":"flash","pci":"5e:00.0","count":-1,"emptyRegion":true}`, http.StatusBadRequest,
			[]string{`op "flash"`, `pci "5e:00.0"`, "count -1", "emptyRegion"}},
		{"a card the node lacks", "compute-01", `{"op":"attach","pci":"0000:86:00.0"}`, http.StatusBadRequest,
			[]string{"node compute-01: fault: pci 0000:86:00.0: no FPGA card there"}},
		{"an unknown field", "compute-01", `{"op":"program","pci":"0000:5e:00.0","times":3}`, http.StatusBadRequest,
			[]string{"times"}},
		{"a node the fleet lacks", "ghost", `{"op":"program","pci":"0000:5e:00.0"}`, http.StatusNotFound,
			[]string{"ghost"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(tt.node, tt.body)
			var eb agentapi.ErrorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error == nil || code != tt.status {
				t.Fatalf("status %d, answer %s; want %d with an error", code, body, tt.status)
			}
			for _, w := range tt.want {
				if !strings.Contains(eb.Error.Message, w) {
					t.Errorf("error %q does not mention %s", eb.Error.Message, w)
				}
			}
		})
	}
}

func TestBusyPort(t *testing.T) {
	f := start(t, testFleet(), sim.Options{})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	if err := f.sim.SetPortBusy("compute-01", pci, true); err != nil {
		t.Fatal(err)
	}
	var apiErr *agentapi.Error
	err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB))
	if !errors.As(err, &apiErr) || apiErr.Code != agentapi.CodeConflict || !strings.Contains(err.Error(), "open elsewhere") {
		t.Fatalf("program of a busy port: %v; want a conflict", err)
	}
	if err := f.cards.SetVFs(ctx, f.node, pci, 1); err == nil {
		t.Fatal("VFs on with port 0 open: want the release refused")
	}
	if st := f.sim.Stats(); st.Refused != 2 || st.Programs != 0 {
		t.Fatalf("stats %+v; want 2 refused", st)
	}
	if err := f.sim.SetPortBusy("compute-01", pci, false); err != nil {
		t.Fatal(err)
	}
	if err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)); err != nil {
		t.Fatalf("program once the port is free: %v", err)
	}
	if err := f.sim.SetPortBusy("compute-01", "0000:86:00.0", true); err == nil {
		t.Fatal("a busy port on a card the node lacks: want an error")
	}
}

// A card programmed with a faulty AFU reports its port's error from its
// next observation on; programming another AFU clears it.
func TestFaultyAFU(t *testing.T) {
	if _, err := sim.New(testFleet(), sim.Options{FaultyAFUs: []string{"not-an-id"}}); err == nil || !strings.Contains(err.Error(), `faulty AFU "not-an-id"`) {
		t.Fatalf("a bad AFU ID: %v", err)
	}
	f := start(t, testFleet(), sim.Options{FaultyAFUs: []string{strings.ToUpper(afuDMA)}})
	ctx := context.Background()
	const pci = "0000:5e:00.0"
	portErrors := func() []string {
		d := f.card(t, pci)
		if !d.Health.OK() {
			t.Fatalf("a port error made the card unhealthy: %+v", d.Health)
		}
		return d.Health.Warnings
	}
	if w := portErrors(); len(w) != 0 {
		t.Fatalf("the factory AFU reports %v", w)
	}
	if err := f.cards.Program(ctx, f.node, pci, image(t, "dma", afuDMA)); err != nil {
		t.Fatal(err)
	}
	if w := portErrors(); len(w) != 1 || w[0] != "port 0 errors/errors = 0x1" {
		t.Fatalf("the faulty AFU reports %v", w)
	}
	if err := f.cards.Program(ctx, f.node, pci, image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	if w := portErrors(); len(w) != 0 {
		t.Fatalf("after programming a good AFU: %v", w)
	}
}
