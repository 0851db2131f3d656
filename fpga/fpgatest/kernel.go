package fpgatest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/fpgaops/fpgaops/fpga"
)

// The fake kernel: each method checks what the driver checks, fails with
// the errno it would return, and changes the tree as the kernel and the
// card would. No sleeping; a handful of file operations per call.

func (t *Tree) byFME(dev string, stack fpga.Stack) (*cardState, error) {
	name := filepath.Base(dev)
	for _, c := range t.st.Cards {
		want := "dfl-fme." + strconv.Itoa(c.FME)
		if c.Stack == fpga.StackIntelFPGA {
			want = "intel-fpga-fme." + strconv.Itoa(c.FME)
		}
		if name != want || filepath.Join(t.root, "dev", name) != dev {
			continue
		}
		if c.Stack != stack {
			return nil, errno(syscall.ENOTTY, "%s: %s ioctl on a %s device", dev, stack, c.Stack)
		}
		if _, err := os.Stat(dev); err != nil {
			return nil, err
		}
		return c, nil
	}
	return nil, errno(syscall.ENODEV, "%s", dev)
}

// PortBusy reports the busy flag SetPortBusy set, for a port the PF holds.
func (t *Tree) PortBusy(portDev string) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, err := os.Stat(portDev); err != nil {
		return false, err
	}
	name := filepath.Base(portDev)
	for _, c := range t.st.Cards {
		pre := "dfl-port."
		if c.Stack == fpga.StackIntelFPGA {
			pre = "intel-fpga-port."
		}
		if name == pre+strconv.Itoa(c.Port) {
			return c.Busy, nil
		}
	}
	return false, nil
}

// ReleasePort removes the port from the PF; the driver refuses while the
// port is open or already released.
func (t *Tree) ReleasePort(fmeDev string, stack fpga.Stack, port int) error {
	return t.fmeOp(fmeDev, stack, func(c *cardState, w *writer) error {
		switch {
		case port != 0:
			return errno(syscall.EINVAL, "release port %d: no such port", port)
		case c.Released:
			return errno(syscall.EBUSY, "release port %d: already released", port)
		case c.Busy:
			return errno(syscall.EBUSY, "release port %d: port is open", port)
		}
		c.Released = true
		t.removePFPort(w, c)
		return nil
	})
}

// AssignPort gives a released port back to the PF; it fails while VFs
// are on.
func (t *Tree) AssignPort(fmeDev string, stack fpga.Stack, port int) error {
	return t.fmeOp(fmeDev, stack, func(c *cardState, w *writer) error {
		switch {
		case port != 0:
			return errno(syscall.EINVAL, "assign port %d: no such port", port)
		case !c.Released:
			return errno(syscall.EINVAL, "assign port %d: not released", port)
		case c.NumVFs > 0:
			return errno(syscall.EBUSY, "assign port %d: SR-IOV is on", port)
		}
		c.Released = false
		t.writePFPort(w, c)
		return nil
	})
}

// PortPR acts as the card: it refuses a port the PF does not hold, fails
// an image built for another PR interface with "reconfig incompatible
// image" in the fpga_manager status (EIO), and otherwise loads the
// image's AFU.
func (t *Tree) PortPR(pr fpga.PR) error {
	return t.fmeOp(pr.FME, pr.Stack, func(c *cardState, w *writer) error {
		switch {
		case pr.Port != 0:
			return errno(syscall.EINVAL, "PR port %d: no such port", pr.Port)
		case c.Released:
			return errno(syscall.EINVAL, "PR port %d: port is not on the PF", pr.Port)
		case len(pr.Payload) == 0:
			return errno(syscall.EINVAL, "PR port %d: empty buffer", pr.Port)
		case pr.Image == nil:
			return fmt.Errorf("fpgatest: PR without the parsed image: the fake cannot tell what the payload holds")
		case c.Crashed:
			c.MgrError = "reconfig error"
			t.writeAFU(w, c)
			return errno(syscall.EIO, "PR port %d", pr.Port)
		case pr.Image.InterfaceID() != c.InterfaceID:
			c.MgrError = "reconfig incompatible image"
			t.writeAFU(w, c)
			return errno(syscall.EIO, "PR port %d", pr.Port)
		}
		c.MgrError = ""
		c.AFUID = pr.Image.AFUID()
		t.writeAFU(w, c)
		return nil
	})
}

// ClearPortErrors clears the port's errors when errs matches what it
// logged, as the drivers do, and fails with EINVAL otherwise.
func (t *Tree) ClearPortErrors(portDir string, stack fpga.Stack, errs uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byPort(portDir)
	switch {
	case c == nil:
		return errno(syscall.ENOENT, "%s/errors", portDir)
	case c.Stack != stack:
		return errno(syscall.EINVAL, "%s: %s error file on a %s port", portDir, stack, c.Stack)
	case errs != c.PortErrs:
		return errno(syscall.EINVAL, "clear port errors %#x: port logged %#x", errs, c.PortErrs)
	}
	c.PortErrs = 0
	w := &writer{}
	_, afu := c.ids()
	t.port(w, c, filepath.Clean(portDir), afu)
	if w.err != nil {
		return w.err
	}
	return t.save()
}

// byPort is the card whose PF holds the port in portDir, or nil: a port
// released to a VF is not there.
func (t *Tree) byPort(portDir string) *cardState {
	for _, c := range t.st.Cards {
		if dir, _ := t.pfPort(c); dir == filepath.Clean(portDir) && !c.Released {
			return c
		}
	}
	return nil
}

// SetUserClock sets port 0's user clocks, which Card reports afterwards:
// the port must be on the PF (its directory is where the driver shows
// it), and a port without the userclk interface (NoUserClock) fails with
// fpga.ErrUserClockUnavailable, as on hardware.
func (t *Tree) SetUserClock(portDir string, stack fpga.Stack, clk fpga.UserClock) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.byPort(portDir)
	switch {
	case c == nil:
		return errno(syscall.ENOENT, "%s/userclk_freqcmd", portDir)
	case c.Stack != stack:
		return errno(syscall.EINVAL, "%s: %s user clock on a %s port", portDir, stack, c.Stack)
	case !c.userClock():
		return fmt.Errorf("%w: %s has no userclk_freqcmd", fpga.ErrUserClockUnavailable, portDir)
	case c.Crashed:
		return errno(syscall.EIO, "%s: user clock PLL does not lock", portDir)
	}
	c.UserClockHigh, c.UserClockLow = clk.High, clk.Low
	return t.save()
}

// SetNumVFs writes sriov_numvfs as the kernel handles it: a change
// between two non-zero counts fails (write 0 first), and the FPGA driver
// wants one released port per VF.
func (t *Tree) SetNumVFs(pfDir string, n int) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var c *cardState
	for _, x := range t.st.Cards {
		if t.devDir(x.PCI) == filepath.Clean(pfDir) {
			c = x
		}
	}
	if c == nil {
		return errno(syscall.ENOENT, "%s/sriov_numvfs", pfDir)
	}
	switch {
	case n == c.NumVFs:
		return nil
	case n < 0 || n > c.TotalVFs:
		return errno(syscall.ERANGE, "sriov_numvfs %d: total is %d", n, c.TotalVFs)
	case n > 0 && c.NumVFs > 0:
		return errno(syscall.EBUSY, "sriov_numvfs %d: %d VFs already on", n, c.NumVFs)
	case n > 0 && !c.Released:
		return errno(syscall.EINVAL, "sriov_numvfs %d: release the ports first", n)
	case n > 1:
		return errno(syscall.EINVAL, "sriov_numvfs %d: one port, one VF", n)
	case c.pfDriver() != c.hostDriver():
		return errno(syscall.ENOENT, "%s/sriov_numvfs", pfDir)
	}
	w := &writer{}
	if n == 0 {
		t.removeVFs(w, c)
	}
	c.NumVFs = n
	if n > 0 {
		t.writeVFs(w, c)
	}
	if w.err != nil {
		return w.err
	}
	return t.save()
}

func (t *Tree) fmeOp(fmeDev string, stack fpga.Stack, f func(c *cardState, w *writer) error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	c, err := t.byFME(fmeDev, stack)
	if err != nil {
		return err
	}
	// Files change even when the operation fails: a failed PR still
	// changes the fpga_manager status.
	w := &writer{}
	opErr := f(c, w)
	if w.err != nil {
		return w.err
	}
	if err := t.save(); err != nil {
		return err
	}
	return opErr
}
