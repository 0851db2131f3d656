package dashboard

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// CardState is how a card shows on the map. The set is closed.
type CardState string

const (
	// Converged: the card runs what the repository asks, held as asked.
	Converged CardState = "converged"
	// Changing: the run in flight, or the run planned, changes it.
	Changing CardState = "changing"
	// Held: a gate holds a change of it back, or a difference is only
	// reported (drift in report mode, a board that differs).
	Held CardState = "held"
	// Failed: a change of it failed, or was blocked by one that did.
	Failed CardState = "failed"
	// Unhealthy: the card reports a problem, or is not on its node.
	Unhealthy CardState = "unhealthy"
	// Unknown: its node could not be observed.
	Unknown CardState = "unknown"
)

// States lists the states in the order the page shows them.
var States = []CardState{Converged, Changing, Held, Failed, Unhealthy, Unknown}

// letter is a state's code in the map's data: one letter per card.
func (s CardState) letter() byte {
	switch s {
	case Converged:
		return 'c'
	case Changing:
		return 'g'
	case Held:
		return 'h'
	case Failed:
		return 'f'
	case Unhealthy:
		return 'u'
	}
	return 'k'
}

// Card is one card of the fleet view.
type Card struct {
	Slot, PCI string
	// Image is what the card runs: a bitstream's name, its AFU ID, or
	// "empty".
	Image         string
	VFs, TotalVFs int
	// Holders are the VMs that hold its functions: "vnf-a (vf0)".
	Holders []string
	// Why says why it is held, failed, unhealthy or unknown: the first
	// reason found.
	Why string

	unknown, unhealthy bool
	// weak is set when Why is a dependency's, which a root cause
	// replaces.
	weak bool
	// pending counts its runnable changes not yet ended, inFlight those
	// started, failed and held how many of its changes ended so.
	pending, inFlight, failed, held int
}

// State is the card's state.
func (c *Card) State() CardState {
	switch {
	case c.unknown:
		return Unknown
	case c.unhealthy:
		return Unhealthy
	case c.failed > 0:
		return Failed
	case c.pending > 0 || c.inFlight > 0:
		return Changing
	case c.held > 0:
		return Held
	}
	return Converged
}

func (c *Card) why(s string) {
	if c.Why == "" || c.weak {
		c.Why, c.weak = s, false
	}
}

// heldBy notes a hold: the gate that holds the card, rather than the
// changes that wait for it.
func (c *Card) heldBy(h *plans.Hold) {
	c.held++
	if h.Gate == plans.GateDependency {
		if c.Why == "" {
			c.Why, c.weak = "held by dependency: "+h.Why, true
		}
		return
	}
	c.why("held by " + string(h.Gate) + ": " + h.Why)
}

// Node is one node of the fleet view.
type Node struct {
	Name string
	// State is "ok" or "unknown", with the reason.
	State, Reason string
	Cards         []Card
}

// maxDrift bounds the drifted objects the view names.
const maxDrift = 200

// fleet is the view of the last plan and how its apply went: what the
// dashboard shows of the fleet. It holds a few hundred bytes per card,
// whatever the plan's size.
type fleet struct {
	Revision   string
	PlannedAt  time.Time
	Nodes      []Node
	Drift      []string
	DriftTotal int
	// cards finds a change's card: the index of its node and card.
	cards map[string][2]int
}

// view is the fleet view behind a lock, with a version that moves each
// time it changes.
type view struct {
	mu      sync.RWMutex
	f       *fleet
	version atomic.Uint64
}

// Planned builds the view of a run's plan: the fleet as observed, each
// card's changes pending.
func (v *view) Planned(desired *spec.Fleet, obs *observed.Fleet, p *plans.Plan) {
	f := build(desired, obs, p)
	v.mu.Lock()
	v.f = f
	v.mu.Unlock()
	v.version.Add(1)
}

// Started marks a change in flight.
func (v *view) Started(c *plans.Change) {
	v.update(c.ID, func(card *Card) { card.inFlight++ })
}

// Finished marks a change ended.
func (v *view) Finished(c *plans.Change, r plans.Result) {
	v.update(c.ID, func(card *Card) {
		if card.inFlight > 0 && r.Status != plans.StatusBlocked && r.Status != plans.StatusSkipped {
			card.inFlight--
		}
		card.pending--
		if r.Status.Done() {
			card.took(c)
		}
		switch r.Status {
		case plans.StatusFailed, plans.StatusBlocked:
			card.failed++
			card.why(r.Error)
		case plans.StatusPendingRestart, plans.StatusHeld:
			card.held++
			card.why(r.Error)
		}
	})
}

// Applied settles the view on the apply's results, nil when the apply was
// refused: a change the run did not end (it stopped, a window closed) is
// no longer pending.
func (v *view) Applied(p *plans.Plan, results []plans.Result) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.f == nil {
		return
	}
	for _, n := range v.f.Nodes {
		for i := range n.Cards {
			if c := &n.Cards[i]; !c.unknown && !c.unhealthy {
				c.pending, c.inFlight, c.failed, c.held, c.Why, c.weak = 0, 0, 0, 0, "", false
			}
		}
	}
	for i := range p.Changes {
		ch := &p.Changes[i]
		ref, ok := v.f.cards[ch.ID]
		if !ok {
			continue
		}
		card := &v.f.Nodes[ref[0]].Cards[ref[1]]
		if card.unknown || card.unhealthy {
			continue
		}
		r := plans.Result{Status: plans.StatusNotRun} // the apply was refused
		if i < len(results) {
			r = results[i]
		}
		switch {
		case ch.Held != nil:
			card.heldBy(ch.Held)
		case ch.Action == plans.ActionReport:
			card.held++
			card.why(ch.Reason)
		case r.Status == plans.StatusFailed || r.Status == plans.StatusBlocked:
			card.failed++
			card.why(r.Error)
		case r.Status == plans.StatusHeld || r.Status == plans.StatusPendingRestart:
			card.held++
			card.why(r.Error)
		case r.Status == plans.StatusNotRun && ch.Runnable():
			card.held++
			card.why("not started: the run stopped first")
		}
	}
	v.version.Add(1)
}

// took shows what a change that took effect did to the card.
func (c *Card) took(ch *plans.Change) {
	switch ch.Action {
	case plans.ActionProgram:
		if ch.After != nil && ch.After.Bitstream != "" {
			c.Image = ch.After.Bitstream
		}
	case plans.ActionSetVFs:
		if ch.After != nil && ch.After.VFs != nil {
			c.VFs = *ch.After.VFs
		}
	case plans.ActionAttach:
		if ch.After != nil {
			c.Holders = append(slices.Clone(c.Holders), ch.After.VM+" ("+ch.After.Function+")")
		}
	case plans.ActionDetach:
		if ch.Before != nil {
			gone := ch.Before.VM + " (" + ch.Before.Function + ")"
			c.Holders = slices.DeleteFunc(slices.Clone(c.Holders), func(h string) bool { return h == gone })
		}
	}
}

func (v *view) update(id string, fn func(*Card)) {
	v.mu.Lock()
	if v.f != nil {
		if ref, ok := v.f.cards[id]; ok {
			fn(&v.f.Nodes[ref[0]].Cards[ref[1]])
		}
	}
	v.mu.Unlock()
	v.version.Add(1)
}

// build makes the view of a plan.
func build(desired *spec.Fleet, obs *observed.Fleet, p *plans.Plan) *fleet {
	f := &fleet{Revision: p.Revision, PlannedAt: p.CreatedAt, cards: map[string][2]int{}}
	images := map[string]string{}
	for _, b := range desired.Bitstreams {
		images[b.AFUID] = b.Name
	}
	slots := map[string]int{} // "node/slot" -> card index
	for _, n := range desired.Nodes {
		vn := Node{Name: n.Name, State: string(observed.NodeOK)}
		on, seen := obs.Node(n.Name)
		if !seen || on.State != observed.NodeOK {
			vn.State, vn.Reason = string(observed.NodeUnknown), "not observed"
			if seen && on.Reason != "" {
				vn.Reason = on.Reason
			}
		}
		holders := map[string]string{} // PCI -> VM
		if seen {
			for _, vm := range on.VMs {
				for _, h := range vm.Hostdevs {
					holders[h.PCI] = vm.Name
				}
			}
		}
		for ci, c := range n.FPGAs {
			slots[n.Name+"/"+c.Slot] = ci
			card := Card{Slot: c.Slot, PCI: c.PCI, Image: "-"}
			switch {
			case vn.State != string(observed.NodeOK):
				card.unknown = true
				card.why(vn.Reason)
			default:
				dev := device(on, c.PCI)
				if dev == nil {
					card.unhealthy = true
					card.why("not found on the node")
					break
				}
				if !dev.Health.OK() {
					card.unhealthy = true
					card.why("unhealthy: " + strings.Join(dev.Health.Problems, "; "))
				}
				card.Image = image(dev.AFUID(), images)
				card.VFs, card.TotalVFs = dev.NumVFs, dev.TotalVFs
				if vm, ok := holders[dev.PCI]; ok {
					card.Holders = append(card.Holders, vm+" (pf)")
				}
				for _, vf := range dev.VFs {
					if vm, ok := holders[vf.PCI]; ok {
						card.Holders = append(card.Holders, fmt.Sprintf("%s (vf%d)", vm, vf.Index))
					}
				}
			}
			vn.Cards = append(vn.Cards, card)
		}
		f.Nodes = append(f.Nodes, vn)
	}
	nodes := map[string]int{}
	for i, n := range f.Nodes {
		nodes[n.Name] = i
	}
	drifted := map[string]bool{}
	for i := range p.Changes {
		ch := &p.Changes[i]
		if ch.Drift {
			obj, _, _ := strings.Cut(ch.ID, ":")
			if !drifted[obj] {
				drifted[obj] = true
				f.DriftTotal++
				if len(f.Drift) < maxDrift {
					f.Drift = append(f.Drift, obj)
				}
			}
		}
		ni, ok := nodes[ch.Node]
		if !ok || ch.Card == "" || ch.Action == plans.ActionNoop {
			continue
		}
		ci, ok := slots[ch.Node+"/"+ch.Card]
		if !ok {
			continue
		}
		f.cards[ch.ID] = [2]int{ni, ci}
		card := &f.Nodes[ni].Cards[ci]
		if card.unknown || card.unhealthy {
			continue
		}
		switch {
		case ch.Held != nil:
			card.heldBy(ch.Held)
		case ch.Action == plans.ActionReport:
			card.held++
			card.why(ch.Reason)
		case ch.Runnable():
			card.pending++
		}
	}
	return f
}

// device finds the observed card with this PF address.
func device(n *observed.Node, pci string) *fpga.Device {
	for i := range n.FPGAs {
		if n.FPGAs[i].PCI == pci {
			return &n.FPGAs[i]
		}
	}
	return nil
}

// image names what a card runs.
func image(afu string, names map[string]string) string {
	switch name, ok := names[afu]; {
	case ok:
		return name
	case afu == "":
		return "empty"
	case len(afu) > 8:
		return "AFU " + afu[:8] + "…"
	}
	return "AFU " + afu
}
