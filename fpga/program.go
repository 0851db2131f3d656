package fpga

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/fpgaops/fpgaops/bitstream"
)

// Errors Program and SetVFs return, for errors.Is.
var (
	ErrNoCard            = errors.New("no FPGA card")
	ErrNoDigest          = errors.New("no sha256 digest given for the image")
	ErrDigestMismatch    = errors.New("image digest mismatch")
	ErrInterfaceMismatch = errors.New("PR interface mismatch")
	ErrPortBusy          = errors.New("port is in use")
	ErrHeld              = errors.New("function is held by vfio-pci")
	ErrUnhealthy         = errors.New("card reports a problem")
	ErrReadBack          = errors.New("AFU ID read back does not match the image")
	ErrReadOnly          = errors.New("host has no kernel interface to change hardware")
	// ErrUserClock is a user clock the image asks for that cannot be set.
	ErrUserClock = errors.New("cannot set the user clocks")
	// ErrUserClockUnavailable is a port without the userclk interface;
	// Program then leaves the clocks alone.
	ErrUserClockUnavailable = errors.New("the port has no user clock interface")
)

// programPort is the PR region fpgaops programs: the supported boards
// have one port.
const programPort = 0

// Program loads a GBS image into the card's port 0 the careful way, in
// the order of OPAE's fpgaconf and xfpga:
//
//  1. the image's digest must equal opts.SHA256, its header parse, and
//     the user clocks it asks for be ones OPAE sets;
//  2. its interface ID must equal the card's PR interface ID;
//  3. no VF may be bound to vfio-pci (a VM holds it; even with Force),
//     the card must report no problem (Health; even with Force), and
//     the port must not be open elsewhere unless opts.Force;
//  4. VFs off and ports assigned back to the PF, and errors the port
//     logged cleared;
//  5. the user clocks set, unless opts.SkipUserClock (a port without the
//     userclk interface keeps its clocks);
//  6. the PR ioctl on the FME with the payload after the header;
//  7. the port's afu_id read back and compared with the image's AFU ID;
//  8. VFs back on as they were.
//
// Nothing is changed when a check in 1-3 fails. When 5, 6 or 7 fails the
// card's VFs stay off, so that no VM gets a port with an unknown AFU or
// clock.
func (h *SysfsHost) Program(ctx context.Context, pci string, image []byte, opts ProgramOptions) error {
	wrap := func(err error) error { return fmt.Errorf("fpga %s: program: %w", pci, err) }
	if h.kernel == nil {
		return wrap(ErrReadOnly)
	}
	if opts.SHA256 == "" {
		return wrap(ErrNoDigest)
	}
	sum := sha256.Sum256(image)
	if got := hex.EncodeToString(sum[:]); got != strings.ToLower(opts.SHA256) {
		return wrap(fmt.Errorf("%w: image has sha256 %s, want %s", ErrDigestMismatch, got, strings.ToLower(opts.SHA256)))
	}
	img, err := bitstream.Parse(image)
	if err != nil {
		return wrap(err)
	}
	clk := UserClock{}
	if !opts.SkipUserClock {
		clk.High, clk.Low = img.UserClocks()
		if clk != (UserClock{}) {
			if err := clk.Check(); err != nil {
				return wrap(err)
			}
		}
	}
	c, err := h.find(ctx, pci)
	if err != nil {
		return wrap(err)
	}
	d := &c.dev
	if err := checkHeld(d); err != nil {
		return wrap(err)
	}
	if !d.Health.OK() {
		return wrap(fmt.Errorf("%w: %s", ErrUnhealthy, strings.Join(d.Health.Problems, "; ")))
	}
	if c.fmeDev == "" {
		return wrap(fmt.Errorf("no FME visible (PF driver %q)", d.Driver))
	}
	if d.InterfaceID == "" {
		return wrap(fmt.Errorf("%w: the card's PR interface ID is unknown", ErrInterfaceMismatch))
	}
	if img.InterfaceID() != d.InterfaceID {
		return wrap(fmt.Errorf("%w: image is built for %s, card has %s", ErrInterfaceMismatch, img.InterfaceID(), d.InterfaceID))
	}
	if !opts.Force {
		if dev, ok := c.ports[programPort]; ok {
			busy, err := h.kernel.PortBusy(dev)
			if err != nil {
				return wrap(fmt.Errorf("port %d: %w", programPort, err))
			}
			if busy {
				return wrap(fmt.Errorf("%w: /%s is open elsewhere (use force to program anyway)", ErrPortBusy, h.rel(dev)))
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return wrap(err)
	}

	vfs := d.NumVFs
	if vfs > 0 {
		if err := h.vfsOff(c); err != nil {
			return wrap(err)
		}
		// The port is back on the PF: read it there.
		if c, err = h.find(ctx, pci); err != nil {
			return wrap(err)
		}
	}
	if e := c.errs[programPort]; e != 0 {
		if err := h.kernel.ClearPortErrors(c.dirs[programPort], d.Stack, e); err != nil {
			return wrap(fmt.Errorf("clear port %d errors %#x: %w", programPort, e, err))
		}
	}
	if clk != (UserClock{}) {
		err := h.kernel.SetUserClock(c.dirs[programPort], d.Stack, clk)
		if err != nil && !errors.Is(err, ErrUserClockUnavailable) {
			if vfs > 0 {
				err = fmt.Errorf("%w; VFs left off", err)
			}
			return wrap(fmt.Errorf("port %d: user clocks %d/%d MHz: %w", programPort, clk.High, clk.Low, err))
		}
	}
	err = h.kernel.PortPR(PR{FME: c.fmeDev, Stack: d.Stack, Port: programPort, Payload: img.Payload(image), Image: img})
	if err != nil {
		if st, e := readString(c.mgr); c.mgr != "" && e == nil && st != "" {
			err = fmt.Errorf("%w (fpga_manager status: %s)", err, st)
		}
		return wrap(fmt.Errorf("PR on port %d: %w", programPort, err))
	}
	after, err := h.find(ctx, pci)
	if err != nil {
		return wrap(fmt.Errorf("read back: %w", err))
	}
	if got := after.dev.AFUID(); got != img.AFUID() {
		if got == "" {
			got = "nothing"
		}
		return wrap(fmt.Errorf("%w: port %d reads %s, want %s; VFs left off", ErrReadBack, programPort, got, img.AFUID()))
	}
	if vfs > 0 {
		if err := h.vfsOn(after, vfs); err != nil {
			return wrap(err)
		}
	}
	return nil
}

// SetVFs turns SR-IOV off (n = 0) or on with n VFs, moving the ports
// between PF and VFs the way the drivers require: release before enabling,
// assign after disabling. It refuses while a VF is bound to vfio-pci.
func (h *SysfsHost) SetVFs(ctx context.Context, pci string, n int) error {
	wrap := func(err error) error { return fmt.Errorf("fpga %s: set VFs to %d: %w", pci, n, err) }
	if h.kernel == nil {
		return wrap(ErrReadOnly)
	}
	c, err := h.find(ctx, pci)
	if err != nil {
		return wrap(err)
	}
	d := &c.dev
	if n < 0 || n > d.TotalVFs {
		return wrap(fmt.Errorf("want 0 to %d (sriov_totalvfs)", d.TotalVFs))
	}
	if n == d.NumVFs {
		return nil
	}
	if d.NumVFs > 0 {
		if err := checkHeld(d); err != nil {
			return wrap(err)
		}
		if err := h.vfsOff(c); err != nil {
			return wrap(err)
		}
		if n == 0 {
			return nil
		}
		if c, err = h.find(ctx, pci); err != nil {
			return wrap(err)
		}
	}
	if err := h.vfsOn(c, n); err != nil {
		return wrap(err)
	}
	return nil
}

func checkHeld(d *Device) error {
	if d.Driver == driverVFIO {
		return fmt.Errorf("%w: the PF is bound to vfio-pci", ErrHeld)
	}
	for _, vf := range d.VFs {
		if vf.Driver == driverVFIO {
			return fmt.Errorf("%w: vf%d %s is bound to vfio-pci; detach it from its VM first", ErrHeld, vf.Index, vf.PCI)
		}
	}
	return nil
}

// vfsOff disables SR-IOV, then assigns the released ports back to the PF.
func (h *SysfsHost) vfsOff(c *card) error {
	if err := h.kernel.SetNumVFs(c.pfDir, 0); err != nil {
		return fmt.Errorf("VFs off: %w", err)
	}
	for _, p := range c.dev.Ports {
		if !p.OnVF {
			continue
		}
		if err := h.kernel.AssignPort(c.fmeDev, c.dev.Stack, p.ID); err != nil {
			return fmt.Errorf("assign port %d to the PF: %w", p.ID, err)
		}
	}
	return nil
}

// vfsOn releases n ports from the PF, lowest ID first, then enables n VFs.
func (h *SysfsHost) vfsOn(c *card, n int) error {
	released := 0
	for _, p := range c.dev.Ports {
		if released == n {
			break
		}
		if p.OnVF {
			continue
		}
		if err := h.kernel.ReleasePort(c.fmeDev, c.dev.Stack, p.ID); err != nil {
			return fmt.Errorf("release port %d: %w", p.ID, err)
		}
		released++
	}
	if err := h.kernel.SetNumVFs(c.pfDir, n); err != nil {
		return fmt.Errorf("VFs on: %w", err)
	}
	return nil
}
