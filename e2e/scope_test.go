package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/spec/source"
)

// A commit that moves one binding is run on its node alone: that node is
// observed fresh and changed, the other nodes are not asked anything and
// get no change, even when one has gone down meanwhile; a run of the same
// revision observes the whole fleet again and finds the node down; and a
// new revision once ScopeFor has passed observes everything.
func TestScopedRunTouchesOnlyTheChangedNodes(t *testing.T) {
	w := newWorldOf(t, 20, 3, 8, sim.Options{})
	w.converge(3)
	clock := now
	step := &controller.Step{Engine: w.engine, ScopeFor: time.Hour, Now: func() time.Time { return clock }}
	ctx := context.Background()
	reconcile := func(commit string) controller.Result {
		t.Helper()
		res, err := step.Reconcile(ctx, source.Revision{Commit: commit}, clone(w.fleet))
		if err != nil {
			t.Fatalf("revision %s: %v", commit, err)
		}
		return res
	}

	if res := reconcile("a"); res.Run.Scope != 0 || res.Run.Results.Applied != 0 {
		t.Fatalf("the first run: scope %d, %d applied; want the whole fleet, converged", res.Run.Scope, res.Run.Results.Applied)
	}

	// One binding moves; another node goes down meanwhile.
	move(w, "node-00003")
	if err := w.sim.SetDown("node-00007", true); err != nil {
		t.Fatal(err)
	}
	before := w.stats()
	res := reconcile("b")
	after := w.stats()
	if res.Run.Scope != 1 {
		t.Fatalf("the commit's run: scope %d, want its one node", res.Run.Scope)
	}
	if got := after.Programs - before.Programs; got != 1 {
		t.Errorf("%d programs, want the moved binding's one", got)
	}
	// node-00003 is asked for its cards and VMs, and changed (10
	// requests); no other node is asked anything, which observing the 20
	// would take 40 for: node-00007 being down goes unseen.
	if got := after.Requests - before.Requests; got > 20 {
		t.Errorf("%d requests to the sim: more than one node's worth", got)
	}
	if res.Run.Unknown != 0 {
		t.Errorf("the scoped run reports %d unknown node(s): it asked nodes outside its scope", res.Run.Unknown)
	}
	for _, c := range res.Run.Changes {
		if c.Node != "node-00003" {
			t.Errorf("the scoped run changed %s", c.ID)
		}
	}

	// The same revision again: the whole fleet, node-00007 down.
	res = reconcile("b")
	if res.Run.Scope != 0 || res.Run.Unknown != 1 {
		t.Errorf("the revision's second run: scope %d, %d unknown; want the whole fleet and node-00007 unknown", res.Run.Scope, res.Run.Unknown)
	}
	if err := w.sim.SetDown("node-00007", false); err != nil {
		t.Fatal(err)
	}

	// Past ScopeFor, a new revision's run observes everything.
	move(w, "node-00004")
	clock = clock.Add(2 * time.Hour)
	res = reconcile("c")
	if res.Run.Scope != 0 {
		t.Errorf("a run past ScopeFor: scope %d, want the whole fleet", res.Run.Scope)
	}
	if st := w.stats(); st.Violations != 0 {
		t.Errorf("%d violations", st.Violations)
	}
	if n := count(w.plan(), plans.ActionProgram); n != 0 {
		t.Errorf("%d programs still planned", n)
	}
}

// move binds node's pac0 to its board's other image.
func move(w *world, node string) {
	w.t.Helper()
	b := w.binding(node, "pac0")
	for _, n := range w.fleet.Nodes {
		if n.Name != node {
			continue
		}
		for _, img := range w.images[n.FPGAs[0].Board] {
			if img.Name != b.Bitstream {
				b.Bitstream = img.Name
				return
			}
		}
	}
	w.t.Fatalf("no other image for %s pac0", node)
}
