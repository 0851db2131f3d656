// Package adopt turns a running fleet into desired state, for `fpgaops
// import`: from an observation of the nodes a repository names, it makes
// the Binding documents of the functions VMs hold now, each naming the
// Bitstream document whose afuID the card runs, and a stub Bitstream to
// fill in for an AFU no document names. It reads an observation and
// writes YAML; it neither observes nor changes the fleet, and it leaves
// alone what the repository already declares.
package adopt

import (
	"fmt"
	"slices"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// Result is what an observation adopts.
type Result struct {
	// Bindings are the new bindings, in node, card and function order.
	Bindings []spec.Binding
	// Stubs are the bitstreams to fill in, by AFU ID.
	Stubs []Stub
	// Notes say what was not adopted and why, one line each, in node
	// order.
	Notes []string
}

// Stub is a Bitstream document to fill in: no document of the repository
// names the AFU that cards run.
type Stub struct {
	Name  string
	AFUID string
	// InterfaceID is the PR interface of the first card running it.
	InterfaceID string
	// Cards are the cards that run it, as canonical IDs.
	Cards []string
}

// StubPrefix starts every stub's name, so that a validate error about it
// says what to do.
const StubPrefix = "fill-in-afu-"

// held is a function of a managed card that a VM holds.
type held struct {
	card *spec.FPGA
	dev  *fpga.Device
	fn   spec.Function
	vm   *observed.VM
}

// Adopt makes the bindings for what VMs hold on the cards desired names,
// from obs. Functions a binding of desired already names are left alone.
func Adopt(desired *spec.Fleet, obs *observed.Fleet) *Result {
	r := &Result{}
	declared := map[string]*spec.Binding{}
	names := map[string]bool{}
	cards := map[string]bool{}
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		declared[functionKey(b.Node, b.FPGA, b.Function)] = b
		names[b.Name] = true
		cards[plans.CardID(b.Node, b.FPGA)] = true
	}
	stubs := map[string]*Stub{}
	for i := range desired.Nodes {
		n := &desired.Nodes[i]
		on, ok := obs.Node(n.Name)
		switch {
		case !ok:
			r.note("node %s: not in the observation; nothing adopted", n.Name)
			continue
		case on.State != observed.NodeOK:
			r.note("node %s: unknown (%s); nothing adopted", n.Name, on.Reason)
			continue
		}
		for _, h := range heldFunctions(n, on, r) {
			card := plans.CardID(n.Name, h.card.Slot)
			if b, ok := declared[functionKey(n.Name, h.card.Slot, h.fn)]; ok {
				if b.VM != h.vm.Name {
					r.note("%s %s: held by VM %s, but binding %s gives it to %s: left as declared", card, h.fn, h.vm.Name, b.Name, vmOrNone(b.VM))
				}
				continue
			}
			afu := h.dev.AFUID()
			if afu == "" {
				r.note("%s %s: held by VM %s, but what the card runs is unknown (the host cannot read it and its agent does not recall it): write its binding by hand", card, h.fn, h.vm.Name)
				continue
			}
			bs := matchBitstream(desired, afu, h.dev.InterfaceID)
			if bs == "" {
				s := stubs[afu]
				if s == nil {
					s = &Stub{Name: StubPrefix + afu, AFUID: afu, InterfaceID: h.dev.InterfaceID}
					stubs[afu] = s
				}
				if !slices.Contains(s.Cards, card) {
					s.Cards = append(s.Cards, card)
				}
				bs = s.Name
			}
			b := spec.Binding{Name: uniqueName(names, n.Name+"-"+h.card.Slot+"-"+h.fn.String()), Node: n.Name, FPGA: h.card.Slot, Function: h.fn, VM: h.vm.Name, Bitstream: bs}
			names[b.Name] = true
			cards[card] = true
			r.Bindings = append(r.Bindings, b)
		}
		r.noteIdle(n, on, cards)
	}
	for _, afu := range sortedKeys(stubs) {
		r.Stubs = append(r.Stubs, *stubs[afu])
	}
	return r
}

// functionAt is a function of a card and its PCI address.
type functionAt struct {
	fn  spec.Function
	pci string
}

// heldFunctions lists the functions of the node's managed cards that VMs
// hold, in card and function order. A function two VMs hold goes to the
// one that holds it live, else to the first by name; the other is noted.
func heldFunctions(n *spec.Node, on *observed.Node, r *Result) []held {
	var out []held
	for i := range n.FPGAs {
		c := &n.FPGAs[i]
		dev := deviceAt(on, c.PCI)
		if dev == nil {
			r.note("%s: no card at %s on the node; nothing adopted", plans.CardID(n.Name, c.Slot), c.PCI)
			continue
		}
		fns := []functionAt{{spec.PF, dev.PCI}}
		for _, vf := range dev.VFs {
			fns = append(fns, functionAt{spec.VF(vf.Index), vf.PCI})
		}
		for _, f := range fns {
			var holder *observed.VM
			for j := range on.VMs {
				vm := &on.VMs[j]
				if !vm.Holds(f.pci) {
					continue
				}
				switch {
				case holder == nil:
					holder = vm
				case holdsLive(vm, f.pci) && !holdsLive(holder, f.pci):
					r.note("%s %s: held by VMs %s and %s; adopted for %s, which holds it live", plans.CardID(n.Name, c.Slot), f.fn, holder.Name, vm.Name, vm.Name)
					holder = vm
				default:
					r.note("%s %s: held by VMs %s and %s; adopted for %s", plans.CardID(n.Name, c.Slot), f.fn, holder.Name, vm.Name, holder.Name)
				}
			}
			if holder != nil {
				out = append(out, held{card: c, dev: dev, fn: f.fn, vm: holder})
			}
		}
	}
	return out
}

// noteIdle says which programmed cards no binding covers: no VM holds
// them, so import writes nothing, but a binding without a VM would keep
// them programmed.
func (r *Result) noteIdle(n *spec.Node, on *observed.Node, bound map[string]bool) {
	for i := range n.FPGAs {
		c := &n.FPGAs[i]
		dev := deviceAt(on, c.PCI)
		if dev == nil || dev.AFUID() == "" || bound[plans.CardID(n.Name, c.Slot)] {
			continue
		}
		r.note("%s: runs AFU %s and no VM holds it: not adopted (a binding without a vm keeps a card programmed)", plans.CardID(n.Name, c.Slot), dev.AFUID())
	}
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// matchBitstream names the bitstream that loads afu, preferring one built
// for the card's PR interface; "" when none does.
func matchBitstream(desired *spec.Fleet, afu, iface string) string {
	found := ""
	for _, b := range desired.Bitstreams {
		if b.AFUID != afu {
			continue
		}
		if b.InterfaceID == iface || iface == "" {
			return b.Name
		}
		if found == "" {
			found = b.Name
		}
	}
	return found
}

func deviceAt(on *observed.Node, pci string) *fpga.Device {
	for i := range on.FPGAs {
		if on.FPGAs[i].PCI == pci {
			return &on.FPGAs[i]
		}
	}
	return nil
}

func holdsLive(vm *observed.VM, pci string) bool {
	for _, h := range vm.Hostdevs {
		if h.PCI == pci && h.Live {
			return true
		}
	}
	return false
}

func functionKey(node, slot string, fn spec.Function) string {
	return node + "\x00" + slot + "\x00" + fn.String()
}

// uniqueName is base, or base with the first free suffix "-2", "-3"...
func uniqueName(taken map[string]bool, base string) string {
	name := base
	for i := 2; taken[name]; i++ {
		name = fmt.Sprintf("%s-%d", base, i)
	}
	return name
}

func vmOrNone(vm string) string {
	if vm == "" {
		return "no VM"
	}
	return vm
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
