package libvirttest

import (
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"

	"libvirt.org/go/libvirtxml"

	"github.com/fpgaops/fpgaops/spec"
)

// Fleet is what one node's test driver holds: its domains and its PCI
// devices.
type Fleet struct {
	Domains []Domain
	Devices []PCIDevice
}

// Domain is a test domain.
type Domain struct {
	Name    string
	Running bool
	// Hostdevs are PCI addresses ("0000:5e:00.1") the domain holds as
	// managed PCI hostdevs.
	Hostdevs []string
}

// PCIDevice is a PCI node device. (The test driver keeps no bound
// kernel driver for node devices, so there is no field for one.)
type PCIDevice struct {
	// Address is "0000:5e:00.0".
	Address    string
	Vendor     uint16
	Product    uint16
	IOMMUGroup int
	NUMANode   int
	// PhysFn is the PF's address when this is a VF.
	PhysFn string
}

// The test driver's XML namespace; its runstate element sets a domain's
// initial state (5 is VIR_DOMAIN_SHUTOFF).
const testNS = "http://libvirt.org/schemas/domain/test/1.0"

type fleetDoc struct {
	XMLName xml.Name                `xml:"node"`
	Domains []testDomain            `xml:"domain"`
	Devices []libvirtxml.NodeDevice `xml:"device"`
}

type testDomain struct {
	Type     string                     `xml:"type,attr"`
	NS       string                     `xml:"xmlns:test,attr"`
	Name     string                     `xml:"name"`
	Memory   int                        `xml:"memory"`
	OSType   string                     `xml:"os>type"`
	Hostdevs []libvirtxml.DomainHostdev `xml:"devices>hostdev"`
	RunState int                        `xml:"test:runstate,omitempty"`
}

// XML renders the fleet as a test driver <node> document.
func (f Fleet) XML() ([]byte, error) {
	doc := fleetDoc{}
	for _, d := range f.Domains {
		td := testDomain{Type: "test", NS: testNS, Name: d.Name, Memory: 1048576, OSType: "hvm"}
		if !d.Running {
			td.RunState = 5
		}
		for _, h := range d.Hostdevs {
			a, err := spec.ParsePCIAddress(h)
			if err != nil {
				return nil, fmt.Errorf("domain %s: %w", d.Name, err)
			}
			td.Hostdevs = append(td.Hostdevs, libvirtxml.DomainHostdev{
				Managed: "yes",
				SubsysPCI: &libvirtxml.DomainHostdevSubsysPCI{
					Source: &libvirtxml.DomainHostdevSubsysPCISource{Address: domainAddress(a)},
				},
			})
		}
		doc.Domains = append(doc.Domains, td)
	}
	for _, p := range f.Devices {
		a, err := spec.ParsePCIAddress(p.Address)
		if err != nil {
			return nil, err
		}
		pc := &libvirtxml.NodeDevicePCICapability{
			Class:      "0x120000",
			Domain:     &a.Domain,
			Bus:        &a.Bus,
			Slot:       &a.Slot,
			Function:   &a.Function,
			Vendor:     libvirtxml.NodeDeviceIDName{ID: fmt.Sprintf("0x%04x", p.Vendor)},
			Product:    libvirtxml.NodeDeviceIDName{ID: fmt.Sprintf("0x%04x", p.Product)},
			IOMMUGroup: &libvirtxml.NodeDeviceIOMMUGroup{Number: p.IOMMUGroup, Address: []libvirtxml.NodeDevicePCIAddress{nodeAddress(a)}},
			NUMA:       &libvirtxml.NodeDeviceNUMA{Node: p.NUMANode},
		}
		if p.PhysFn != "" {
			pf, err := spec.ParsePCIAddress(p.PhysFn)
			if err != nil {
				return nil, fmt.Errorf("device %s: %w", p.Address, err)
			}
			pc.Capabilities = append(pc.Capabilities, libvirtxml.NodeDevicePCISubCapability{
				PhysFunction: &libvirtxml.NodeDevicePCIPhysFunctionCapability{Address: nodeAddress(pf)},
			})
		}
		nd := libvirtxml.NodeDevice{
			Name:       nodeDevName(a),
			Parent:     "computer",
			Capability: libvirtxml.NodeDeviceCapability{PCI: pc},
		}
		doc.Devices = append(doc.Devices, nd)
	}
	return xml.MarshalIndent(doc, "", "  ")
}

// WriteFleet writes the fleet into the daemon's directory under name
// (".xml" is added) and returns the test driver URI that serves it.
func (d *Daemon) WriteFleet(name string, f Fleet) (string, error) {
	b, err := f.XML()
	if err != nil {
		return "", err
	}
	p := filepath.Join(d.Dir, name+".xml")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", err
	}
	return "test://" + filepath.ToSlash(p), nil
}

func domainAddress(a spec.PCIAddress) *libvirtxml.DomainAddressPCI {
	return &libvirtxml.DomainAddressPCI{Domain: &a.Domain, Bus: &a.Bus, Slot: &a.Slot, Function: &a.Function}
}

func nodeAddress(a spec.PCIAddress) libvirtxml.NodeDevicePCIAddress {
	return libvirtxml.NodeDevicePCIAddress{Domain: &a.Domain, Bus: &a.Bus, Slot: &a.Slot, Function: &a.Function}
}

func nodeDevName(a spec.PCIAddress) string {
	return fmt.Sprintf("pci_%04x_%02x_%02x_%x", a.Domain, a.Bus, a.Slot, a.Function)
}
