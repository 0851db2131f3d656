package kubernetes

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/fpga/agent/dra"
	"github.com/fpgaops/fpgaops/spec"
)

// DriverName is the DRA driver of fpgaops's devices.
const DriverName = dra.DriverName

// Attributes of a device in the ResourceSlice, in the driver's domain
// (fpga.fpgaops.io/pool), and the standard PCI address. A CEL selector
// reads them as device.attributes["fpga.fpgaops.io"].pool.
const (
	AttrPool        = "pool"
	AttrBitstream   = "bitstream"
	AttrAFUID       = "afuID"
	AttrInterfaceID = "interfaceID"
	AttrBoard       = "board"
	AttrSlot        = "slot"
	AttrFunction    = "function"
	AttrHealth      = "health"
	AttrPCI         = "resource.kubernetes.io/pciBusID"
)

// HealthOK is the health attribute of a published device: fpgaops
// publishes only the devices of cards that read healthy.
const HealthOK = "ok"

// LabelManagedBy marks the objects fpgaops makes and owns.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "fpgaops"
)

// ClassName is the DeviceClass of a pool: "genomics.fpga.fpgaops.io".
func ClassName(pool string) string { return pool + "." + DriverName }

// PoolOfClass is the pool of a DeviceClass fpgaops names, or "".
func PoolOfClass(class string) string {
	pool, ok := strings.CutSuffix(class, "."+DriverName)
	if !ok || strings.Contains(pool, ".") {
		return ""
	}
	return pool
}

// ClassSelector is the CEL expression of a pool's DeviceClass.
func ClassSelector(pool string) string {
	return `device.driver == "` + DriverName + `" && device.attributes["` + DriverName + `"].` + AttrPool + ` == "` + pool + `"`
}

// SliceName is the name of a Kubernetes node's ResourceSlice of the
// driver; the node is also the slice's pool.
func SliceName(kubeNode string) string { return kubeNode + "." + DriverName }

// DeviceName is a PCI function's device name (dra.DeviceName).
func DeviceName(pci string) string { return dra.DeviceName(pci) }

// offer is what a card's devices say when they are published: the pool
// of each function a binding gives out, and what every device of the
// card shares.
type offer struct {
	pools map[string]string // function ("pf", "vf0") -> pool
	attrs map[string]string // the shared attributes
}

// newOffer is what a card offers running bs, with the pool bindings bs.
func newOffer(f *spec.FPGA, card *Card, bs *spec.Bitstream, bindings []*spec.Binding) offer {
	o := offer{pools: map[string]string{}, attrs: map[string]string{
		AttrBitstream: bs.Name, AttrAFUID: bs.AFUID, AttrBoard: string(f.Board), AttrSlot: f.Slot, AttrHealth: HealthOK,
	}}
	iface := f.InterfaceID
	if card != nil && card.InterfaceID != "" {
		iface = card.InterfaceID
	}
	if iface != "" {
		o.attrs[AttrInterfaceID] = iface
	}
	for _, b := range bindings {
		if b.Pool != "" {
			o.pools[b.Function.String()] = b.Pool
		}
	}
	return o
}

// empty reports whether the card gives nothing out.
func (o offer) empty() bool { return len(o.pools) == 0 }

// devices are the card's devices, with the functions' addresses: a VF's
// is the card's, so ok is false when a VF it gives out is not on.
func (o offer) devices(pf string, vfs []Function) (devs []Device, ok bool) {
	for _, fn := range slices.Sorted(maps.Keys(o.pools)) {
		pci := pf
		if fn != "pf" {
			pci = ""
			for _, vf := range vfs {
				if "vf"+strconv.Itoa(vf.Index) == fn {
					pci = vf.PCI
				}
			}
			if pci == "" {
				return nil, false
			}
		}
		attrs := maps.Clone(o.attrs)
		attrs[AttrPool], attrs[AttrFunction], attrs[AttrPCI] = o.pools[fn], fn, pci
		devs = append(devs, Device{Name: DeviceName(pci), Attrs: attrs})
	}
	slices.SortFunc(devs, func(a, b Device) int { return strings.Compare(a.Name, b.Name) })
	return devs, true
}

// Attrs is the offer as a change's attributes: the shared ones and
// "devices", function=pool pairs ("pf=genomics").
func (o offer) Attrs(slice string) map[string]string {
	a := maps.Clone(o.attrs)
	var pairs []string
	for _, fn := range slices.Sorted(maps.Keys(o.pools)) {
		pairs = append(pairs, fn+"="+o.pools[fn])
	}
	a[attrDevices], a[attrSlice] = strings.Join(pairs, ","), slice
	return a
}

// offerOf reads an offer back from a change's attributes.
func offerOf(a map[string]string) offer {
	o := offer{pools: map[string]string{}, attrs: map[string]string{}}
	for k, v := range a {
		switch k {
		case attrDevices:
			for _, p := range splitList(v) {
				fn, pool, _ := strings.Cut(p, "=")
				o.pools[fn] = pool
			}
		case attrSlice:
		default:
			o.attrs[k] = v
		}
	}
	return o
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// sameDevices reports whether two device lists are equal.
func sameDevices(a, b []Device) bool {
	return slices.EqualFunc(a, b, func(x, y Device) bool { return x.Name == y.Name && maps.Equal(x.Attrs, y.Attrs) })
}

// pciOf is the PCI address a device name stands for (dra.PCIOf).
func pciOf(device string) (string, bool) { return dra.PCIOf(device) }
