package execute_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/spec"
)

// pac0 of compute-01: vnf-a holds its VF, and the card moves to
// nfv-fw-v2.
const (
	pac0Detach  = "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach"
	pac0VFsOff  = "node/compute-01/fpga/pac0:vfs-off"
	pac0Program = "node/compute-01/fpga/pac0:program"
	pac0VFsOn   = "node/compute-01/fpga/pac0:vfs-on"
	pac0Attach  = "node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach"
	pac0Card    = "node/compute-01/fpga/pac0"
)

// restartToChange is the fixture's observation with vnf-a on a platform
// that cannot attach or detach live.
func restartToChange(obs *observed.Fleet) *observed.Fleet {
	c := *obs
	c.Nodes = append([]observed.Node(nil), obs.Nodes...)
	n := &c.Nodes[0]
	n.VMs = append([]observed.VM(nil), n.VMs...)
	for i := range n.VMs {
		if n.VMs[i].Name == "vnf-a" {
			n.VMs[i].RestartToChange = true
		}
	}
	return &c
}

func programmed(fake *reconciletest.Fleet, node, pci string) bool {
	return slices.ContainsFunc(fake.Calls(), func(c string) bool {
		return strings.HasPrefix(c, "program "+node+" "+pci+" ")
	})
}

// TestNeedsRestartIsPendingNotFailure: the plan did not know that vnf-a
// cannot let go of its VF live (made from an older observation), so the
// detach meets providers.ErrNeedsRestart. That change and the rest of the
// card's chain are pending restart, not failed; the card is never
// programmed while vnf-a still holds the VF; the other cards converge and
// the run succeeds.
func TestNeedsRestartIsPendingNotFailure(t *testing.T) {
	fx := newFixture(t)
	fake := reconciletest.New(restartToChange(fx.obs))
	p := fx.plan(t, fx.obs)
	rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	noViolations(t, fake)
	if programmed(fake, "compute-01", "0000:5e:00.0") {
		t.Errorf("pac0 was programmed while vnf-a still held its VF; calls %q", fake.Calls())
	}
	for _, id := range []string{pac0Detach, pac0VFsOff, pac0Program, pac0VFsOn, pac0Attach} {
		if got := statusOf(t, rep, id); got != plans.StatusPendingRestart {
			t.Errorf("%s: %s, want %s", id, got, plans.StatusPendingRestart)
		}
	}
	if rep.PendingRestart != 5 || rep.Failed+rep.Blocked != 0 || rep.Applied != 10 {
		t.Errorf("report: applied %d pending %d failed %d blocked %d, want 10, 5, 0, 0",
			rep.Applied, rep.PendingRestart, rep.Failed, rep.Blocked)
	}
	if _, ok := rep.Converged[pac0Card]; ok {
		t.Errorf("pac0 counted as converged: %v", rep.Converged)
	}
	if len(rep.Converged) != 3 {
		t.Errorf("converged %v, want the 3 other cards", rep.Converged)
	}
	for _, r := range rep.Results {
		if r.ID == pac0Detach && !strings.Contains(r.Error, "waits for the VM's restart") {
			t.Errorf("detach result %q does not say it waits for the restart", r.Error)
		}
	}
}

// TestPlannedWaitKeepsTheCardStopped: with the observation saying so, the
// plan holds pac0's chain up front (gate restart) and the run does not
// touch it.
func TestPlannedWaitKeepsTheCardStopped(t *testing.T) {
	fx := newFixture(t)
	obs := restartToChange(fx.obs)
	fake := reconciletest.New(obs)
	p := fx.plan(t, obs)
	if c, _ := p.Change(pac0VFsOff); c.Held == nil || c.Held.Gate != plans.GateRestart {
		t.Fatalf("vfs-off held by %+v, want gate restart", c.Held)
	}
	rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	noViolations(t, fake)
	for _, c := range fake.Calls() {
		if strings.Contains(c, "compute-01") && strings.Contains(c, "0000:5e:00") {
			t.Errorf("pac0 was touched: %q", c)
		}
	}
	if got := statusOf(t, rep, pac0Program); got != plans.StatusHeld {
		t.Errorf("program: %s, want held", got)
	}
}

// TestRestartWhenPolicyAllows: with vmRestart on (and no windows, so
// always open) the executor restarts vnf-a to take the VF away, programs
// the card, and restarts it again to give it back; the fleet converges.
func TestRestartWhenPolicyAllows(t *testing.T) {
	fx := newFixture(t)
	fx.desired.Policy.VMRestart = true
	obs := restartToChange(fx.obs)
	fake := reconciletest.New(obs)
	p := fx.plan(t, obs)
	for _, id := range []string{pac0Detach, pac0Attach} {
		if c, _ := p.Change(id); c.Restart != plans.RestartVM || !c.Disruptive {
			t.Fatalf("%s: restart %q disruptive %v, want restart and disruptive", id, c.Restart, c.Disruptive)
		}
	}
	rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	noViolations(t, fake)
	converged(t, fx, fake)
	var pac0 []string
	for _, c := range fake.Calls() {
		if strings.Contains(c, "vnf-a") || (strings.Contains(c, "compute-01") && strings.Contains(c, "0000:5e:00")) {
			pac0 = append(pac0, c)
		}
	}
	want := []string{
		"detach compute-01 vnf-a 0000:5e:00.1 config",
		"restart compute-01 vnf-a",
		"set-vfs compute-01 0000:5e:00.0 0",
		"program compute-01 0000:5e:00.0 nfv-fw-v2",
		"set-vfs compute-01 0000:5e:00.0 1",
		"attach compute-01 vnf-a 0000:5e:00.1 config",
		"restart compute-01 vnf-a",
	}
	if !slices.Equal(pac0, want) {
		t.Errorf("pac0 calls:\n got %q\nwant %q", pac0, want)
	}
	if rep.PendingRestart != 0 || len(rep.Converged) != 4 {
		t.Errorf("pending %d, converged %v; want none pending, all 4 converged", rep.PendingRestart, rep.Converged)
	}
}

// vmsOnly hides the fake's Restart and CheckAttach: a VM side that can
// do neither.
type vmsOnly struct{ providers.VMs }

// TestRestartUnsupportedIsPending: the plan asks for a restart, but the VM
// side cannot restart VMs: the change is pending restart and the card's
// chain stops there.
func TestRestartUnsupportedIsPending(t *testing.T) {
	fx := newFixture(t)
	fx.desired.Policy.VMRestart = true
	obs := restartToChange(fx.obs)
	fake := reconciletest.New(obs)
	p := fx.plan(t, obs)
	ex := fx.executor(fake, nil)
	ex.Provider = providers.Compose(fake, vmsOnly{fake})
	rep, err := ex.Apply(context.Background(), fx.desired, p)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	noViolations(t, fake)
	if programmed(fake, "compute-01", "0000:5e:00.0") {
		t.Error("pac0 was programmed though vnf-a was never restarted")
	}
	if got := statusOf(t, rep, pac0Detach); got != plans.StatusPendingRestart {
		t.Errorf("detach: %s, want pending restart", got)
	}
	if got := statusOf(t, rep, pac0Program); got != plans.StatusPendingRestart {
		t.Errorf("program: %s, want pending restart", got)
	}
}

// TestRestartFailureFails: a restart that fails is a failure of the
// change, and its dependents are blocked.
func TestRestartFailureFails(t *testing.T) {
	fx := newFixture(t)
	fx.desired.Policy.VMRestart = true
	obs := restartToChange(fx.obs)
	fake := reconciletest.New(obs)
	fake.Fail("restart", "compute-01", "vnf-a", errors.New("domain would not shut down"), -1)
	p := fx.plan(t, obs)
	rep, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if err == nil {
		t.Fatal("apply succeeded though the restart failed")
	}
	noViolations(t, fake)
	if got := statusOf(t, rep, pac0Detach); got != plans.StatusFailed {
		t.Errorf("detach: %s, want failed", got)
	}
	if got := statusOf(t, rep, pac0Program); got != plans.StatusBlocked {
		t.Errorf("program: %s, want blocked", got)
	}
	if programmed(fake, "compute-01", "0000:5e:00.0") {
		t.Error("pac0 was programmed though vnf-a was never restarted")
	}
}

// TestValidateChecksTheVMSide: the VM side does not know vnf-c (it is in
// the observation the plan was made from, but not on the node now): the
// dry run refuses the plan, and no card is programmed for it or any
// other.
func TestValidateChecksTheVMSide(t *testing.T) {
	fx := newFixture(t)
	p := fx.plan(t, fx.obs)
	gone := *fx.obs
	gone.Nodes = append([]observed.Node(nil), fx.obs.Nodes...)
	gone.Nodes[1].VMs = nil
	fake := reconciletest.New(&gone)
	_, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p)
	if !errors.Is(err, execute.ErrValidate) {
		t.Fatalf("err = %v, want a validation refusal", err)
	}
	if want := "node/compute-02/fpga/pac0/vf0/vm/vnf-c:attach: no VM vnf-c on compute-02"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q lacks %q", err, want)
	}
	if calls := fake.Calls(); len(calls) > 0 {
		t.Errorf("validation failed, yet the run called %q", calls)
	}

	// A VM side that cannot check passes the dry run.
	fake = reconciletest.New(fx.obs)
	ex := fx.executor(fake, nil)
	ex.Provider = providers.Compose(fake, vmsOnly{fake})
	if _, err := ex.Apply(context.Background(), fx.desired, p); err != nil {
		t.Fatalf("apply through a VM side without CheckAttach: %v", err)
	}
}

// hangingRestart is a VM side whose restarts never end on their own, as
// with a guest that ignores the shutdown request.
type hangingRestart struct{ providers.VMs }

func (hangingRestart) Restart(ctx context.Context, _ *spec.Node, _ string) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestRestartIsBounded: a restart that does not end within RestartTimeout
// fails the change, and the card is not programmed.
func TestRestartIsBounded(t *testing.T) {
	fx := newFixture(t)
	fx.desired.Policy.VMRestart = true
	obs := restartToChange(fx.obs)
	fake := reconciletest.New(obs)
	p := fx.plan(t, obs)
	ex := fx.executor(fake, nil)
	ex.Provider = providers.Compose(fake, hangingRestart{fake})
	ex.RestartTimeout = 20 * time.Millisecond
	rep, err := ex.Apply(context.Background(), fx.desired, p)
	if err == nil {
		t.Fatal("apply succeeded though the restart never ended")
	}
	if got := statusOf(t, rep, pac0Detach); got != plans.StatusFailed {
		t.Errorf("detach: %s, want failed", got)
	}
	for _, r := range rep.Results {
		if r.ID == pac0Detach && !strings.Contains(r.Error, "restart vnf-a: context deadline exceeded") {
			t.Errorf("detach error %q does not say the restart timed out", r.Error)
		}
	}
	if programmed(fake, "compute-01", "0000:5e:00.0") {
		t.Error("pac0 was programmed though vnf-a never restarted")
	}
}

// TestRestartsCountAgainstTheBudget: vnf-a and vnf-b each get a VF
// through a restart (the cards already run what the repository asks).
// With a budget of one disrupted VM the two restarts run in two waves;
// each is a disruption, though neither VM loses a function.
func TestRestartsCountAgainstTheBudget(t *testing.T) {
	fx := newFixture(t)
	fx.desired.Policy.VMRestart = true
	fx.desired.Policy.Budget.MaxDisruptedVMs = 1
	obs := restartToChange(fx.obs)
	n := &obs.Nodes[0]
	n.FPGAs = append(n.FPGAs[:0:0], n.FPGAs...)
	for i := range n.FPGAs {
		n.FPGAs[i].Ports = []fpga.Port{{ID: 0, AFUID: afuV2, OnVF: true}}
	}
	for i := range n.VMs {
		n.VMs[i].Hostdevs = nil
		n.VMs[i].RestartToChange = true
	}
	p := fx.plan(t, obs)
	waves := map[string]int{}
	for _, id := range []string{pac0Attach, "node/compute-01/fpga/pac1/vf0/vm/vnf-b:attach"} {
		c, ok := p.Change(id)
		if !ok || c.Restart != plans.RestartVM || !c.Disruptive || c.Held != nil {
			t.Fatalf("%s: %+v, want a runnable, disruptive attach with a restart", id, c)
		}
		waves[c.VM()] = c.Wave
	}
	if waves["vnf-a"] == waves["vnf-b"] {
		t.Errorf("both restarts in wave %d, want one VM per wave", waves["vnf-a"])
	}
	fake := reconciletest.New(obs)
	if _, err := fx.executor(fake, nil).Apply(context.Background(), fx.desired, p); err != nil {
		t.Fatalf("apply: %v", err)
	}
	noViolations(t, fake)
	converged(t, fx, fake)
	for _, vm := range []string{"vnf-a", "vnf-b"} {
		if !slices.Contains(fake.Calls(), "restart compute-01 "+vm) {
			t.Errorf("%s was not restarted; calls %q", vm, fake.Calls())
		}
	}
}
