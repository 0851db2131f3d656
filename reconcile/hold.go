package reconcile

import "github.com/fpgaops/fpgaops/plans"

// Hold holds back each runnable change of a made plan for which hold
// gives a Hold: a gate the planner does not judge, such as a person's
// approval the controller waits for. As the planner does for its own
// gates, it then holds what depends on a held change and the disruptive
// detaches left serving only held changes, and rolls the rest out in
// waves again. It changes p in place.
func Hold(p *plans.Plan, hold func(c *plans.Change) *plans.Hold) {
	held := false
	for i := range p.Changes {
		c := &p.Changes[i]
		if !c.Runnable() {
			continue
		}
		if h := hold(c); h != nil {
			c.Held, held = h, true
		}
	}
	if !held {
		return
	}
	idx := indexByID(p.Changes)
	holdDependents(p.Changes, idx)
	holdDetachesForHeldEnds(p.Changes)
	for i := range p.Changes {
		p.Changes[i].Wave = 0
	}
	p.Waves = assignWaves(p.Changes, idx, p.Budget)
	p.Summary = plans.Summarize(p.Changes)
}
