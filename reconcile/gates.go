package reconcile

import (
	"fmt"
	"strconv"
	"time"

	"github.com/fpgaops/fpgaops/plans"
)

// gatePrune holds every prune detach when prune is off, when it would
// remove every managed attachment (unless allowed), or when it would
// remove more than the allowed share.
func (pl *planner) gatePrune() {
	p := pl.policy.Prune()
	var prunes []*plans.Change
	for _, ch := range pl.chains {
		for i, d := range ch.detach {
			if ch.kinds[i] == detachPrune {
				prunes = append(prunes, d)
			}
		}
	}
	if len(prunes) == 0 {
		return
	}
	var why string
	switch {
	case !p.Enabled:
		why = "prune is off in the policy"
	case len(prunes) == pl.managed && !p.AllowEmpty:
		why = fmt.Sprintf("refusing to prune all %d managed attachments (allowEmpty is off)", pl.managed)
	case p.MaxShare > 0 && float64(len(prunes)) > p.MaxShare*float64(pl.managed):
		why = fmt.Sprintf("pruning %d of %d managed attachments exceeds maxShare %s",
			len(prunes), pl.managed, strconv.FormatFloat(p.MaxShare, 'g', -1, 64))
	default:
		return
	}
	for _, d := range prunes {
		if d.Held == nil {
			d.Held = &plans.Hold{Gate: plans.GatePrune, Why: why}
		}
	}
}

// disruptionAllowed is the policy's windows, which a repair does not wait
// for: a revert puts back what a failed rollout broke.
func (pl *planner) disruptionAllowed(now time.Time) (bool, string) {
	if pl.opts.Repair {
		return true, ""
	}
	return pl.policy.DisruptionAllowed(now)
}

// gateDisruption holds the disruptive changes of every backend that a
// protected binding forbids, and those outside the maintenance windows:
// the detaches of the card chains and a backend's replacements alike.
func (pl *planner) gateDisruption(now time.Time) {
	allowed, why := pl.disruptionAllowed(now)
	gate := func(c *plans.Change) {
		if c.Held != nil || !c.Disruptive {
			return
		}
		if c.Binding != "" && pl.policy.Protected(c.Binding) {
			c.Held = &plans.Hold{Gate: plans.GateProtected, Why: fmt.Sprintf("binding %s is protected: fpgaops never detaches it", c.Binding)}
			if c.Action == plans.ActionReplace {
				c.Held.Why = fmt.Sprintf("binding %s is protected: fpgaops never replaces its VM", c.Binding)
			}
			return
		}
		if !allowed {
			c.Held = &plans.Hold{Gate: plans.GateWindow, Why: why}
		}
	}
	for _, ch := range pl.chains {
		for _, d := range ch.detach {
			gate(d)
		}
	}
	for i := range pl.backend {
		gate(&pl.backend[i])
	}
}

// pendingAttach reports whether the VM's definition names the function but
// the running VM does not hold it yet: an attach made where devices cannot
// be attached live, waiting for the VM's restart.
func pendingAttach(h holder) bool {
	return h.VM.Running && h.VM.RestartToChange && h.Hostdev.Config && !h.Hostdev.Live
}

// gateRestart decides how each change that takes effect only at a VM's
// restart (Restart set by card) does: when the policy's vmRestart allows
// it and a maintenance window is open, the executor restarts the VM (a
// disruption, counted against the budget); otherwise the change waits for
// the restart, and what depends on it (the card's reset, the function
// given to another VM) is held, since the running VM still holds the
// function.
func (pl *planner) gateRestart(now time.Time) {
	allowed, _ := pl.disruptionAllowed(now)
	restart := pl.policy.VMRestart() && allowed
	waiting := map[string]*plans.Change{}
	for _, ch := range pl.chains {
		for _, list := range [2][]*plans.Change{ch.detach, ch.attach} {
			for _, c := range list {
				if c.Restart == "" || c.Held != nil {
					continue
				}
				// A restart takes every function from the VM for a while:
				// never for a VM that holds a protected binding's.
				if restart && !pl.policy.ProtectsVM(c.Node, c.VM()) {
					c.Restart = plans.RestartVM
					c.Disruptive = true
					c.Reason += "; fpgaops restarts " + c.VM() + " (policy vmRestart)"
					continue
				}
				c.Reason += "; waits for " + c.VM() + "'s restart"
				if c.Action == plans.ActionDetach {
					waiting[c.ID] = c
				}
			}
		}
	}
	if len(waiting) == 0 {
		return
	}
	whyWait := func(c *plans.Change) string {
		switch {
		case !pl.policy.VMRestart():
			return "the policy's vmRestart is off"
		case !allowed:
			return "no maintenance window is open"
		}
		return "it holds a protected binding's function, so fpgaops does not restart it"
	}
	for _, ch := range pl.chains {
		for _, c := range ch.all() {
			if c.Held != nil {
				continue
			}
			for _, d := range c.DependsOn {
				w, ok := waiting[d]
				if !ok {
					continue
				}
				c.Held = &plans.Hold{Gate: plans.GateRestart, Why: fmt.Sprintf("%s keeps %s until it restarts: its platform cannot detach live, and %s",
					w.Before.VM, w.Before.PCI, whyWait(w))}
				if (c == ch.vfsOff || c == ch.program || c == ch.vfsOn) && ch.resetHold == nil {
					ch.resetHold = c.Held
				}
				break
			}
		}
	}
}

// holdUselessDetaches: when a card cannot be reset, the detaches that only
// served the reset would disrupt VMs for nothing; hold them too.
func (pl *planner) holdUselessDetaches() {
	for _, ch := range pl.chains {
		if !ch.resetting() {
			continue
		}
		hold := ch.resetHold
		if hold == nil {
			for i, d := range ch.detach {
				if ch.blocks[i] && d.Held != nil {
					hold = &plans.Hold{Gate: plans.GateDependency, Why: fmt.Sprintf("%s cannot be reset: %s is held (%s)", ch.id, d.ID, d.Held.Gate)}
					break
				}
			}
		}
		if hold == nil {
			continue
		}
		for i, d := range ch.detach {
			if ch.kinds[i] == detachCycle && d.Held == nil {
				d.Held = &plans.Hold{Gate: plans.GateDependency, Why: fmt.Sprintf("only needed to reset %s, which is held: %s", ch.id, hold.Why)}
			}
		}
	}
}

// holdDependents holds every change that depends, directly or not, on a
// held change.
func holdDependents(changes []plans.Change, idx map[string]int) {
	state := make([]int8, len(changes)) // 0 unvisited, 1 visiting, 2 done
	var visit func(i int) *plans.Hold
	visit = func(i int) *plans.Hold {
		c := &changes[i]
		if state[i] == 2 || state[i] == 1 {
			return c.Held
		}
		state[i] = 1
		if c.Held == nil {
			for _, d := range c.DependsOn {
				j, ok := idx[d]
				if !ok {
					continue
				}
				if visit(j) != nil {
					c.Held = &plans.Hold{Gate: plans.GateDependency, Why: "waits for " + d + ", which is held"}
					break
				}
			}
		}
		state[i] = 2
		return c.Held
	}
	for i := range changes {
		visit(i)
	}
}

// holdDetachesForHeldEnds holds every disruptive detach whose purpose is
// held: a detach that frees a function or a card only for changes that
// will not run (an attach to a VM that is missing, a program whose
// interface does not fit) would disrupt a VM for nothing. It runs on the
// flattened plan, after holdDependents.
func holdDetachesForHeldEnds(changes []plans.Change) {
	// The detaches that may be held, and what depends on each.
	dependents := map[string][]int{}
	for i := range changes {
		if c := &changes[i]; c.Action == plans.ActionDetach && c.Disruptive && c.Held == nil {
			dependents[c.ID] = nil
		}
	}
	if len(dependents) == 0 {
		return
	}
	for i := range changes {
		for _, d := range changes[i].DependsOn {
			if ends, ok := dependents[d]; ok {
				dependents[d] = append(ends, i)
			}
		}
	}
	for i := range changes {
		c := &changes[i]
		if c.Action != plans.ActionDetach || !c.Disruptive || c.Held != nil {
			continue
		}
		ends := dependents[c.ID]
		if len(ends) == 0 {
			continue // a prune: it serves only itself
		}
		var held *plans.Change
		for _, j := range ends {
			if changes[j].Held == nil {
				held = nil
				break
			}
			held = &changes[j]
		}
		if held != nil {
			c.Held = &plans.Hold{Gate: plans.GateDependency,
				Why: fmt.Sprintf("only needed for %s, which is held (%s): %s", held.ID, held.Held.Gate, held.Held.Why)}
		}
	}
}
