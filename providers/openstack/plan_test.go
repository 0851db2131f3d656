package openstack

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
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
			{Name: "compute-02", Hostname: "cmp-02", FPGAs: []spec.FPGA{{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardPACA10}}},
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
			{ID: imgGzip, Name: "fpgaops-gzip", Status: "active", SHA256: shaGzip, FunctionID: afuGzip},
			{ID: imgNLB, Name: "fpgaops-nlb", Status: "active", SHA256: shaNLB, FunctionID: afuNLB},
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
func line(c plans.Change) string {
	s := string(c.Action) + " " + c.ID
	if c.Disruptive {
		s += " disruptive"
	}
	if c.Drift {
		s += " drift"
	}
	if c.Held != nil {
		s += " held=" + string(c.Held.Gate) + ": " + c.Held.Why
	}
	return s
}

// owned are the test fleet's nodes with a hostname: OpenStack's.
func owned(f *spec.Fleet) []*spec.Node {
	var out []*spec.Node
	for i := range f.Nodes {
		if f.Nodes[i].Hostname != "" {
			out = append(out, &f.Nodes[i])
		}
	}
	return out
}

func plan(f *spec.Fleet, st *State) []plans.Change { return Plan(f, owned(f), st) }

// TestPlan: the backend's own plan. Windows, protected bindings and the
// budget are the core planner's (reconcile/testdata/plan/backend-*); the
// backend holds only what it alone can judge: an object in use.
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
			"create device-profile/" + profGzip + ":create",
			"create flavor/" + flavor + ":create",
			"create image/gzip:create",
			"create image/nlb:create",
			"replace node/compute-01/vm/vm-a:replace disruptive",
			"program node/compute-02/fpga/pac0:program",
		}},
		{"pool card held by a server is not programmed", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Bitstream = imgGzip
			st.Nodes[1].Servers = []Server{{ID: "srv-x", Name: "tenant-vm", ARQs: []ARQ{{UUID: "q", State: "Bound", RPUUID: rpB0}}}}
			return st
		}, []string{
			"program node/compute-02/fpga/pac0:program held=in-use: held by running server tenant-vm",
		}},
		{"pool card fpgaops programmed, by its record", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Bitstream = ""
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, MarkTrait(shaNLB), FunctionTrait(afuNLB)}
			return st
		}, nil},
		{"record without a function Cyborg reports", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Bitstream = ""
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, MarkTrait(shaNLB)}
			return st
		}, nil},
		{"the record beats a bind's older bitstream_id", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Bitstream = imgGzip
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, MarkTrait(shaNLB), FunctionTrait(afuNLB)}
			return st
		}, nil},
		{"pool card recorded with another bitstream is programmed", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Bitstream = imgNLB
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, MarkTrait(shaGzip), FunctionTrait(afuGzip)}
			return st
		}, []string{"program node/compute-02/fpga/pac0:program"}},
		{"pool card programmed since is drift", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuGzip)}
			return st
		}, []string{"report node/compute-02/fpga/pac0:report drift"}},
		{"pool card programmed since is programmed in correct mode", func(f *spec.Fleet) { f.Policy.Drift = spec.DriftCorrect }, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, MarkTrait(shaNLB), FunctionTrait(afuGzip)}
			return st
		}, []string{"program node/compute-02/fpga/pac0:program drift"}},
		{"VM card programmed since is reported", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Cards[0].Traits = []string{TraitIntel, RegionTrait(ifA10), FunctionTrait(afuNLB)}
			return st
		}, []string{"report node/compute-01/fpga/pac0:report drift"}},
		{"stale function trait is reported", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuNLB), FunctionTrait(afuGzip)}
			return st
		}, []string{"report node/compute-02/fpga/pac0:report drift"}},
		{"stale function trait is removed in correct mode", func(f *spec.Fleet) { f.Policy.Drift = spec.DriftCorrect }, func() *State {
			st := convergedState()
			st.Nodes[1].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuNLB), FunctionTrait(afuGzip)}
			return st
		}, []string{"update node/compute-02/fpga/pac0:update drift"}},
		{"card named after its VF", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Cards[0].PCI, st.Nodes[0].Cards[0].RPName = "0000:5e:00.1", "cmp-01_0000:5e:00.1"
			return st
		}, nil},
		{"image without accel:function_id is updated", nil, func() *State {
			st := convergedState()
			st.Images[0].FunctionID = ""
			return st
		}, []string{"update image/gzip:update"}},
		{"a VM's bitstream without an AFU ID is reported, not booted", func(f *spec.Fleet) { f.Bitstreams[0].AFUID = "" }, freshState, []string{
			"create image/nlb:create",
			"report node/compute-01/vm/vm-a:report",
			"program node/compute-02/fpga/pac0:program",
		}},
		{"missing region trait", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Cards[0].Traits = []string{TraitIntel, FunctionTrait(afuGzip)}
			return st
		}, []string{"report node/compute-01/fpga/pac0:report drift"}},
		{"unknown node plans nothing", nil, func() *State {
			st := freshState()
			st.Nodes[1] = Node{Name: "compute-02", Hostname: "cmp-02", State: observed.NodeUnknown, Reason: "placement: timeout"}
			return st
		}, []string{
			"create device-profile/" + profGzip + ":create",
			"create flavor/" + flavor + ":create",
			"create image/gzip:create",
			"create image/nlb:create",
			"replace node/compute-01/vm/vm-a:replace disruptive",
			"report node/compute-02:report",
		}},
		{"server on another card", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Servers[0].ARQs[0].RPUUID = rpA1
			return st
		}, []string{"report node/compute-01/vm/vm-a:report drift"}},
		{"missing server", nil, func() *State {
			st := convergedState()
			st.Nodes[0].Servers = nil
			return st
		}, []string{"report node/compute-01/vm/vm-a:report"}},
		{"edited profile is replaced when unused", nil, func() *State {
			st := convergedState()
			st.Profiles[0].Groups[0]["trait:CUSTOM_EXTRA"] = "required"
			st.Nodes[0].Servers[0].ARQs = nil
			return st
		}, []string{
			"replace device-profile/" + profGzip + ":replace",
			"report node/compute-01/vm/vm-a:report drift",
		}},
		{"edited profile in use is held", nil, func() *State {
			st := convergedState()
			st.Profiles[0].Groups[0]["trait:CUSTOM_EXTRA"] = "required"
			return st
		}, []string{"replace device-profile/" + profGzip + ":replace held=in-use: servers boot with it: server compute-01/vm-a"}},
		{"image with another digest is not reused", nil, func() *State {
			st := convergedState()
			st.Images[1].SHA256 = shaGzip
			st.Nodes[1].Cards[0].Bitstream = ""
			return st
		}, []string{
			"create image/nlb:create",
			"program node/compute-02/fpga/pac0:program",
		}},
		{"no resource provider for a card", nil, func() *State {
			st := convergedState()
			st.Nodes[1].Cards = nil
			return st
		}, []string{"report node/compute-02/fpga/pac0:report"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := testFleet()
			if tc.fleet != nil {
				tc.fleet(f)
			}
			var got []string
			for _, c := range plan(f, tc.state()) {
				if c.Backend != Name {
					t.Errorf("%s names backend %q", c.ID, c.Backend)
				}
				got = append(got, line(c))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

// TestPlanDetails: each change carries what its Apply reads, and says
// what it waits for.
func TestPlanDetails(t *testing.T) {
	byID := map[string]plans.Change{}
	for _, c := range plan(testFleet(), freshState()) {
		byID[c.ID] = c
	}
	p := byID["device-profile/"+profGzip+":create"]
	wantAttrs := map[string]string{
		"resources:FPGA": "1", "trait:CUSTOM_FPGA_INTEL": "required",
		"trait:CUSTOM_FPGA_INTEL_PAC_ARRIA10": "required", "trait:" + RegionTrait(ifA10): "required",
		attrName: profGzip, attrBoard: "pac-a10", attrBitstreamID: "",
	}
	if p.After == nil || !reflect.DeepEqual(p.After.Attrs, wantAttrs) || p.After.Bitstream != "gzip" ||
		!slices.Equal(p.DependsOn, []string{"image/gzip:create"}) {
		t.Errorf("profile change %+v, want attrs %v, after the image", p.After, wantAttrs)
	}
	if !cyborgName(profGzip) {
		t.Errorf("profile name %q does not match ^[a-zA-Z0-9-_]+$", profGzip)
	}
	s := byID["node/compute-01/vm/vm-a:replace"]
	flavor := FlavorName(2, 4096, 20, profGzip)
	if s.Before == nil || s.Before.VM != "vm-a" || s.Before.Attrs[attrServer] != "srv-a" || s.Before.Attrs[attrHost] != "cmp-01" ||
		s.Before.Attrs[attrImage] != "os-image" || s.Before.Attrs[attrFlavor] != "m1.medium" || s.After.Attrs[attrDeviceProfile] != profGzip ||
		s.Binding != "vm-a-gzip" || s.Card != "pac0" || !slices.Equal(s.DependsOn, []string{"image/gzip:create", "device-profile/" + profGzip + ":create", "flavor/" + flavor + ":create"}) {
		t.Errorf("server change %+v %+v %+v", s, s.Before, s.After)
	}
	pr := byID["node/compute-02/fpga/pac0:program"]
	if pr.After == nil || pr.After.Attrs[attrDeployable] != "dep-b0" || pr.After.Attrs[attrRP] != rpB0 || pr.After.Bitstream != "nlb" ||
		pr.After.Attrs[attrImage] != "" || pr.Binding != "pool-nlb" || !slices.Equal(pr.DependsOn, []string{"image/nlb:create"}) {
		t.Errorf("program change %+v", pr)
	}
	img := byID["image/gzip:create"]
	if img.After == nil || img.After.Attrs[attrFile] != "bitstreams/gzip.gbs" || img.After.SHA256 != shaGzip || img.After.Attrs[attrName] != "fpgaops-gzip" ||
		img.After.AFUID != afuGzip {
		t.Errorf("image change %+v", img.After)
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
	a, _ := json.Marshal(plan(f, freshState()))
	st := freshState()
	slices.Reverse(st.Nodes)
	slices.Reverse(st.Flavors)
	st.Sort()
	b, _ := json.Marshal(plan(f, st))
	if string(a) != string(b) {
		t.Errorf("plans differ:\n%s\n%s", a, b)
	}
}

func TestPlanDoesNotModifyItsInput(t *testing.T) {
	f, st := testFleet(), freshState()
	fb, _ := json.Marshal(f)
	sb, _ := json.Marshal(st)
	plan(f, st)
	fa, _ := json.Marshal(f)
	sa, _ := json.Marshal(st)
	if string(fb) != string(fa) || string(sb) != string(sa) {
		t.Error("Plan changed its input")
	}
}
