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

// holdSick holds every change that would give a sick card work: its
// reset and the attaches to it. Detaches that move VMs off it go ahead;
// those that only served the reset are held with it.
func (c *chain) holdSick(h *plans.Hold) {
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

// gateSickBackend holds a backend's changes that would give a sick card
// work, as holdSick does for the card chains.
func (pl *planner) gateSickBackend() {
	if len(pl.sick) == 0 {
		return
	}
	for i := range pl.backend {
		c := &pl.backend[i]
		if c.Card == "" || c.Held != nil {
			continue
		}
		switch c.Action {
		case plans.ActionDetach, plans.ActionReport, plans.ActionNoop:
			continue
		}
		if h, ok := pl.sick[plans.CardID(c.Node, c.Card)]; ok {
			c.Held = h
		}
	}
}
