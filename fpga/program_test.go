package fpga_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

// recorder is the fake kernel with a log of every call, so that tests see
// what reached the hardware and in which order.
type recorder struct {
	tree    *fpgatest.Tree
	calls   []string
	payload []byte
	prErr   error
	clkErr  error
	afterPR func()
}

func (r *recorder) rel(p string) string {
	rel, _ := filepath.Rel(r.tree.Root(), p)
	return rel
}

func (r *recorder) PortBusy(dev string) (bool, error) {
	r.calls = append(r.calls, "busy? "+r.rel(dev))
	return r.tree.PortBusy(dev)
}

func (r *recorder) ReleasePort(fme string, s fpga.Stack, port int) error {
	r.calls = append(r.calls, fmt.Sprintf("release %s port %d", r.rel(fme), port))
	return r.tree.ReleasePort(fme, s, port)
}

func (r *recorder) AssignPort(fme string, s fpga.Stack, port int) error {
	r.calls = append(r.calls, fmt.Sprintf("assign %s port %d", r.rel(fme), port))
	return r.tree.AssignPort(fme, s, port)
}

func (r *recorder) PortPR(pr fpga.PR) error {
	r.calls = append(r.calls, fmt.Sprintf("pr %s port %d", r.rel(pr.FME), pr.Port))
	r.payload = append([]byte(nil), pr.Payload...)
	if r.prErr != nil {
		return r.prErr
	}
	if err := r.tree.PortPR(pr); err != nil {
		return err
	}
	if r.afterPR != nil {
		r.afterPR()
	}
	return nil
}

func (r *recorder) ClearPortErrors(dir string, s fpga.Stack, errs uint64) error {
	r.calls = append(r.calls, fmt.Sprintf("clear port errors %#x", errs))
	return r.tree.ClearPortErrors(dir, s, errs)
}

func (r *recorder) SetUserClock(dir string, s fpga.Stack, clk fpga.UserClock) error {
	r.calls = append(r.calls, fmt.Sprintf("userclk %d/%d MHz", clk.High, clk.Low))
	if r.clkErr != nil {
		return r.clkErr
	}
	return r.tree.SetUserClock(dir, s, clk)
}

func (r *recorder) SetNumVFs(pf string, n int) error {
	r.calls = append(r.calls, fmt.Sprintf("sriov_numvfs %d", n))
	return r.tree.SetNumVFs(pf, n)
}

func gbs(t testing.TB, iface, afu string, payload []byte) ([]byte, string) {
	t.Helper()
	return gbsClocked(t, iface, afu, payload, 0, 0)
}

// gbsClocked is an image whose metadata asks for user clocks, in MHz.
func gbsClocked(t testing.TB, iface, afu string, payload []byte, high, low bitstream.Clock) ([]byte, string) {
	t.Helper()
	img, err := bitstream.Build(bitstream.Metadata{
		Version:      1,
		PlatformName: "test",
		AFUImage: bitstream.AFUImage{
			MagicNo:            bitstream.MagicNo,
			InterfaceUUID:      iface,
			ClockFrequencyHigh: high,
			ClockFrequencyLow:  low,
			AcceleratorClusters: []bitstream.Cluster{
				{Name: "afu", TotalContexts: 1, AcceleratorTypeUUID: afu},
			},
		},
	}, payload)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	return img, hex.EncodeToString(sum[:])
}

// programCards are the cards the program tests load: a DFL N3000, the
// same with its VF on, and an intel-fpga PAC A10, all built for the N3000
// interface and running the NLB AFU.
func programCards() (dfl, withVF, intel fpgatest.Card) {
	dfl = fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB}
	withVF = dfl
	withVF.NumVFs = 1
	intel = fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardPACA10, Stack: fpga.StackIntelFPGA, InterfaceID: ifaceN3000, AFUID: afuNLB}
	return dfl, withVF, intel
}

func TestProgram(t *testing.T) {
	payload := []byte("partial reconfiguration payload")
	good, goodSum := gbs(t, ifaceN3000, afuDMA, payload)
	other, otherSum := gbs(t, ifaceA10, afuDMA, payload)
	upper, upperSum := gbs(t, strings.ToUpper(ifaceN3000), strings.ToUpper(afuDMA), payload)
	dfl, withVF, intel := programCards()
	heldVF := withVF
	heldVF.VFDrivers = []string{"vfio-pci"}
	fatal := dfl
	fatal.Health.CatFatal = 0x4

	tests := []struct {
		name    string
		card    fpgatest.Card
		image   []byte
		sum     string
		force   bool
		setup   func(tr *fpgatest.Tree, r *recorder)
		wantErr error
		wantMsg string
		calls   []string
		wantAFU string
		wantVFs int
	}{
		{
			name: "dfl without VFs", card: dfl, image: good, sum: goodSum,
			calls:   []string{"busy? dev/dfl-port.0", "pr dev/dfl-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "IDs compared normalised", card: dfl, image: upper, sum: upperSum,
			calls:   []string{"busy? dev/dfl-port.0", "pr dev/dfl-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "intel-fpga without VFs", card: intel, image: good, sum: goodSum,
			calls:   []string{"busy? dev/intel-fpga-port.0", "pr dev/intel-fpga-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "VFs off, PR, read back, VFs on", card: withVF, image: good, sum: goodSum,
			calls: []string{
				"busy? dev/dfl-port.1",
				"sriov_numvfs 0", "assign dev/dfl-fme.0 port 0",
				"pr dev/dfl-fme.0 port 0",
				"release dev/dfl-fme.0 port 0", "sriov_numvfs 1",
			},
			wantAFU: afuDMA, wantVFs: 1,
		},
		{
			name: "port errors cleared after VFs off, before PR", card: withVF, image: good, sum: goodSum,
			setup: func(tr *fpgatest.Tree, _ *recorder) { must(t, tr.SetPortErrors("0000:5e:00.0", 0x4)) },
			calls: []string{
				"busy? dev/dfl-port.1",
				"sriov_numvfs 0", "assign dev/dfl-fme.0 port 0",
				"clear port errors 0x4",
				"pr dev/dfl-fme.0 port 0",
				"release dev/dfl-fme.0 port 0", "sriov_numvfs 1",
			},
			wantAFU: afuDMA, wantVFs: 1,
		},
		{
			name: "intel-fpga port errors cleared", card: intel, image: good, sum: goodSum,
			setup:   func(tr *fpgatest.Tree, _ *recorder) { must(t, tr.SetPortErrors("0000:5e:00.0", 0x1)) },
			calls:   []string{"busy? dev/intel-fpga-port.0", "clear port errors 0x1", "pr dev/intel-fpga-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "interface mismatch refused before any ioctl", card: withVF, image: other, sum: otherSum,
			wantErr: fpga.ErrInterfaceMismatch,
			wantMsg: "fpga 0000:5e:00.0: program: PR interface mismatch: image is built for ce48969398f05f33946d560fb5efb62c, card has 9346116da52d5ca8b06aa9a389ef7c8d",
			wantAFU: afuNLB, wantVFs: 1,
		},
		{
			name: "digest mismatch refused", card: dfl, image: good, sum: otherSum,
			wantErr: fpga.ErrDigestMismatch, wantAFU: afuNLB,
		},
		{
			name: "digest in upper case accepted", card: dfl, image: good, sum: strings.ToUpper(goodSum),
			calls:   []string{"busy? dev/dfl-port.0", "pr dev/dfl-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "no digest refused", card: dfl, image: good, sum: "",
			wantErr: fpga.ErrNoDigest, wantAFU: afuNLB,
		},
		{
			name: "bad image refused", card: dfl, image: good[:30], sum: hexSum(good[:30]),
			wantErr: bitstream.ErrMetadataLen, wantAFU: afuNLB,
		},
		{
			name: "port busy refused", card: dfl, image: good, sum: goodSum,
			setup:   func(tr *fpgatest.Tree, _ *recorder) { must(t, tr.SetPortBusy("0000:5e:00.0", true)) },
			wantErr: fpga.ErrPortBusy,
			calls:   []string{"busy? dev/dfl-port.0"},
			wantAFU: afuNLB,
		},
		{
			name: "port busy but forced", card: dfl, image: good, sum: goodSum, force: true,
			setup:   func(tr *fpgatest.Tree, _ *recorder) { must(t, tr.SetPortBusy("0000:5e:00.0", true)) },
			calls:   []string{"pr dev/dfl-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "card with a fatal error refused even when forced", card: fatal, image: good, sum: goodSum, force: true,
			wantErr: fpga.ErrUnhealthy,
			wantMsg: "fpga 0000:5e:00.0: program: card reports a problem: fme errors/catfatal_errors = 0x4",
			wantAFU: afuNLB,
			wantVFs: 0,
		},
		{
			name: "VF held by vfio-pci refused even when forced", card: heldVF, image: good, sum: goodSum, force: true,
			wantErr: fpga.ErrHeld,
			wantMsg: "fpga 0000:5e:00.0: program: function is held by vfio-pci: vf0 0000:5e:00.1 is bound to vfio-pci; detach it from its VM first",
			wantAFU: afuNLB, wantVFs: 1,
		},
		{
			name: "read-back mismatch names the card and leaves VFs off", card: withVF, image: good, sum: goodSum,
			setup: func(tr *fpgatest.Tree, r *recorder) {
				r.afterPR = func() { must(t, tr.SetAFUID("0000:5e:00.0", afuNLB)) }
			},
			wantErr: fpga.ErrReadBack,
			wantMsg: "fpga 0000:5e:00.0: program: AFU ID read back does not match the image: port 0 reads d8424dc4a4a3c413f89e433683f9040b, want 331db30c988541ea9081f88b8f655caa; VFs left off",
			calls: []string{
				"busy? dev/dfl-port.1",
				"sriov_numvfs 0", "assign dev/dfl-fme.0 port 0",
				"pr dev/dfl-fme.0 port 0",
			},
			wantAFU: afuNLB,
		},
		{
			name: "PR error reported with the manager status", card: dfl, image: good, sum: goodSum,
			setup:   func(tr *fpgatest.Tree, r *recorder) { r.prErr = errors.New("input/output error") },
			wantMsg: "fpga 0000:5e:00.0: program: PR on port 0: input/output error",
			calls:   []string{"busy? dev/dfl-port.0", "pr dev/dfl-fme.0 port 0"},
			wantAFU: afuNLB,
		},
		{
			name: "unknown card", card: dfl, image: good, sum: goodSum,
			setup:   func(tr *fpgatest.Tree, r *recorder) {},
			wantErr: fpga.ErrNoCard,
			wantAFU: afuNLB,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, tc.card)
			r := &recorder{tree: tr}
			if tc.setup != nil {
				tc.setup(tr, r)
			}
			pci := tc.card.PCI
			if tc.name == "unknown card" {
				pci = "0000:af:00.0"
			}
			h := fpga.NewSysfsHost(tr.Root(), r)
			err := h.Program(context.Background(), pci, tc.image, fpga.ProgramOptions{SHA256: tc.sum, Force: tc.force})
			wantError(t, "Program", err, tc.wantErr, tc.wantMsg)
			if !reflect.DeepEqual(r.calls, tc.calls) {
				t.Errorf("kernel calls:\n got %q\nwant %q", r.calls, tc.calls)
			}
			if tc.calls != nil && strings.HasPrefix(r.calls[len(r.calls)-1], "pr") && err == nil {
				if !bytes.Equal(r.payload, payload) {
					t.Errorf("PR payload %q, want the bytes after the header %q", r.payload, payload)
				}
			}
			c, _ := tr.Card(tc.card.PCI)
			if got, want := c.AFUID, bitstream.NormalizeID(tc.wantAFU); got != want {
				t.Errorf("card runs %s, want %s", got, want)
			}
			if c.NumVFs != tc.wantVFs {
				t.Errorf("card has %d VFs, want %d", c.NumVFs, tc.wantVFs)
			}
		})
	}
}

// The fake card itself refuses an image for another interface, as the
// hardware does, and says so in the fpga_manager status.
func TestFakeRefusesIncompatibleImage(t *testing.T) {
	tr := newTree(t, fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB})
	img, _ := gbs(t, ifaceA10, afuDMA, []byte("x"))
	f, err := bitstream.Parse(img)
	if err != nil {
		t.Fatal(err)
	}
	err = tr.PortPR(fpga.PR{FME: filepath.Join(tr.Root(), "dev/dfl-fme.0"), Stack: fpga.StackDFL, Payload: f.Payload(img), Image: f})
	if err == nil {
		t.Fatal("PR of an incompatible image succeeded")
	}
	st, err := readFile(filepath.Join(tr.Root(), "sys/class/fpga_manager/fpga0/status"))
	if err != nil || st != "reconfig incompatible image\n" {
		t.Errorf("fpga_manager status %q (%v), want reconfig incompatible image", st, err)
	}
}

func TestSetVFs(t *testing.T) {
	card := fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB}
	tests := []struct {
		name    string
		vfs     int
		drivers []string
		n       int
		calls   []string
		wantErr error
		wantMsg string
		wantVFs int
	}{
		{name: "on: release the port, then enable", n: 1,
			calls: []string{"release dev/dfl-fme.0 port 0", "sriov_numvfs 1"}, wantVFs: 1},
		{name: "off: disable, then assign the port", vfs: 1, n: 0,
			calls: []string{"sriov_numvfs 0", "assign dev/dfl-fme.0 port 0"}},
		{name: "unchanged does nothing", vfs: 1, n: 1, wantVFs: 1},
		{name: "more than the total", n: 2,
			wantMsg: "fpga 0000:5e:00.0: set VFs to 2: want 0 to 1 (sriov_totalvfs)"},
		{name: "off refused while a VM holds a VF", vfs: 1, drivers: []string{"vfio-pci"}, n: 0,
			wantErr: fpga.ErrHeld, wantVFs: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := card
			c.NumVFs, c.VFDrivers = tc.vfs, tc.drivers
			tr := newTree(t, c)
			r := &recorder{tree: tr}
			err := fpga.NewSysfsHost(tr.Root(), r).SetVFs(context.Background(), c.PCI, tc.n)
			wantError(t, "SetVFs", err, tc.wantErr, tc.wantMsg)
			if !reflect.DeepEqual(r.calls, tc.calls) {
				t.Errorf("kernel calls:\n got %q\nwant %q", r.calls, tc.calls)
			}
			devs := discover(t, tr.Root())
			if devs[0].NumVFs != tc.wantVFs || len(devs[0].VFs) != tc.wantVFs {
				t.Errorf("after SetVFs: numvfs %d with %d VF entries, want %d", devs[0].NumVFs, len(devs[0].VFs), tc.wantVFs)
			}
		})
	}
}

// The fake kernel refuses what the driver refuses.
func TestFakeKernelRules(t *testing.T) {
	tr := newTree(t, fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB})
	pf := filepath.Join(tr.Root(), "sys/devices/pci0000:5e/0000:5e:00.0")
	fme := filepath.Join(tr.Root(), "dev/dfl-fme.0")
	if err := tr.SetNumVFs(pf, 1); err == nil {
		t.Error("VFs enabled while the PF holds the port")
	}
	must(t, tr.ReleasePort(fme, fpga.StackDFL, 0))
	if err := tr.ReleasePort(fme, fpga.StackDFL, 0); err == nil {
		t.Error("port released twice")
	}
	must(t, tr.SetNumVFs(pf, 1))
	img, _ := gbs(t, ifaceN3000, afuDMA, []byte("x"))
	f, _ := bitstream.Parse(img)
	if err := tr.PortPR(fpga.PR{FME: fme, Stack: fpga.StackDFL, Payload: f.Payload(img), Image: f}); err == nil {
		t.Error("PR accepted while the port is on a VF")
	}
	if err := tr.AssignPort(fme, fpga.StackDFL, 0); err == nil {
		t.Error("port assigned back while SR-IOV is on")
	}
	if err := tr.ReleasePort(fme, fpga.StackIntelFPGA, 0); err == nil {
		t.Error("intel-fpga ioctl accepted on a DFL FME")
	}
}

// wantError stops the test unless err is what a case wants: nil when it
// wants neither a sentinel nor a message, else wrapping wantErr and
// reading wantMsg, whichever are given.
func wantError(t *testing.T, op string, err, wantErr error, wantMsg string) {
	t.Helper()
	switch {
	case wantErr == nil && wantMsg == "" && err != nil:
		t.Fatalf("%s: %v", op, err)
	case wantErr != nil && !errors.Is(err, wantErr):
		t.Fatalf("%s: %v, want %v", op, err, wantErr)
	case wantMsg != "" && (err == nil || err.Error() != wantMsg):
		t.Fatalf("%s: %v\nwant error %s", op, err, wantMsg)
	}
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Port errors show in the card's health until they are cleared, as a
// warning: programming clears them.
func TestPortErrorsInHealth(t *testing.T) {
	tr := newTree(t, fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB})
	must(t, tr.SetPortErrors("0000:5e:00.0", 0x10))
	h := discover(t, tr.Root())[0].Health
	if want := []string{"port 0 errors/errors = 0x10"}; !reflect.DeepEqual(h.Warnings, want) || !h.OK() {
		t.Errorf("warnings %q, problems %q; want warnings %q and no problem", h.Warnings, h.Problems, want)
	}
	port := filepath.Join(tr.Root(), "sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0/dfl-port.0")
	if err := tr.ClearPortErrors(port, fpga.StackDFL, 0x1); err == nil {
		t.Error("clearing errors the port did not log succeeded")
	}
	must(t, tr.ClearPortErrors(port, fpga.StackDFL, 0x10))
	if h := discover(t, tr.Root())[0].Health; len(h.Warnings) != 0 || len(h.Registers) != 0 {
		t.Errorf("after clearing: warnings %q, registers %+v", h.Warnings, h.Registers)
	}
}

// Program sets the user clocks the image asks for, as xfpga does: after
// the port errors are cleared and before the PR, through the port's
// userclk interface; a port without one keeps its clocks.
func TestProgramUserClocks(t *testing.T) {
	payload := []byte("partial reconfiguration payload")
	clocked, clockedSum := gbsClocked(t, ifaceN3000, afuDMA, payload, 400, 200)
	fraction, fractionSum := gbsClocked(t, ifaceN3000, afuDMA, payload, 312.5, 156.25)
	lowOnly, lowOnlySum := gbsClocked(t, ifaceN3000, afuDMA, payload, 0, 312.5)
	dfl, withVF, intel := programCards()
	noClock := dfl
	noClock.NoUserClock = true
	tests := []struct {
		name      string
		card      fpgatest.Card
		image     []byte
		sum       string
		skip      bool
		clkErr    error
		portErrs  uint64
		wantErr   error
		wantMsg   string
		calls     []string
		wantClock [2]uint64
		wantAFU   string
		wantVFs   int
	}{
		{
			name: "dfl: clocks after port errors, before PR", card: withVF, image: clocked, sum: clockedSum, portErrs: 0x4,
			calls: []string{
				"busy? dev/dfl-port.1",
				"sriov_numvfs 0", "assign dev/dfl-fme.0 port 0",
				"clear port errors 0x4", "userclk 400/200 MHz",
				"pr dev/dfl-fme.0 port 0",
				"release dev/dfl-fme.0 port 0", "sriov_numvfs 1",
			},
			wantClock: [2]uint64{400, 200}, wantAFU: afuDMA, wantVFs: 1,
		},
		{
			name: "intel-fpga", card: intel, image: clocked, sum: clockedSum,
			calls:     []string{"busy? dev/intel-fpga-port.0", "userclk 400/200 MHz", "pr dev/intel-fpga-fme.0 port 0"},
			wantClock: [2]uint64{400, 200}, wantAFU: afuDMA,
		},
		{
			name: "fractions set in whole MHz, as xfpga reads them", card: dfl, image: fraction, sum: fractionSum,
			calls:     []string{"busy? dev/dfl-port.0", "userclk 312/156 MHz", "pr dev/dfl-fme.0 port 0"},
			wantClock: [2]uint64{312, 156}, wantAFU: afuDMA,
		},
		{
			name: "a port without the userclk interface keeps its clocks", card: noClock, image: clocked, sum: clockedSum,
			calls:   []string{"busy? dev/dfl-port.0", "userclk 400/200 MHz", "pr dev/dfl-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "skipped when told", card: dfl, image: clocked, sum: clockedSum, skip: true,
			calls:   []string{"busy? dev/dfl-port.0", "pr dev/dfl-fme.0 port 0"},
			wantAFU: afuDMA,
		},
		{
			name: "a low clock without a high one is refused before anything changes", card: withVF, image: lowOnly, sum: lowOnlySum,
			wantErr: fpga.ErrUserClock,
			wantMsg: "fpga 0000:5e:00.0: program: cannot set the user clocks: high clock 0 MHz (low 312 MHz): OPAE sets a high clock of 25 to 1200 MHz",
			wantAFU: afuNLB, wantVFs: 1,
		},
		{
			name: "a clock that cannot be set stops before the PR, VFs off", card: withVF, image: clocked, sum: clockedSum,
			clkErr:  fmt.Errorf("%w: userclk: exit status 1", fpga.ErrUserClock),
			wantErr: fpga.ErrUserClock,
			wantMsg: "fpga 0000:5e:00.0: program: port 0: user clocks 400/200 MHz: cannot set the user clocks: userclk: exit status 1; VFs left off",
			calls: []string{
				"busy? dev/dfl-port.1",
				"sriov_numvfs 0", "assign dev/dfl-fme.0 port 0",
				"userclk 400/200 MHz",
			},
			wantAFU: afuNLB,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, tc.card)
			if tc.portErrs != 0 {
				must(t, tr.SetPortErrors(tc.card.PCI, tc.portErrs))
			}
			r := &recorder{tree: tr, clkErr: tc.clkErr}
			err := fpga.NewSysfsHost(tr.Root(), r).Program(context.Background(), tc.card.PCI, tc.image,
				fpga.ProgramOptions{SHA256: tc.sum, SkipUserClock: tc.skip})
			wantError(t, "Program", err, tc.wantErr, tc.wantMsg)
			if !reflect.DeepEqual(r.calls, tc.calls) {
				t.Errorf("kernel calls:\n got %q\nwant %q", r.calls, tc.calls)
			}
			c, _ := tr.Card(tc.card.PCI)
			if got := [2]uint64{c.UserClockHigh, c.UserClockLow}; got != tc.wantClock {
				t.Errorf("card user clocks %v MHz, want %v", got, tc.wantClock)
			}
			if got, want := c.AFUID, bitstream.NormalizeID(tc.wantAFU); got != want || c.NumVFs != tc.wantVFs {
				t.Errorf("card runs %s with %d VFs, want %s with %d", got, c.NumVFs, want, tc.wantVFs)
			}
		})
	}
}
