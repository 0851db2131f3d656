package reconcile

import (
	"fmt"
	"strings"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
)

// healthHold is why fpgaops must give a card no work: the problems it
// reports now (each names its register or sensor and value), or the
// quarantine an earlier run put it in, which holds until an operator
// clears it even if the card reads healthy again. Nil for a card fpgaops
// may use.
func (pl *planner) healthHold(cid string, dev *fpga.Device) *plans.Hold {
	if dev != nil && !dev.Health.OK() {
		return &plans.Hold{Gate: plans.GateHealth, Why: fmt.Sprintf("the card reports %s; quarantined until it reads healthy and `fpgaops quarantine release %s` releases it",
			strings.Join(dev.Health.Problems, "; "), cid)}
	}
	if why, ok := pl.opts.Quarantined[cid]; ok {
		return &plans.Hold{Gate: plans.GateHealth, Why: fmt.Sprintf("the card is quarantined (%s); `fpgaops quarantine release %s` releases it", why, cid)}
	}
	return nil
}

// holdWork holds every change that would give the card work: its reset
// and the attaches to it, for a sick card or one a rollout has not
// released. Detaches that move VMs off it go ahead; those that only
// served the reset are held with it.
func (c *chain) holdWork(h *plans.Hold) {
	for _, x := range append([]*plans.Change{c.vfsOff, c.program, c.vfsOn}, c.attach...) {
		if x != nil && x.Held == nil {
			x.Held = h
		}
	}
	if c.resetting() && c.resetHold == nil {
		c.resetHold = h
	}
}

// healthReport shows a sick card in the plan, whatever else it holds:
// the problems, or the quarantine, and how to release it.
func (c *cardPlan) healthReport(h *plans.Hold) *plans.Change {
	r := c.change(plans.StepReport, plans.ActionReport, c.chain.id)
	note := "quarantined"
	if !c.dev.Health.OK() {
		note = "unhealthy"
	}
	r.Before = c.pl.val(plans.Value{AFUID: c.dev.AFUID(), Note: note})
	r.Reason = h.Why
	return r
}

// gateBackendCards holds a backend's changes that would give a card work
// when the card chains hold that card's (holdWork): a sick card, or one
// the rollout has not released. Each change learns its rollout step.
func (pl *planner) gateBackendCards() {
	for i := range pl.backend {
		c := &pl.backend[i]
		if c.Card == "" {
			continue
		}
		cid := plans.CardID(c.Node, c.Card)
		step, hold := pl.rollout(cid)
		c.RolloutStep = step
		if c.Held != nil {
			continue
		}
		switch c.Action {
		case plans.ActionDetach, plans.ActionReport, plans.ActionNoop:
			continue
		}
		if h, ok := pl.sick[cid]; ok {
			c.Held = h
		} else if hold != nil {
			c.Held = hold
		}
	}
}

// rollout is the card's rollout step, and the hold when the rollout does
// not let it change in this run.
func (pl *planner) rollout(cid string) (int, *plans.Hold) {
	if pl.opts.Rollout == nil {
		return 0, nil
	}
	step, why := pl.opts.Rollout(cid)
	if why == "" {
		return step, nil
	}
	return step, &plans.Hold{Gate: plans.GateRollout, Why: why}
}
