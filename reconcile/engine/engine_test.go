package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

const (
	iface  = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"
	afuOld = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	afuNew = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// oneCard is a node whose card runs afuOld with vnf-a holding its VF, and
// a repository that wants afuNew: reprogramming it disrupts vnf-a.
func oneCard(node string, policy spec.Policy) (*spec.Fleet, *observed.Fleet) {
	desired := &spec.Fleet{
		Nodes:      []spec.Node{{Name: node, FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000, VFs: 1}}}},
		Bitstreams: []spec.Bitstream{{Name: "v2", URL: "https://images.example/v2.gbs", SHA256: strings.Repeat("2", 64), InterfaceID: iface, AFUID: afuNew}},
		Bindings:   []spec.Binding{{Name: "vnf-a", Node: node, FPGA: "pac0", Function: spec.VF(0), VM: "vnf-a", Bitstream: "v2"}},
		Policy:     policy,
	}
	obs := &observed.Fleet{Version: observed.Version, Nodes: []observed.Node{{Name: node, State: observed.NodeOK,
		FPGAs: []fpga.Device{{PCI: "0000:5e:00.0", Board: "pac-n3000", InterfaceID: iface, NumVFs: 1, TotalVFs: 1,
			VFs: []fpga.Function{{Index: 0, PCI: "0000:5e:00.1"}}, Ports: []fpga.Port{{ID: 0, AFUID: afuOld}}}},
		VMs: []observed.VM{{Name: "vnf-a", Running: true, Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.1", Live: true, Config: true}}}}}}}
	return desired, obs
}

func fakeEngine(fake *reconciletest.Fleet, now time.Time, kinds ...providers.Kind) *engine.Engine {
	return &engine.Engine{Kinds: append(kinds, fake.Kind()), Cards: fake, Concurrency: 4,
		NodeTimeout: 5 * time.Second, Now: func() time.Time { return now }}
}

// A saved plan is refused once a window that allowed its disruption has
// closed: for a detach the window now holds, and for a VM restart that
// the plan made and a re-plan would only wait for.
func TestSavedPlanIsRefusedOnceItsWindowCloses(t *testing.T) {
	window := []spec.Window{{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(4 * time.Hour)}}
	inside := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		policy  spec.Policy
		restart bool
		wantErr string
	}{
		{"a detach", spec.Policy{Name: "default", Windows: window}, false,
			"node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach may no longer run: no allow window is open"},
		{"a restart", spec.Policy{Name: "default", VMRestart: true, Windows: window}, true,
			"node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach may no longer restart vnf-a: no maintenance window allows it now"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired, obs := oneCard("compute-01", tt.policy)
			if tt.restart {
				// The VM holds nothing, and changes only when it restarts.
				obs.Nodes[0].VMs[0] = observed.VM{Name: "vnf-a", Running: true, RestartToChange: true}
				obs.Nodes[0].FPGAs[0].Ports[0].AFUID = afuNew
			}
			fake := reconciletest.New(obs)
			p, err := fakeEngine(fake, inside).Plan(context.Background(), desired, engine.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			file := &planfile.File{Plan: p.Plan, Desired: desired}
			if _, err := fakeEngine(fake, inside.Add(time.Hour)).Saved(context.Background(), file); err != nil {
				t.Errorf("inside the window: %v", err)
			}
			_, err = fakeEngine(fake, inside.Add(4*time.Hour)).Saved(context.Background(), file)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("after the window closed: err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestSavedPlanIsRefusedWhenTheFleetChanged(t *testing.T) {
	desired, obs := oneCard("compute-01", spec.Policy{Name: "default"})
	fake := reconciletest.New(obs)
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	p, err := fakeEngine(fake, now).Plan(context.Background(), desired, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.Detach(context.Background(), &desired.Nodes[0], "vnf-a", "0000:5e:00.1"); err != nil {
		t.Fatal(err)
	}
	_, err = fakeEngine(fake, now).Saved(context.Background(), &planfile.File{Plan: p.Plan, Desired: desired})
	if err == nil || !strings.Contains(err.Error(), "the fleet has changed since the plan was made") {
		t.Fatalf("err = %v", err)
	}
}

// cloud is a Planner backend that owns the nodes that have a hostname: it
// plans to replace each of its servers, after a shared object, and
// records what it applies.
type cloud struct {
	observeErr error
	mu         sync.Mutex
	applied    []string
}

func (c *cloud) Name() string                                  { return "cloud" }
func (c *cloud) Flags(*pflag.FlagSet)                          {}
func (c *cloud) Claims(n *spec.Node, _ providers.Env) bool     { return n.Hostname != "" }
func (c *cloud) Open(providers.Env) (providers.Backend, error) { return c, nil }

func (c *cloud) ObserveVMs(context.Context, *spec.Node) ([]observed.VM, error) { return nil, nil }
func (c *cloud) Attach(context.Context, *spec.Node, string, string) error {
	return errors.New("the cloud attaches at boot")
}
func (c *cloud) Detach(context.Context, *spec.Node, string, string) error {
	return errors.New("the cloud attaches at boot")
}

func (c *cloud) ObservePlatform(_ context.Context, _ *spec.Fleet, nodes []*spec.Node) (json.RawMessage, error) {
	if c.observeErr != nil {
		return nil, c.observeErr
	}
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	return json.Marshal(names)
}

func (c *cloud) Plan(desired *spec.Fleet, _ []*spec.Node, platform json.RawMessage) ([]plans.Change, error) {
	var nodes []string
	if err := json.Unmarshal(platform, &nodes); err != nil {
		return nil, err
	}
	out := []plans.Change{{ID: "flavor/f:create", Object: "flavor/f", Action: plans.ActionCreate, Step: plans.StepCreate, Backend: "cloud",
		After: &plans.Value{Attrs: map[string]string{"name": "f"}}}}
	for _, n := range nodes {
		vm := "vm-" + n
		out = append(out, plans.Change{ID: plans.VMID(n, vm) + ":replace", Object: plans.VMID(n, vm), Action: plans.ActionReplace,
			Step: plans.StepReplace, Backend: "cloud", Node: n, Card: "pac0", Binding: vm, Disruptive: true,
			DependsOn: []string{"flavor/f:create"},
			Before:    &plans.Value{VM: vm, Running: true}, After: &plans.Value{VM: vm, Running: true}})
	}
	return out, nil
}

func (c *cloud) Check(context.Context, *spec.Fleet, *plans.Change) error { return nil }

func (c *cloud) Apply(_ context.Context, _ *spec.Fleet, ch *plans.Change) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applied = append(c.applied, ch.ID)
	return nil
}

// mixed is a fleet of one card chain that disrupts vnf-a on compute-01,
// and a node the cloud owns, whose server it replaces.
func mixed(policy spec.Policy) (*spec.Fleet, *observed.Fleet) {
	desired, obs := oneCard("compute-01", policy)
	desired.Nodes = append(desired.Nodes, spec.Node{Name: "du-01", Hostname: "du-01",
		FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000}}})
	desired.Bindings = append(desired.Bindings, spec.Binding{Name: "vm-du-01", Node: "du-01", FPGA: "pac0", Function: spec.PF, VM: "vm-du-01", Bitstream: "v2"})
	obs.Nodes = append(obs.Nodes, observed.Node{Name: "du-01", State: observed.NodeOK,
		FPGAs: []fpga.Device{{PCI: "0000:5e:00.0", Board: "pac-n3000", InterfaceID: iface, TotalVFs: 1, Ports: []fpga.Port{{ID: 0, AFUID: afuNew}}}}})
	return desired, obs
}

// A backend's server replacement and a card chain's detach count against
// the same disruption budget, and its objects come first: with one VM at
// a time, the shared flavor, the detach's card and the replacement take
// three waves; with two, two. The replacement runs through the backend.
func TestBackendChangesShareTheBudget(t *testing.T) {
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		budget  int
		waves   int
		replace int // its wave
	}{
		{"one VM at a time", 1, 3, 3},
		{"two VMs at a time", 2, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired, obs := mixed(spec.Policy{Name: "default", Budget: spec.Budget{MaxDisruptedVMs: tt.budget}})
			fake, c := reconciletest.New(obs), &cloud{}
			e := fakeEngine(fake, now, c)
			p, err := e.Plan(context.Background(), desired, engine.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			replace, _ := p.Plan.Change("node/du-01/vm/vm-du-01:replace")
			detach, _ := p.Plan.Change("node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach")
			flavor, _ := p.Plan.Change("flavor/f:create")
			if p.Plan.Waves != tt.waves || replace.Wave != tt.replace || flavor.Wave != 1 || detach.Wave < 2 || detach.Wave > tt.replace {
				t.Fatalf("waves %d: flavor %d, detach %d, replace %d", p.Plan.Waves, flavor.Wave, detach.Wave, replace.Wave)
			}
			if tt.budget == 1 && detach.Wave == replace.Wave {
				t.Fatal("the detach and the replacement share a wave with a budget of one VM")
			}
			if !slices.Equal(p.Plan.Owned["cloud"], []string{"du-01"}) {
				t.Fatalf("owned = %v", p.Plan.Owned)
			}
			out, err := e.Apply(context.Background(), p, engine.ApplyOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.applied, []string{"flavor/f:create", "node/du-01/vm/vm-du-01:replace"}) {
				t.Fatalf("the cloud applied %q", c.applied)
			}
			if out.Run.Applied.Replace != 1 || out.Run.Applied.Create != 1 || out.Run.Applied.Program != 1 || out.Run.Violations != 0 {
				t.Fatalf("run %+v", out.Run)
			}
			if v := fake.Violations(); len(v) > 0 {
				t.Fatalf("violations: %v", v)
			}
		})
	}
}

// The policy's gates hold a backend's changes as they hold card chains':
// a protected binding's server is never replaced, and outside the
// windows no server is; what waits for a held change is held too.
func TestBackendChangesAreGated(t *testing.T) {
	window := []spec.Window{{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(4 * time.Hour)}}
	tests := []struct {
		name    string
		policy  spec.Policy
		protect bool
		now     time.Time
		gate    plans.Gate
	}{
		{"protected", spec.Policy{Name: "default"}, true, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), plans.GateProtected},
		{"outside the windows", spec.Policy{Name: "default", Windows: window}, false, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), plans.GateWindow},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			desired, obs := mixed(tt.policy)
			desired.Bindings[1].Protected = tt.protect
			p, err := fakeEngine(reconciletest.New(obs), tt.now, &cloud{}).Plan(context.Background(), desired, engine.PlanOptions{})
			if err != nil {
				t.Fatal(err)
			}
			replace, _ := p.Plan.Change("node/du-01/vm/vm-du-01:replace")
			flavor, _ := p.Plan.Change("flavor/f:create")
			if replace.Held == nil || replace.Held.Gate != tt.gate {
				t.Fatalf("replace held by %+v, want %s", replace.Held, tt.gate)
			}
			if flavor.Held != nil {
				t.Fatalf("the flavor, which disrupts nothing, is held: %+v", flavor.Held)
			}
		})
	}
}

// A platform that cannot be observed makes the nodes its backend owns
// unknown: nothing is planned for them, the rest goes on.
func TestUnobservedPlatformMakesItsNodesUnknown(t *testing.T) {
	desired, obs := mixed(spec.Policy{Name: "default"})
	c := &cloud{observeErr: errors.New("keystone: 503")}
	p, err := fakeEngine(reconciletest.New(obs), time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC), c).Plan(context.Background(), desired, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, ok := p.Plan.Change("node/du-01:unknown")
	if !ok || !strings.Contains(u.Reason, "cloud: keystone: 503") {
		t.Fatalf("du-01: %+v", u)
	}
	for _, ch := range p.Plan.Changes {
		if ch.Backend != "" {
			t.Errorf("planned %s for an unobserved platform", ch.ID)
		}
	}
	if _, ok := p.Plan.Change("node/compute-01/fpga/pac0:program"); !ok {
		t.Error("the other node's card was not planned")
	}
}

// Every node with a bad endpoint is named at once, before anything is
// called.
func TestBadEndpointsAreRefusedAllAtOnce(t *testing.T) {
	fleet := &spec.Fleet{Nodes: []spec.Node{
		{Name: "a", Endpoint: "http://10.0.0.1:9443"},
		{Name: "b", Endpoint: "https://b.example:9443"},
		{Name: "c"},
	}}
	e := &engine.Engine{Kinds: []providers.Kind{reconciletest.New(&observed.Fleet{}).Kind()}}
	e.Agents.Insecure = true
	_, err := e.Plan(context.Background(), fleet, engine.PlanOptions{})
	if err == nil || !strings.Contains(err.Error(), "node a:") || !strings.Contains(err.Error(), "node c:") || strings.Contains(err.Error(), "node b:") {
		t.Fatalf("err = %v; want nodes a and c named", err)
	}
}

// An apply with a trigger is recorded in the history, with what it
// changed; the inventory learns what converged.
func TestApplyIsRecorded(t *testing.T) {
	desired, obs := oneCard("compute-01", spec.Policy{Name: "default"})
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e := fakeEngine(reconciletest.New(obs), time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	e.Store = store
	p, err := e.Plan(context.Background(), desired, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Apply(context.Background(), p, engine.ApplyOptions{Trigger: "apply"}); err != nil {
		t.Fatal(err)
	}
	runs, err := store.Runs(0)
	if err != nil || len(runs) != 1 {
		t.Fatalf("runs = %+v, %v", runs, err)
	}
	r := runs[0]
	if r.Trigger != "apply" || r.Outcome != state.OutcomeApplied || r.Applied.Program != 1 || r.Results.Applied != 5 || r.Violations != 0 {
		t.Fatalf("run %+v", r)
	}
	inv, err := store.Applied()
	if err != nil || len(inv) != 1 {
		t.Fatalf("inventory %v, %v", inv, err)
	}
}

// Scenario: a bitstream change fails after fpgaops took vnf-a's function,
// and giving it back fails too. `git revert` then restores vnf-a under the
// default drift mode report: the card fpgaops left half-changed is
// forgotten by the inventory, so its difference is planned, not reported
// as drift.
func TestRevertRestoresWhatAFailedRunTook(t *testing.T) {
	v1, obs := oneCard("compute-01", spec.Policy{Name: "default"})
	v1.Bitstreams = append(v1.Bitstreams, spec.Bitstream{Name: "v1", URL: "https://images.example/v1.gbs", SHA256: strings.Repeat("1", 64), InterfaceID: iface, AFUID: afuOld})
	v1.Bindings[0].Bitstream = "v1"
	v2 := *v1
	v2.Bindings = []spec.Binding{v1.Bindings[0]}
	v2.Bindings[0].Bitstream = "v2"
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	fake := reconciletest.New(obs)
	e := fakeEngine(fake, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	e.Store = store
	run := func(desired *spec.Fleet) *engine.Outcome {
		t.Helper()
		p, err := e.Plan(context.Background(), desired, engine.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out, _ := e.Apply(context.Background(), p, engine.ApplyOptions{Trigger: "apply"})
		return out
	}
	// v1 converged and recorded.
	if out := run(v1); out.Run.Results.Applied != 0 {
		t.Fatalf("v1 is what runs: %+v", out.Run)
	}
	if err := store.RecordApplied(map[string]string{"node/compute-01/fpga/pac0": reconcile.CardDigests(v1)["node/compute-01/fpga/pac0"]}); err != nil {
		t.Fatal(err)
	}
	// v2: the program fails, and so does giving vnf-a its VF back.
	fake.Fail("program", "compute-01", "0000:5e:00.0", errors.New("PR error: EIO"), 1)
	fake.Fail("attach", "compute-01", "", errors.New("libvirt: domain busy"), 1)
	out := run(&v2)
	if len(out.Run.Degraded) != 1 || out.Run.Degraded[0].VM != "vnf-a" {
		t.Fatalf("degraded = %+v", out.Run.Degraded)
	}
	// The revert: the card's difference is a change, not drift.
	p, err := e.Plan(context.Background(), v1, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := p.Plan.Change("node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach")
	if !ok || !a.Runnable() || a.Drift {
		t.Fatalf("after the revert, vnf-a's attach is %+v; want it planned", a)
	}
	if out, err := e.Apply(context.Background(), p, engine.ApplyOptions{}); err != nil || len(out.Run.Degraded) != 0 {
		t.Fatalf("the revert: %v, %+v", err, out.Run)
	}
	snap := fake.Snapshot()
	n, _ := snap.Node("compute-01")
	if len(n.VMs[0].Hostdevs) != 1 || n.FPGAs[0].AFUID() != afuOld {
		t.Fatalf("after the revert: vnf-a holds %+v, the card runs %s", n.VMs[0].Hostdevs, n.FPGAs[0].AFUID())
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Fatalf("violations: %v", v)
	}
}

// A card that reports a fatal error is quarantined by the apply that sees
// it: it is not programmed, and it stays held after it reads healthy
// again, until an operator releases it; then the next apply converges it.
func TestSickCardIsQuarantinedUntilReleased(t *testing.T) {
	desired, obs := oneCard("compute-01", spec.Policy{Name: "default"})
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	fake := reconciletest.New(obs)
	const fatal = "fme errors/catfatal_errors = 0x1"
	fake.SetProblems("compute-01", "0000:5e:00.0", fatal)
	e := fakeEngine(fake, time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC))
	e.Store = store
	const card = "node/compute-01/fpga/pac0"
	apply := func(wantHeld bool, why string) {
		t.Helper()
		p, err := e.Plan(context.Background(), desired, engine.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		program, ok := p.Plan.Change(card + ":program")
		switch {
		case !ok:
			t.Fatalf("no program of %s planned", card)
		case wantHeld && (program.Held == nil || program.Held.Gate != plans.GateHealth || !strings.Contains(program.Held.Why, why)):
			t.Fatalf("program held by %+v, want gate health naming %q", program.Held, why)
		case !wantHeld && program.Held != nil:
			t.Fatalf("program held by %+v after the release", program.Held)
		}
		if _, err := e.Apply(context.Background(), p, engine.ApplyOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	apply(true, fatal)
	qs, err := store.Quarantined()
	if err != nil || len(qs) != 1 || qs[0].Card != card || qs[0].Reason != fatal {
		t.Fatalf("quarantine %+v, %v", qs, err)
	}

	fake.SetProblems("compute-01", "0000:5e:00.0") // healthy again
	apply(true, "quarantined (since 2026-12-01T03:00:00Z: "+fatal+")")
	if calls := fake.Calls(); len(calls) != 0 {
		t.Fatalf("a quarantined card was changed: %q", calls)
	}

	if released, err := store.Release(card); err != nil || len(released) != 1 {
		t.Fatalf("release: %+v, %v", released, err)
	}
	apply(false, "")
	if v := fake.Violations(); len(v) != 0 {
		t.Fatalf("violations: %q", v)
	}
	p, err := e.Plan(context.Background(), desired, engine.PlanOptions{})
	if err != nil || p.Plan.HasChanges() {
		t.Fatalf("after the release the fleet did not converge: %v", err)
	}
}
