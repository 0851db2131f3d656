package execute

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// compensate puts back what a group whose chain failed took away: for
// every card of the group from which a running VM lost a function that
// it did not get back (nor did the VM the repository gives it to), the
// card is brought back to what it ran (the previous bitstream programmed
// again when partial reconfiguration left the region empty and that
// bitstream is known; the VFs turned on again) and the VM is given its
// function back. What cannot be put back is reported: the VM is degraded.
// Nothing is retried here; the next run finishes the card.
func (x *run) compensate(ctx context.Context, members []int) {
	var failed *plans.Change
	for _, i := range members {
		if x.results[i].Status == plans.StatusFailed {
			failed = &x.plan.Changes[i]
			break
		}
	}
	if failed == nil {
		return
	}
	taken := map[string][]*plans.Change{} // card key -> detaches to undo
	var cards []string
	for _, i := range members {
		c := &x.plan.Changes[i]
		if c.Action != plans.ActionDetach || !c.Disruptive || !x.results[i].Status.Done() || len(x.dependents[c.ID]) == 0 || x.given(c) {
			continue
		}
		key := c.Node + "/" + c.Card
		if taken[key] == nil {
			cards = append(cards, key)
		}
		taken[key] = append(taken[key], c)
	}
	for _, key := range cards {
		x.restoreCard(ctx, failed, taken[key])
	}
}

// given reports whether the function a detach freed went where the plan
// meant it to: back to the same VM (the card was reset under it), or to
// the VM a binding now gives it.
func (x *run) given(d *plans.Change) bool {
	for _, j := range x.dependents[d.ID] {
		a := &x.plan.Changes[j]
		if a.Action == plans.ActionAttach && a.After.Function == d.Before.Function && a.Card == d.Card && x.results[j].Status.Done() {
			return true
		}
	}
	if j, ok := x.index[d.Object+":attach"]; ok && x.results[j].Status.Done() {
		return true
	}
	return false
}

// restoreCard brings one card back for the VMs detached from it, or
// reports them degraded.
func (x *run) restoreCard(ctx context.Context, failed *plans.Change, detaches []*plans.Change) {
	first := detaches[0]
	node := x.nodes[first.Node]
	degrade := func(reason string) {
		for _, d := range detaches {
			x.degrade(d, reason)
			x.Log.Error("VM left without its function", "node", d.Node, "vm", d.Before.VM, "card", d.Card, "function", d.Before.Function, "reason", reason)
		}
	}
	dev, err := x.card(ctx, node, first.CardPCI)
	if err != nil {
		degrade(fmt.Sprintf("%s failed, and the card cannot be read to put it back: %v", failed.ID, err))
		return
	}
	if why := x.restoreImage(ctx, failed, node, dev, first); why != "" {
		degrade(why)
		return
	}
	if why := x.restoreVFs(ctx, failed, node, first); why != "" {
		degrade(why)
		return
	}
	for _, d := range detaches {
		if err := x.reattach(ctx, failed, node, d); err != nil {
			x.degrade(d, fmt.Sprintf("%s failed, and giving %s back failed too: %v", failed.ID, d.Before.Function, err))
		}
	}
}

// degrade reports the VM that d took its function from as left without
// it. Card chains compensate in parallel.
func (x *run) degrade(d *plans.Change, reason string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.degraded = append(x.degraded, plans.Degraded{Node: d.Node, VM: d.Before.VM, Card: d.Card, Function: d.Before.Function, Reason: reason})
}

// change returns the plan's change of the card at this step, if any.
func (x *run) cardChange(d *plans.Change, step plans.Step) (*plans.Change, plans.Status) {
	j, ok := x.index[plans.CardID(d.Node, d.Card)+":"+string(step)]
	if !ok {
		return nil, ""
	}
	return &x.plan.Changes[j], x.results[j].Status
}

// restoreImage makes sure the card runs what it ran before the run, or
// says why it cannot: "" when it does.
func (x *run) restoreImage(ctx context.Context, failed *plans.Change, node *spec.Node, dev *fpga.Device, d *plans.Change) string {
	prog, st := x.cardChange(d, plans.StepProgram)
	if prog == nil {
		return "" // the card's bitstream was never touched
	}
	prevAFU, prevBS := prog.Before.AFUID, x.bitstreams[prog.Before.Bitstream]
	if prevAFU == "" && prevBS != nil {
		prevAFU = prevBS.AFUID
	}
	now := dev.AFUID()
	switch {
	case prevAFU != "" && now == prevAFU:
		return "" // programming failed before it changed anything
	case st.Done() || now == prog.After.AFUID:
		if d.Binding != "" {
			return "" // the VM keeps its binding, and gets the new bitstream it asks for
		}
		return fmt.Sprintf("%s failed after %s loaded %s, which %s did not run", failed.ID, d.Card, prog.After.Bitstream, d.Before.VM)
	case prevBS == nil:
		return fmt.Sprintf("%s failed and left the card running AFU %s; what it ran before is no bitstream of the repository, so fpgaops cannot load it again",
			failed.ID, short(now))
	}
	img, err := x.image(ctx, *prevBS)
	if err == nil {
		err = x.Provider.Program(ctx, node, d.CardPCI, img)
	}
	if err == nil {
		err = x.verify(ctx, node, &plans.Change{ID: prog.ID, CardPCI: d.CardPCI, After: &plans.Value{AFUID: prevBS.AFUID}})
	}
	x.compensated(failed, "program "+d.CardPCI+" with "+prevBS.Name+" again", err)
	if err != nil {
		return fmt.Sprintf("%s failed and left the card's region empty; programming %s again failed: %v", failed.ID, prevBS.Name, err)
	}
	return ""
}

// restoreVFs turns the card's VFs back on when the run turned them off.
func (x *run) restoreVFs(ctx context.Context, failed *plans.Change, node *spec.Node, d *plans.Change) string {
	off, st := x.cardChange(d, plans.StepVFsOff)
	if off == nil || !st.Done() {
		return ""
	}
	if _, onSt := x.cardChange(d, plans.StepVFsOn); onSt.Done() {
		return ""
	}
	n := *off.Before.VFs
	err := x.Provider.SetVFs(ctx, node, d.CardPCI, n)
	x.compensated(failed, fmt.Sprintf("set %d VF(s) on %s again", n, d.CardPCI), err)
	if err != nil {
		return fmt.Sprintf("%s failed; turning the card's %d VF(s) on again failed: %v", failed.ID, n, err)
	}
	return ""
}

// reattach gives the VM the function the detach took.
func (x *run) reattach(ctx context.Context, failed *plans.Change, node *spec.Node, d *plans.Change) error {
	pci := d.Before.PCI
	fn, err := spec.ParseFunction(d.Before.Function)
	if err != nil {
		return err
	}
	if !fn.PF {
		// VF numbering is the hardware's: read the address again.
		if pci, err = x.resolveVF(ctx, node, &plans.Change{CardPCI: d.CardPCI, After: &plans.Value{Function: d.Before.Function}}); err != nil {
			return err
		}
	}
	err = x.Provider.Attach(ctx, node, d.Before.VM, pci)
	if errors.Is(err, providers.ErrNeedsRestart) {
		err = nil // in its definition: it has it back at its next restart
	}
	x.compensated(failed, fmt.Sprintf("attach %s %s %s", d.Before.VM, d.Before.Function, pci), err)
	return err
}

func (x *run) compensated(failed *plans.Change, what string, err error) {
	c := plans.Compensation{Change: failed.ID, What: what, OK: err == nil}
	if err != nil {
		c.Error = err.Error()
		x.Log.Error("could not put back", "change", failed.ID, "what", what, "err", err)
	} else {
		x.Log.Warn("put back after a failure", "change", failed.ID, "what", what)
	}
	x.mu.Lock()
	x.compensations = append(x.compensations, c)
	x.mu.Unlock()
}

// dependentsOf maps each change ID to the indexes of the changes that
// depend on it.
func dependentsOf(changes []plans.Change) map[string][]int {
	out := map[string][]int{}
	for i := range changes {
		for _, d := range changes[i].DependsOn {
			if !slices.Contains(out[d], i) {
				out[d] = append(out[d], i)
			}
		}
	}
	return out
}
