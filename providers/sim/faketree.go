package sim

import (
	"fmt"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
)

// FakeTreeHost is the default HostFactory: a fake sysfs tree in dir
// (fpgatest), read by the real sysfs host, changed by the fake programmer.
// An existing tree is reopened as it was left.
func FakeTreeHost(dir string, cards []Card, fresh bool) (fpga.Host, error) {
	if !fresh {
		t, err := fpgatest.Open(dir)
		if err != nil {
			return nil, err
		}
		return treeHost{t.Host(), t}, nil
	}
	t := fpgatest.NewTree(dir)
	for _, c := range cards {
		err := t.AddCard(fpgatest.Card{
			PCI: c.PCI, Board: c.Board, Stack: c.Stack,
			InterfaceID: c.InterfaceID, AFUID: c.AFUID, TotalVFs: c.TotalVFs,
		})
		if err != nil {
			return nil, err
		}
	}
	return treeHost{t.Host(), t}, nil
}

// treeHost is a fake tree's host that also moves functions between the
// host driver and vfio-pci, as libvirt does for managed hostdevs.
type treeHost struct {
	*fpga.SysfsHost
	tree *fpgatest.Tree
}

// BindFunction hands the function to vfio-pci (toVM) or back to the host
// driver.
// devs is the node's discovered cards.
func (h treeHost) BindFunction(devs []fpga.Device, pci string, toVM bool) error {
	driver := ""
	if toVM {
		driver = "vfio-pci"
	}
	for _, d := range devs {
		if d.PCI == pci {
			return h.tree.BindPF(d.PCI, driver)
		}
		for _, vf := range d.VFs {
			if vf.PCI == pci {
				return h.tree.BindVF(d.PCI, vf.Index, driver)
			}
		}
	}
	return fmt.Errorf("no FPGA function at %s", pci)
}

// functionBinder is a host whose functions move between drivers.
type functionBinder interface {
	BindFunction(devs []fpga.Device, pci string, toVM bool) error
}
