// Package fpgatest builds fake but realistic sysfs trees of FPGA hosts, for
// both driver stacks, and acts as their kernel: a Tree implements
// fpga.Kernel and changes its files the way the drivers and the hardware
// would (a PR changes the port's afu_id, SR-IOV creates and removes VFs).
// Tests, the simulated fleet and the demo use it; it never touches a real
// device and writes only below its root.
package fpgatest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/spec"
)

// Card describes one fake card. Zero fields take the board's defaults.
type Card struct {
	// PCI is the PF's address, "0000:5e:00.0".
	PCI   string
	Board spec.Board
	Stack fpga.Stack
	// InterfaceID is the PR interface ID (compat_id / pr/interface_id).
	InterfaceID string
	// BitstreamID is the FME's bitstream_id (the FIM build); 0 takes a
	// default for the board.
	BitstreamID uint64
	// AFUID is what port 0 runs.
	AFUID string
	// TotalVFs is sriov_totalvfs; 0 takes the board's limit.
	TotalVFs int
	// NumVFs VFs are on; port 0 is then released to VF 0.
	NumVFs int
	// VFDrivers names the driver bound to each VF: "vfio-pci", the stack's
	// host driver, or "none". Missing entries take the host driver.
	VFDrivers []string
	// PFDriver is the PF's driver; "" takes the host driver, "none" leaves
	// it unbound, "vfio-pci" hands the whole PF to a VM.
	PFDriver string
	NUMANode int
	// Crashed cards read all-f IDs, as crashed firmware does.
	Crashed bool
	// Health is what the card's error registers and sensors read; the
	// zero value is a healthy card.
	Health Health
	// NoUserClock hides the port's userclk_* files, as DFL ports of
	// header revision 1 and later do (intel-fpga ports always have them).
	NoUserClock bool
	// UserClockHigh and UserClockLow are the user clocks, in MHz, that the
	// last SetUserClock set; 0 until one does.
	UserClockHigh, UserClockLow uint64
}

// Health is what a fake card's error registers and sensors read, for both
// driver stacks (DFL hwmon, intel-fpga thermal_mgmt and power_mgmt). The
// zero value is a healthy card: no errors, 45 °C and 40 W, below the
// default thresholds.
type Health struct {
	// The FME's error registers, below its errors/ directory (on
	// intel-fpga FMEErrors, FirstError and NextError are
	// errors/fme-errors/{errors,first_error,next_error}).
	CatFatal, NonFatal, PCIe0, PCIe1, FMEErrors, FirstError, NextError uint64
	// Port 0's errors/first_error and errors/first_malformed_req; its
	// errors/errors is what SetPortErrors sets.
	PortFirstError, PortFirstMalformedReq uint64
	// PowerState is port 0's APx state: 0 normal, 1 AP1, 2 AP2, 6 AP6.
	PowerState uint8
	// AP1Event and AP2Event latch throttling until cleared.
	AP1Event, AP2Event bool
	// TempMilliC is the FPGA temperature in millidegrees Celsius; 0 takes
	// 45 °C. Its max, crit and emergency thresholds: 0 takes 90, 100 and
	// 105 °C.
	TempMilliC, TempMaxMilliC, TempCritMilliC, TempEmergencyMilliC int64
	// PowerMicroW is the FPGA power in microwatts; 0 takes 40 W. Its max
	// and crit thresholds: 0 takes 60 and 70 W.
	PowerMicroW, PowerMaxMicroW, PowerCritMicroW int64
	// PortsNum is what the FME's ports_num reads; 0 takes 1, the fake's
	// one port.
	PortsNum int
}

// withDefaults fills the zero readings with a healthy card's.
func (h Health) withDefaults() Health {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&h.TempMilliC, 45000)
	def(&h.TempMaxMilliC, 90000)
	def(&h.TempCritMilliC, 100000)
	def(&h.TempEmergencyMilliC, 105000)
	def(&h.PowerMicroW, 40000000)
	def(&h.PowerMaxMicroW, 60000000)
	def(&h.PowerCritMicroW, 70000000)
	if h.PortsNum == 0 {
		h.PortsNum = 1
	}
	return h
}

// cardState is a card with the numbers the kernel gave its sysfs entries
// and the state the hardware holds.
type cardState struct {
	Card
	Released bool   `json:"released"`
	Busy     bool   `json:"busy"`
	PortErrs uint64 `json:"portErrs"`
	MgrError string
	// Instance numbers: DFL base region, FME PR region, FME, port,
	// manager; intel-fpga device, FME, port. VFs get a region or device
	// and a port each. DFL FMEs have a thermal and a power hwmon device.
	Region, FMERegion, FME, Port, Mgr, IOMMU int
	VFRegion, VFPort                         []int
	Hwmon                                    []int `json:",omitempty"`
}

type state struct {
	Cards []*cardState
	Next  map[string]int
}

// Tree is a fake host filesystem below Root. It is safe for concurrent use.
type Tree struct {
	root string
	mu   sync.Mutex
	st   state
}

var _ fpga.Kernel = (*Tree)(nil)

const stateFile = ".fpgatest/state.json"

// NewTree starts an empty fake host at root (created if missing).
func NewTree(root string) *Tree {
	return &Tree{root: filepath.Clean(root), st: state{Next: map[string]int{}}}
}

// Open loads a tree an earlier NewTree built at root.
func Open(root string) (*Tree, error) {
	t := NewTree(root)
	b, err := os.ReadFile(filepath.Join(t.root, stateFile))
	if err != nil {
		return nil, fmt.Errorf("fpgatest: open %s: %w", root, err)
	}
	if err := json.Unmarshal(b, &t.st); err != nil {
		return nil, fmt.Errorf("fpgatest: open %s: %w", root, err)
	}
	return t, nil
}

// Root is the tree's root directory: pass it to fpga.NewSysfsHost.
func (t *Tree) Root() string { return t.root }

// Host returns a sysfs host over the tree with the tree as its kernel.
func (t *Tree) Host() *fpga.SysfsHost { return fpga.NewSysfsHost(t.root, t) }

// AddCard adds a card and writes its sysfs entries.
func (t *Tree) AddCard(c Card) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !fpga.IsPCIAddress(c.PCI) {
		return fmt.Errorf("fpgatest: card %q: PCI address wants the form 0000:5e:00.0", c.PCI)
	}
	for _, o := range t.st.Cards {
		if o.PCI == c.PCI {
			return fmt.Errorf("fpgatest: card %s: already added", c.PCI)
		}
	}
	info, ok := spec.LookupBoard(c.Board)
	if !ok {
		return fmt.Errorf("fpgatest: card %s: unknown board %q", c.PCI, c.Board)
	}
	switch c.Stack {
	case fpga.StackDFL, fpga.StackIntelFPGA:
	case "":
		c.Stack = fpga.StackDFL
	default:
		return fmt.Errorf("fpgatest: card %s: unknown stack %q", c.PCI, c.Stack)
	}
	if c.TotalVFs == 0 {
		c.TotalVFs = info.MaxVFs
	}
	if c.NumVFs < 0 || c.NumVFs > c.TotalVFs || c.NumVFs > 1 {
		return fmt.Errorf("fpgatest: card %s: %d VFs: the fake has one port, so 0 or 1 VF", c.PCI, c.NumVFs)
	}
	if c.BitstreamID == 0 {
		c.BitstreamID = defaultBitstreamID(c.Board)
	}
	c.InterfaceID = bitstream.NormalizeID(c.InterfaceID)
	c.AFUID = bitstream.NormalizeID(c.AFUID)
	if len(c.VFDrivers) > c.TotalVFs {
		return fmt.Errorf("fpgatest: card %s: %d VF drivers for %d VFs", c.PCI, len(c.VFDrivers), c.TotalVFs)
	}
	cs := &cardState{Card: c, Released: c.NumVFs > 0}
	if c.Stack == fpga.StackDFL {
		cs.Region, cs.FMERegion = t.next("region"), t.next("region")
		cs.FME, cs.Port, cs.Mgr = t.next("dfl-fme"), t.next("dfl-port"), t.next("fpga")
		cs.Hwmon = []int{t.next("hwmon"), t.next("hwmon")}
	} else {
		cs.Region = t.next("intel-fpga-dev")
		cs.FME, cs.Port = t.next("intel-fpga-fme"), t.next("intel-fpga-port")
	}
	cs.IOMMU = t.next("iommu")
	for range c.TotalVFs {
		if c.Stack == fpga.StackDFL {
			cs.VFRegion = append(cs.VFRegion, t.next("region"))
			cs.VFPort = append(cs.VFPort, t.next("dfl-port"))
		} else {
			cs.VFRegion = append(cs.VFRegion, t.next("intel-fpga-dev"))
			cs.VFPort = append(cs.VFPort, t.next("intel-fpga-port"))
		}
		t.next("iommu")
	}
	t.st.Cards = append(t.st.Cards, cs)
	if err := t.render(cs); err != nil {
		return err
	}
	return t.save()
}

func (t *Tree) next(kind string) int {
	n := t.st.Next[kind]
	t.st.Next[kind] = n + 1
	return n
}

func defaultBitstreamID(b spec.Board) uint64 {
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

// Card returns the card's current description (AFU ID, VFs, drivers).
func (t *Tree) Card(pci string) (Card, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.card(pci)
	if c == nil {
		return Card{}, false
	}
	out := c.Card
	out.VFDrivers = append([]string(nil), c.VFDrivers...)
	return out, true
}

func (t *Tree) card(pci string) *cardState {
	for _, c := range t.st.Cards {
		if c.PCI == pci {
			return c
		}
	}
	return nil
}

// update changes one card under the lock, then rewrites its entries.
func (t *Tree) update(pci string, f func(c *cardState) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.card(pci)
	if c == nil {
		return fmt.Errorf("fpgatest: no card %s", pci)
	}
	if err := f(c); err != nil {
		return err
	}
	if err := t.render(c); err != nil {
		return err
	}
	return t.save()
}

// SetAFUID changes what port 0 runs behind the controller's back: drift,
// or a PR that loaded something else.
func (t *Tree) SetAFUID(pci, afu string) error {
	return t.update(pci, func(c *cardState) error { c.AFUID = bitstream.NormalizeID(afu); return nil })
}

// SetCrashed makes the card's firmware crash (or recover).
func (t *Tree) SetCrashed(pci string, crashed bool) error {
	return t.update(pci, func(c *cardState) error { c.Crashed = crashed; return nil })
}

// SetPortErrors makes port 0 log errors (its errors/errors value).
func (t *Tree) SetPortErrors(pci string, errs uint64) error {
	return t.update(pci, func(c *cardState) error { c.PortErrs = errs; return nil })
}

// SetHealth sets what the card's error registers and sensors read, to
// make a sick card (or a healthy one again).
func (t *Tree) SetHealth(pci string, h Health) error {
	return t.update(pci, func(c *cardState) error { c.Health = h; return nil })
}

// SetPortBusy makes port 0 look open by another process.
func (t *Tree) SetPortBusy(pci string, busy bool) error {
	return t.update(pci, func(c *cardState) error { c.Busy = busy; return nil })
}

// BindVF binds VF vf to driver, as libvirt does with managed hostdevs:
// "vfio-pci" on attach, the host driver on detach.
func (t *Tree) BindVF(pci string, vf int, driver string) error {
	return t.update(pci, func(c *cardState) error {
		if vf < 0 || vf >= c.TotalVFs {
			return fmt.Errorf("fpgatest: card %s: no VF %d", pci, vf)
		}
		for len(c.VFDrivers) <= vf {
			c.VFDrivers = append(c.VFDrivers, "")
		}
		c.VFDrivers[vf] = driver
		return nil
	})
}

// BindPF binds the PF to driver ("vfio-pci" hands the card to a VM).
func (t *Tree) BindPF(pci, driver string) error {
	return t.update(pci, func(c *cardState) error { c.PFDriver = driver; return nil })
}

func (t *Tree) save() error {
	b, err := json.Marshal(&t.st)
	if err != nil {
		return err
	}
	p := filepath.Join(t.root, stateFile)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, b, 0o644)
}

// errno wraps a kernel error number with what the driver would log.
func errno(e error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), e)
}
