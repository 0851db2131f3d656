package openstack

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fpgaops/fpgaops/spec"
)

// How Cyborg sees a node and its cards. Each fact is from openstack/cyborg:
//
//   - The Intel FPGA driver (cyborg/accelerator/drivers/fpga/intel/
//     sysinfo.py) finds cards by the PCI ID 8086:09c4 (the PAC Arria 10)
//     and under /sys/class/fpga (the out-of-tree intel-fpga driver). The
//     D5005 and the N3000 run the kernel's DFL driver (/sys/class/
//     fpga_region): Cyborg reports no device, deployable or resource
//     provider for them, and no board trait.
//   - It names a card's deployable, and the conductor its resource
//     provider, "<host>_<bdf>", host being what socket.gethostname()
//     returns on the node; with SR-IOV on, bdf is a VF's (the last VF's)
//     and the VFs are the attach handles.
//   - The conductor finds the compute node's provider, the parent of the
//     cards', by the agent's configured host name (CONF.host; recent
//     agents ask for [agent] resource_provider_name first), which need
//     not be what the machine calls itself.

// boardTraits are the boards Cyborg exposes, with the board trait its
// Intel driver reports (CUSTOM_FPGA_INTEL_<PRODUCT_MAP>).
var boardTraits = map[spec.Board]string{
	spec.BoardPACA10: "CUSTOM_FPGA_INTEL_PAC_ARRIA10",
}

// sysinfoPy is where Cyborg's Intel driver decides what it exposes: the
// reason a plan gives for a board it cannot manage.
const sysinfoPy = "openstack/cyborg cyborg/accelerator/drivers/fpga/intel/sysinfo.py"

// BoardTrait is the board trait Cyborg reports for a card model, "" for a
// board Cyborg does not expose.
func BoardTrait(b spec.Board) string { return boardTraits[b] }

// unsupportedBoard says why a card of a board Cyborg does not expose
// cannot be managed through OpenStack, or "" if it can.
func unsupportedBoard(n *spec.Node, f *spec.FPGA) string {
	if BoardTrait(f.Board) != "" {
		return ""
	}
	id := "an unknown PCI ID"
	if info, ok := spec.LookupBoard(f.Board); ok {
		id = fmt.Sprintf("PCI ID %04x:%04x", info.Vendor, info.PFDevice)
	}
	return fmt.Sprintf("node %s fpga %s: board %s (%s) cannot be managed through OpenStack: "+
		"Cyborg's Intel FPGA driver exposes only the PAC Arria 10 (8086:09c4) and cards under /sys/class/fpga, "+
		"so this DFL card gets no deployable and no resource provider to schedule or program (%s)",
		n.Name, f.Slot, f.Board, id, sysinfoPy)
}

// RootProvider is the name of the node's compute resource provider in
// Placement: its resourceProvider, else its hostname.
func RootProvider(n *spec.Node) string {
	if n.ResourceProvider != "" {
		return n.ResourceProvider
	}
	return n.Hostname
}

// DeviceHostname is the host name Cyborg names the node's deployables
// and card providers after: its deviceHostname, else its hostname.
func DeviceHostname(n *spec.Node) string {
	if n.DeviceHostname != "" {
		return n.DeviceHostname
	}
	return n.Hostname
}

// functions are the PCI addresses a card's provider may be named after:
// its PF, then its possible VFs. PAC cards place their VFs on the
// functions right after the PF's.
func functions(f *spec.FPGA) []string {
	out := []string{f.PCI}
	a, err := spec.ParsePCIAddress(f.PCI)
	if err != nil {
		return out
	}
	n := f.VFs
	if info, ok := spec.LookupBoard(f.Board); ok {
		n = max(n, info.MaxVFs)
	}
	routing := a.Bus<<8 | a.Slot<<3 | a.Function
	for i := range uint(n) {
		r := routing + 1 + i
		if r > 0xffff {
			break
		}
		out = append(out, spec.PCIAddress{Domain: a.Domain, Bus: r >> 8, Slot: r >> 3 & 0x1f, Function: r & 7}.String())
	}
	return out
}

// card finds the provider of a card, named after its PF or one of its VFs.
func (n *Node) card(f *spec.FPGA) *Card {
	if c := n.cardAt(f.PCI); c != nil {
		return c
	}
	for _, pci := range functions(f)[1:] {
		if c := n.cardAt(pci); c != nil {
			return c
		}
	}
	return nil
}

func (n *Node) cardAt(pci string) *Card {
	for i := range n.Cards {
		if n.Cards[i].PCI == pci {
			return &n.Cards[i]
		}
	}
	return nil
}

// The record of what fpgaops programmed. Cyborg's program action does not
// update the deployable's bitstream_id (only binding an ARQ does), and
// the attributes of a deployable are the driver's: the conductor deletes
// those its driver did not report on the next update. So after programming
// a card fpgaops sets, on the card's resource provider, the trait
// CUSTOM_FPGAOPS_SHA256_<digest> of the bitstream, and the function ID
// trait of its AFU as Cyborg's bind does. Cyborg adds and removes only its
// own traits, so the record stays with the card, in Placement, whichever
// controller reads it; the function ID the agent reads from the card
// tells when someone programmed it since.
const traitMarkPrefix = "CUSTOM_FPGAOPS_SHA256_"

// MarkTrait is the trait recording that fpgaops programmed the bitstream
// of this digest.
func MarkTrait(sha256 string) string { return traitMarkPrefix + strings.ToUpper(sha256) }

// running is what a card runs, as far as the cloud tells.
type running struct {
	// sha is the digest of what was last programmed, by fpgaops's record
	// or, without one, by the deployable's bitstream_id (set by a bind);
	// "" when unknown. bs is the fleet's bitstream of that digest, if any.
	sha, image string
	bs         *spec.Bitstream
	// afus are the function IDs Cyborg reports for the card.
	afus []string
	// other is set when Cyborg reports a function that is not the
	// recorded bitstream's: the card was programmed since.
	other bool
}

// running reads what the card runs: the record, checked against the
// function IDs Cyborg reports. A card without a function ID trait (a port
// a VM holds cannot be read on the host) is taken at its record.
func (p *planner) running(card *Card) running {
	var r running
	var marks []string
	for _, t := range card.Traits {
		if sum, ok := strings.CutPrefix(t, traitMarkPrefix); ok {
			marks = append(marks, strings.ToLower(sum))
		}
		if afu, ok := strings.CutPrefix(t, traitFunctionPrefix); ok {
			r.afus = append(r.afus, strings.ToLower(afu))
		}
	}
	switch {
	case len(marks) == 1:
		r.sha = marks[0]
	case len(marks) == 0 && card.Bitstream != "":
		r.image = card.Bitstream
		if im := p.imageByID[card.Bitstream]; im != nil {
			r.sha = im.SHA256
		}
	}
	if r.sha != "" {
		r.bs = p.bySHA[r.sha]
	}
	if r.bs != nil && r.bs.AFUID != "" && len(r.afus) > 0 && !slices.Contains(r.afus, r.bs.AFUID) {
		r.other = true
	}
	return r
}

// is reports whether the card runs bs by its record.
func (r running) is(bs *spec.Bitstream) bool { return r.sha != "" && r.sha == bs.SHA256 }

// String says what the card runs, for a reason.
func (r running) String() string {
	var what string
	switch {
	case r.bs != nil:
		what = r.bs.Name
	case r.sha != "":
		what = "sha256 " + short(r.sha)
	case r.image != "":
		what = "image " + r.image
	case len(r.afus) > 0:
		return "function " + strings.Join(r.afus, ",") + " (Cyborg reports)"
	default:
		what = "nothing fpgaops knows"
	}
	if r.other {
		what += ", though Cyborg reports function " + strings.Join(r.afus, ",")
	}
	return what
}
