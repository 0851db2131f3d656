package engine_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// twoCards is oneCard on two nodes: compute-01's binding is protected,
// so its reprogram is held; compute-02's goes ahead.
func twoCards() (*spec.Fleet, *reconciletest.Fleet) {
	desired, obs := oneCard("compute-01", spec.Policy{Name: "default"})
	d2, o2 := oneCard("compute-02", spec.Policy{Name: "default"})
	desired.Bindings[0].Protected = true
	desired.Nodes = append(desired.Nodes, d2.Nodes...)
	b := d2.Bindings[0]
	b.Name = "vnf-a-02"
	desired.Bindings = append(desired.Bindings, b)
	obs.Nodes = append(obs.Nodes, o2.Nodes...)
	return desired, reconciletest.New(obs)
}

// ticking is a clock that moves a second each time it is read.
type ticking struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ticking) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// Every change that is not a no-op is recorded with its gate and reason,
// or how it ended: error, attempts and timing.
func TestRunRecordsEachChange(t *testing.T) {
	desired, fake := twoCards()
	// Three passing faults: the program is tried three times.
	fake.Fail("program", "compute-02", "0000:5e:00.0", providers.Transient(errors.New("PR error: EIO")), 3)
	clock := &ticking{t: time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)}
	e := fakeEngine(fake, clock.t)
	e.Now = clock.now
	e.Retry = execute.Retry{Attempts: 3, Base: time.Millisecond, Max: time.Millisecond}
	p, err := e.Plan(context.Background(), desired, engine.PlanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Apply(context.Background(), p, engine.ApplyOptions{})
	if err == nil {
		t.Fatal("the failed program did not fail the apply")
	}
	byID := map[string]state.Change{}
	for _, c := range out.Run.Changes {
		if c.Action == plans.ActionNoop {
			t.Errorf("a no-op is recorded: %s", c.ID)
		}
		byID[c.ID] = c
	}
	if len(byID) != p.Plan.Summary.Total()+p.Plan.Summary.Held+p.Plan.Summary.Report || out.Run.ChangesOmitted != 0 {
		t.Fatalf("recorded %d changes (%d omitted) of a plan of %+v", len(byID), out.Run.ChangesOmitted, p.Plan.Summary)
	}
	held := byID["node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach"]
	if held.Status != plans.StatusHeld || held.Gate() != plans.GateProtected || !strings.Contains(held.Held.Why, "binding vnf-a is protected") ||
		held.Reason == "" || held.VM != "vnf-a" || held.StartedAt != nil {
		t.Errorf("held detach recorded as %+v", held)
	}
	failed := byID["node/compute-02/fpga/pac0:program"]
	if failed.Status != plans.StatusFailed || !strings.Contains(failed.Error, "PR error: EIO") || failed.Attempts != 3 ||
		failed.StartedAt == nil || failed.DurationSeconds <= 0 || failed.Wave == 0 {
		t.Errorf("failed program recorded as %+v", failed)
	}
	applied := byID["node/compute-02/fpga/pac0/vf0/vm/vnf-a:detach"]
	if applied.Status != plans.StatusApplied || applied.Attempts != 1 || applied.StartedAt == nil || !applied.Disruptive {
		t.Errorf("applied detach recorded as %+v", applied)
	}
	if blocked := byID["node/compute-02/fpga/pac0:vfs-on"]; blocked.Status != plans.StatusBlocked || !strings.Contains(blocked.Error, "program did not complete") {
		t.Errorf("the program's dependent recorded as %+v", blocked)
	}
}
