// Package fpga is how fpgaops sees and changes FPGA hardware on a Linux
// host through the OPAE driver layer: the upstream DFL driver and Intel's
// out-of-tree intel-fpga driver. Every path is read below a root directory
// ("/" in production, a fake tree in tests); nothing outside it is touched.
package fpga

import "fmt"

// Stack is the kernel driver stack that exposes a card.
type Stack string

const (
	StackDFL       Stack = "dfl"
	StackIntelFPGA Stack = "intel-fpga"
)

// Device is one FPGA card as the host sees it, keyed by its PF's PCI
// address.
type Device struct {
	// PCI is the physical function's address, "0000:5e:00.0".
	PCI      string `json:"pci"`
	Vendor   uint16 `json:"vendor"`
	DeviceID uint16 `json:"device"`
	// Board is the spec board name ("pac-n3000"), or "" if unknown.
	Board    string `json:"board,omitempty"`
	NUMANode int    `json:"numaNode"`
	Stack    Stack  `json:"stack"`
	// Driver is the kernel driver bound to the PF ("dfl-pci",
	// "intel-fpga-pci", "vfio-pci"), or "" if none.
	Driver string `json:"driver,omitempty"`
	// InterfaceID is the PR interface ID (compat_id / pr/interface_id),
	// normalised.
	InterfaceID string `json:"interfaceID,omitempty"`
	// BitstreamID is the FME's bitstream_id; BBSVersion derives from it.
	BitstreamID uint64 `json:"bitstreamID"`
	BBSVersion  string `json:"bbsVersion,omitempty"`
	// NumVFs and TotalVFs are sriov_numvfs and sriov_totalvfs.
	NumVFs   int        `json:"numVFs"`
	TotalVFs int        `json:"totalVFs"`
	VFs      []Function `json:"vfs,omitempty"`
	Ports    []Port     `json:"ports"`
	Health   Health     `json:"health"`
}

// Function is a virtual function of a card.
type Function struct {
	Index  int    `json:"index"`
	PCI    string `json:"pci"`
	Driver string `json:"driver,omitempty"`
}

// Port is an AFU port: the PR region a bitstream is loaded into.
type Port struct {
	ID int `json:"id"`
	// AFUID is the loaded function's ID, normalised; "" when unknown, such
	// as when the port sits on a VF the host does not hold.
	AFUID string `json:"afuID,omitempty"`
	// OnVF is true when the port is assigned to a VF.
	OnVF bool `json:"onVF,omitempty"`
	// Dev is the port's device node relative to the root
	// ("dev/dfl-port.0"), if present.
	Dev string `json:"dev,omitempty"`
}

// AFUID is the ID of what port 0 runs, the region fpgaops programs.
func (d *Device) AFUID() string {
	for _, p := range d.Ports {
		if p.ID == 0 {
			return p.AFUID
		}
	}
	return ""
}

// Lookup is the card of devs whose PF is at pci.
func Lookup(devs []Device, pci string) (*Device, error) {
	for i := range devs {
		if devs[i].PCI == pci {
			return &devs[i], nil
		}
	}
	return nil, fmt.Errorf("no card at %s", pci)
}
