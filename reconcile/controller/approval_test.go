package controller

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// approving plans a disruptive detach and what depends on it, holds what
// the controller has not approved, and makes the rest, or, with window
// set, leaves the approved detach held by a window.
type approving struct {
	c      *Controller
	mu     sync.Mutex
	window bool
	made   []string
}

func (a *approving) Reconcile(_ context.Context, rev source.Revision, _ *spec.Fleet) (Result, error) {
	p := &plans.Plan{Budget: plans.Budget{MaxCardsInFlight: 10, MaxDisruptedVMs: 1}, Changes: []plans.Change{
		{ID: "node/n1/fpga/pac0/vf0/vm/vm-a:detach", Action: plans.ActionDetach, Node: "n1", Card: "pac0", Disruptive: true,
			Before: &plans.Value{VM: "vm-a", Running: true}},
		{ID: "node/n1/fpga/pac0:program", Action: plans.ActionProgram, Node: "n1", Card: "pac0", DependsOn: []string{"node/n1/fpga/pac0/vf0/vm/vm-a:detach"}},
		{ID: "node/n1/fpga/pac1:program", Action: plans.ActionProgram, Node: "n1", Card: "pac1"},
	}}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.window {
		p.Changes[0].Held = &plans.Hold{Gate: plans.GateWindow, Why: "no allow window is open"}
	}
	a.c.HoldUnapproved(rev.Commit, p)
	run := state.Run{Nodes: []state.NodeSummary{{Name: "n1", State: "ok"}}}
	for _, c := range p.Changes {
		rec := state.Change{ID: c.ID, Action: c.Action, Held: c.Held, Status: plans.StatusHeld}
		if c.Held == nil {
			rec.Status = plans.StatusApplied
			a.made = append(a.made, c.ID)
		}
		run.Changes = append(run.Changes, rec)
	}
	return Result{Run: run}, nil
}

func (a *approving) madeChanges() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.made, " ")
}

func TestManualApproval(t *testing.T) {
	t.Parallel()
	rec := &approving{}
	h := newHarness(t, "", func(o *Options) { o.Reconciler = rec })
	rec.c = h.c
	r1 := h.remote.Commit("fleet", fleetFile("nodes: [n1]"), nil)

	// What disrupts nobody is made; the detach waits, and its card.
	run := h.c.RunOnce(context.Background(), "manual")
	if got := rec.madeChanges(); got != "node/n1/fpga/pac1:program" {
		t.Fatalf("made %q before approval", got)
	}
	st := h.c.Status()
	if a := st.Awaiting; a == nil || a.Run != run.ID || a.Revision != r1 || a.Total != 1 {
		t.Fatalf("awaiting: %+v", st.Awaiting)
	}
	for _, tc := range []struct {
		run  uint64
		want error
	}{{run.ID + 1, ErrNotAwaiting}, {0, ErrNotAwaiting}} {
		if _, err := h.c.Approve(tc.run); !errors.Is(err, tc.want) {
			t.Errorf("Approve(%d) = %v, want %v", tc.run, err, tc.want)
		}
	}
	// Over HTTP: the admin token, then the run number.
	if code, _ := h.post("/runs/1/approve", nil, ""); code != http.StatusUnauthorized {
		t.Errorf("approve without a token: %d", code)
	}
	if code, body := h.post("/runs/x/approve", map[string]string{"Authorization": "Bearer " + adminToken}, ""); code != http.StatusBadRequest {
		t.Errorf("approve run x: %d %s", code, body)
	}
	if code, body := h.post("/runs/7/approve", map[string]string{"Authorization": "Bearer " + adminToken}, ""); code != http.StatusConflict ||
		!strings.Contains(body, "run 7: not the run that awaits approval: run 1 is") {
		t.Errorf("approve run 7: %d %s", code, body)
	}
	code, body := h.post("/runs/1/approve", map[string]string{"Authorization": "Bearer " + adminToken}, "")
	if code != http.StatusOK || !strings.Contains(body, `"approved": {`) {
		t.Fatalf("approve run 1: %d %s", code, body)
	}
	select {
	case why := <-h.c.triggers:
		if why != "approved/1" {
			t.Errorf("trigger %q", why)
		}
	default:
		t.Error("approving triggered no run")
	}

	// A window holds the approved detach: the approval waits with it.
	rec.window = true
	h.c.RunOnce(context.Background(), "approved/1")
	if st := h.c.Status(); st.Approved == nil || st.Approved.Left != 1 || st.Awaiting != nil {
		t.Fatalf("after a run the window held: approved %+v, awaiting %+v", st.Approved, st.Awaiting)
	}
	// The window opens: the approved changes are made, and the approval
	// is done with.
	rec.window = false
	h.c.RunOnce(context.Background(), "schedule")
	if got := rec.madeChanges(); !strings.Contains(got, "vm-a:detach node/n1/fpga/pac0:program") {
		t.Fatalf("made %q after approval", got)
	}
	if st := h.c.Status(); st.Approved != nil || st.Awaiting != nil {
		t.Fatalf("after the approved run: approved %+v, awaiting %+v", st.Approved, st.Awaiting)
	}

	// Approved for one revision is not approved for the next.
	h.remote.Commit("again", fleetFile("nodes: [n1] # again"), nil)
	run = h.c.RunOnce(context.Background(), "manual")
	if _, err := h.c.Approve(run.ID); err != nil {
		t.Fatal(err)
	}
	r3 := h.remote.Commit("and again", fleetFile("nodes: [n1] # and again"), nil)
	before := rec.madeChanges()
	run = h.c.RunOnce(context.Background(), "schedule")
	if strings.Contains(strings.TrimPrefix(rec.madeChanges(), before), "detach") {
		t.Fatal("an approval of one revision made the changes of another")
	}
	if st := h.c.Status(); st.Awaiting == nil || st.Awaiting.Revision != r3 || st.Approved != nil {
		t.Fatalf("a new revision: awaiting %+v, approved %+v", st.Awaiting, st.Approved)
	}
}

// A run that plans without asking for approval (the policy's approval is
// auto again) leaves no run awaiting it.
func TestApprovalNoLongerAsked(t *testing.T) {
	t.Parallel()
	rec := &approving{}
	h := newHarness(t, "", func(o *Options) { o.Reconciler = rec })
	rec.c = h.c
	h.remote.Commit("fleet", fleetFile("nodes: [n1]"), nil)
	h.c.RunOnce(context.Background(), "manual")
	if h.c.Status().Awaiting == nil {
		t.Fatal("nothing awaits approval")
	}
	h.c.opts.Reconciler = &scripted{steps: []scriptStep{{run: state.Run{Nodes: []state.NodeSummary{{Name: "n1", State: "ok"}}}}}}
	h.c.RunOnce(context.Background(), "schedule")
	if a := h.c.Status().Awaiting; a != nil {
		t.Fatalf("still awaiting: %+v", a)
	}
}
