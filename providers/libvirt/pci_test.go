package libvirt

import (
	"reflect"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// canonical is how String writes the valid addresses of TestParsePCI.
var canonical = map[string]string{
	"0000:5e:00.0": "0000:5e:00.0",
	"0000:5e:00.7": "0000:5e:00.7",
	"10de:af:1f.3": "10de:af:1f.3",
	"5e:00.0":      "0000:5e:00.0",
	"0000:AF:00.1": "0000:af:00.1",
}

func TestParsePCI(t *testing.T) {
	tests := []struct {
		name, in string
		want     pciAddr
		ok       bool
	}{
		{"PF", "0000:5e:00.0", pciAddr{0, 0x5e, 0, 0}, true},
		{"VF", "0000:5e:00.7", pciAddr{0, 0x5e, 0, 7}, true},
		{"domain and slot", "10de:af:1f.3", pciAddr{0x10de, 0xaf, 0x1f, 3}, true},
		{"no domain", "5e:00.0", pciAddr{0, 0x5e, 0, 0}, true},
		{"uppercase", "0000:AF:00.1", pciAddr{0, 0xaf, 0, 1}, true},
		{"no slot", "0000:5e.0", pciAddr{}, false},
		{"slot beyond 31", "0000:5e:20.0", pciAddr{}, false},
		{"function beyond 7", "0000:5e:00.8", pciAddr{}, false},
		{"not hex", "0000:5g:00.0", pciAddr{}, false},
		{"three-digit slot", "0000:5e:000.0", pciAddr{}, false},
		{"empty", "", pciAddr{}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePCI(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("parsePCI(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if got != tc.want {
				t.Errorf("parsePCI(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			if want := canonical[tc.in]; tc.ok && got.String() != want {
				t.Errorf("String() = %q, want %q", got.String(), want)
			}
		})
	}
}

func TestHostdevXML(t *testing.T) {
	a, _ := parsePCI("0000:5e:00.1")
	x, err := a.hostdevXML()
	if err != nil {
		t.Fatal(err)
	}
	want := `<hostdev mode="subsystem" type="pci" managed="yes">
  <source>
    <address domain="0x0000" bus="0x5e" slot="0x00" function="0x1"></address>
  </source>
</hostdev>`
	if x != want {
		t.Errorf("hostdev XML:\n got %s\nwant %s", x, want)
	}
	if a.nodeDevName() != "pci_0000_5e_00_1" {
		t.Errorf("nodeDevName = %s", a.nodeDevName())
	}
}

// A VF as libvirt's node device driver reports it on a real host: bound
// driver, physical function, IOMMU group.
const vfNodeDevice = `<device>
  <name>pci_0000_5e_00_1</name>
  <path>/sys/devices/pci0000:5d/0000:5d:00.0/0000:5e:00.1</path>
  <parent>pci_0000_5d_00_0</parent>
  <driver>
    <name>vfio-pci</name>
  </driver>
  <capability type='pci'>
    <class>0x120000</class>
    <domain>0</domain>
    <bus>94</bus>
    <slot>0</slot>
    <function>1</function>
    <product id='0x0b31'/>
    <vendor id='0x8086'>Intel Corporation</vendor>
    <capability type='phys_function'>
      <address domain='0x0000' bus='0x5e' slot='0x00' function='0x0'/>
    </capability>
    <iommuGroup number='75'>
      <address domain='0x0000' bus='0x5e' slot='0x00' function='0x1'/>
    </iommuGroup>
    <numa node='1'/>
  </capability>
</device>`

func TestParseNodeDevice(t *testing.T) {
	got, ok, err := parseNodeDevice(vfNodeDevice)
	if err != nil || !ok {
		t.Fatalf("parseNodeDevice: ok=%v err=%v", ok, err)
	}
	want := PCIDevice{PCI: "0000:5e:00.1", Vendor: 0x8086, Product: 0x0b31, Driver: "vfio-pci",
		IOMMUGroup: 75, NUMANode: 1, PhysFn: "0000:5e:00.0"}
	if got != want {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if _, ok, err := parseNodeDevice(`<device><name>computer</name><capability type='system'/></device>`); err != nil || ok {
		t.Errorf("non-PCI device: ok=%v err=%v, want skipped", ok, err)
	}
	if _, _, err := parseNodeDevice(`<device`); err == nil {
		t.Error("broken XML parsed")
	}
}

func TestDomainStateVM(t *testing.T) {
	var def libvirtxml.Domain
	if err := def.Unmarshal(`<domain type='kvm'><name>db-01</name><devices>
	  <hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x5e' slot='0x00' function='0x1'/></source></hostdev>
	  <hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/></source></hostdev>
	</devices></domain>`); err != nil {
		t.Fatal(err)
	}
	if got := pciHostdevs(&def); !reflect.DeepEqual(got, []string{"0000:5e:00.1"}) {
		t.Fatalf("pciHostdevs = %v", got)
	}
	s := domainState{running: true, live: []string{"0000:af:00.0", "0000:5e:00.1"}, config: []string{"0000:5e:00.1", "0000:3b:00.0"}}
	s.dom.Name = "db-01"
	got := s.vm()
	want := []struct {
		pci          string
		live, config bool
	}{{"0000:3b:00.0", false, true}, {"0000:5e:00.1", true, true}, {"0000:af:00.0", true, false}}
	if len(got.Hostdevs) != len(want) {
		t.Fatalf("hostdevs = %+v", got.Hostdevs)
	}
	for i, w := range want {
		h := got.Hostdevs[i]
		if h.PCI != w.pci || h.Live != w.live || h.Config != w.config {
			t.Errorf("hostdev %d = %+v, want %+v", i, h, w)
		}
	}
}
