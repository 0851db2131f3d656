package fpga

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/fpgaops/fpgaops/bitstream"
)

// Kernel is the small part of the host that changes hardware: the FME
// ioctls and the SR-IOV switch. Everything else the sysfs host only reads.
// Tests and the simulated fleet replace it; production uses Syscalls.
// Paths are absolute: the host has already joined them to its root.
type Kernel interface {
	// PortBusy reports whether another process holds the port's device
	// node open (an exclusive open fails).
	PortBusy(portDev string) (bool, error)
	// ReleasePort takes the port away from the PF so that a VF can own it.
	ReleasePort(fmeDev string, stack Stack, port int) error
	// AssignPort gives a released port back to the PF.
	AssignPort(fmeDev string, stack Stack, port int) error
	// PortPR loads a PR payload into the port's region.
	PortPR(pr PR) error
	// SetNumVFs writes sriov_numvfs in the PF's sysfs directory.
	SetNumVFs(pfDir string, n int) error
	// ClearPortErrors clears the errors errs a port logged, by writing
	// them back to the port's sysfs error file.
	ClearPortErrors(portDir string, stack Stack, errs uint64) error
	// SetUserClock sets the port's user clocks, in MHz, through the
	// port's userclk_freqcmd interface. It fails with an error wrapping
	// ErrUserClockUnavailable when the port has no such interface.
	SetUserClock(portDir string, stack Stack, clk UserClock) error
}

// UserClock is the pair of user clocks an AFU runs on, in MHz; 0 leaves
// a clock as the hardware pairs it with the other.
type UserClock struct {
	High, Low uint64
}

// User clock limits OPAE enforces before it touches the PLL.
const (
	MinUserClockMHz = 25
	MaxUserClockMHz = 1200
)

// Check refuses what OPAE's xfpga refuses to set: a high clock outside 25
// to 1200 MHz, a low clock above 1200 MHz or above the high one.
func (c UserClock) Check() error {
	switch {
	case c.High < MinUserClockMHz || c.High > MaxUserClockMHz:
		return fmt.Errorf("%w: high clock %d MHz (low %d MHz): OPAE sets a high clock of %d to %d MHz", ErrUserClock, c.High, c.Low, MinUserClockMHz, MaxUserClockMHz)
	case c.Low > MaxUserClockMHz || c.Low > c.High:
		return fmt.Errorf("%w: low clock %d MHz: want at most %d MHz and the high clock (%d MHz)", ErrUserClock, c.Low, MaxUserClockMHz, c.High)
	}
	return nil
}

// PR is one partial-reconfiguration request.
type PR struct {
	// FME is the FME's device node, where the PR ioctl goes.
	FME   string
	Stack Stack
	Port  int
	// Payload is what the hardware gets: the image after its GBS header.
	Payload []byte
	// Image is the parsed header. Hardware never sees it; fakes read the
	// AFU and interface IDs from it to act as the card would.
	Image *bitstream.File
}

// Linux ioctl request encoding (asm-generic/ioctl.h, used by x86 and arm64).
const (
	iocNone  = 0
	iocWrite = 1

	iocNRBits   = 8
	iocTypeBits = 8
	iocSizeBits = 14

	iocNRShift   = 0
	iocTypeShift = iocNRShift + iocNRBits
	iocSizeShift = iocTypeShift + iocTypeBits
	iocDirShift  = iocSizeShift + iocSizeBits
)

func ioc(dir, typ, nr, size uint32) uint32 {
	return dir<<iocDirShift | typ<<iocTypeShift | nr<<iocNRShift | size<<iocSizeShift
}

// Magic numbers and bases of the two drivers' uapi headers:
// linux/fpga-dfl.h and OPAE's intel-fpga.h.
const (
	dflMagic   = 0xB6
	intelMagic = 0xB5
	fmeBase    = 0x80
)

// Request numbers. The DFL release/assign take an int; the intel-fpga
// ones a struct, and all but DFL release/assign are declared with _IO.
const (
	DFLFMEPortPR        = 0xb680     // _IO(0xB6, 0x80)
	DFLFMEPortRelease   = 0x4004b681 // _IOW(0xB6, 0x81, int)
	DFLFMEPortAssign    = 0x4004b682 // _IOW(0xB6, 0x82, int)
	IntelFMEPortPR      = 0xb580     // _IO(0xB5, 0x80)
	IntelFMEPortRelease = 0xb581     // _IO(0xB5, 0x81)
	IntelFMEPortAssign  = 0xb582     // _IO(0xB5, 0x82)
)

// dflPortPR is struct dfl_fpga_fme_port_pr.
type dflPortPR struct {
	Argsz         uint32
	Flags         uint32
	PortID        uint32
	BufferSize    uint32
	BufferAddress uint64
}

// intelPortPR is struct fpga_fme_port_pr; Status is the hardware error
// code the driver fills in when the ioctl fails with EIO.
type intelPortPR struct {
	Argsz         uint32
	Flags         uint32
	PortID        uint32
	BufferSize    uint32
	BufferAddress uint64
	Status        uint64
}

// intelPortArg is struct fpga_fme_port_release and _assign.
type intelPortArg struct {
	Argsz  uint32
	Flags  uint32
	PortID uint32
}

// intelPRErrors names the bits of intelPortPR.Status, in bit order.
var intelPRErrors = []string{
	"PR operation error",
	"PR CRC error",
	"PR incompatible bitstream error",
	"PR IP protocol error",
	"PR FIFO overflow error",
	"PR timeout error",
	"PR secure load error",
}

func intelPRStatus(s uint64) string {
	var msg string
	for i, m := range intelPRErrors {
		if s&(1<<i) != 0 {
			if msg != "" {
				msg += ", "
			}
			msg += m
		}
	}
	if msg == "" {
		return fmt.Sprintf("status %#x", s)
	}
	return msg
}

func newDFLPortPR(port int, payload []byte, addr uint64) dflPortPR {
	return dflPortPR{
		Argsz:         uint32(unsafe.Sizeof(dflPortPR{})),
		PortID:        uint32(port),
		BufferSize:    uint32(len(payload)),
		BufferAddress: addr,
	}
}

func newIntelPortPR(port int, payload []byte, addr uint64) intelPortPR {
	return intelPortPR{
		Argsz:         uint32(unsafe.Sizeof(intelPortPR{})),
		PortID:        uint32(port),
		BufferSize:    uint32(len(payload)),
		BufferAddress: addr,
	}
}

func newIntelPortArg(port int) intelPortArg {
	return intelPortArg{Argsz: uint32(unsafe.Sizeof(intelPortArg{})), PortID: uint32(port)}
}

// ErrUnsupported is returned by Syscalls on systems without the FPGA
// drivers' ioctls.
var ErrUnsupported = errors.New("FPGA ioctls are only available on Linux")

// Syscalls is the Kernel of a real Linux host: ioctls on the device nodes
// and writes to sysfs. It needs root and the hardware.
type Syscalls struct {
	// UserClockTool is OPAE's userclk program, which sets the user-clock
	// PLL; "" finds userclk on PATH.
	UserClockTool string
}

var _ Kernel = Syscalls{}

// ClearPortErrors writes the logged errors back: to errors/errors on DFL,
// to errors/clear on intel-fpga. The driver refuses a value that no
// longer matches what is logged.
func (Syscalls) ClearPortErrors(portDir string, stack Stack, errs uint64) error {
	f := "errors"
	if stack == StackIntelFPGA {
		f = "clear"
	}
	return os.WriteFile(filepath.Join(portDir, "errors", f), []byte(fmt.Sprintf("0x%x\n", errs)), 0)
}

// SetUserClock sets the user clocks of the port in portDir with OPAE's
// userclk program. The port's userclk_freqcmd and userclk_freqcntrcmd
// files take raw commands for the PLL's management bus, not frequencies:
// turning a frequency into those commands needs the PLL settings OPAE
// carries, so fpgaops runs OPAE's own tool on the card rather than write
// them itself. A port without userclk_freqcmd (DFL ports of header
// revision 1 and later hide it) has no interface for it.
func (k Syscalls) SetUserClock(portDir string, stack Stack, clk UserClock) error {
	if _, err := os.Stat(filepath.Join(portDir, "userclk_freqcmd")); err != nil {
		return fmt.Errorf("%w: %s has no userclk_freqcmd", ErrUserClockUnavailable, portDir)
	}
	_, bdf, ok := pciDir(portDir)
	if !ok {
		return fmt.Errorf("%s: no PCI function above the port", portDir)
	}
	tool := k.UserClockTool
	if tool == "" {
		tool = "userclk"
	}
	path, err := exec.LookPath(tool)
	if err != nil {
		return fmt.Errorf("%w: setting the user-clock PLL needs OPAE's userclk: %v", ErrUserClock, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), userClockTimeout)
	defer cancel()
	// No shell: the arguments are a checked PCI address and two numbers.
	cmd := exec.CommandContext(ctx, path, bdf, "-H", strconv.FormatUint(clk.High, 10), "-L", strconv.FormatUint(clk.Low, 10))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s %s: %v: %s", ErrUserClock, tool, bdf, err, lastLine(out))
	}
	return nil
}

// userClockTimeout bounds the userclk run: it programs a PLL and waits
// for it to lock, which takes milliseconds.
const userClockTimeout = 30 * time.Second

// lastLine is the end of a program's output, bounded, for an error.
func lastLine(out []byte) string {
	s := strings.TrimSpace(string(out))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// SetNumVFs writes sriov_numvfs; the kernel creates or removes the VFs.
func (Syscalls) SetNumVFs(pfDir string, n int) error {
	return os.WriteFile(filepath.Join(pfDir, "sriov_numvfs"), []byte(strconv.Itoa(n)+"\n"), 0)
}
