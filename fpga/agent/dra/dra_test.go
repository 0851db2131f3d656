package dra

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	resourceapi "k8s.io/api/resource/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/dynamic-resource-allocation/kubeletplugin"
	cdi "tags.cncf.io/container-device-interface/specs-go"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	node   = "kube-a"
	pciPF  = "0000:3b:00.0" // a whole card, its port on the PF
	pciVFs = "0000:5e:00.0" // its VF bound to vfio-pci
	pciVF  = "0000:5e:00.1"
	pciDFL = "0000:af:00.0" // its VF bound to the FPGA driver
	pciDVF = "0000:af:00.1"
	pciBad = "0000:d8:00.0" // reports a fatal error
	afu    = "2b6e9d41c7a34f05b8e13d92a6f7c04e"
)

// testPlugin is a plugin over a fake host with four cards, not started:
// the kubelet's calls are its methods.
func testPlugin(t *testing.T) (*Plugin, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	tree := fpgatest.NewTree(root)
	for _, c := range []fpgatest.Card{
		{PCI: pciPF, Board: spec.BoardD5005, AFUID: afu},
		{PCI: pciVFs, Board: spec.BoardN3000, AFUID: afu, NumVFs: 1, VFDrivers: []string{"vfio-pci"}},
		{PCI: pciDFL, Board: spec.BoardN3000, AFUID: afu, NumVFs: 1},
		{PCI: pciBad, Board: spec.BoardD5005, AFUID: afu, Health: fpgatest.Health{CatFatal: 1}},
	} {
		if err := tree.AddCard(c); err != nil {
			t.Fatal(err)
		}
	}
	p, err := newPlugin(Options{Node: node, Host: tree.Host(), Root: root, CDIDir: filepath.Join(t.TempDir(), "cdi")})
	if err != nil {
		t.Fatal(err)
	}
	return p, root
}

// claim is a claim allocated these devices of the pool.
func claim(uid, pool string, devices ...string) *resourceapi.ResourceClaim {
	c := &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Namespace: "lab", Name: "c-" + uid, UID: types.UID(uid)}}
	c.Status.Allocation = &resourceapi.AllocationResult{}
	for _, d := range devices {
		c.Status.Allocation.Devices.Results = append(c.Status.Allocation.Devices.Results,
			resourceapi.DeviceRequestAllocationResult{Request: "fpga", Driver: DriverName, Pool: pool, Device: d})
	}
	return c
}

func TestDeviceName(t *testing.T) {
	for _, pci := range []string{pciPF, pciVF, "ffff:ff:1f.7"} {
		name := DeviceName(pci)
		back, ok := PCIOf(name)
		if !ok || back != pci {
			t.Errorf("%s -> %s -> %s, %v", pci, name, back, ok)
		}
	}
	for _, bad := range []string{"", "pac0", "pci-0000-3b-00", "pci-0000-3b-00-8", "PCI-0000-3B-00-0"} {
		if _, ok := PCIOf(bad); ok {
			t.Errorf("PCIOf(%q) ok", bad)
		}
	}
}

// Preparing gives the container the function's device nodes: the port
// of a whole card or of a VF the host holds, the VFIO group of a VF bound
// to vfio-pci; it refuses what is not this node's, not a function, sick,
// or another claim's.
func TestPrepare(t *testing.T) {
	p, root := testPlugin(t)
	group, err := os.Readlink(filepath.Join(root, "sys/bus/pci/devices", pciVF, "iommu_group"))
	if err != nil {
		t.Fatal(err)
	}
	devs, err := p.o.Host.Discover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	port := func(pci string, onVF bool) string {
		for _, d := range devs {
			for _, pt := range d.Ports {
				if d.PCI == pci && pt.OnVF == onVF {
					return "/" + pt.Dev
				}
			}
		}
		t.Fatalf("no port on %s", pci)
		return ""
	}
	tests := []struct {
		name    string
		claim   *resourceapi.ResourceClaim
		want    []string // container paths
		wantErr string
	}{
		{"whole card", claim("u1", node, DeviceName(pciPF)), []string{port(pciPF, false)}, ""},
		{"VF in vfio-pci", claim("u2", node, DeviceName(pciVF)), []string{"/dev/vfio/" + filepath.Base(group), "/dev/vfio/vfio"}, ""},
		{"VF of the FPGA driver", claim("u3", node, DeviceName(pciDVF)), []string{port(pciDFL, true)}, ""},
		{"another node's", claim("u4", "kube-b", DeviceName(pciPF)), nil, "is in pool kube-b, and this is node kube-a"},
		{"not a function", claim("u5", node, DeviceName("0000:01:00.0")), nil, "no FPGA function at 0000:01:00.0"},
		{"not a device name", claim("u6", node, "pac0"), nil, "not a device of this driver"},
		{"PF whose port is on its VF", claim("u7", node, DeviceName(pciVFs)), nil, "has no AFU port on its PF"},
		{"sick card", claim("u8", node, DeviceName(pciBad)), nil, "reports"},
		{"held by another claim", claim("u9", node, DeviceName(pciPF)), nil, "is prepared for claim u1"},
		{"not allocated", &resourceapi.ResourceClaim{ObjectMeta: metav1.ObjectMeta{Name: "x", UID: "u10"}}, nil, "not allocated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := p.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{tt.claim})
			if err != nil {
				t.Fatal(err)
			}
			r := res[tt.claim.UID]
			if tt.wantErr != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", r.Err, tt.wantErr)
				}
				if _, err := os.Stat(p.specPath(tt.claim.UID)); err == nil {
					t.Error("a CDI spec was written for a claim that was not prepared")
				}
				return
			}
			if r.Err != nil {
				t.Fatal(r.Err)
			}
			dev := tt.claim.Status.Allocation.Devices.Results[0].Device
			wantID := CDIKind + "=" + string(tt.claim.UID) + "-" + dev
			if len(r.Devices) != 1 || r.Devices[0].DeviceName != dev || r.Devices[0].PoolName != node || !slices.Equal(r.Devices[0].CDIDeviceIDs, []string{wantID}) {
				t.Fatalf("devices %+v", r.Devices)
			}
			spec := readSpec(t, p.specPath(tt.claim.UID))
			if spec.Kind != CDIKind || len(spec.Devices) != 1 {
				t.Fatalf("CDI spec %+v", spec)
			}
			var got []string
			for _, n := range spec.Devices[0].ContainerEdits.DeviceNodes {
				got = append(got, n.Path)
				if n.HostPath != filepath.Join(root, n.Path) {
					t.Errorf("host path %s for %s", n.HostPath, n.Path)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("device nodes %v, want %v", got, tt.want)
			}
			if env := spec.Devices[0].ContainerEdits.Env; !slices.Equal(env, []string{"FPGAOPS_DEVICE_FPGA=" + dev}) {
				t.Errorf("env %v", env)
			}
		})
	}

	// Unpreparing removes the spec, and the device is free for another
	// claim; unpreparing what is not prepared is no error.
	res, err := p.UnprepareResourceClaims(context.Background(), []kubeletplugin.NamespacedObject{{UID: "u1"}, {UID: "never"}})
	if err != nil || res["u1"] != nil || res["never"] != nil {
		t.Fatalf("unprepare: %v %v", err, res)
	}
	if _, err := os.Stat(p.specPath("u1")); !os.IsNotExist(err) {
		t.Errorf("spec of u1 still there: %v", err)
	}
	again, _ := p.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{claim("u9", node, DeviceName(pciPF))})
	if again["u9"].Err != nil {
		t.Errorf("the device is not free after unprepare: %v", again["u9"].Err)
	}
}

// Preparing twice (the kubelet restarted) gives the same answer.
func TestPrepareIsIdempotent(t *testing.T) {
	p, _ := testPlugin(t)
	c := claim("u1", node, DeviceName(pciPF))
	var first []byte
	for i := range 2 {
		res, _ := p.PrepareResourceClaims(context.Background(), []*resourceapi.ResourceClaim{c})
		if res["u1"].Err != nil {
			t.Fatalf("prepare %d: %v", i, res["u1"].Err)
		}
		data, err := os.ReadFile(p.specPath("u1"))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = data
		} else if string(data) != string(first) {
			t.Errorf("the spec changed:\n%s\n%s", first, data)
		}
	}
}

func readSpec(t *testing.T, path string) cdi.Spec {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var s cdi.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

var _ fpga.Host = (*fpga.SysfsHost)(nil)
