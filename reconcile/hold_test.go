package reconcile_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile"
)

// A gate the controller adds (a person's approval) holds like the
// planner's own: what depends on the held change is held, and the rest
// rolls out in waves again.
func TestHoldAfterPlanning(t *testing.T) {
	desired, obs, _, opts := loadGolden(t, "window-open")
	now := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	plan := func() *plans.Plan {
		t.Helper()
		p, err := reconcile.NewPlan(desired, obs, now, opts)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, same := plan(), plan()
	reconcile.Hold(same, func(*plans.Change) *plans.Hold { return nil })
	if !reflect.DeepEqual(p, same) {
		t.Fatal("holding nothing changed the plan")
	}
	approval := &plans.Hold{Gate: plans.GateApproval, Why: "waits for approval"}
	reconcile.Hold(p, func(c *plans.Change) *plans.Hold {
		if c.Disruptive {
			return approval
		}
		return nil
	})
	detach, _ := p.Change("node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach")
	if detach.Held != approval || detach.Wave != 0 {
		t.Fatalf("the disruptive detach: %+v", detach)
	}
	for _, c := range p.Changes {
		if c.Runnable() {
			t.Errorf("%s still runs (wave %d)", c.ID, c.Wave)
		}
		if c.Card == "pac0" && c.ID != detach.ID && c.Action != plans.ActionNoop && (c.Held == nil || c.Held.Gate != plans.GateDependency) {
			t.Errorf("%s: held %+v, want held by dependency", c.ID, c.Held)
		}
	}
	if p.Waves != 0 || p.Summary.Held == 0 || p.Summary.Total() != 0 {
		t.Errorf("waves %d, summary %+v", p.Waves, p.Summary)
	}
}
