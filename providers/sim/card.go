package sim

import (
	"errors"
	"fmt"
	"strconv"
	"sync"
	"syscall"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/spec"
)

// driverVFIO is the driver a function is bound to while a VM holds it.
const driverVFIO = "vfio-pci"

// emptyAFU is what port 0 reads after a PR that failed halfway and left
// the region empty.
const emptyAFU = "00000000000000000000000000000000"

// card is one simulated FPGA card: the state its hardware and drivers
// hold, in memory. It renders itself the way the sysfs host code reads a
// real card (fpga.SysfsHost over /sys), and changes the way the careful
// programmer and the kernel change one: PR only through the PF with its
// port assigned back, VFs only with the port released, nothing while a
// function is bound to vfio-pci. Its fields are guarded by the node's
// mutex; op serialises the changes to this card, which may take modelled
// time (a card programs one image at a time).
type card struct {
	op sync.Mutex

	pci   string
	board *board
	// iface is the PR interface ID, normalised.
	iface string
	// afu is what port 0 runs, normalised.
	afu    string
	numVFs int
	// released is true while port 0 is released from the PF for VF 0.
	released bool
	// pfVFIO is true while the PF is bound to vfio-pci (a VM holds the
	// whole card); vfVFIO has bit i set while VF i is.
	pfVFIO bool
	vfVFIO uint64
	// busy is true while another process holds port 0 open.
	busy bool
	// portNum is the instance number the driver gave port 0's device
	// node; VF i's port is portNum+1+i.
	portNum int
	// prs counts PR attempts, for the jitter of the PR-time model.
	prs uint64
}

// maxVFs bounds the VFs a simulated card may have (vfVFIO's bits).
const maxVFs = 64

// board is what every simulated card of a board model shares.
type board struct {
	info  spec.BoardInfo
	stack fpga.Stack
	// bitstreamID is the FIM build the cards report.
	bitstreamID uint64
	// factoryAFU is what a card runs before fpgaops programs it; iface
	// the PR interface of a card whose node declares none and whose
	// bitstream is unknown.
	factoryAFU, iface string
}

// newBoard describes a board's simulated cards. Arria 10 cards run the
// out-of-tree intel-fpga driver, as on the CentOS hosts they shipped
// with; the others run upstream DFL.
func newBoard(info spec.BoardInfo) *board {
	b := &board{info: info, stack: fpga.StackDFL, bitstreamID: boardBitstreamID(info.Board),
		factoryAFU: derivedID("factory-afu", string(info.Board)), iface: derivedID("interface", string(info.Board))}
	if info.Board == spec.BoardPACA10 {
		b.stack = fpga.StackIntelFPGA
	}
	return b
}

// boardBitstreamID is the FIM build a card of the board reports.
func boardBitstreamID(b spec.Board) uint64 {
	switch b {
	case spec.BoardPACA10:
		return 0x0113000200000404 // 1.1.3
	case spec.BoardD5005:
		return 0x0201000000000000 // 2.0.1
	case spec.BoardN3000:
		return 0x0231000200000304 // 2.3.1
	}
	return 0x0100000000000000
}

// hostDriver is the PCI driver of the card's stack.
func (c *card) hostDriver() string { return fpga.HostDriver(c.board.stack) }

func (c *card) totalVFs() int { return c.board.info.MaxVFs }

// portDev is the device node of port 0 (on the PF, or on VF i).
func (c *card) portDev(vf int) string {
	prefix := "dev/dfl-port."
	if c.board.stack == fpga.StackIntelFPGA {
		prefix = "dev/intel-fpga-port."
	}
	return prefix + strconv.Itoa(c.portNum+1+vf)
}

// vfAddr is VF i's address: the functions after the PF's, as PAC cards
// place them (the PF's address is checked when the card is built).
func vfAddr(pf string, i int) string {
	dev, _ := strconv.ParseInt(pf[8:10], 16, 32)
	fn, _ := strconv.Atoi(pf[11:])
	n := fn + 1 + i
	return fmt.Sprintf("%s%02x.%d", pf[:8], int(dev)+n/8, n%8)
}

// device is the card as the host's sysfs shows it. A function bound to
// vfio-pci hides its FPGA features: a PF in a VM shows no FME and no port
// (no interface ID, no AFU ID), a VF in a VM a port of unknown AFU.
func (c *card) device() fpga.Device {
	d := fpga.Device{
		PCI: c.pci, Vendor: c.board.info.Vendor, DeviceID: c.board.info.PFDevice, Board: string(c.board.info.Board),
		NumVFs: c.numVFs, TotalVFs: c.totalVFs(), Ports: []fpga.Port{},
	}
	if c.pfVFIO {
		d.Driver = driverVFIO
	} else {
		id := c.board.bitstreamID
		d.Driver, d.Stack = c.hostDriver(), c.board.stack
		d.InterfaceID, d.BitstreamID, d.BBSVersion = c.iface, id, fpga.BBSVersion(id)
		if !c.released {
			d.Ports = append(d.Ports, fpga.Port{ID: 0, AFUID: c.afu, Dev: c.portDev(-1)})
		}
		d.Health.Sensors = c.sensors()
	}
	for i := range c.numVFs {
		vf := fpga.Function{Index: i, PCI: vfAddr(c.pci, i), Driver: c.hostDriver()}
		if c.vfVFIO&(1<<i) != 0 {
			vf.Driver = driverVFIO
		}
		d.VFs = append(d.VFs, vf)
		// Port 0 is VF 0's once released; the host reads it only while it
		// holds the VF.
		switch {
		case i == 0 && c.released && vf.Driver != driverVFIO:
			d.Ports = append(d.Ports, fpga.Port{ID: 0, AFUID: c.afu, OnVF: true, Dev: c.portDev(0)})
		case i == 0 && c.released:
			d.Ports = append(d.Ports, fpga.Port{ID: 0, OnVF: true})
		}
	}
	return d
}

// sensors are what a healthy card's FME reads: 45 °C and 40 W, below the
// thresholds the boards report, named as the stack's driver names them
// (hwmon on DFL, thermal_mgmt and power_mgmt on intel-fpga).
func (c *card) sensors() []fpga.Sensor {
	temp, power := "dfl_fme_thermal temp1", "dfl_fme_power power1"
	if c.board.stack == fpga.StackIntelFPGA {
		temp, power = "thermal_mgmt temperature", "power_mgmt consumed"
	}
	return []fpga.Sensor{
		{Name: temp, Kind: fpga.SensorTemperature, Value: 45, Max: 90, Crit: 100, Emergency: 105},
		{Name: power, Kind: fpga.SensorPower, Value: 40, Max: 60, Crit: 70},
	}
}

// functions are the card's PCI functions: the PF and its VFs.
func (c *card) functions() []string {
	fns := []string{c.pci}
	for i := range c.numVFs {
		fns = append(fns, vfAddr(c.pci, i))
	}
	return fns
}

// vfIndex is the index of the card's VF at pci, or -1.
func (c *card) vfIndex(pci string) int {
	for i := range c.numVFs {
		if vfAddr(c.pci, i) == pci {
			return i
		}
	}
	return -1
}

// checkHeld refuses a change while a function is bound to vfio-pci.
func (c *card) checkHeld() error {
	if c.pfVFIO {
		return fmt.Errorf("%w: the PF is bound to vfio-pci", fpga.ErrHeld)
	}
	for i := range c.numVFs {
		if c.vfVFIO&(1<<i) != 0 {
			return fmt.Errorf("%w: vf%d %s is bound to vfio-pci; detach it from its VM first", fpga.ErrHeld, i, vfAddr(c.pci, i))
		}
	}
	return nil
}

// checkProgram is what the careful programmer checks before it changes
// anything: no function in a VM, the image built for the card's PR
// interface, port 0 not open elsewhere unless forced.
func (c *card) checkProgram(img *bitstream.File, force bool) error {
	if err := c.checkHeld(); err != nil {
		return err
	}
	if got := img.InterfaceID(); got != c.iface {
		return fmt.Errorf("%w: image is built for %s, card has %s", fpga.ErrInterfaceMismatch, got, c.iface)
	}
	if !force && !c.released && c.busy {
		return fmt.Errorf("%w: /%s is open elsewhere (use force to program anyway)", fpga.ErrPortBusy, c.portDev(-1))
	}
	return nil
}

// checkVFs is what SetVFs checks before it changes anything.
func (c *card) checkVFs(n int) error {
	if n < 0 || n > c.totalVFs() {
		return fmt.Errorf("want 0 to %d (sriov_totalvfs)", c.totalVFs())
	}
	switch {
	case n == c.numVFs:
		return nil
	case c.numVFs > 0:
		return c.checkHeld()
	case c.pfVFIO:
		// vfio-pci hides the FME through which ports are released.
		return errors.New("release port 0: no FME visible (PF driver vfio-pci)")
	}
	return nil
}

// vfsOff turns SR-IOV off and assigns port 0 back to the PF.
func (c *card) vfsOff() {
	c.numVFs, c.released, c.vfVFIO = 0, false, 0
}

// checkVFsOn is what the drivers check before VFs go on: port 0 is
// released first, which fails while the port is open, and the simulated
// card has one port, so one VF.
func (c *card) checkVFsOn(n int) error {
	switch {
	case c.busy:
		return fmt.Errorf("release port 0: port is open: %w", syscall.EBUSY)
	case n > 1:
		return fmt.Errorf("VFs on: sriov_numvfs %d: one port, one VF: %w", n, syscall.EINVAL)
	}
	return nil
}

// vfsOn releases port 0 from the PF and enables n VFs; checkVFsOn has
// passed.
func (c *card) vfsOn(n int) {
	c.released, c.numVFs = true, n
}
