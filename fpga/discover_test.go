package fpga_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	ifaceN3000 = "9346116d-a52d-5ca8-b06a-a9a389ef7c8d"
	ifaceA10   = "ce489693-98f0-5f33-946d-560fb5efb62c"
	afuNLB     = "d8424dc4-a4a3-c413-f89e-433683f9040b"
	afuDMA     = "331db30c-9885-41ea-9081-f88b8f655caa"
)

func newTree(t *testing.T, cards ...fpgatest.Card) *fpgatest.Tree {
	t.Helper()
	tr := fpgatest.NewTree(t.TempDir())
	for _, c := range cards {
		if err := tr.AddCard(c); err != nil {
			t.Fatal(err)
		}
	}
	return tr
}

// defaultSensors is what a healthy fake card's sensors read.
func defaultSensors(stack fpga.Stack) []fpga.Sensor {
	if stack == fpga.StackIntelFPGA {
		return []fpga.Sensor{
			{Name: "thermal_mgmt temperature", Kind: fpga.SensorTemperature, Value: 45, Max: 90, Crit: 100, Emergency: 105},
			{Name: "power_mgmt consumed", Kind: fpga.SensorPower, Value: 40, Max: 60, Crit: 70},
		}
	}
	return []fpga.Sensor{
		{Name: "dfl_fme_thermal temp1", Kind: fpga.SensorTemperature, Value: 45, Max: 90, Crit: 100, Emergency: 105},
		{Name: "dfl_fme_power power1", Kind: fpga.SensorPower, Value: 40, Max: 60, Crit: 70},
	}
}

func discover(t *testing.T, root string) []fpga.Device {
	t.Helper()
	devs, err := fpga.NewSysfsHost(root, nil).Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return devs
}

func TestDiscover(t *testing.T) {
	n3000 := fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, Stack: fpga.StackDFL,
		InterfaceID: ifaceN3000, AFUID: afuNLB, NUMANode: 1}
	a10 := fpgatest.Card{PCI: "0000:3b:00.0", Board: spec.BoardPACA10, Stack: fpga.StackIntelFPGA,
		InterfaceID: ifaceA10, AFUID: afuDMA}
	tests := []struct {
		name   string
		cards  []fpgatest.Card
		modify func(t *testing.T, root string)
		want   []fpga.Device
	}{
		{
			name:  "dfl n3000",
			cards: []fpgatest.Card{n3000},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", NUMANode: 1,
				Stack: fpga.StackDFL, Driver: "dfl-pci",
				InterfaceID: "9346116da52d5ca8b06aa9a389ef7c8d", BitstreamID: 0x0231000200000304, BBSVersion: "2.3.1",
				TotalVFs: 1,
				Ports:    []fpga.Port{{ID: 0, AFUID: "d8424dc4a4a3c413f89e433683f9040b", Dev: "dev/dfl-port.0"}},
				Health:   fpga.Health{Sensors: defaultSensors(fpga.StackDFL)},
			}},
		},
		{
			name:  "intel-fpga pac a10",
			cards: []fpgatest.Card{a10},
			want: []fpga.Device{{
				PCI: "0000:3b:00.0", Vendor: 0x8086, DeviceID: 0x09c4, Board: "pac-a10",
				Stack: fpga.StackIntelFPGA, Driver: "intel-fpga-pci",
				InterfaceID: "ce48969398f05f33946d560fb5efb62c", BitstreamID: 0x0113000200000404, BBSVersion: "1.1.3",
				TotalVFs: 1,
				Ports:    []fpga.Port{{ID: 0, AFUID: "331db30c988541ea9081f88b8f655caa", Dev: "dev/intel-fpga-port.0"}},
				Health:   fpga.Health{Sensors: defaultSensors(fpga.StackIntelFPGA)},
			}},
		},
		{
			name: "vf held by vfio-pci",
			cards: []fpgatest.Card{{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000,
				AFUID: afuNLB, NumVFs: 1, VFDrivers: []string{"vfio-pci"}}},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000",
				Stack: fpga.StackDFL, Driver: "dfl-pci",
				InterfaceID: "9346116da52d5ca8b06aa9a389ef7c8d", BitstreamID: 0x0231000200000304, BBSVersion: "2.3.1",
				NumVFs: 1, TotalVFs: 1,
				VFs:    []fpga.Function{{Index: 0, PCI: "0000:5e:00.1", Driver: "vfio-pci"}},
				Ports:  []fpga.Port{{ID: 0, OnVF: true}},
				Health: fpga.Health{Sensors: defaultSensors(fpga.StackDFL)},
			}},
		},
		{
			name: "vf held by the host",
			cards: []fpgatest.Card{{PCI: "0000:3b:00.0", Board: spec.BoardPACA10, Stack: fpga.StackIntelFPGA,
				InterfaceID: ifaceA10, AFUID: afuDMA, NumVFs: 1}},
			want: []fpga.Device{{
				PCI: "0000:3b:00.0", Vendor: 0x8086, DeviceID: 0x09c4, Board: "pac-a10",
				Stack: fpga.StackIntelFPGA, Driver: "intel-fpga-pci",
				InterfaceID: "ce48969398f05f33946d560fb5efb62c", BitstreamID: 0x0113000200000404, BBSVersion: "1.1.3",
				NumVFs: 1, TotalVFs: 1,
				VFs:    []fpga.Function{{Index: 0, PCI: "0000:3b:00.1", Driver: "intel-fpga-pci"}},
				Ports:  []fpga.Port{{ID: 0, AFUID: "331db30c988541ea9081f88b8f655caa", OnVF: true, Dev: "dev/intel-fpga-port.1"}},
				Health: fpga.Health{Sensors: defaultSensors(fpga.StackIntelFPGA)},
			}},
		},
		{
			name: "crashed card",
			cards: []fpgatest.Card{{PCI: "0000:5e:00.0", Board: spec.BoardD5005, InterfaceID: ifaceN3000,
				AFUID: afuNLB, Crashed: true}},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b2b, Board: "pac-d5005",
				Stack: fpga.StackDFL, Driver: "dfl-pci",
				InterfaceID: strings.Repeat("f", 32), BitstreamID: 0x0201000000000000, BBSVersion: "2.0.1",
				TotalVFs: 1,
				Ports:    []fpga.Port{{ID: 0, AFUID: strings.Repeat("f", 32), Dev: "dev/dfl-port.0"}},
				Health: fpga.Health{Problems: []string{
					"PR interface ID reads all f: firmware crashed",
					"port 0 AFU ID reads all f: firmware crashed",
				}, Sensors: defaultSensors(fpga.StackDFL)},
			}},
		},
		{
			name:  "partially missing tree",
			cards: []fpgatest.Card{n3000},
			modify: func(t *testing.T, root string) {
				pf := filepath.Join(root, "sys/devices/pci0000:5e/0000:5e:00.0")
				for _, p := range []string{
					"fpga_region/region0/dfl-fme.0/dfl-fme-region.1/fpga_region/region1/compat_id",
					"fpga_region/region0/dfl-port.0/afu_id",
					"numa_node",
				} {
					if err := os.Remove(filepath.Join(pf, p)); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(pf, "fpga_region/region0/dfl-fme.0/ports_num"), []byte("one\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", NUMANode: -1,
				Stack: fpga.StackDFL, Driver: "dfl-pci",
				BitstreamID: 0x0231000200000304, BBSVersion: "2.3.1",
				TotalVFs: 1,
				Ports:    []fpga.Port{{ID: 0, Dev: "dev/dfl-port.0"}},
				Health: fpga.Health{Problems: []string{
					`cannot parse /sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0/dfl-fme.0/ports_num: strconv.Atoi: parsing "one": invalid syntax`,
					"no PR region with a compat_id below /sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0/dfl-fme.0",
					"cannot read /sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0/dfl-port.0/afu_id: no such file or directory",
				}, Sensors: defaultSensors(fpga.StackDFL)},
			}},
		},
		{
			name:  "IDs read with dashes and capitals are normalised",
			cards: []fpgatest.Card{n3000},
			modify: func(t *testing.T, root string) {
				region := filepath.Join(root, "sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0")
				for p, v := range map[string]string{
					"dfl-fme.0/dfl-fme-region.1/fpga_region/region1/compat_id": "9346116D-A52D-5CA8-B06A-A9A389EF7C8D\n",
					"dfl-port.0/afu_id": "D8424DC4-A4A3-C413-F89E-433683F9040B\n",
				} {
					if err := os.WriteFile(filepath.Join(region, p), []byte(v), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", NUMANode: 1,
				Stack: fpga.StackDFL, Driver: "dfl-pci",
				InterfaceID: "9346116da52d5ca8b06aa9a389ef7c8d", BitstreamID: 0x0231000200000304, BBSVersion: "2.3.1",
				TotalVFs: 1,
				Ports:    []fpga.Port{{ID: 0, AFUID: "d8424dc4a4a3c413f89e433683f9040b", Dev: "dev/dfl-port.0"}},
				Health:   fpga.Health{Sensors: defaultSensors(fpga.StackDFL)},
			}},
		},
		{
			name:  "driver unbound",
			cards: []fpgatest.Card{{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB, PFDriver: "none"}},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000",
				TotalVFs: 1, Ports: []fpga.Port{},
				Health: fpga.Health{Problems: []string{"no driver bound to the PF"}},
			}},
		},
		{
			name:  "pf held by vfio-pci",
			cards: []fpgatest.Card{{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB, PFDriver: "vfio-pci"}},
			want: []fpga.Device{{
				PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000",
				Driver: "vfio-pci", TotalVFs: 1, Ports: []fpga.Port{},
			}},
		},
		{
			name:  "two cards on one host",
			cards: []fpgatest.Card{n3000, a10},
			want: []fpga.Device{
				{
					PCI: "0000:3b:00.0", Vendor: 0x8086, DeviceID: 0x09c4, Board: "pac-a10",
					Stack: fpga.StackIntelFPGA, Driver: "intel-fpga-pci",
					InterfaceID: "ce48969398f05f33946d560fb5efb62c", BitstreamID: 0x0113000200000404, BBSVersion: "1.1.3",
					TotalVFs: 1,
					Ports:    []fpga.Port{{ID: 0, AFUID: "331db30c988541ea9081f88b8f655caa", Dev: "dev/intel-fpga-port.0"}},
					Health:   fpga.Health{Sensors: defaultSensors(fpga.StackIntelFPGA)},
				},
				{
					PCI: "0000:5e:00.0", Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", NUMANode: 1,
					Stack: fpga.StackDFL, Driver: "dfl-pci",
					InterfaceID: "9346116da52d5ca8b06aa9a389ef7c8d", BitstreamID: 0x0231000200000304, BBSVersion: "2.3.1",
					TotalVFs: 1,
					Ports:    []fpga.Port{{ID: 0, AFUID: "d8424dc4a4a3c413f89e433683f9040b", Dev: "dev/dfl-port.0"}},
					Health:   fpga.Health{Sensors: defaultSensors(fpga.StackDFL)},
				},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTree(t, tc.cards...)
			if tc.modify != nil {
				tc.modify(t, tr.Root())
			}
			got := discover(t, tr.Root())
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Discover:\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// A link that leads out of the root is not followed, even to something
// that looks like a card.
func TestDiscoverStaysBelowRoot(t *testing.T) {
	outside := newTree(t, fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, InterfaceID: ifaceN3000, AFUID: afuNLB})
	root := t.TempDir()
	class := filepath.Join(root, "sys/class/fpga_region")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(outside.Root(), "sys/devices/pci0000:5e/0000:5e:00.0/fpga_region/region0")
	rel, err := filepath.Rel(class, target)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rel, filepath.Join(class, "region0")); err != nil {
		t.Fatal(err)
	}
	if got := discover(t, root); len(got) != 0 {
		t.Errorf("Discover followed a link out of the root: %+v", got)
	}
}

func TestDiscoverNoSysfs(t *testing.T) {
	_, err := fpga.NewSysfsHost(t.TempDir(), nil).Discover(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no sysfs") {
		t.Fatalf("Discover on an empty root: %v, want a no-sysfs error", err)
	}
}

func TestBBSVersion(t *testing.T) {
	for _, tc := range []struct {
		id   uint64
		want string
	}{
		{0x0113000200000404, "1.1.3"},
		{0x0231000200000304, "2.3.1"},
		{0, "0.0.0"},
		{^uint64(0), "15.15.15"},
	} {
		if got := fpga.BBSVersion(tc.id); got != tc.want {
			t.Errorf("BBSVersion(%#x) = %s, want %s", tc.id, got, tc.want)
		}
	}
}

func readFile(p string) (string, error) {
	b, err := os.ReadFile(p)
	return string(b), err
}
