package reconcile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// detachKind says why a function is taken from a VM.
type detachKind int

const (
	// detachCycle: the VM keeps the function, but the card must be reset
	// under it; it is attached again afterwards.
	detachCycle detachKind = iota
	// detachReplace: a binding gives the function to another VM, or gives
	// this VM another function: the repository changed who holds what.
	detachReplace
	// detachPrune: no binding mentions the VM and function any more.
	detachPrune
)

// chain is every change of one card, before gates and flattening.
type chain struct {
	id      string // the card's object ID
	node    string
	detach  []*plans.Change
	kinds   []detachKind
	blocks  []bool // detach must finish before the card is reset
	vfsOff  *plans.Change
	program *plans.Change
	vfsOn   *plans.Change
	attach  []*plans.Change
	other   []*plans.Change // report or noop
	// resetHold is why the card cannot be reset, if it cannot.
	resetHold *plans.Hold
}

func (c *chain) resetting() bool { return c.vfsOff != nil || c.program != nil || c.vfsOn != nil }

// all lists the chain's changes in step order.
func (c *chain) all() []*plans.Change { return c.appendAll(nil) }

// appendAll appends the chain's changes, in step order, to out.
func (c *chain) appendAll(out []*plans.Change) []*plans.Change {
	out = append(out, c.other...)
	out = append(out, c.detach...)
	for _, x := range [...]*plans.Change{c.vfsOff, c.program, c.vfsOn} {
		if x != nil {
			out = append(out, x)
		}
	}
	return append(out, c.attach...)
}

// nodeView is what planning a node's cards needs to know of the node as a
// whole.
type nodeView struct {
	node *spec.Node
	// boundVMs are the VMs some binding on the node names: their other
	// hostdevs on managed cards are replaced, not pruned.
	boundVMs map[string]bool
	// wanted maps "slot/function" to the VM a binding gives it.
	wanted map[string]string
	vms    map[string]*observed.VM
}

// want is a binding with a VM, and whether that VM holds its function now
// and keeps it.
type want struct {
	b  *spec.Binding
	ok bool
}

// cardPlan is one card being planned: what it should run and what it
// runs, and the chain of changes between the two.
type cardPlan struct {
	*chain
	pl     *planner
	view   *nodeView
	pair   *cardPair
	card   *spec.FPGA
	dev    *fpga.Device
	digest string
	// bs is the bitstream the card's bindings load; nil when none does.
	bs *spec.Bitstream
	// needProgram and vfChange say what the card's reset is for; reset is
	// either.
	needProgram, vfChange, reset bool
	resetWhy                     string
	wants                        []want
}

// card plans one card: the safety order detach, VFs off, program, VFs on,
// attach, each step depending on the one before.
func (pl *planner) card(v *nodeView, cp *cardPair) (*chain, error) {
	n := v.node
	cid := plans.CardID(n.Name, cp.Card.Slot)
	if pl.opts.Only != nil && !pl.opts.Only[cid] {
		return &chain{id: cid, node: n.Name}, nil
	}
	c := &cardPlan{chain: &chain{id: cid, node: n.Name}, pl: pl, view: v, pair: cp, card: cp.Card, dev: cp.Dev,
		digest: cardDigest(n.Name, cp.Card, cp.Bindings, pl.bitstreams)}
	bs, err := pl.cardBitstream(cid, cp.Bindings)
	if err != nil {
		return nil, err
	}
	c.bs = bs
	if r := c.unusable(); r != nil {
		c.other = append(c.other, r)
		return c.chain, nil
	}
	sick := pl.healthHold(cid, c.dev)
	if sick != nil {
		pl.sick[cid] = sick
		c.other = append(c.other, c.healthReport(sick))
	}
	if pl.opts.Owned[n.Name] != "" {
		// The node's backend attaches and programs this card; its plan
		// covers it. Its hostdevs are not ours to prune either.
		return c.chain, nil
	}
	c.target()
	blocking := c.detaches()
	last := c.resetSteps(blocking)
	c.attaches(last)
	if len(c.detach)+len(c.attach) == 0 && !c.resetting() {
		if sick == nil {
			c.other = append(c.other, c.noop())
		}
		return c.chain, nil
	}
	if drift := c.drift(); drift != nil {
		return drift, nil
	}
	step, released := pl.rollout(cid)
	for _, x := range c.all() {
		x.RolloutStep = step
	}
	switch {
	case sick != nil:
		c.holdWork(sick)
	case released != nil:
		c.holdWork(released)
	}
	return c.chain, nil
}

// cardBitstream is the bitstream the card's bindings load: every binding
// on a card loads the same one, since a card has one PR region.
func (pl *planner) cardBitstream(cid string, bindings []*spec.Binding) (*spec.Bitstream, error) {
	var bs *spec.Bitstream
	for _, b := range bindings {
		got, ok := pl.bitstreams[b.Bitstream]
		if !ok {
			return nil, fmt.Errorf("%s: binding %s: bitstream %q is not defined", cid, b.Name, b.Bitstream)
		}
		if bs != nil && bs.Name != got.Name {
			return nil, fmt.Errorf("%s: bindings ask for bitstreams %s and %s; a card runs one", cid, bs.Name, got.Name)
		}
		bs = got
	}
	return bs, nil
}

// change allocates a change of this card.
func (c *cardPlan) change(step plans.Step, action plans.Action, object string) *plans.Change {
	ch := c.pl.changes.alloc()
	*ch = plans.Change{ID: object + ":" + string(step), Action: action, Step: step, Object: object, Node: c.view.node.Name,
		Card: c.card.Slot, CardPCI: c.card.PCI, Digest: c.digest}
	return ch
}

// unusable reports a card fpgaops must not touch: not there, or another
// board than declared. It returns nil for a usable card.
func (c *cardPlan) unusable() *plans.Change {
	card, dev, pl := c.card, c.dev, c.pl
	node := c.view.node.Name
	switch {
	case dev == nil:
		r := c.change(plans.StepReport, plans.ActionReport, c.chain.id)
		r.After = pl.val(plans.Value{PCI: card.PCI, Note: "board " + string(card.Board)})
		r.Reason = fmt.Sprintf("no FPGA at %s on node %s; nothing is planned for card %s", card.PCI, node, card.Slot)
		return r
	case dev.Board != "" && dev.Board != string(card.Board):
		r := c.change(plans.StepReport, plans.ActionReport, c.chain.id)
		r.Before = pl.val(plans.Value{PCI: dev.PCI, Note: "board " + dev.Board})
		r.After = pl.val(plans.Value{PCI: card.PCI, Note: "board " + string(card.Board)})
		r.Reason = fmt.Sprintf("the card at %s is a %s, the repository says %s; nothing is planned for it", card.PCI, dev.Board, card.Board)
		return r
	}
	return nil
}

// target decides what the card's reset is for: a new bitstream, another
// VF count, or both.
func (c *cardPlan) target() {
	card, dev, bs := c.card, c.dev, c.bs
	afu := dev.AFUID()
	if afu == "" && bs != nil && c.pl.opts.Applied[c.chain.id] == c.digest {
		// A VM holds the port's VF, so the host cannot read what it
		// runs; the last apply loaded this very bitstream, and an
		// unknown AFU is no reason to take the card from the VM.
		afu = bs.AFUID
	}
	c.needProgram = bs != nil && afu != bs.AFUID
	c.vfChange = dev.NumVFs != card.VFs
	c.reset = c.needProgram || c.vfChange
	switch {
	case c.needProgram && c.vfChange:
		c.resetWhy = fmt.Sprintf("%s is reprogrammed with %s and its VFs go from %d to %d", card.Slot, bs.Name, dev.NumVFs, card.VFs)
	case c.needProgram:
		c.resetWhy = fmt.Sprintf("%s is reprogrammed with %s", card.Slot, bs.Name)
	case c.vfChange:
		c.resetWhy = fmt.Sprintf("%s's VFs go from %d to %d", card.Slot, dev.NumVFs, card.VFs)
	}
}

// detaches takes functions from the VMs that should no longer hold them,
// or that must give them up while the card is reset. It returns the
// detaches the reset must wait for.
func (c *cardPlan) detaches() (blocking []string) {
	card, pl, v := c.card, c.pl, c.view
	c.wants = make([]want, 0, len(c.pair.Bindings))
	for _, b := range c.pair.Bindings {
		if b.VM != "" {
			c.wants = append(c.wants, want{b: b})
		}
	}
	for _, h := range c.pair.Holders {
		pl.managed++
		keep := -1
		for i := range c.wants {
			if c.wants[i].b.VM == h.VM.Name && c.wants[i].b.Function == h.Function {
				keep = i
			}
		}
		if keep >= 0 && !(c.reset && h.Live()) && !pendingAttach(h) {
			c.wants[keep].ok = true
			continue
		}
		if keep >= 0 && pendingAttach(h) {
			// In the definition, not yet in the running VM: the attach is
			// planned again, and waits for the restart or makes it.
			continue
		}
		obj := plans.AttachmentID(v.node.Name, card.Slot, h.Function.String(), h.VM.Name)
		d := c.change(plans.StepDetach, plans.ActionDetach, obj)
		d.Before = pl.val(plans.Value{VM: h.VM.Name, Running: h.VM.Running, Function: h.Function.String(), PCI: h.Hostdev.PCI})
		d.Disruptive = h.Live()
		if h.Live() && h.VM.RestartToChange {
			d.Restart = plans.RestartWait
		}
		fn := card.Slot + "/" + h.Function.String()
		var kind detachKind
		switch {
		case keep >= 0:
			kind = detachCycle
			d.Binding = c.wants[keep].b.Name
			d.Reason = fmt.Sprintf("%s; %s gets %s back afterwards", c.resetWhy, h.VM.Name, h.Function)
		case v.wanted[fn] != "":
			kind = detachReplace
			d.Reason = fmt.Sprintf("the repository gives %s/%s to %s", card.Slot, h.Function, v.wanted[fn])
		case v.boundVMs[h.VM.Name]:
			kind = detachReplace
			d.Reason = fmt.Sprintf("the repository gives %s other functions, not %s/%s", h.VM.Name, card.Slot, h.Function)
		default:
			kind = detachPrune
			d.Reason = fmt.Sprintf("no binding gives %s/%s to %s", card.Slot, h.Function, h.VM.Name)
		}
		block := c.reset && h.Live()
		c.detach = append(c.detach, d)
		c.kinds = append(c.kinds, kind)
		c.blocks = append(c.blocks, block)
		if block {
			blocking = append(blocking, d.ID)
		}
	}
	return blocking
}

// resetSteps turns VFs off, programs and turns VFs on, each after the
// one before and the first after the blocking detaches. It returns what
// the attaches wait for.
func (c *cardPlan) resetSteps(blocking []string) []string {
	card, dev, bs, pl := c.card, c.dev, c.bs, c.pl
	cid := c.chain.id
	last := blocking
	if c.reset && dev.NumVFs > 0 {
		s := c.change(plans.StepVFsOff, plans.ActionSetVFs, cid)
		s.Before, s.After = pl.val(plans.Value{VFs: pl.intp(dev.NumVFs)}), pl.val(plans.Value{VFs: pl.intp(0)})
		switch {
		case c.needProgram:
			s.Reason = "the PR region is programmed through the PF: VFs go off first"
		case card.VFs == 0:
			s.Reason = card.Slot + " wants no VFs"
		default:
			s.Reason = fmt.Sprintf("SR-IOV goes from %d to %d VFs through 0", dev.NumVFs, card.VFs)
		}
		s.DependsOn = last
		c.vfsOff = s
		last = []string{s.ID}
	}
	if c.needProgram {
		p := c.change(plans.StepProgram, plans.ActionProgram, cid)
		before := pl.val(plans.Value{AFUID: dev.AFUID()})
		if name, ok := pl.byAFU[dev.AFUID()]; ok && dev.AFUID() != "" {
			before.Bitstream = name
		}
		p.Before = before
		p.After = pl.val(plans.Value{Bitstream: bs.Name, SHA256: bs.SHA256, AFUID: bs.AFUID})
		p.Reason = card.Slot + " runs AFU " + short(dev.AFUID()) + "; " + bindingNames(c.pair.Bindings) + " " + bs.Name + " (AFU " + short(bs.AFUID) + ")"
		p.DependsOn = last
		if h := c.interfaceHold(len(blocking) > 0); h != nil {
			p.Held = h
			c.resetHold = h
		}
		c.program = p
		last = []string{p.ID}
	}
	if c.reset && card.VFs > 0 {
		s := c.change(plans.StepVFsOn, plans.ActionSetVFs, cid)
		from := dev.NumVFs
		if c.vfsOff != nil {
			from = 0
		}
		s.Before, s.After = pl.val(plans.Value{VFs: pl.intp(from)}), pl.val(plans.Value{VFs: pl.intp(card.VFs)})
		s.Reason = card.Slot + " wants " + strconv.Itoa(card.VFs) + " VF(s)"
		s.DependsOn = last
		c.vfsOn = s
		last = []string{s.ID}
	}
	return last
}

// interfaceHold holds the program of a bitstream built for another PR
// interface than the card's. The card's interface is what it reports, or,
// when a VM holds its PF and the host cannot read it, what the repository
// declares. When either side is unknown, the program is held if running
// VMs would lose the card first (disrupts): the interface is a
// precondition checked before the first disruption, never after it.
func (c *cardPlan) interfaceHold(disrupts bool) *plans.Hold {
	card, dev, bs := c.card, c.dev, c.bs
	ifc := dev.InterfaceID
	if ifc == "" {
		ifc = card.InterfaceID
	}
	switch {
	case ifc != "" && bs.InterfaceID != "" && ifc != bs.InterfaceID:
		return &plans.Hold{Gate: plans.GateInterface, Why: fmt.Sprintf("the card's PR interface is %s, bitstream %s is built for %s; it is never programmed",
			ifc, bs.Name, bs.InterfaceID)}
	case !disrupts:
		return nil // the agent checks at programming time; nothing is lost
	case ifc == "":
		return &plans.Hold{Gate: plans.GateInterface, Why: fmt.Sprintf("the card's PR interface is unknown (a VM holds its PF, and its agent has not read it): "+
			"cannot check that %s fits before taking the card from its VM; declare interfaceID on card %s", bs.Name, card.Slot)}
	case bs.InterfaceID == "":
		return &plans.Hold{Gate: plans.GateInterface, Why: fmt.Sprintf("bitstream %s declares no PR interface: cannot check that it fits card %s "+
			"before taking the card from its VM; declare its interfaceID", bs.Name, card.Slot)}
	}
	return nil
}

// attaches gives each binding's function to its VM, after the reset (last)
// and after the function has left the VM that held it.
func (c *cardPlan) attaches(last []string) {
	card, dev, pl, v := c.card, c.dev, c.pl, c.view
	for _, w := range c.wants {
		if w.ok {
			continue
		}
		b := w.b
		obj := plans.AttachmentID(v.node.Name, card.Slot, b.Function.String(), b.VM)
		a := c.change(plans.StepAttach, plans.ActionAttach, obj)
		a.Binding = b.Name
		pci := ""
		if c.vfsOn == nil || b.Function.PF {
			pci = functionPCI(dev, b.Function)
		}
		vm, ok := v.vms[b.VM]
		a.After = pl.val(plans.Value{VM: b.VM, Function: b.Function.String(), PCI: pci})
		if ok {
			a.After.Running = vm.Running
		}
		deps := last
		// The same function taken from another VM, or this VM leaving
		// another function of the node, must happen first.
		for i, d := range c.detach {
			if d.Before.Function == b.Function.String() && c.kinds[i] != detachCycle && !slices.Contains(deps, d.ID) {
				deps = append(append([]string(nil), deps...), d.ID)
			}
		}
		a.DependsOn = deps
		switch {
		case !ok:
			a.Reason = "binding " + b.Name
			a.After.Note = "VM not found"
			a.Held = &plans.Hold{Gate: plans.GateMissing, Why: fmt.Sprintf("VM %s is not on node %s", b.VM, v.node.Name)}
		case vm.Running && vm.RestartToChange:
			a.Restart = plans.RestartWait
			a.Reason = "binding " + b.Name + "; " + b.VM + " is running where devices cannot be attached live: its definition now, the running VM at its restart"
		case vm.Running:
			a.Reason = "binding " + b.Name + "; " + b.VM + " is running: attached live and in its definition"
		default:
			a.Reason = "binding " + b.Name + "; " + b.VM + " is stopped: its definition only"
		}
		if pci == "" && !b.Function.PF {
			a.Reason += "; the address of " + b.Function.String() + " is known once VFs are on"
		}
		c.attach = append(c.attach, a)
	}
}

// noop is the card's change when it matches the repository.
func (c *cardPlan) noop() *plans.Change {
	n := c.change(plans.StepNoop, plans.ActionNoop, c.chain.id)
	v := c.pl.val(plans.Value{AFUID: c.dev.AFUID(), VFs: c.pl.intp(c.dev.NumVFs)})
	if c.bs != nil {
		v.Bitstream = c.bs.Name
	}
	n.Before, n.After = v, v
	return n
}

// drift handles a card whose desired state is what was last applied, yet
// whose live state differs. In report mode it returns the chain that
// replaces the card's changes with one report; in correct mode it marks
// the changes as drift and returns nil, as it does when there is none.
func (c *cardPlan) drift() *chain {
	cid := c.chain.id
	if applied, ok := c.pl.opts.Applied[cid]; !ok || applied != c.digest {
		return nil
	}
	if c.pl.policy.Drift() == spec.DriftCorrect {
		for _, x := range c.all() {
			x.Drift = true
			x.Reason = "drift: " + x.Reason
		}
		return nil
	}
	pl, dev, card := c.pl, c.dev, c.card
	r := c.change(plans.StepReport, plans.ActionReport, cid)
	r.ID = cid + ":drift"
	r.Drift = true
	r.Before = pl.val(plans.Value{AFUID: dev.AFUID(), VFs: pl.intp(dev.NumVFs)})
	r.After = pl.val(plans.Value{VFs: pl.intp(card.VFs)})
	if c.bs != nil {
		r.After.Bitstream, r.After.AFUID = c.bs.Name, c.bs.AFUID
	}
	r.Reason = "drift since the last apply: " + card.Slot + " " + driftSummary(c.chain, dev, card) + "; drift mode is report, so it is not corrected"
	return &chain{id: cid, node: c.view.node.Name, other: []*plans.Change{r}}
}

// driftSummary says in words how a card differs from what was applied.
func driftSummary(ch *chain, dev *fpga.Device, card *spec.FPGA) string {
	var parts []string
	cycled := map[string]bool{}
	for i, d := range ch.detach {
		if ch.kinds[i] == detachCycle {
			cycled[d.Before.VM+"/"+d.Before.Function] = true
			continue
		}
		parts = append(parts, fmt.Sprintf("%s holds %s, which no binding gives it", d.Before.VM, d.Before.Function))
	}
	if ch.program != nil {
		parts = append(parts, fmt.Sprintf("runs AFU %s instead of %s", short(ch.program.Before.AFUID), ch.program.After.Bitstream))
	}
	if dev.NumVFs != card.VFs {
		parts = append(parts, fmt.Sprintf("has %d VF(s) instead of %d", dev.NumVFs, card.VFs))
	}
	for _, a := range ch.attach {
		if !cycled[a.After.VM+"/"+a.After.Function] {
			parts = append(parts, fmt.Sprintf("%s lacks %s", a.After.VM, a.After.Function))
		}
	}
	return strings.Join(parts, ", ")
}

// bindingNames is "binding a wants" or "bindings a, b want".
func bindingNames(bs []*spec.Binding) string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	if len(names) == 1 {
		return "binding " + names[0] + " wants"
	}
	return "bindings " + strings.Join(names, ", ") + " want"
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	if id == "" {
		return "(unknown)"
	}
	return id
}
