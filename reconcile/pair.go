package reconcile

import (
	"sort"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// nodePair is a desired node matched with what was observed of it.
type nodePair struct {
	Node *spec.Node
	// Obs is nil when the observation has no entry for the node.
	Obs   *observed.Node
	Cards []cardPair
}

// Known reports whether the node was observed.
func (n *nodePair) Known() bool { return n.Obs != nil && n.Obs.State == observed.NodeOK }

// cardPair is a desired card matched by PCI address with the observed
// device, its bindings and the VMs that hold its functions now.
type cardPair struct {
	Card *spec.FPGA
	// Dev is nil when the node has no card at Card.PCI.
	Dev      *fpga.Device
	Bindings []*spec.Binding
	Holders  []holder
}

// holder is a VM holding one function of a card.
type holder struct {
	VM       *observed.VM
	Hostdev  observed.Hostdev
	Function spec.Function
}

// Live reports whether taking the function away disrupts a running VM.
func (h holder) Live() bool { return h.VM.Running && h.Hostdev.Live }

// pair matches desired to observed by key: nodes by name, cards by PCI
// address, bindings by node and slot, hostdevs by the function's PCI
// address. It is pure and does not modify its inputs. obs must be sorted
// (observed.Fleet.Sort). Observed cards and VMs no desired card refers to
// are left out: fpgaops does not manage them.
func pair(desired *spec.Fleet, obs *observed.Fleet) []nodePair {
	type slotKey struct{ node, slot string }
	bindings := make(map[slotKey][]*spec.Binding, len(desired.Bindings))
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		k := slotKey{b.Node, b.FPGA}
		bindings[k] = append(bindings[k], b)
	}
	out := make([]nodePair, len(desired.Nodes))
	for i := range desired.Nodes {
		n := &desired.Nodes[i]
		np := nodePair{Node: n}
		if o, ok := obs.Node(n.Name); ok {
			np.Obs = o
		}
		np.Cards = make([]cardPair, len(n.FPGAs))
		var devs map[string]*fpga.Device
		var fns map[string]fnRef
		if np.Known() {
			devs = make(map[string]*fpga.Device, len(np.Obs.FPGAs))
			fns = make(map[string]fnRef, 2*len(np.Obs.FPGAs))
			for d := range np.Obs.FPGAs {
				dev := &np.Obs.FPGAs[d]
				devs[dev.PCI] = dev
				fns[dev.PCI] = fnRef{dev.PCI, spec.PF}
				for _, vf := range dev.VFs {
					fns[vf.PCI] = fnRef{dev.PCI, spec.VF(vf.Index)}
				}
			}
		}
		cardAt := make(map[string]int, len(n.FPGAs))
		for c := range n.FPGAs {
			card := &n.FPGAs[c]
			cp := cardPair{Card: card, Dev: devs[card.PCI]}
			bs := bindings[slotKey{n.Name, card.Slot}]
			sort.Slice(bs, func(a, b int) bool { return bs[a].Name < bs[b].Name })
			cp.Bindings = bs
			np.Cards[c] = cp
			cardAt[card.PCI] = c
		}
		if np.Known() {
			for v := range np.Obs.VMs {
				vm := &np.Obs.VMs[v]
				for _, h := range vm.Hostdevs {
					ref, ok := fns[h.PCI]
					if !ok {
						continue
					}
					c, ok := cardAt[ref.card]
					if !ok {
						continue
					}
					np.Cards[c].Holders = append(np.Cards[c].Holders, holder{VM: vm, Hostdev: h, Function: ref.fn})
				}
			}
		}
		out[i] = np
	}
	return out
}

// fnRef names a function of an observed card.
type fnRef struct {
	card string
	fn   spec.Function
}

// functionPCI is the address of a function of an observed card, or "" for
// a VF that does not exist now.
func functionPCI(dev *fpga.Device, fn spec.Function) string {
	if fn.PF {
		return dev.PCI
	}
	for _, vf := range dev.VFs {
		if vf.Index == fn.VF {
			return vf.PCI
		}
	}
	return ""
}
