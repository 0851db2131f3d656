package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
)

// rolloutWorld is a world whose engine keeps a clock the test moves, and
// knows the revisions it has rolled out, as the controller's git history
// does.
type rolloutWorld struct {
	*world
	clock     time.Time
	revisions map[string]*spec.Fleet
}

func newRolloutWorld(t *testing.T, nodes int, opts sim.Options, policy *spec.Rollout) *rolloutWorld {
	w := &rolloutWorld{world: newWorldOf(t, nodes, 4, 64, opts), clock: now, revisions: map[string]*spec.Fleet{}}
	w.engine.Now = func() time.Time { return w.clock }
	w.engine.LastGood = func(_ context.Context, rev string) (*spec.Fleet, error) {
		f, ok := w.revisions[rev]
		if !ok {
			return nil, fmt.Errorf("no revision %s", rev)
		}
		return f, nil
	}
	w.fleet.Policy.Rollout = policy
	w.commit("rev-0")
	return w
}

// commit names the desired state as a revision.
func (w *rolloutWorld) commit(rev string) {
	w.fleet.Revision = rev
	w.fleet.Policy.Rollout = w.revisionsPolicy()
	w.revisions[rev] = clone(w.fleet)
}

func (w *rolloutWorld) revisionsPolicy() *spec.Rollout {
	for _, f := range w.revisions {
		return f.Policy.Rollout
	}
	return w.fleet.Policy.Rollout
}

// run is one controller run: plan, apply, and the clock moves on.
func (w *rolloutWorld) run(step time.Duration) *engine.Outcome {
	w.t.Helper()
	p, err := w.engine.Plan(context.Background(), w.fleet, engine.PlanOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	out, err := w.engine.Apply(context.Background(), p, engine.ApplyOptions{Trigger: "schedule"})
	if out == nil {
		w.t.Fatalf("apply: %v", err)
	}
	w.clock = w.clock.Add(step)
	return out
}

// running counts the cards that run afu.
func (w *rolloutWorld) running(afu string) int {
	n := 0
	for _, node := range w.observe().Nodes {
		for _, d := range node.FPGAs {
			if d.AFUID() == afu {
				n++
			}
		}
	}
	return n
}

// bitstreamOf is the bitstream each card's binding loads.
func bitstreamOf(f *spec.Fleet) map[string]string {
	out := map[string]string{}
	for _, b := range f.Bindings {
		out[plans.CardID(b.Node, b.FPGA)] = b.Bitstream
	}
	return out
}

// toComplete runs until the rollout of the revision completes.
func (w *rolloutWorld) toComplete(runs int) *rollout.State {
	w.t.Helper()
	for range runs {
		out := w.run(3 * time.Second)
		if out.Rollout != nil && out.Rollout.Phase == rollout.Complete {
			return out.Rollout
		}
	}
	w.t.Fatalf("the rollout of %s did not complete in %d runs", w.fleet.Revision, runs)
	return nil
}

// A revision that reprograms every card, with one faulty image among its
// bitstreams, is rolled out in steps: the rollout stops in the first step
// that reaches a card with the faulty image, no more than that step's
// cards ever run it, and the revert puts them back on their previous
// image and VMs in the same run. Nothing is programmed under a VM.
func TestRolloutStopsAtTheFirstFaultyCardAndReverts(t *testing.T) {
	policy := &spec.Rollout{Steps: []string{"1", "10%", "100%"}, Bake: spec.Duration(2 * time.Second)}
	board := spec.Boards[1].Board
	w := newRolloutWorld(t, 200, sim.Options{FaultyAFUs: []string{imageAFU("bad", board)}}, policy)
	if first := w.toComplete(12); len(first.Steps) != 3 || first.Steps[2].Cards != 800 {
		t.Fatalf("first rollout: %+v", first.Steps)
	}
	before := w.holdings()
	if got := w.running(imageAFU("bad", board)); got != 0 {
		t.Fatalf("%d cards run the faulty image before it is rolled out", got)
	}

	// The next revision reprograms every card; the cards of one board that
	// would get its second image get a faulty one instead.
	w.rebind(1)
	faulty := writeImage(t, w.dir, board, "bad")
	w.bitstream(faulty)
	for i := range w.fleet.Bindings {
		if b := &w.fleet.Bindings[i]; b.Bitstream == w.images[board][1].Name {
			b.Bitstream = faulty.Name
		}
	}
	w.commit("rev-1")
	want := bitstreamOf(w.fleet)
	var failed *rollout.State
	most := 0
	for range 12 {
		out := w.run(3 * time.Second)
		most = max(most, w.running(faulty.AFUID))
		if out.Rollout.Phase == rollout.Failed && len(out.Rollout.Reverted) > 0 {
			failed = out.Rollout
			break
		}
	}
	if failed == nil {
		t.Fatal("the rollout of the faulty revision did not fail and revert")
	}
	// The step that failed is the first whose cards include one the
	// faulty image goes to.
	firstFaulty := -1
	for k, st := range failed.Steps {
		for _, id := range failed.Cards[:st.Cards] {
			if want[id] == faulty.Name && firstFaulty < 0 {
				firstFaulty = k
			}
		}
	}
	if failed.Step != firstFaulty {
		t.Fatalf("failed at step %d, want %d, the first with a faulty card", failed.Step+1, firstFaulty+1)
	}
	inStep := 0
	for _, id := range failed.Cards[:failed.Steps[failed.Step].Cards] {
		if want[id] == faulty.Name {
			inStep++
		}
	}
	if most > inStep {
		t.Fatalf("%d cards ran the faulty image at once; its step has %d", most, inStep)
	}
	if f := failed.Failure; f == nil || want[f.Card] != faulty.Name || f.Check != engine.CardCheck {
		t.Fatalf("failure %+v; want a card with the faulty image, check %s", f, engine.CardCheck)
	}
	if got := w.running(faulty.AFUID); got != 0 {
		t.Fatalf("%d cards still run the faulty image after the revert", got)
	}
	after := w.holdings()
	for _, n := range w.fleet.Nodes {
		if !equalHolds(after[n.Name], before[n.Name]) {
			t.Fatalf("node %s: VMs hold %v after the revert, %v before the rollout", n.Name, after[n.Name], before[n.Name])
		}
	}
	// Later runs hold the revision's cards until a new commit.
	out := w.run(3 * time.Second)
	if out.Report.Applied != 0 || out.Rollout.Phase != rollout.Failed {
		t.Fatalf("a run after the failure applied %d changes (%s)", out.Report.Applied, out.Rollout.Summary())
	}
	w.noViolations()
	t.Logf("failed at step %d of %d (%d cards, %d with the faulty image): %s", failed.Step+1, len(failed.Steps),
		failed.Steps[failed.Step].Cards, inStep, failed.Failure)
}

// A revision of healthy images goes through every step.
func TestRolloutOfHealthyImagesCompletesEveryStep(t *testing.T) {
	policy := &spec.Rollout{Steps: []string{"1", "10%", "100%"}, Bake: spec.Duration(2 * time.Second)}
	w := newRolloutWorld(t, 200, sim.Options{}, policy)
	w.toComplete(12)
	w.rebind(1)
	w.commit("rev-1")
	done := w.toComplete(12)
	if done.Revision != "rev-1" || done.LastGood != "rev-0" || len(done.Done) != 800 {
		t.Fatalf("rollout %+v", done.Summary())
	}
	for i, st := range done.Steps {
		if st.Started.IsZero() || st.Baked.IsZero() || (i > 0 && st.Started.Before(done.Steps[i-1].Baked)) {
			t.Fatalf("step %d: %+v", i+1, st)
		}
	}
	if p := w.plan(); p.HasChanges() {
		t.Fatalf("not converged: %s", summary(p))
	}
	w.noViolations()
}

// A revert that itself fails (its program is refused) still leaves every
// VM of the reverted cards holding its function, or reported degraded:
// never silently without its card.
func TestFailedRevertLeavesNoVMSilentlyWithoutItsCard(t *testing.T) {
	policy := &spec.Rollout{Steps: []string{"1", "10%", "100%"}, Bake: spec.Duration(2 * time.Second)}
	board := spec.Boards[1].Board
	w := newRolloutWorld(t, 40, sim.Options{FaultyAFUs: []string{imageAFU("bad", board)}}, policy)
	w.toComplete(12)
	w.rebind(1)
	faulty := writeImage(t, w.dir, board, "bad")
	w.bitstream(faulty)
	for i := range w.fleet.Bindings {
		if b := &w.fleet.Bindings[i]; b.Bitstream == w.images[board][1].Name {
			b.Bitstream = faulty.Name
		}
	}
	w.commit("rev-1")
	for range 12 {
		p, err := w.engine.Plan(context.Background(), w.fleet, engine.PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Desired.Revision != "rev-0" {
			// Not the revert yet.
			w.engine.Apply(context.Background(), p, engine.ApplyOptions{})
			w.clock = w.clock.Add(3 * time.Second)
			continue
		}
		// The revert: every program of it fails.
		programs := 0
		for _, c := range p.Plan.Changes {
			if c.Action == plans.ActionProgram && c.Runnable() {
				if err := w.sim.InjectFault(c.Node, sim.Fault{Op: sim.FaultProgram, PCI: c.CardPCI}); err != nil {
					t.Fatal(err)
				}
				programs++
			}
		}
		if programs == 0 {
			t.Fatal("the revert programs nothing")
		}
		out, err := w.engine.Apply(context.Background(), p, engine.ApplyOptions{})
		if err == nil {
			t.Fatal("the revert succeeded despite its faults")
		}
		degraded := map[string]bool{}
		for _, d := range out.Report.Degraded {
			degraded[d.Node+"/"+d.VM] = true
		}
		holds := w.holdings()
		detached := 0
		for _, c := range p.Plan.Changes {
			if c.Action != plans.ActionDetach || out.Report.Results[indexOf(p.Plan, c.ID)].Status != plans.StatusApplied {
				continue
			}
			detached++
			vm := c.Before.VM
			if len(holds[c.Node][vm]) == 0 && !degraded[c.Node+"/"+vm] {
				t.Fatalf("%s on %s holds nothing after the failed revert and is not reported degraded", vm, c.Node)
			}
		}
		if detached == 0 {
			t.Fatal("the revert took no function from a VM; the test proves nothing")
		}
		t.Logf("the revert failed %d programs after %d detaches; %d VM(s) reported degraded, the rest hold their functions", programs, detached, len(out.Report.Degraded))
		w.noViolations()
		return
	}
	t.Fatal("no revert was planned")
}

func indexOf(p *plans.Plan, id string) int {
	for i := range p.Changes {
		if p.Changes[i].ID == id {
			return i
		}
	}
	return -1
}

// A repository's HTTP check, made by the nodes' agents on their loopback,
// fails the step whose cards' workload answers 503; with no revision known
// good before, the rollout halts instead of reverting.
func TestRolloutHTTPCheckFailsTheStep(t *testing.T) {
	workload := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz/pac1" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer workload.Close()
	policy := &spec.Rollout{Steps: []string{"1", "50%", "100%"}, Bake: spec.Duration(2 * time.Second),
		Checks: []spec.Check{{Name: "workload", HTTP: &spec.HTTPCheck{URL: workload.URL + "/healthz/{slot}"}}}}
	w := newRolloutWorld(t, 4, sim.Options{}, policy)
	var out *engine.Outcome
	for range 10 {
		if out = w.run(3 * time.Second); out.Rollout.Phase == rollout.Failed {
			break
		}
	}
	r := out.Rollout
	if r.Phase != rollout.Failed || r.Failure.Check != "workload" || !strings.HasSuffix(r.Failure.Card, "/pac1") ||
		!strings.Contains(r.Failure.Reason, "/healthz/pac1: 503, want 200") {
		t.Fatalf("rollout %s, failure %+v", r.Summary(), r.Failure)
	}
	if !slices.ContainsFunc(out.Run.RolloutEvents, func(e string) bool {
		return strings.Contains(e, "no earlier revision is known good, so the rollout halts instead of reverting")
	}) {
		t.Fatalf("events %q", out.Run.RolloutEvents)
	}
	before := w.stats().Programs
	if out := w.run(3 * time.Second); out.Report.Applied != 0 || w.stats().Programs != before {
		t.Fatal("a halted rollout went on")
	}
	w.noViolations()
}
