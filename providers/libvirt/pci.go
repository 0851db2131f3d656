package libvirt

import (
	"fmt"

	"libvirt.org/go/libvirtxml"

	"github.com/fpgaops/fpgaops/spec"
)

// nodeDevName is libvirt's node device name for the function.
func nodeDevName(a spec.PCIAddress) string {
	return fmt.Sprintf("pci_%04x_%02x_%02x_%x", a.Domain, a.Bus, a.Slot, a.Function)
}

// hostdev is the managed PCI hostdev that gives the function to a domain.
// managed='yes' lets libvirt move the function to vfio-pci on attach and
// back to its host driver on detach.
func hostdev(a spec.PCIAddress) libvirtxml.DomainHostdev {
	d, b, s, f := a.Domain, a.Bus, a.Slot, a.Function
	return libvirtxml.DomainHostdev{
		Managed: "yes",
		SubsysPCI: &libvirtxml.DomainHostdevSubsysPCI{
			Source: &libvirtxml.DomainHostdevSubsysPCISource{
				Address: &libvirtxml.DomainAddressPCI{Domain: &d, Bus: &b, Slot: &s, Function: &f},
			},
		},
	}
}

func hostdevXML(a spec.PCIAddress) (string, error) {
	h := hostdev(a)
	return h.Marshal()
}

// pciAddress makes an address from libvirt's fields; a missing domain is 0.
func pciAddress(domain, bus, slot, function *uint) (spec.PCIAddress, bool) {
	if bus == nil || slot == nil || function == nil {
		return spec.PCIAddress{}, false
	}
	a := spec.PCIAddress{Bus: *bus, Slot: *slot, Function: *function}
	if domain != nil {
		a.Domain = *domain
	}
	return a, true
}

// hostdevAddr returns the source address of a PCI subsystem hostdev.
func hostdevAddr(h *libvirtxml.DomainHostdev) (spec.PCIAddress, bool) {
	if h.SubsysPCI == nil || h.SubsysPCI.Source == nil || h.SubsysPCI.Source.Address == nil {
		return spec.PCIAddress{}, false
	}
	x := h.SubsysPCI.Source.Address
	return pciAddress(x.Domain, x.Bus, x.Slot, x.Function)
}

// pciHostdevs lists the PCI functions a domain definition holds.
func pciHostdevs(def *libvirtxml.Domain) []string {
	if def.Devices == nil {
		return nil
	}
	var out []string
	for i := range def.Devices.Hostdevs {
		if a, ok := hostdevAddr(&def.Devices.Hostdevs[i]); ok {
			out = append(out, a.String())
		}
	}
	return out
}
