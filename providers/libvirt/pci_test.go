package libvirt

import (
	"reflect"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/fpgaops/fpgaops/spec"
)

func TestHostdevXML(t *testing.T) {
	a, err := spec.ParsePCIAddress("0000:5e:00.1")
	if err != nil {
		t.Fatal(err)
	}
	x, err := hostdevXML(a)
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
	if nodeDevName(a) != "pci_0000_5e_00_1" {
		t.Errorf("nodeDevName = %s", nodeDevName(a))
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
