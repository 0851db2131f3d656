package openstack

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

const (
	shaGzip = "aa11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
	shaNLB  = "bb11223344556677889900aabbccddeeff00112233445566778899aabbccddee"
	ifA10   = "9926ab6d6c925a68aabca7d84c545738"
	afuGzip = "d8424dc4a4a3c413f89e433683f9040b"
	afuNLB  = "c000c9660d824272a665ffffc7d00d01"
	imgGzip = "1d3cd4f0-0000-4000-8000-00000000a001"
	imgNLB  = "1d3cd4f0-0000-4000-8000-00000000b001"
	rpA0    = "2a9e3c7b-0000-4000-8000-0000000001a0"
	rpA1    = "2a9e3c7b-0000-4000-8000-0000000001a1"
	rpB0    = "2a9e3c7b-0000-4000-8000-0000000002b0"
)

func testFleet() *spec.Fleet {
	f := &spec.Fleet{
		Nodes: []spec.Node{
			{Name: "compute-01", Hostname: "cmp-01", FPGAs: []spec.FPGA{
				{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10, InterfaceID: ifA10},
				{Slot: "pac1", PCI: "0000:be:00.0", Board: spec.BoardPACA10},
			}},
			{Name: "compute-02", Hostname: "cmp-02", FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000}}},
			{Name: "kvm-01", Libvirt: "qemu:///system", FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10}}},
		},
		Bitstreams: []spec.Bitstream{
			{Name: "gzip", File: "bitstreams/gzip.gbs", SHA256: shaGzip, InterfaceID: ifA10, AFUID: afuGzip},
			{Name: "nlb", URL: "https://bitstreams.example.com/nlb.gbs", SHA256: shaNLB, AFUID: afuNLB},
		},
		Bindings: []spec.Binding{
			{Name: "kvm-gzip", Node: "kvm-01", FPGA: "pac0", Function: spec.PF, VM: "guest", Bitstream: "gzip"},
			{Name: "pool-nlb", Node: "compute-02", FPGA: "pac0", Function: spec.PF, Bitstream: "nlb"},
			{Name: "vm-a-gzip", Node: "compute-01", FPGA: "pac0", Function: spec.PF, VM: "vm-a", Bitstream: "gzip"},
		},
		Policy: spec.Policy{Drift: spec.DriftReport},
	}
	return f
}

var profGzip = ProfileName(spec.Bitstream{Name: "gzip", SHA256: shaGzip}, spec.BoardPACA10)

// convergedState is a cloud that already runs testFleet.
func convergedState() *State {
	b := testFleet().Bitstreams[0]
	flavor := FlavorName(2, 4096, 20, profGzip)
	return &State{
		Images: []Image{
			{ID: imgGzip, Name: "fpgaops-gzip", Status: "active", SHA256: shaGzip},
			{ID: imgNLB, Name: "fpgaops-nlb", Status: "active", SHA256: shaNLB},
		},
		Profiles: []Profile{{UUID: "dp-1", Name: profGzip, Groups: []map[string]string{withImage(ProfileGroup(b, spec.BoardPACA10), imgGzip)}}},
		Flavors:  []Flavor{{ID: "f-1", Name: flavor, VCPUs: 2, RAM: 4096, Disk: 20, DeviceProfile: profGzip}, {ID: "f-0", Name: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 20}},
		Nodes: []Node{
			{Name: "compute-01", Hostname: "cmp-01", State: observed.NodeOK,
				Cards: []Card{
					{PCI: "0000:5e:00.0", RPName: "cmp-01_0000:5e:00.0", RPUUID: rpA0, Generation: 3, FPGATotal: 1, Deployable: "dep-a0", Bitstream: imgGzip,
						Traits: []string{TraitIntel, "CUSTOM_FPGA_INTEL_PAC_ARRIA10", RegionTrait(ifA10), FunctionTrait(afuGzip)}},
					{PCI: "0000:be:00.0", RPName: "cmp-01_0000:be:00.0", RPUUID: rpA1, Generation: 1, FPGATotal: 1, Deployable: "dep-a1", Traits: []string{TraitIntel}},
				},
				Servers: []Server{{ID: "srv-a", Name: "vm-a", Status: "ACTIVE", ImageID: "os-image", FlavorName: flavor, VCPUs: 2, RAM: 4096, Disk: 20,
					DeviceProfile: profGzip, ARQs: []ARQ{{UUID: "arq-a", State: "Bound", DeviceProfile: profGzip, RPUUID: rpA0}}}}},
			{Name: "compute-02", Hostname: "cmp-02", State: observed.NodeOK,
				Cards: []Card{{PCI: "0000:5e:00.0", RPName: "cmp-02_0000:5e:00.0", RPUUID: rpB0, Generation: 7, FPGATotal: 1, Deployable: "dep-b0", Bitstream: imgNLB,
					Traits: []string{TraitIntel, FunctionTrait(afuNLB)}}}},
		},
	}
}

// freshState is a cloud where nothing of the fleet exists yet.
func freshState() *State {
	st := convergedState()
	st.Images, st.Profiles = nil, nil
	st.Flavors = st.Flavors[1:]
	n := &st.Nodes[0]
	n.Cards[0].Bitstream, n.Cards[0].Traits = "", []string{TraitIntel, RegionTrait(ifA10)}
	n.Servers[0] = Server{ID: "srv-a", Name: "vm-a", Status: "ACTIVE", ImageID: "os-image", FlavorName: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 20}
	st.Nodes[1].Cards[0].Bitstream, st.Nodes[1].Cards[0].Traits = "", []string{TraitIntel}
	return st
}

// line is a compact form of a change for comparison.
func line(c Change) string {
	s := string(c.Action) + " " + c.ID
	if c.Disruptive {
		s += " disruptive"
	}
	if c.Blocked != "" {
		s += " blocked=" + c.Blocked
	}
	return s
}

func TestPlan(t *testing.T) {
	flavor := FlavorName(2, 4096, 20, profGzip)
	tests := []struct {
		name  string
		fleet func(*spec.Fleet)
		state func() *State
		want  []string
	}{
		{"converged", nil, convergedState, nil},
		{"fresh cloud", nil, freshState, []string{
			"create-image image/gzip",
			"create-image image/nlb",
			"create-device-profile device-profile/" + profGzip,
			"create-flavor flavor/" + flavor,
			"program-deployable deployable/compute-02/pac0",
			"replace-server server/compute-01/vm-a disruptive",
		}},
		{"protected binding is not replaced", func(f *spec.Fleet) { f.Bindings[2].Protected = true }, freshState, []string{
			"create-image image/gzip",
			"create-image image/nlb",
			"create-device-profile device-profile/" + profGzip,
			"create-flavor flavor/" + flavor,
			"program-deployable deployable/compute-02/pac0",
			"replace-server server/compute-01/vm-a disruptive blocked=protected binding",
		}},
		{"disruption budget", func(f *spec.Fleet) {
			f.Policy.Budget.MaxDisruptedVMs = 1
			f.Bindings = append(f.Bindings, spec.Binding{Name: "vm-b-gzip", Node: "compute-01", FPGA: "pac1", Function: spec.PF, VM: "vm-b", Bitstream: "gzip"})
		}, func() *State {
			st := convergedState()
			st.Nodes[0].Servers[0].DeviceProfile, st.Nodes[0].Servers[0].FlavorName, st.Nodes[0].Servers[0].ARQs = "", "m1.medium", nil
			st.Nodes[0].Servers = append(st.Nodes[0].Servers, Server{ID: "srv-b", Name: "vm-b", FlavorName: "m1.medium", VCPUs: 2, RAM: 4096, Disk: 20})
			return st
		}, []string{
			"replace-server server/compute-01/vm-a disruptive",
			"replace-server server/compute-01/vm-b disruptive blocked=disruption budget of 1 VMs reached",
		}},
		{"pool card held by a server is not programmed", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Bitstream = imgGzip
			st.Nodes[1].Servers = []Server{{ID: "srv-x", Name: "tenant-vm", ARQs: []ARQ{{UUID: "q", State: "Bound", RPUUID: rpB0}}}}
			return st
		}, []string{
			"program-deployable deployable/compute-02/pac0 blocked=held by running server tenant-vm",
			"drift card/compute-02/pac0",
		}},
		{"trait drift is reported", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuGzip)}
			return st
		}, []string{"drift card/compute-02/pac0"}},
		{"trait drift is corrected in correct mode", func(f *spec.Fleet) { f.Policy.Drift = spec.DriftCorrect }, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuGzip)}
			return st
		}, []string{"update-traits card/compute-02/pac0"}},
		{"missing region trait", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuGzip)}
			return st
		}, []string{"drift card/compute-01/pac0"}},
		{"unknown node plans nothing", nil, func() *State {
			st := freshState()
			st.Nodes[1] = Node{Name: "compute-02", Hostname: "cmp-02", State: observed.NodeUnknown, Reason: "placement: timeout"}
			return st
		}, []string{
			"create-image image/gzip",
			"create-image image/nlb",
			"create-device-profile device-profile/" + profGzip,
			"create-flavor flavor/" + flavor,
			"replace-server server/compute-01/vm-a disruptive",
			"drift binding/pool-nlb",
		}},
		{"server on another card", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Servers[0].ARQs[0].RPUUID = rpA1
			return st
		}, []string{"drift server/compute-01/vm-a"}},
		{"missing server", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Servers = nil
			return st
		}, []string{"drift server/compute-01/vm-a"}},
		{"edited profile is replaced when unused", nil, func() *State {
			st := convergedState()
			st.Profiles[0].Groups[0]["trait:CUSTOM_EXTRA"] = "required"
			st.Nodes[0].Servers[0].ARQs = nil
			return st
		}, []string{
			"replace-device-profile device-profile/" + profGzip,
			"drift server/compute-01/vm-a",
		}},
		{"edited profile in use is blocked", nil, func() *State {
			st := convergedState()
			st.Profiles[0].Groups[0]["trait:CUSTOM_EXTRA"] = "required"
			return st
		}, []string{"replace-device-profile device-profile/" + profGzip + " blocked=in use by server compute-01/vm-a"}},
		{"image with another digest is not reused", nil, func() *State {
			st := convergedState()
			st.Images[1].SHA256 = shaGzip
			st.Nodes[1].Cards[0].Bitstream = ""
			return st
		}, []string{
			"create-image image/nlb",
			"program-deployable deployable/compute-02/pac0",
		}},
		{"no resource provider for a card", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards = nil
			return st
		}, []string{"drift card/compute-02/pac0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := testFleet()
			if tc.fleet != nil {
				tc.fleet(f)
			}
			var got []string
			for _, c := range Plan(f, tc.state()) {
				got = append(got, line(c))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestPlanDetails(t *testing.T) {
	changes := Plan(testFleet(), freshState())
	byID := map[string]Change{}
	for _, c := range changes {
		byID[c.ID] = c
	}
	p := byID["device-profile/"+profGzip].Profile
	wantGroup := map[string]string{
		"resources:FPGA": "1", "trait:CUSTOM_FPGA_INTEL": "required",
		"trait:CUSTOM_FPGA_INTEL_PAC_ARRIA10": "required", "trait:" + RegionTrait(ifA10): "required",
	}
	if p == nil || !reflect.DeepEqual(p.Group, wantGroup) || p.ImageID != "" || p.Bitstream != "gzip" {
		t.Errorf("profile change %+v, want group %v and the image to come", p, wantGroup)
	}
	if !cyborgName(profGzip) {
		t.Errorf("profile name %q does not match ^[a-zA-Z0-9-_]+$", profGzip)
	}
	s := byID["server/compute-01/vm-a"].Server
	if s == nil || s.ServerID != "srv-a" || s.Host != "cmp-01" || s.ImageID != "os-image" || s.OldFlavor != "m1.medium" || s.DeviceProfile != profGzip {
		t.Errorf("server change %+v", s)
	}
	pr := byID["deployable/compute-02/pac0"].Program
	if pr == nil || pr.Deployable != "dep-b0" || pr.RPUUID != rpB0 || pr.Bitstream != "nlb" || pr.ImageID != "" {
		t.Errorf("program change %+v", pr)
	}
	img := byID["image/gzip"].Image
	if img == nil || img.File != "bitstreams/gzip.gbs" || img.SHA256 != shaGzip || img.Name != "fpgaops-gzip" {
		t.Errorf("image change %+v", img)
	}
}

func cyborgName(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return s != ""
}

func TestProfileNameIsCyborgSafe(t *testing.T) {
	tests := []struct {
		name string
		bs   string
	}{
		{"dots and slashes", "vendor/gzip.v2"},
		{"spaces", "my bitstream"},
		{"unicode", "gzip-ü"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := ProfileName(spec.Bitstream{Name: tc.bs, SHA256: shaGzip}, spec.BoardD5005)
			if !cyborgName(n) || !strings.HasSuffix(n, "-pac-d5005-aa112233") {
				t.Errorf("ProfileName = %q", n)
			}
		})
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	f := testFleet()
	a, _ := json.Marshal(Plan(f, freshState()))
	st := freshState()
	slices.Reverse(st.Nodes)
	slices.Reverse(st.Flavors)
	st.Sort()
	b, _ := json.Marshal(Plan(f, st))
	if string(a) != string(b) {
		t.Errorf("plans differ:\n%s\n%s", a, b)
	}
}

func TestPlanDoesNotModifyItsInput(t *testing.T) {
	f, st := testFleet(), freshState()
	fb, _ := json.Marshal(f)
	sb, _ := json.Marshal(st)
	Plan(f, st)
	fa, _ := json.Marshal(f)
	sa, _ := json.Marshal(st)
	if string(fb) != string(fa) || string(sb) != string(sa) {
		t.Error("Plan changed its input")
	}
}

func TestHoldDisruptive(t *testing.T) {
	tests := []struct {
		name string
		in   Change
		want string
	}{
		{"a replacement is held", Change{Action: ReplaceServer, ID: "server/n/a", Disruptive: true}, "outside the maintenance windows: no window is open"},
		{"a blocked one keeps its reason", Change{Action: ReplaceServer, ID: "server/n/b", Disruptive: true, Blocked: "protected binding"}, "protected binding"},
		{"what disrupts nothing goes ahead", Change{Action: CreateFlavor, ID: "flavor/f"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changes := []Change{tc.in}
			HoldDisruptive(changes, "no window is open")
			if changes[0].Blocked != tc.want {
				t.Errorf("Blocked = %q, want %q", changes[0].Blocked, tc.want)
			}
		})
	}
}
