package execute_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	iface = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"
	afuV1 = "aa11b2c3d4e5f60718293a4b5c6d7e01"
	afuV2 = "bb22c3d4e5f60718293a4b5c6d7e8f02"
)

var now = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// fixture is a two-node fleet with real GBS images in a repository
// directory:
//   - compute-01 pac0 and pac1 run nfv-fw-v1 under running VMs vnf-a and
//     vnf-b and move to nfv-fw-v2 (detach, VFs off, program, VFs on, attach);
//   - compute-02 pac0 is blank and goes to nfv-fw-v1 for the stopped VM
//     vnf-c; pac1 is blank and is kept programmed with nfv-fw-v2 (a pool
//     card, no VM).
type fixture struct {
	desired *spec.Fleet
	obs     *observed.Fleet
	root    string
}

func newFixture(t testing.TB) fixture {
	t.Helper()
	root := t.TempDir()
	bs := []spec.Bitstream{writeGBS(t, root, "nfv-fw-v1", afuV1), writeGBS(t, root, "nfv-fw-v2", afuV2)}
	card := func(slot, pci string) spec.FPGA {
		return spec.FPGA{Slot: slot, PCI: pci, Board: spec.BoardN3000, VFs: 1}
	}
	desired := &spec.Fleet{
		Root:     root,
		Revision: "4f2a9c1",
		Nodes: []spec.Node{
			{Name: "compute-01", FPGAs: []spec.FPGA{card("pac0", "0000:5e:00.0"), card("pac1", "0000:af:00.0")}},
			{Name: "compute-02", FPGAs: []spec.FPGA{card("pac0", "0000:5e:00.0"), card("pac1", "0000:af:00.0")}},
		},
		Bitstreams: bs,
		Bindings: []spec.Binding{
			{Name: "pool-2", Node: "compute-02", FPGA: "pac1", Function: spec.VF(0), Bitstream: "nfv-fw-v2"},
			{Name: "vnf-a", Node: "compute-01", FPGA: "pac0", Function: spec.VF(0), VM: "vnf-a", Bitstream: "nfv-fw-v2"},
			{Name: "vnf-b", Node: "compute-01", FPGA: "pac1", Function: spec.VF(0), VM: "vnf-b", Bitstream: "nfv-fw-v2"},
			{Name: "vnf-c", Node: "compute-02", FPGA: "pac0", Function: spec.VF(0), VM: "vnf-c", Bitstream: "nfv-fw-v1"},
		},
		Policy: spec.Policy{Name: "default", Drift: spec.DriftCorrect, Budget: spec.Budget{MaxDisruptedVMs: 2}},
	}
	dev := func(pci, afu string, vfs int) fpga.Device {
		d := fpga.Device{PCI: pci, Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", Stack: fpga.StackDFL,
			InterfaceID: iface, NumVFs: vfs, TotalVFs: 1, Ports: []fpga.Port{{ID: 0, AFUID: afu, OnVF: vfs > 0}}}
		if vfs > 0 {
			d.VFs = []fpga.Function{{Index: 0, PCI: pci[:len(pci)-1] + "1", Driver: "vfio-pci"}}
		}
		return d
	}
	live := func(pci string) []observed.Hostdev { return []observed.Hostdev{{PCI: pci, Live: true, Config: true}} }
	obs := &observed.Fleet{Version: observed.Version, Nodes: []observed.Node{
		{Name: "compute-01", State: observed.NodeOK,
			FPGAs: []fpga.Device{dev("0000:5e:00.0", afuV1, 1), dev("0000:af:00.0", afuV1, 1)},
			VMs: []observed.VM{
				{Name: "vnf-a", Running: true, Hostdevs: live("0000:5e:00.1")},
				{Name: "vnf-b", Running: true, Hostdevs: live("0000:af:00.1")},
			}},
		{Name: "compute-02", State: observed.NodeOK,
			FPGAs: []fpga.Device{dev("0000:5e:00.0", "", 0), dev("0000:af:00.0", "", 0)},
			VMs:   []observed.VM{{Name: "vnf-c"}}},
	}}
	return fixture{desired: desired, obs: obs, root: root}
}

func writeGBS(t testing.TB, root, name, afu string) spec.Bitstream {
	t.Helper()
	md := bitstream.Metadata{Version: 1, PlatformName: "n3000", AFUImage: bitstream.AFUImage{
		MagicNo: bitstream.MagicNo, InterfaceUUID: bitstream.FormatUUID(iface),
		AcceleratorClusters: []bitstream.Cluster{{Name: name, TotalContexts: 1, AcceleratorTypeUUID: bitstream.FormatUUID(afu)}},
	}}
	data, err := bitstream.Build(md, []byte("payload of "+name))
	if err != nil {
		t.Fatal(err)
	}
	file := "bitstreams/" + name + ".gbs"
	if err := os.MkdirAll(filepath.Join(root, "bitstreams"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return spec.Bitstream{Name: name, File: file, SHA256: hex.EncodeToString(sum[:]), InterfaceID: iface, AFUID: afu, Size: int64(len(data))}
}

func (fx fixture) plan(t *testing.T, obs *observed.Fleet) *plans.Plan {
	t.Helper()
	p, err := reconcile.NewPlan(fx.desired, obs, now, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// noSleep records the backoff waits instead of sleeping.
type noSleep struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *noSleep) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (fx fixture) executor(fake *reconciletest.Fleet, j state.Journal) *execute.Executor {
	return &execute.Executor{
		Provider: fake, Images: execute.RepoImages{Root: fx.root}, Journal: j,
		Sleep: (&noSleep{}).sleep,
	}
}

// converged re-observes the fake and fails the test unless the plan is
// empty.
func converged(t *testing.T, fx fixture, fake *reconciletest.Fleet) {
	t.Helper()
	p := fx.plan(t, fake.Snapshot())
	if p.HasChanges() {
		var ids []string
		for _, c := range p.Changes {
			if c.Action != plans.ActionNoop {
				ids = append(ids, c.ID)
			}
		}
		t.Errorf("fleet did not converge; still planned: %v", ids)
	}
}

func noViolations(t *testing.T, fake *reconciletest.Fleet) {
	t.Helper()
	if v := fake.Violations(); len(v) > 0 {
		t.Errorf("unsafe requests: %v", v)
	}
}

func statusOf(t *testing.T, rep *execute.Report, id string) plans.Status {
	t.Helper()
	for _, r := range rep.Results {
		if r.ID == id {
			return r.Status
		}
	}
	t.Fatalf("no result for %s", id)
	return ""
}

func TestApplyConverges(t *testing.T) {
	fx := newFixture(t)
	fake := reconciletest.New(fx.obs)
	p := fx.plan(t, fx.obs)
	rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	noViolations(t, fake)
	converged(t, fx, fake)
	if rep.Applied != 15 || rep.Failed+rep.Blocked+rep.Skipped != 0 {
		t.Errorf("report: applied %d failed %d blocked %d skipped %d, want 15 applied", rep.Applied, rep.Failed, rep.Blocked, rep.Skipped)
	}
	// The safety order on one card, and the VF's address resolved after VFs on.
	var pac0 []string
	for _, c := range fake.Calls() {
		if strings.Contains(c, "compute-01") && strings.Contains(c, "0000:5e:00") {
			pac0 = append(pac0, c)
		}
	}
	want := []string{
		"detach compute-01 vnf-a 0000:5e:00.1",
		"set-vfs compute-01 0000:5e:00.0 0",
		"program compute-01 0000:5e:00.0 nfv-fw-v2",
		"set-vfs compute-01 0000:5e:00.0 1",
		"attach compute-01 vnf-a 0000:5e:00.1",
	}
	if !reflect.DeepEqual(pac0, want) {
		t.Errorf("compute-01 pac0 calls:\n got %q\nwant %q", pac0, want)
	}
	if len(rep.Converged) != 4 {
		t.Errorf("converged cards: %v, want all 4", rep.Converged)
	}
}

func TestAttachOfNewVFResolvesAddressAfterVFsOn(t *testing.T) {
	fx := newFixture(t)
	p := fx.plan(t, fx.obs)
	c, ok := p.Change("node/compute-02/fpga/pac0/vf0/vm/vnf-c:attach")
	if !ok {
		t.Fatal("no attach for vnf-c")
	}
	if c.After.PCI != "" {
		t.Fatalf("VFs are off, yet the plan names the VF's address %q", c.After.PCI)
	}
	if !slices.Contains(c.DependsOn, "node/compute-02/fpga/pac0:vfs-on") {
		t.Fatalf("attach depends on %v, want the VFs-on step", c.DependsOn)
	}
	fake := reconciletest.New(fx.obs)
	if _, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fake.Calls(), "attach compute-02 vnf-c 0000:5e:00.1") {
		t.Errorf("calls %q lack the attach at the resolved VF address", fake.Calls())
	}
}

func TestIndependentFailureDoesNotStopOtherCards(t *testing.T) {
	fx := newFixture(t)
	fake := reconciletest.New(fx.obs)
	fake.Fail("program", "compute-01", "0000:5e:00.0", errors.New("PR error: EIO"), -1)
	p := fx.plan(t, fx.obs)
	rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if err == nil {
		t.Fatal("apply succeeded despite a failed program")
	}
	noViolations(t, fake)
	for id, want := range map[string]plans.Status{
		"node/compute-01/fpga/pac0:program":             plans.StatusFailed,
		"node/compute-01/fpga/pac0:vfs-on":              plans.StatusBlocked,
		"node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach": plans.StatusBlocked,
		"node/compute-01/fpga/pac1:program":             plans.StatusApplied,
		"node/compute-01/fpga/pac1/vf0/vm/vnf-b:attach": plans.StatusApplied,
		"node/compute-02/fpga/pac0/vf0/vm/vnf-c:attach": plans.StatusApplied,
		"node/compute-02/fpga/pac1:program":             plans.StatusApplied,
		"node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach": plans.StatusApplied,
		"node/compute-01/fpga/pac0:vfs-off":             plans.StatusApplied,
		"node/compute-02/fpga/pac0:program":             plans.StatusApplied,
		"node/compute-02/fpga/pac1:vfs-on":              plans.StatusApplied,
		"node/compute-02/fpga/pac0:vfs-on":              plans.StatusApplied,
		"node/compute-01/fpga/pac1/vf0/vm/vnf-b:detach": plans.StatusApplied,
		"node/compute-01/fpga/pac1:vfs-on":              plans.StatusApplied,
	} {
		if got := statusOf(t, rep, id); got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if _, ok := rep.Converged["node/compute-01/fpga/pac0"]; ok {
		t.Error("the failed card is reported converged")
	}
	if !strings.Contains(err.Error(), "1 change(s) failed and 2 were blocked") {
		t.Errorf("error %q does not count the failure", err)
	}
	for _, r := range rep.Results {
		if r.Status == plans.StatusFailed && !strings.HasPrefix(r.Error, r.ID+": ") {
			t.Errorf("error %q does not start with the change ID", r.Error)
		}
	}
}

// TestFailureMidChainNeverProgramsUnderVM fails each step of a card's chain
// in turn: the fake refuses (and counts) any program or VF change while a
// running VM holds the card, and no step after the failed one may run.
// A failure in the middle of a card's chain never leaves the card
// programmed under a running VM, and never leaves a VM worse off than
// before the run: what the chain took away is put back where it can be
// (VFs on again, the previous bitstream programmed again when partial
// reconfiguration left the region empty, the VM's function attached
// again), and where it cannot the VM is reported degraded. Independent
// cards converge regardless.
func TestFailureMidChainNeverProgramsUnderVM(t *testing.T) {
	const card = "0000:5e:00.0"
	tests := []struct {
		name   string
		inject func(*reconciletest.Fleet)
		failed string
		// back: vnf-a holds vf0 after the run, on a card that runs v1 with
		// its VF on; otherwise it is reported degraded.
		back bool
		// put is what the executor did to put things back.
		put []string
	}{
		{"detach fails", func(f *reconciletest.Fleet) {
			f.Fail("detach", "compute-01", "0000:5e:00.1", errors.New("libvirt: domain busy"), -1)
		}, "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach", true, nil},
		{"VFs off fails", func(f *reconciletest.Fleet) {
			f.Fail("set-vfs", "compute-01", card, errors.New("sriov_numvfs: EBUSY"), 1)
		}, "node/compute-01/fpga/pac0:vfs-off", true, []string{"attach vnf-a vf0 0000:5e:00.1"}},
		{"program fails", func(f *reconciletest.Fleet) { f.Fail("program", "compute-01", card, errors.New("PR error: EIO"), -1) },
			"node/compute-01/fpga/pac0:program", true, []string{"set 1 VF(s) on 0000:5e:00.0 again", "attach vnf-a vf0 0000:5e:00.1"}},
		{"program leaves the region empty", func(f *reconciletest.Fleet) { f.FailProgramEmptying("compute-01", card, 1) },
			"node/compute-01/fpga/pac0:program", true,
			[]string{"program 0000:5e:00.0 with nfv-fw-v1 again", "set 1 VF(s) on 0000:5e:00.0 again", "attach vnf-a vf0 0000:5e:00.1"}},
		{"verify fails, and so does programming v1 again", func(f *reconciletest.Fleet) { f.LoadWrongAFU("compute-01", card) },
			"node/compute-01/fpga/pac0:program", false, []string{"program 0000:5e:00.0 with nfv-fw-v1 again"}},
		{"VFs on fails, and so does turning them on again", func(f *reconciletest.Fleet) {
			f.Fail("set-vfs", "compute-01", card+"=1", errors.New("sriov_numvfs: EIO"), -1)
		}, "node/compute-01/fpga/pac0:vfs-on", false, []string{"set 1 VF(s) on 0000:5e:00.0 again"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			fake := reconciletest.New(fx.obs)
			tt.inject(fake)
			rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, fx.plan(t, fx.obs))
			if err == nil {
				t.Fatal("apply succeeded despite the fault")
			}
			noViolations(t, fake)
			if got := statusOf(t, rep, tt.failed); got != plans.StatusFailed {
				t.Errorf("%s: %s, want failed", tt.failed, got)
			}
			var put []string
			for _, c := range rep.Compensations {
				if c.Change != tt.failed {
					t.Errorf("compensation %+v answers another change than %s", c, tt.failed)
				}
				put = append(put, c.What)
			}
			if !slices.Equal(put, tt.put) {
				t.Errorf("put back %q, want %q", put, tt.put)
			}
			snap := fake.Snapshot()
			n, _ := snap.Node("compute-01")
			pac0 := n.FPGAs[0]
			holds := false
			for _, vm := range n.VMs {
				for _, h := range vm.Hostdevs {
					if !vm.Running || !strings.HasPrefix(h.PCI, "0000:5e:00") {
						continue
					}
					// No running VM holds a card that runs a bitstream
					// other than the one it had when the VM got it.
					if afu := pac0.AFUID(); afu != afuV1 {
						t.Errorf("%s holds %s while the card runs %s", vm.Name, h.PCI, afu)
					}
					holds = holds || vm.Name == "vnf-a" && h.PCI == "0000:5e:00.1"
				}
			}
			degraded := len(rep.Degraded) == 1 && rep.Degraded[0].VM == "vnf-a" && rep.Degraded[0].Function == "vf0" && rep.Degraded[0].Reason != ""
			switch {
			case tt.back && (!holds || pac0.NumVFs != 1 || len(rep.Degraded) != 0):
				t.Errorf("vnf-a holds its VF: %v, VFs %d, degraded %+v; want it back as it was", holds, pac0.NumVFs, rep.Degraded)
			case !tt.back && (holds || !degraded):
				t.Errorf("vnf-a holds its VF: %v, degraded %+v; want it reported degraded", holds, rep.Degraded)
			}
			// The other cards converge regardless.
			if got := statusOf(t, rep, "node/compute-01/fpga/pac1/vf0/vm/vnf-b:attach"); got != plans.StatusApplied {
				t.Errorf("independent card pac1: %s, want applied", got)
			}
		})
	}
}

func TestTransientFaultsAreRetriedWithBackoff(t *testing.T) {
	fx := newFixture(t)
	fake := reconciletest.New(fx.obs)
	fake.Fail("program", "compute-02", "0000:5e:00.0", providers.Transient(errors.New("agent: connection reset")), 2)
	ns := &noSleep{}
	ex := fx.executor(fake, nil)
	ex.Sleep = ns.sleep
	ex.Retry = execute.Retry{Attempts: 4, Base: time.Second, Max: 3 * time.Second}
	rep, err := ex.Apply(context.Background(), fx.desired, fx.plan(t, fx.obs))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rep.Results {
		if r.ID == "node/compute-02/fpga/pac0:program" && (r.Status != plans.StatusApplied || r.Attempts != 3) {
			t.Errorf("program: %s after %d attempts, want applied after 3", r.Status, r.Attempts)
		}
	}
	if want := []time.Duration{time.Second, 2 * time.Second}; !reflect.DeepEqual(ns.waits, want) {
		t.Errorf("backoff waits %v, want %v", ns.waits, want)
	}

	// A fault that outlasts the attempts fails the step.
	fake = reconciletest.New(fx.obs)
	fake.Fail("program", "compute-02", "0000:5e:00.0", providers.Transient(errors.New("agent: timeout")), -1)
	ns = &noSleep{}
	ex = fx.executor(fake, nil)
	ex.Sleep = ns.sleep
	ex.Retry = execute.Retry{Attempts: 3, Base: time.Second, Max: time.Second}
	rep, err = ex.Apply(context.Background(), fx.desired, fx.plan(t, fx.obs))
	if err == nil {
		t.Fatal("apply succeeded despite a lasting fault")
	}
	if got := statusOf(t, rep, "node/compute-02/fpga/pac0:program"); got != plans.StatusFailed {
		t.Errorf("program: %s, want failed", got)
	}
	if want := []time.Duration{time.Second, time.Second}; !reflect.DeepEqual(ns.waits, want) {
		t.Errorf("backoff waits %v, want %v (capped)", ns.waits, want)
	}
}

// TestKilledRunIsFinishedWithoutRepeats kills a run after each possible
// number of completed steps; the next run (the same plan with the journal,
// or a fresh plan from a new observation) must converge without repeating
// a completed step. One card at a time, every completed step is in the
// journal; with cards in parallel, a step whose call took effect as the
// process died may not be, and the rerun must find it done by reading the
// card, not repeat it.
func TestKilledRunIsFinishedWithoutRepeats(t *testing.T) {
	fx := newFixture(t)
	full := reconciletest.New(fx.obs)
	if _, err := fx.executor(full, nil).Apply(context.Background(), fx.desired, fx.plan(t, fx.obs)); err != nil {
		t.Fatal(err)
	}
	steps := len(full.Calls())
	if steps != 15 {
		t.Fatalf("a full run made %d calls, want 15", steps)
	}
	for _, tc := range []struct {
		replan      bool
		concurrency int
	}{{false, 1}, {true, 1}, {false, 4}, {true, 4}} {
		replan := tc.replan
		for k := 0; k < steps; k++ {
			t.Run(fmt.Sprintf("replan=%v/concurrency=%d/after=%d", replan, tc.concurrency, k), func(t *testing.T) {
				fake := reconciletest.New(fx.obs)
				store := openStore(t, t.TempDir())
				p := fx.plan(t, fx.obs)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				fake.KillAfter(k, cancel)
				killed := fx.executor(fake, store.Journal())
				killed.Concurrency = tc.concurrency
				if _, err := killed.Apply(ctx, fx.desired, p); err == nil {
					t.Fatal("the killed run reported success")
				}
				first := len(fake.Calls())
				if first != k {
					t.Fatalf("the killed run made %d calls, want %d", first, k)
				}

				// The next process, on the same state directory.
				fake.Revive()
				store.Close()
				store = openStore(t, store.Dir())
				ex := fx.executor(fake, store.Journal())
				if replan {
					p = fx.plan(t, fake.Snapshot())
				} else {
					ex.Resume = true
				}
				rep, err := ex.Apply(context.Background(), fx.desired, p)
				if err != nil {
					t.Fatalf("rerun: %v", err)
				}
				noViolations(t, fake)
				converged(t, fx, fake)
				calls := fake.Calls()
				seen := map[string]bool{}
				for _, c := range calls {
					if seen[c] {
						t.Errorf("step %q ran twice; calls %q", c, calls)
					}
					seen[c] = true
				}
				switch want := map[bool]int{false: k, true: 0}[replan]; {
				case tc.concurrency == 1 && rep.Skipped != want:
					t.Errorf("rerun skipped %d journaled steps, want %d", rep.Skipped, want)
				case rep.Skipped > want:
					t.Errorf("rerun skipped %d journaled steps, more than the %d that completed", rep.Skipped, want)
				}
				if plan, err := store.Journal().Plan(); err != nil || plan != "" {
					t.Errorf("journal of plan %q left behind after a converged run (%v)", plan, err)
				}
			})
		}
	}
}

func TestValidateRefusesBeforeTouching(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, fx *fixture)
		want   []string
	}{
		{"corrupt image", func(t *testing.T, fx *fixture) {
			if err := os.WriteFile(filepath.Join(fx.root, "bitstreams/nfv-fw-v2.gbs"), []byte("not a bitstream"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, []string{"node/compute-01/fpga/pac0:program: bitstream nfv-fw-v2: file bitstreams/nfv-fw-v2.gbs has sha256 "}},
		{"missing image", func(t *testing.T, fx *fixture) {
			if err := os.Remove(filepath.Join(fx.root, "bitstreams/nfv-fw-v1.gbs")); err != nil {
				t.Fatal(err)
			}
		}, []string{"node/compute-02/fpga/pac0:program: bitstream nfv-fw-v1:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			p := fx.plan(t, fx.obs)
			tt.break_(t, &fx)
			fake := reconciletest.New(fx.obs)
			_, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
			if !errors.Is(err, execute.ErrValidate) {
				t.Fatalf("err = %v, want a validation refusal", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if calls := fake.Calls(); len(calls) > 0 {
				t.Errorf("validation failed, yet the run called %q", calls)
			}
		})
	}
	t.Run("plan for another desired state", func(t *testing.T) {
		fx := newFixture(t)
		p := fx.plan(t, fx.obs)
		fx.desired.Bindings = fx.desired.Bindings[1:]
		fake := reconciletest.New(fx.obs)
		_, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
		if !errors.Is(err, execute.ErrValidate) || !strings.Contains(err.Error(), "the plan was made for desired state") {
			t.Fatalf("err = %v, want a desired-state refusal", err)
		}
		if len(fake.Calls()) > 0 {
			t.Error("a refused plan touched the fleet")
		}
	})
}

func TestResultsAreDeterministic(t *testing.T) {
	fx := newFixture(t)
	var first []plans.Result
	for i := 0; i < 5; i++ {
		fake := reconciletest.New(fx.obs)
		fake.Fail("program", "compute-01", "0000:af:00.0", errors.New("PR error"), -1)
		ex := fx.executor(fake, nil)
		ex.Concurrency = 4
		rep, _ := ex.Apply(context.Background(), fx.desired, fx.plan(t, fx.obs))
		if i == 0 {
			first = rep.Results
			continue
		}
		if !reflect.DeepEqual(stripErr(rep.Results), stripErr(first)) {
			t.Fatalf("run %d results differ:\n%v\n%v", i, rep.Results, first)
		}
	}
}

func stripErr(rs []plans.Result) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = fmt.Sprintf("%s %s %d %s", r.ID, r.Status, r.Attempts, r.Error)
	}
	return out
}

type countingProgress struct {
	mu                sync.Mutex
	started, finished map[string]int
}

func (c *countingProgress) Started(ch *plans.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.started[ch.ID]++
}

func (c *countingProgress) Finished(ch *plans.Change, r plans.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished[ch.ID+" "+string(r.Status)]++
}

func TestProgressHearsEveryChange(t *testing.T) {
	fx := newFixture(t)
	fake := reconciletest.New(fx.obs)
	fake.Fail("detach", "compute-01", "0000:af:00.1", errors.New("domain busy"), -1)
	pr := &countingProgress{started: map[string]int{}, finished: map[string]int{}}
	ex := fx.executor(fake, nil)
	ex.Progress = pr
	p := fx.plan(t, fx.obs)
	if _, err := ex.Apply(context.Background(), fx.desired, p); err == nil {
		t.Fatal("want an error")
	}
	runnable := 0
	for i := range p.Changes {
		if p.Changes[i].Runnable() {
			runnable++
		}
	}
	total := 0
	for _, n := range pr.finished {
		total += n
	}
	if total != runnable {
		t.Errorf("finished events %d, want one per runnable change (%d): %v", total, runnable, pr.finished)
	}
	if pr.finished["node/compute-01/fpga/pac1:vfs-off blocked"] != 1 || pr.started["node/compute-01/fpga/pac1:vfs-off"] != 0 {
		t.Errorf("blocked change: started %d, finished %v", pr.started["node/compute-01/fpga/pac1:vfs-off"], pr.finished)
	}
}

func openStore(t *testing.T, dir string) *state.Local {
	t.Helper()
	s, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestJournalNeverHidesAStepAnotherPlanNeeds: a run is killed after its
// detach; someone attaches the VM again by hand, so the fleet is back as it
// was and a new plan is the same as the first; the next run must detach
// again rather than trust the old journal entry, or it would reset the
// card under the running VM.
func TestJournalNeverHidesAStepAnotherPlanNeeds(t *testing.T) {
	fx := newFixture(t)
	fx.obs.Nodes = fx.obs.Nodes[:1]
	fx.desired.Nodes = fx.desired.Nodes[:1]
	fx.desired.Bindings = fx.desired.Bindings[1:2] // vnf-a on compute-01 pac0
	fx.desired.Nodes[0].FPGAs = fx.desired.Nodes[0].FPGAs[:1]
	j := openStore(t, t.TempDir()).Journal()
	fake := reconciletest.New(fx.obs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fake.KillAfter(1, cancel)
	if _, err := fx.executor(fake, j).Apply(ctx, fx.desired, fx.plan(t, fx.obs)); err == nil {
		t.Fatal("the killed run reported success")
	}
	if got := fake.Calls(); len(got) != 1 || got[0] != "detach compute-01 vnf-a 0000:5e:00.1" {
		t.Fatalf("killed run calls %q, want the detach only", got)
	}
	fake.Revive()
	if err := fake.Attach(context.Background(), &fx.desired.Nodes[0], "vnf-a", "0000:5e:00.1"); err != nil {
		t.Fatal(err)
	}
	rep, err := fx.executor(fake, j).Apply(context.Background(), fx.desired, fx.plan(t, fake.Snapshot()))
	if err != nil {
		t.Fatalf("rerun: %v; results %+v", err, rep.Results)
	}
	noViolations(t, fake)
	converged(t, fx, fake)
	if rep.Skipped != 0 {
		t.Errorf("the rerun of a new plan skipped %d steps", rep.Skipped)
	}
}

// BenchmarkApply1000Nodes applies a bitstream change to 2,000 cards under
// running VMs (10,000 changes) through the fake, in waves of 100 cards.
func BenchmarkApply1000Nodes(b *testing.B) {
	fx := newFixture(b)
	base := fx.obs.Nodes[0]
	desired := *fx.desired
	desired.Nodes, desired.Bindings = nil, nil
	desired.Policy.Budget = spec.Budget{MaxCardsInFlight: 100, MaxDisruptedVMs: 200}
	obs := &observed.Fleet{Version: observed.Version}
	for i := 0; i < 1000; i++ {
		name := fmt.Sprintf("node-%04d", i)
		n := fx.desired.Nodes[0]
		n.Name = name
		desired.Nodes = append(desired.Nodes, n)
		on := base
		on.Name = name
		on.VMs = nil
		for _, vm := range base.VMs {
			vm.Name = name + "-" + vm.Name
			on.VMs = append(on.VMs, vm)
		}
		obs.Nodes = append(obs.Nodes, on)
		for _, bd := range fx.desired.Bindings[1:3] {
			bd.Name, bd.Node, bd.VM = name+"-"+bd.Name, name, name+"-"+bd.VM
			desired.Bindings = append(desired.Bindings, bd)
		}
	}
	p, err := reconcile.NewPlan(&desired, obs, now, reconcile.Options{})
	if err != nil {
		b.Fatal(err)
	}
	if n := runnableCount(p); n != 10000 {
		b.Fatalf("%d runnable changes, want 10000", n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		fake := reconciletest.New(obs)
		ex := fx.executor(fake, nil)
		b.StartTimer()
		rep, err := ex.Apply(context.Background(), &desired, p)
		if err != nil || rep.Applied != 10000 {
			b.Fatalf("apply: %v (%d applied)", err, rep.Applied)
		}
	}
}

func runnableCount(p *plans.Plan) int {
	n := 0
	for i := range p.Changes {
		if p.Changes[i].Runnable() {
			n++
		}
	}
	return n
}
