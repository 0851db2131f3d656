package openstack

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// Action is what a Change does. The set is closed.
type Action string

const (
	// CreateImage uploads a bitstream to Glance. Image is set.
	CreateImage Action = "create-image"
	// CreateDeviceProfile creates a Cyborg device profile. Profile is set;
	// Profile.ImageID is "" when the image is created by this plan.
	CreateDeviceProfile Action = "create-device-profile"
	// ReplaceDeviceProfile deletes Profile.OldUUID and creates the profile
	// again (Cyborg has no update).
	ReplaceDeviceProfile Action = "replace-device-profile"
	// CreateFlavor creates a Nova flavor carrying accel:device_profile.
	// Flavor is set.
	CreateFlavor Action = "create-flavor"
	// ProgramDeployable programs a preprogrammed card through Cyborg.
	// Program is set.
	ProgramDeployable Action = "program-deployable"
	// ReplaceServer deletes a server and boots it again, same name, image,
	// networks and node, with the flavor that gives it its accelerator. It
	// is always disruptive. Server is set.
	ReplaceServer Action = "replace-server"
	// UpdateTraits corrects a card's Placement traits (drift mode
	// "correct"). Traits is set.
	UpdateTraits Action = "update-traits"
	// Drift reports a difference fpgaops does not change.
	Drift Action = "drift"
)

// phase orders actions: what a later change needs comes first.
var phase = map[Action]int{
	CreateImage: 0, CreateDeviceProfile: 1, ReplaceDeviceProfile: 1, CreateFlavor: 2,
	ProgramDeployable: 3, ReplaceServer: 4, UpdateTraits: 5, Drift: 6,
}

// Change is one step of an OpenStack plan. ID is the object's canonical
// ID ("image/gzip", "device-profile/NAME", "flavor/NAME",
// "deployable/NODE/SLOT", "server/NODE/VM", "card/NODE/SLOT"). Exactly
// one of the detail fields is set, as the Action says. Reason is for
// display only; Apply never reads it. A Blocked change is shown but never
// applied.
type Change struct {
	Action     Action `json:"action"`
	ID         string `json:"id"`
	Node       string `json:"node,omitempty"`
	Binding    string `json:"binding,omitempty"`
	Disruptive bool   `json:"disruptive,omitempty"`
	Blocked    string `json:"blocked,omitempty"`
	Reason     string `json:"reason,omitempty"`

	Image   *ImageChange   `json:"image,omitempty"`
	Profile *ProfileChange `json:"profile,omitempty"`
	Flavor  *FlavorChange  `json:"flavor,omitempty"`
	Program *ProgramChange `json:"program,omitempty"`
	Server  *ServerChange  `json:"server,omitempty"`
	Traits  *TraitsChange  `json:"traits,omitempty"`
}

// ImageChange is a bitstream to upload.
type ImageChange struct {
	Bitstream string `json:"bitstream"`
	Name      string `json:"name"`
	SHA256    string `json:"sha256"`
	File      string `json:"file,omitempty"`
	URL       string `json:"url,omitempty"`
}

// ProfileChange is a device profile to create. Groups holds every key but
// accel:bitstream_id, which is ImageID or, when "", the image of Bitstream
// created earlier in the same apply.
type ProfileChange struct {
	Name      string            `json:"name"`
	Bitstream string            `json:"bitstream"`
	Board     spec.Board        `json:"board"`
	ImageID   string            `json:"imageID,omitempty"`
	Group     map[string]string `json:"group"`
	OldUUID   string            `json:"oldUUID,omitempty"`
}

// FlavorChange is a flavor to create.
type FlavorChange struct {
	Name          string `json:"name"`
	VCPUs         int    `json:"vcpus"`
	RAM           int    `json:"ram"`
	Disk          int    `json:"disk"`
	DeviceProfile string `json:"deviceProfile"`
}

// ProgramChange programs a deployable with a bitstream's image.
type ProgramChange struct {
	Deployable string `json:"deployable"`
	RPUUID     string `json:"rpUUID"`
	Bitstream  string `json:"bitstream"`
	ImageID    string `json:"imageID,omitempty"`
	Before     string `json:"before,omitempty"`
}

// ServerChange replaces a server to give it another flavor.
type ServerChange struct {
	ServerID      string `json:"serverID"`
	Name          string `json:"name"`
	Host          string `json:"host"`
	ImageID       string `json:"imageID"`
	KeyName       string `json:"keyName,omitempty"`
	OldFlavor     string `json:"oldFlavor"`
	Flavor        string `json:"flavor"`
	OldProfile    string `json:"oldProfile,omitempty"`
	DeviceProfile string `json:"deviceProfile"`
}

// TraitsChange sets a card's function traits.
type TraitsChange struct {
	RPUUID     string   `json:"rpUUID"`
	Generation int      `json:"generation"`
	Current    []string `json:"current"`
	Add        []string `json:"add,omitempty"`
	Remove     []string `json:"remove,omitempty"`
}

// Placement trait names Cyborg's Intel driver reports.
const (
	TraitIntel          = "CUSTOM_FPGA_INTEL"
	traitRegionPrefix   = "CUSTOM_FPGA_REGION_INTEL_"
	traitFunctionPrefix = "CUSTOM_FPGA_FUNCTION_ID_INTEL_"
)

// BoardTrait is the board trait of a card model: Cyborg reports
// CUSTOM_FPGA_INTEL_PAC_ARRIA10 for the PAC A10; fpgaops names the other
// boards the same way.
func BoardTrait(b spec.Board) string {
	switch b {
	case spec.BoardPACA10:
		return "CUSTOM_FPGA_INTEL_PAC_ARRIA10"
	case spec.BoardD5005:
		return "CUSTOM_FPGA_INTEL_PAC_D5005"
	case spec.BoardN3000:
		return "CUSTOM_FPGA_INTEL_PAC_N3000"
	}
	return "CUSTOM_FPGA_INTEL_" + strings.ToUpper(sanitizeTrait(string(b)))
}

// RegionTrait is the trait of a card whose PR interface ID is id.
func RegionTrait(id string) string { return traitRegionPrefix + strings.ToUpper(sanitizeTrait(id)) }

// FunctionTrait is the trait of a card running the AFU id.
func FunctionTrait(afu string) string {
	return traitFunctionPrefix + strings.ToUpper(sanitizeTrait(afu))
}

func sanitizeTrait(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_':
			return r
		}
		return '_'
	}, s)
}

// ProfileGroup is the device profile group for a bitstream on a board,
// without accel:bitstream_id: one FPGA of that board whose PR region
// takes the bitstream.
func ProfileGroup(b spec.Bitstream, board spec.Board) map[string]string {
	g := map[string]string{
		"resources:" + ResourceClassFPGA: "1",
		"trait:" + TraitIntel:            "required",
		"trait:" + BoardTrait(board):     "required",
	}
	if b.InterfaceID != "" {
		g["trait:"+RegionTrait(b.InterfaceID)] = "required"
	}
	return g
}

// Plan compares the desired fleet with the observed cloud and returns the
// changes, in the order Apply must make them. It is pure and
// deterministic. Nodes that OpenStack does not manage (no hostname) are
// not its concern; unknown nodes get nothing but a drift note.
func Plan(desired *spec.Fleet, st *State) []Change {
	p := planner{fleet: desired, st: st, images: map[string]string{}, pendingImage: map[string]bool{}, nodes: map[string]*Node{}}
	for i := range st.Nodes {
		p.nodes[st.Nodes[i].Name] = &st.Nodes[i]
	}
	p.plan()
	sort.SliceStable(p.out, func(i, j int) bool {
		a, b := p.out[i], p.out[j]
		if phase[a.Action] != phase[b.Action] {
			return phase[a.Action] < phase[b.Action]
		}
		return a.ID < b.ID
	})
	return p.out
}

type planner struct {
	fleet *spec.Fleet
	st    *State
	out   []Change
	// images maps a bitstream to its Glance image ID, when it exists.
	images       map[string]string
	pendingImage map[string]bool
	disrupted    int
	nodes        map[string]*Node
}

func (p *planner) add(c Change) { p.out = append(p.out, c) }

func (p *planner) plan() {
	type use struct {
		b    spec.Binding
		node *spec.Node
		fpga spec.FPGA
		bs   spec.Bitstream
	}
	fleetNodes := make(map[string]*spec.Node, len(p.fleet.Nodes))
	for i := range p.fleet.Nodes {
		fleetNodes[p.fleet.Nodes[i].Name] = &p.fleet.Nodes[i]
	}
	var uses []use
	for _, b := range p.fleet.Bindings {
		n := fleetNodes[b.Node]
		if n == nil || n.Hostname == "" {
			continue
		}
		f, ok := n.FPGA(b.FPGA)
		bs, ok2 := p.fleet.Bitstream(b.Bitstream)
		if !ok || !ok2 {
			continue // the spec's checks report dangling references
		}
		uses = append(uses, use{b, n, *f, *bs})
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].b.Name < uses[j].b.Name })

	// Images: one per bitstream in use.
	wantImage := map[string]spec.Bitstream{}
	for _, u := range uses {
		wantImage[u.bs.Name] = u.bs
	}
	for _, name := range slices.Sorted(maps.Keys(wantImage)) {
		bs := wantImage[name]
		if id := p.findImage(bs); id != "" {
			p.images[name] = id
			continue
		}
		p.pendingImage[name] = true
		p.add(Change{Action: CreateImage, ID: "image/" + name, Reason: "no Glance image " + ImageName(bs) + " with sha256 " + short(bs.SHA256),
			Image: &ImageChange{Bitstream: name, Name: ImageName(bs), SHA256: bs.SHA256, File: bs.File, URL: bs.URL}})
	}

	// Device profiles: one per bitstream and board that a VM asks for.
	type pair struct {
		bs    spec.Bitstream
		board spec.Board
	}
	wantProfile := map[string]pair{}
	for _, u := range uses {
		if u.b.VM != "" {
			wantProfile[ProfileName(u.bs, u.fpga.Board)] = pair{u.bs, u.fpga.Board}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(wantProfile)) {
		pr := wantProfile[name]
		group := ProfileGroup(pr.bs, pr.board)
		ch := &ProfileChange{Name: name, Bitstream: pr.bs.Name, Board: pr.board, ImageID: p.images[pr.bs.Name], Group: group}
		have := p.st.profile(name)
		switch {
		case have == nil:
			p.add(Change{Action: CreateDeviceProfile, ID: "device-profile/" + name, Reason: "no device profile " + name, Profile: ch})
		case ch.ImageID == "" || !sameGroups(have.Groups, withImage(group, ch.ImageID)):
			ch.OldUUID = have.UUID
			c := Change{Action: ReplaceDeviceProfile, ID: "device-profile/" + name, Profile: ch,
				Reason: "device profile " + name + " differs from bitstream " + pr.bs.Name + " on " + string(pr.board)}
			if users := p.profileUsers(name); len(users) > 0 {
				c.Blocked = "in use by " + strings.Join(users, ", ")
			}
			p.add(c)
		}
	}

	// Per binding: flavors and servers for VMs, programming for the pool.
	wantFlavor := map[string]bool{}
	for _, u := range uses {
		sn := p.nodes[u.node.Name]
		if sn == nil || sn.State != observed.NodeOK {
			reason := "not observed"
			if sn != nil {
				reason = sn.Reason
			}
			p.add(Change{Action: Drift, ID: u.b.ID(), Node: u.node.Name, Binding: u.b.Name, Reason: "node " + u.node.Name + " unknown: " + reason})
			continue
		}
		card := sn.card(u.fpga.PCI)
		cardID := spec.CardID(u.node.Name, u.fpga.Slot)
		if card == nil {
			p.add(Change{Action: Drift, ID: "card/" + cardID, Node: u.node.Name, Binding: u.b.Name,
				Reason: fmt.Sprintf("no FPGA resource provider %s_%s in Placement", u.node.Hostname, u.fpga.PCI)})
			continue
		}
		if u.b.VM == "" {
			p.planPool(u.b, u.node, sn, card, cardID, u.bs)
			continue
		}
		p.planServer(u.b, u.node, sn, card, cardID, u.bs, u.fpga.Board, wantFlavor)
	}
	p.planTraits()
}

// HoldDisruptive blocks the disruptive changes that are not blocked
// already, saying why (the maintenance windows are closed): the plan shows
// them held and Apply skips them, as the core planner does with its window
// gate.
func HoldDisruptive(changes []Change, why string) {
	for i := range changes {
		if c := &changes[i]; c.Disruptive && c.Blocked == "" && c.Action != Drift {
			c.Blocked = "outside the maintenance windows: " + why
		}
	}
}

// findImage returns the active Glance image holding the bitstream, found
// by name and recorded digest.
func (p *planner) findImage(bs spec.Bitstream) string {
	for _, im := range p.st.Images {
		if im.Name == ImageName(bs) && im.SHA256 == bs.SHA256 && im.Status == "active" && (bs.Size == 0 || im.Size == 0 || im.Size == bs.Size) {
			return im.ID
		}
	}
	return ""
}

func (p *planner) profileUsers(profile string) []string {
	var users []string
	for _, n := range p.st.Nodes {
		for _, s := range n.Servers {
			for _, a := range s.ARQs {
				if a.DeviceProfile == profile {
					users = append(users, "server "+n.Name+"/"+s.Name)
					break
				}
			}
		}
	}
	return users
}

func (p *planner) planPool(b spec.Binding, node *spec.Node, sn *Node, card *Card, cardID string, bs spec.Bitstream) {
	if card.Deployable == "" {
		p.add(Change{Action: Drift, ID: "card/" + cardID, Node: node.Name, Binding: b.Name, Reason: "Cyborg has no deployable on resource provider " + card.RPName})
		return
	}
	img := p.images[bs.Name]
	if img != "" && card.Bitstream == img {
		return
	}
	c := Change{Action: ProgramDeployable, ID: "deployable/" + cardID, Node: node.Name, Binding: b.Name,
		Reason:  "card runs " + p.describeImage(card.Bitstream) + ", binding wants " + bs.Name,
		Program: &ProgramChange{Deployable: card.Deployable, RPUUID: card.RPUUID, Bitstream: bs.Name, ImageID: img, Before: card.Bitstream}}
	if h := sn.holder(card.RPUUID); h != nil {
		c.Blocked = "held by running server " + h.Name
	}
	p.add(c)
}

func (p *planner) describeImage(id string) string {
	if id == "" {
		return "nothing fpgaops knows"
	}
	for _, im := range p.st.Images {
		if im.ID == id {
			return strings.TrimPrefix(im.Name, "fpgaops-")
		}
	}
	return "image " + id
}

func (p *planner) planServer(b spec.Binding, node *spec.Node, sn *Node, card *Card, cardID string, bs spec.Bitstream, board spec.Board, wantFlavor map[string]bool) {
	srv := sn.server(b.VM)
	if srv == nil {
		p.add(Change{Action: Drift, ID: "server/" + node.Name + "/" + b.VM, Node: node.Name, Binding: b.Name,
			Reason: "no server " + b.VM + " on host " + node.Hostname + " (fpgaops does not create servers)"})
		return
	}
	profile := ProfileName(bs, board)
	if srv.DeviceProfile == profile {
		// Right accelerator: check it landed on the binding's card.
		bound := ""
		for _, a := range srv.ARQs {
			if a.State == "Bound" && a.DeviceProfile == profile {
				bound = a.RPUUID
			}
		}
		switch {
		case bound == "":
			p.add(Change{Action: Drift, ID: "server/" + node.Name + "/" + b.VM, Node: node.Name, Binding: b.Name,
				Reason: "server " + b.VM + " has no bound accelerator request for " + profile})
		case bound != card.RPUUID:
			p.add(Change{Action: Drift, ID: "server/" + node.Name + "/" + b.VM, Node: node.Name, Binding: b.Name,
				Reason: "server " + b.VM + " holds another card than " + cardID + " (Placement chose it)"})
		}
		return
	}
	flavor := FlavorName(srv.VCPUs, srv.RAM, srv.Disk, profile)
	if f := p.st.flavor(flavor); f == nil {
		if !wantFlavor[flavor] {
			wantFlavor[flavor] = true
			p.add(Change{Action: CreateFlavor, ID: "flavor/" + flavor, Reason: "no flavor with accel:device_profile=" + profile + " for the size of " + b.VM,
				Flavor: &FlavorChange{Name: flavor, VCPUs: srv.VCPUs, RAM: srv.RAM, Disk: srv.Disk, DeviceProfile: profile}})
		}
	} else if f.DeviceProfile != profile || f.VCPUs != srv.VCPUs || f.RAM != srv.RAM || f.Disk != srv.Disk {
		p.add(Change{Action: Drift, ID: "flavor/" + flavor, Reason: "flavor " + flavor + " exists but does not match its name (accel:device_profile=" + f.DeviceProfile + ")"})
		return
	}
	was := srv.DeviceProfile
	if was == "" {
		was = "no accelerator"
	}
	c := Change{Action: ReplaceServer, ID: "server/" + node.Name + "/" + b.VM, Node: node.Name, Binding: b.Name, Disruptive: true,
		Reason: "server " + b.VM + " runs with " + was + ", binding wants " + profile + "; Nova cannot resize or migrate servers with accelerators",
		Server: &ServerChange{ServerID: srv.ID, Name: srv.Name, Host: node.Hostname, ImageID: srv.ImageID, KeyName: srv.KeyName,
			OldFlavor: srv.FlavorName, Flavor: flavor, OldProfile: srv.DeviceProfile, DeviceProfile: profile}}
	switch budget := p.fleet.Policy.Budget.MaxDisruptedVMs; {
	case b.Protected:
		c.Blocked = "protected binding"
	case budget > 0 && p.disrupted >= budget:
		c.Blocked = fmt.Sprintf("disruption budget of %d VMs reached", budget)
	default:
		p.disrupted++
	}
	p.add(c)
}

// planTraits checks each card's function traits against what Cyborg says
// the card runs, for the cards of OpenStack nodes that run an image of a
// fleet bitstream.
func (p *planner) planTraits() {
	afuOf := map[string]string{} // image ID -> AFU ID
	for _, bs := range p.fleet.Bitstreams {
		for _, im := range p.st.Images {
			if im.Name == ImageName(bs) && im.SHA256 == bs.SHA256 {
				afuOf[im.ID] = bs.AFUID
			}
		}
	}
	for _, n := range OpenStackNodes(p.fleet) {
		sn := p.nodes[n.Name]
		if sn == nil || sn.State != observed.NodeOK {
			continue
		}
		for _, f := range n.FPGAs {
			card := sn.card(f.PCI)
			if card == nil {
				continue
			}
			id := "card/" + spec.CardID(n.Name, f.Slot)
			if card.FPGATotal < 1 {
				p.add(Change{Action: Drift, ID: id, Node: n.Name, Reason: "resource provider " + card.RPName + " has no FPGA inventory"})
			}
			if f.InterfaceID != "" && !slices.Contains(card.Traits, RegionTrait(f.InterfaceID)) {
				p.add(Change{Action: Drift, ID: id, Node: n.Name, Reason: "placement lacks region trait " + RegionTrait(f.InterfaceID)})
			}
			afu, ok := afuOf[card.Bitstream]
			if !ok || afu == "" {
				continue
			}
			want := FunctionTrait(afu)
			var stale []string
			for _, t := range card.Traits {
				if strings.HasPrefix(t, traitFunctionPrefix) && t != want {
					stale = append(stale, t)
				}
			}
			has := slices.Contains(card.Traits, want)
			if has && len(stale) == 0 {
				continue
			}
			reason := "placement traits do not match what the card runs (" + want + ")"
			if p.fleet.Policy.Drift == spec.DriftCorrect {
				tc := &TraitsChange{RPUUID: card.RPUUID, Generation: card.Generation, Current: card.Traits, Remove: stale}
				if !has {
					tc.Add = []string{want}
				}
				p.add(Change{Action: UpdateTraits, ID: id, Node: n.Name, Reason: reason, Traits: tc})
				continue
			}
			p.add(Change{Action: Drift, ID: id, Node: n.Name, Reason: reason})
		}
	}
}

func withImage(g map[string]string, image string) map[string]string {
	out := maps.Clone(g)
	out["accel:bitstream_id"] = image
	return out
}

func sameGroups(have []map[string]string, want map[string]string) bool {
	return len(have) == 1 && maps.Equal(have[0], want)
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}
