package libvirt

import (
	"fmt"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// pciAddr is a PCI function's address.
type pciAddr struct{ domain, bus, slot, function uint }

// parsePCI parses "dddd:bb:ss.f" (hex; the form spec and sysfs use), or
// "bb:ss.f" in PCI domain 0.
func parsePCI(s string) (pciAddr, error) {
	var a pciAddr
	bad := fmt.Errorf("PCI address %q: want dddd:bb:ss.f", s)
	full := s
	if strings.Count(s, ":") == 1 {
		full = "0000:" + s
	}
	dom, rest, ok1 := strings.Cut(full, ":")
	bus, rest, ok2 := strings.Cut(rest, ":")
	slot, fn, ok3 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || !ok3 || len(dom) != 4 || len(bus) != 2 || len(slot) != 2 || len(fn) != 1 {
		return a, bad
	}
	for _, f := range []struct {
		s    string
		bits int
		v    *uint
	}{{dom, 16, &a.domain}, {bus, 8, &a.bus}, {slot, 5, &a.slot}, {fn, 3, &a.function}} {
		n, err := strconv.ParseUint(f.s, 16, f.bits)
		if err != nil {
			return pciAddr{}, bad
		}
		*f.v = uint(n)
	}
	return a, nil
}

func (a pciAddr) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.domain, a.bus, a.slot, a.function)
}

// nodeDevName is libvirt's node device name for the function.
func (a pciAddr) nodeDevName() string {
	return fmt.Sprintf("pci_%04x_%02x_%02x_%x", a.domain, a.bus, a.slot, a.function)
}

// hostdev is the managed PCI hostdev that gives the function to a domain.
// managed='yes' lets libvirt move the function to vfio-pci on attach and
// back to its host driver on detach.
func (a pciAddr) hostdev() libvirtxml.DomainHostdev {
	d, b, s, f := a.domain, a.bus, a.slot, a.function
	return libvirtxml.DomainHostdev{
		Managed: "yes",
		SubsysPCI: &libvirtxml.DomainHostdevSubsysPCI{
			Source: &libvirtxml.DomainHostdevSubsysPCISource{
				Address: &libvirtxml.DomainAddressPCI{Domain: &d, Bus: &b, Slot: &s, Function: &f},
			},
		},
	}
}

func (a pciAddr) hostdevXML() (string, error) {
	h := a.hostdev()
	return h.Marshal()
}

// hostdevAddr returns the source address of a PCI subsystem hostdev.
func hostdevAddr(h *libvirtxml.DomainHostdev) (pciAddr, bool) {
	if h.SubsysPCI == nil || h.SubsysPCI.Source == nil || h.SubsysPCI.Source.Address == nil {
		return pciAddr{}, false
	}
	x := h.SubsysPCI.Source.Address
	if x.Bus == nil || x.Slot == nil || x.Function == nil {
		return pciAddr{}, false
	}
	a := pciAddr{bus: *x.Bus, slot: *x.Slot, function: *x.Function}
	if x.Domain != nil {
		a.domain = *x.Domain
	}
	return a, true
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
