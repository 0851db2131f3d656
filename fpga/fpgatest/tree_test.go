package fpgatest_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	iface = "9346116da52d5ca8b06aa9a389ef7c8d"
	afu   = "d8424dc4a4a3c413f89e433683f9040b"
)

// listing is every path below root with its link target or content, the
// tree's state file aside.
func listing(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(rel, ".fpgatest") {
			return nil
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			tgt, _ := os.Readlink(p)
			out = append(out, rel+" -> "+tgt)
		case !d.IsDir():
			b, _ := os.ReadFile(p)
			out = append(out, rel+" = "+strings.TrimSpace(string(b)))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func card(stack fpga.Stack) fpgatest.Card {
	return fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, Stack: stack, InterfaceID: iface, AFUID: afu}
}

// Turning VFs on and off again through the fake kernel leaves exactly the
// tree a card without VFs has, for both stacks.
func TestVFsOnOffRestoresTheTree(t *testing.T) {
	for _, stack := range []fpga.Stack{fpga.StackDFL, fpga.StackIntelFPGA} {
		t.Run(string(stack), func(t *testing.T) {
			tr := fpgatest.NewTree(t.TempDir())
			if err := tr.AddCard(card(stack)); err != nil {
				t.Fatal(err)
			}
			before := listing(t, tr.Root())
			h := tr.Host()
			ctx := context.Background()
			if err := h.SetVFs(ctx, "0000:5e:00.0", 1); err != nil {
				t.Fatal(err)
			}
			on := listing(t, tr.Root())
			if reflect.DeepEqual(on, before) {
				t.Fatal("SetVFs(1) changed nothing")
			}
			if err := h.SetVFs(ctx, "0000:5e:00.0", 0); err != nil {
				t.Fatal(err)
			}
			if after := listing(t, tr.Root()); !reflect.DeepEqual(after, before) {
				t.Errorf("tree after VFs on and off differs:\n got %q\nwant %q", after, before)
			}
		})
	}
}

// A VF with VFs on has the same entries whether built so by AddCard or
// turned on by the fake kernel.
func TestVFsOnMatchesBuilt(t *testing.T) {
	built := fpgatest.NewTree(t.TempDir())
	c := card(fpga.StackDFL)
	c.NumVFs = 1
	if err := built.AddCard(c); err != nil {
		t.Fatal(err)
	}
	turned := fpgatest.NewTree(t.TempDir())
	if err := turned.AddCard(card(fpga.StackDFL)); err != nil {
		t.Fatal(err)
	}
	if err := turned.Host().SetVFs(context.Background(), c.PCI, 1); err != nil {
		t.Fatal(err)
	}
	if a, b := listing(t, built.Root()), listing(t, turned.Root()); !reflect.DeepEqual(a, b) {
		t.Errorf("built:\n%q\nturned on:\n%q", a, b)
	}
}

func TestBindVF(t *testing.T) {
	tr := fpgatest.NewTree(t.TempDir())
	c := card(fpga.StackDFL)
	c.NumVFs = 1
	if err := tr.AddCard(c); err != nil {
		t.Fatal(err)
	}
	h := fpga.NewSysfsHost(tr.Root(), nil)
	port := func() fpga.Port {
		t.Helper()
		devs, err := h.Discover(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return devs[0].Ports[0]
	}
	if p := port(); p.AFUID != afu || !p.OnVF {
		t.Errorf("host-held VF: port %+v, want the AFU on a VF", p)
	}
	if err := tr.BindVF(c.PCI, 0, "vfio-pci"); err != nil {
		t.Fatal(err)
	}
	if p := port(); p.AFUID != "" || !p.OnVF {
		t.Errorf("VM-held VF: port %+v, want an unknown AFU", p)
	}
	if _, err := os.Stat(filepath.Join(tr.Root(), "dev/vfio/1")); err != nil {
		t.Errorf("vfio group node: %v", err)
	}
	if err := tr.BindVF(c.PCI, 0, ""); err != nil {
		t.Fatal(err)
	}
	if p := port(); p.AFUID != afu {
		t.Errorf("VF back on the host: port %+v", p)
	}
}

// Open picks up a tree where another process left it.
func TestOpen(t *testing.T) {
	root := t.TempDir()
	tr := fpgatest.NewTree(root)
	if err := tr.AddCard(card(fpga.StackIntelFPGA)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Host().SetVFs(context.Background(), "0000:5e:00.0", 1); err != nil {
		t.Fatal(err)
	}
	again, err := fpgatest.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := again.Card("0000:5e:00.0")
	if !ok || c.NumVFs != 1 || c.AFUID != afu {
		t.Fatalf("reopened card %+v, %v", c, ok)
	}
	// The port is still released: turning VFs off must assign it back.
	if err := again.Host().SetVFs(context.Background(), "0000:5e:00.0", 0); err != nil {
		t.Fatal(err)
	}
	if err := again.AddCard(fpgatest.Card{PCI: "0000:af:00.0", Board: spec.BoardD5005, InterfaceID: iface, AFUID: afu}); err != nil {
		t.Fatal(err)
	}
	devs, err := again.Host().Discover(context.Background())
	if err != nil || len(devs) != 2 || devs[0].Ports[0].OnVF || devs[1].Ports[0].Dev != "dev/dfl-port.0" {
		t.Fatalf("after reopening: %+v, %v", devs, err)
	}
	if _, err := fpgatest.Open(t.TempDir()); err == nil {
		t.Error("Open of an empty directory succeeded")
	}
}

func TestAddCardErrors(t *testing.T) {
	tr := fpgatest.NewTree(t.TempDir())
	if err := tr.AddCard(card(fpga.StackDFL)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    fpgatest.Card
		want string
	}{
		{"bad address", fpgatest.Card{PCI: "5e:00.0", Board: spec.BoardN3000}, "PCI address"},
		{"duplicate", card(fpga.StackDFL), "already added"},
		{"unknown board", fpgatest.Card{PCI: "0000:af:00.0", Board: "pac-x"}, "unknown board"},
		{"unknown stack", fpgatest.Card{PCI: "0000:af:00.0", Board: spec.BoardN3000, Stack: "opae"}, "unknown stack"},
		{"too many VFs", fpgatest.Card{PCI: "0000:af:00.0", Board: spec.BoardN3000, NumVFs: 2}, "VFs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tr.AddCard(tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("AddCard: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

// A VM that holds the whole PF (vfio-pci) takes the card's FPGA features
// with it, as on hardware: no FME, port, regions, hwmon or device nodes
// remain, discovery shows no interface or AFU ID, and giving the PF back
// restores the tree exactly.
func TestPFHeldByVM(t *testing.T) {
	for _, stack := range []fpga.Stack{fpga.StackDFL, fpga.StackIntelFPGA} {
		t.Run(string(stack), func(t *testing.T) {
			tr := fpgatest.NewTree(t.TempDir())
			c := card(stack)
			if err := tr.AddCard(c); err != nil {
				t.Fatal(err)
			}
			before := listing(t, tr.Root())
			if err := tr.BindPF(c.PCI, "vfio-pci"); err != nil {
				t.Fatal(err)
			}
			held := listing(t, tr.Root())
			for _, l := range held {
				for _, gone := range []string{"dfl-fme", "dfl-port", "intel-fpga", "fpga_region/", "fpga_manager/", "hwmon", "/errors/"} {
					if strings.Contains(l, gone) {
						t.Errorf("with the PF in a VM the tree still has %s", l)
					}
				}
			}
			if _, err := os.Stat(filepath.Join(tr.Root(), "dev/vfio/0")); err != nil {
				t.Errorf("vfio group node: %v", err)
			}
			devs, err := fpga.NewSysfsHost(tr.Root(), nil).Discover(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			d := devs[0]
			if d.Driver != "vfio-pci" || d.InterfaceID != "" || d.AFUID() != "" || len(d.Ports) != 0 || len(d.Health.Sensors) != 0 || !d.Health.OK() {
				t.Errorf("PF in a VM discovered as %+v", d)
			}
			if err := tr.BindPF(c.PCI, ""); err != nil {
				t.Fatal(err)
			}
			if after := listing(t, tr.Root()); !reflect.DeepEqual(after, before) {
				t.Errorf("tree after the PF came back differs:\n got %q\nwant %q", after, before)
			}
		})
	}
}

// The health a test sets is written where and how each driver writes it.
func TestSetHealthFiles(t *testing.T) {
	sick := fpgatest.Health{CatFatal: 0x1, FMEErrors: 0x2, PortFirstError: 0x4, PowerState: 1, AP2Event: true,
		TempMilliC: 101500, PowerMicroW: 75000000, PortsNum: 2}
	for _, tc := range []struct {
		stack fpga.Stack
		files map[string]string
	}{
		{fpga.StackDFL, map[string]string{
			"fpga_region/region0/dfl-fme.0/errors/catfatal_errors":        "0x1",
			"fpga_region/region0/dfl-fme.0/errors/fme_errors":             "0x2",
			"fpga_region/region0/dfl-fme.0/ports_num":                     "2",
			"fpga_region/region0/dfl-fme.0/hwmon/hwmon0/name":             "dfl_fme_thermal",
			"fpga_region/region0/dfl-fme.0/hwmon/hwmon0/temp1_input":      "101500",
			"fpga_region/region0/dfl-fme.0/hwmon/hwmon0/temp1_crit_alarm": "1",
			"fpga_region/region0/dfl-fme.0/hwmon/hwmon1/power1_input":     "75000000",
			"fpga_region/region0/dfl-port.0/errors/first_error":           "0x4",
			"fpga_region/region0/dfl-port.0/power_state":                  "0x1",
			"fpga_region/region0/dfl-port.0/ap2_event":                    "1",
		}},
		{fpga.StackIntelFPGA, map[string]string{
			"fpga/intel-fpga-dev.0/intel-fpga-fme.0/errors/catfatal_errors":   "0x1",
			"fpga/intel-fpga-dev.0/intel-fpga-fme.0/errors/fme-errors/errors": "0x2",
			"fpga/intel-fpga-dev.0/intel-fpga-fme.0/thermal_mgmt/temperature": "101",
			"fpga/intel-fpga-dev.0/intel-fpga-fme.0/thermal_mgmt/threshold2":  "100",
			"fpga/intel-fpga-dev.0/intel-fpga-fme.0/power_mgmt/consumed":      "0x4b",
			"fpga/intel-fpga-dev.0/intel-fpga-port.0/errors/first_error":      "0x4",
			"fpga/intel-fpga-dev.0/intel-fpga-port.0/power_state":             "0x1",
		}},
	} {
		t.Run(string(tc.stack), func(t *testing.T) {
			tr := fpgatest.NewTree(t.TempDir())
			c := card(tc.stack)
			if err := tr.AddCard(c); err != nil {
				t.Fatal(err)
			}
			healthy := listing(t, tr.Root())
			if err := tr.SetHealth(c.PCI, sick); err != nil {
				t.Fatal(err)
			}
			pf := filepath.Join(tr.Root(), "sys/devices/pci0000:5e/0000:5e:00.0")
			for f, want := range tc.files {
				b, err := os.ReadFile(filepath.Join(pf, f))
				if err != nil || strings.TrimSpace(string(b)) != want {
					t.Errorf("%s = %q (%v), want %q", f, b, err, want)
				}
			}
			if err := tr.SetHealth(c.PCI, fpgatest.Health{}); err != nil {
				t.Fatal(err)
			}
			if again := listing(t, tr.Root()); !reflect.DeepEqual(again, healthy) {
				t.Errorf("healthy again, the tree differs from the new card's")
			}
		})
	}
}

// Ports show the userclk interface except DFL ports that hide it
// (NoUserClock), and SetUserClock on such a port says it has none.
func TestUserClockInterface(t *testing.T) {
	for _, tc := range []struct {
		stack   fpga.Stack
		hide    bool
		port    string
		present bool
	}{
		{fpga.StackDFL, false, "fpga_region/region0/dfl-port.0", true},
		{fpga.StackDFL, true, "fpga_region/region0/dfl-port.0", false},
		{fpga.StackIntelFPGA, true, "fpga/intel-fpga-dev.0/intel-fpga-port.0", true},
	} {
		tr := fpgatest.NewTree(t.TempDir())
		c := card(tc.stack)
		c.NoUserClock = tc.hide
		if err := tr.AddCard(c); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(tr.Root(), "sys/devices/pci0000:5e/0000:5e:00.0", tc.port)
		_, err := os.Stat(filepath.Join(dir, "userclk_freqcmd"))
		if (err == nil) != tc.present {
			t.Errorf("%s hide=%v: userclk_freqcmd present %v, want %v", tc.stack, tc.hide, err == nil, tc.present)
		}
		err = tr.SetUserClock(dir, tc.stack, fpga.UserClock{High: 300, Low: 150})
		got, _ := tr.Card(c.PCI)
		switch {
		case tc.present && (err != nil || got.UserClockHigh != 300 || got.UserClockLow != 150):
			t.Errorf("%s: SetUserClock: %v, card clocks %d/%d", tc.stack, err, got.UserClockHigh, got.UserClockLow)
		case !tc.present && !errors.Is(err, fpga.ErrUserClockUnavailable):
			t.Errorf("%s hidden: SetUserClock: %v, want ErrUserClockUnavailable", tc.stack, err)
		}
	}
}
