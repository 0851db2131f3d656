package openstack

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// Objects of the cloud, as plan object IDs: "image/BITSTREAM",
// "device-profile/NAME", "flavor/NAME". Cards and servers use the plan's
// card and VM IDs ("node/N/fpga/SLOT", "node/N/vm/VM").
const (
	objImage   = "image/"
	objProfile = "device-profile/"
	objFlavor  = "flavor/"
)

// Attribute keys of the changes' Before and After (plans.Value.Attrs):
// what the plan shows, and what Apply reads back. A device profile's
// group keys ("resources:FPGA", "trait:...", "accel:bitstream_id") are
// attributes of their own.
const (
	attrName          = "name"
	attrFile          = "file"
	attrURL           = "url"
	attrBoard         = "board"
	attrUUID          = "uuid"
	attrVCPUs         = "vcpus"
	attrRAM           = "ram-mb"
	attrDisk          = "disk-gb"
	attrDeviceProfile = "accel:device_profile"
	attrBitstreamID   = "accel:bitstream_id"
	attrDeployable    = "deployable"
	attrRP            = "resource-provider"
	attrImage         = "image"
	attrServer        = "server"
	attrFlavor        = "flavor"
	attrHost          = "host"
	attrKeyName       = "key-name"
	attrGeneration    = "generation"
	attrTraits        = "traits"
	attrAdd           = "add"
	attrRemove        = "remove"
)

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
// changes for the nodes OpenStack owns: images, device profiles and
// flavors (which belong to no node), pool cards programmed through
// Cyborg, servers replaced to get another accelerator, and traits; what
// it cannot change it reports. It is pure and deterministic, and holds a
// change only where the cloud itself forbids it (plans.GateInUse):
// windows, protected bindings and the budget are the planner's.
func Plan(desired *spec.Fleet, nodes []*spec.Node, st *State) []plans.Change {
	p := planner{fleet: desired, st: st, images: map[string]string{}, imageChange: map[string]string{},
		profileChange: map[string]string{}, flavorChange: map[string]string{}, nodes: map[string]*Node{},
		reports: map[string]*plans.Change{}}
	for i := range st.Nodes {
		p.nodes[st.Nodes[i].Name] = &st.Nodes[i]
	}
	p.plan(nodes)
	for _, id := range slices.Sorted(maps.Keys(p.reports)) {
		p.out = append(p.out, *p.reports[id])
	}
	sort.SliceStable(p.out, func(i, j int) bool { return p.out[i].ID < p.out[j].ID })
	return p.out
}

type planner struct {
	fleet *spec.Fleet
	st    *State
	out   []plans.Change
	// images maps a bitstream to its Glance image ID, when it exists.
	images map[string]string
	// imageChange, profileChange and flavorChange map a bitstream,
	// profile or flavor this plan makes to the change that makes it.
	imageChange, profileChange, flavorChange map[string]string
	nodes                                    map[string]*Node
	// reports gathers, per object, what the plan reports about it.
	reports map[string]*plans.Change
}

// use is a binding on a node OpenStack owns.
type use struct {
	b    *spec.Binding
	node *spec.Node
	fpga *spec.FPGA
	bs   *spec.Bitstream
}

func (p *planner) plan(nodes []*spec.Node) {
	owned := make(map[string]*spec.Node, len(nodes))
	for _, n := range nodes {
		owned[n.Name] = n
	}
	var uses []use
	for i := range p.fleet.Bindings {
		b := &p.fleet.Bindings[i]
		n := owned[b.Node]
		if n == nil {
			continue
		}
		f, ok := n.FPGA(b.FPGA)
		bs, ok2 := p.fleet.Bitstream(b.Bitstream)
		if !ok || !ok2 {
			continue // the spec's checks report dangling references
		}
		uses = append(uses, use{b, n, f, bs})
	}
	sort.Slice(uses, func(i, j int) bool { return uses[i].b.Name < uses[j].b.Name })
	p.planImages(uses)
	p.planProfiles(uses)
	for _, u := range uses {
		sn := p.nodes[u.node.Name]
		if sn == nil || sn.State != observed.NodeOK {
			reason := "not observed"
			if sn != nil {
				reason = sn.Reason
			}
			p.report(plans.NodeID(u.node.Name), u.node.Name, nil, false, "OpenStack could not be observed for node "+u.node.Name+": "+reason)
			continue
		}
		card := sn.card(u.fpga.PCI)
		if card == nil {
			p.report(plans.CardID(u.node.Name, u.fpga.Slot), u.node.Name, u.fpga, false,
				fmt.Sprintf("no FPGA resource provider %s_%s in Placement", u.node.Hostname, u.fpga.PCI))
			continue
		}
		if u.b.VM == "" {
			p.planPool(u, sn, card)
			continue
		}
		p.planServer(u, sn, card)
	}
	p.planTraits(nodes)
}

// change starts a change of this backend.
func change(object string, step plans.Step, action plans.Action) plans.Change {
	return plans.Change{ID: object + ":" + string(step), Object: object, Step: step, Action: action, Backend: Name}
}

// onCard places a change on a card of a node.
func onCard(c *plans.Change, node string, f *spec.FPGA) {
	c.Node, c.Card, c.CardPCI = node, f.Slot, f.PCI
}

// report notes something the plan cannot change about an object; what is
// said of one object becomes one report.
func (p *planner) report(object, node string, f *spec.FPGA, drift bool, why string) {
	if r, ok := p.reports[object]; ok {
		r.Reason += "; " + why
		r.Drift = r.Drift || drift
		return
	}
	r := change(object, plans.StepReport, plans.ActionReport)
	r.Node = node
	if f != nil {
		onCard(&r, node, f)
	}
	r.Drift, r.Reason = drift, why
	p.reports[object] = &r
}

// planImages makes a Glance image of every bitstream in use that has none.
func (p *planner) planImages(uses []use) {
	want := map[string]*spec.Bitstream{}
	for _, u := range uses {
		want[u.bs.Name] = u.bs
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		bs := want[name]
		if id := p.findImage(bs); id != "" {
			p.images[name] = id
			continue
		}
		c := change(objImage+name, plans.StepCreate, plans.ActionCreate)
		c.Reason = "no Glance image " + ImageName(*bs) + " with sha256 " + short(bs.SHA256)
		attrs := map[string]string{attrName: ImageName(*bs)}
		if bs.File != "" {
			attrs[attrFile] = bs.File
		} else {
			attrs[attrURL] = bs.URL
		}
		c.After = &plans.Value{Bitstream: name, SHA256: bs.SHA256, Attrs: attrs}
		p.imageChange[name] = c.ID
		p.out = append(p.out, c)
	}
}

// imageDeps is what a change that needs the bitstream's image waits for.
func (p *planner) imageDeps(bitstream string) []string {
	if id, ok := p.imageChange[bitstream]; ok {
		return []string{id}
	}
	return nil
}

// planProfiles makes a device profile per bitstream and board that a VM
// asks for, and replaces one that differs (Cyborg has no update), unless
// servers boot with it.
func (p *planner) planProfiles(uses []use) {
	type pair struct {
		bs    *spec.Bitstream
		board spec.Board
	}
	want := map[string]pair{}
	for _, u := range uses {
		if u.b.VM != "" {
			want[ProfileName(*u.bs, u.fpga.Board)] = pair{u.bs, u.fpga.Board}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		pr := want[name]
		group := ProfileGroup(*pr.bs, pr.board)
		img := p.images[pr.bs.Name]
		attrs := maps.Clone(group)
		attrs[attrName], attrs[attrBoard], attrs[attrBitstreamID] = name, string(pr.board), img
		after := &plans.Value{Bitstream: pr.bs.Name, SHA256: pr.bs.SHA256, Attrs: attrs}
		have := p.st.profile(name)
		var c plans.Change
		switch {
		case have == nil:
			c = change(objProfile+name, plans.StepCreate, plans.ActionCreate)
			c.Reason = "no device profile " + name
		case img == "" || !sameGroups(have.Groups, withImage(group, img)):
			c = change(objProfile+name, plans.StepReplace, plans.ActionReplace)
			c.Reason = "device profile " + name + " differs from bitstream " + pr.bs.Name + " on " + string(pr.board)
			c.Before = &plans.Value{Attrs: map[string]string{attrName: name, attrUUID: have.UUID}}
			if users := p.profileUsers(name); len(users) > 0 {
				c.Held = &plans.Hold{Gate: plans.GateInUse, Why: "servers boot with it: " + strings.Join(users, ", ")}
			}
		default:
			continue
		}
		c.After = after
		c.DependsOn = p.imageDeps(pr.bs.Name)
		p.profileChange[name] = c.ID
		p.out = append(p.out, c)
	}
}

// findImage returns the active Glance image holding the bitstream, found
// by name and recorded digest.
func (p *planner) findImage(bs *spec.Bitstream) string {
	for _, im := range p.st.Images {
		if im.Name == ImageName(*bs) && im.SHA256 == bs.SHA256 && im.Status == "active" && (bs.Size == 0 || im.Size == 0 || im.Size == bs.Size) {
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

// planPool programs a card no VM asks for through its Cyborg deployable,
// never while a server holds it.
func (p *planner) planPool(u use, sn *Node, card *Card) {
	cid := plans.CardID(u.node.Name, u.fpga.Slot)
	if card.Deployable == "" {
		p.report(cid, u.node.Name, u.fpga, false, "Cyborg has no deployable on resource provider "+card.RPName)
		return
	}
	img := p.images[u.bs.Name]
	if img != "" && card.Bitstream == img {
		return
	}
	c := change(cid, plans.StepProgram, plans.ActionProgram)
	onCard(&c, u.node.Name, u.fpga)
	c.Binding = u.b.Name
	c.Reason = "card runs " + p.describeImage(card.Bitstream) + ", binding " + u.b.Name + " wants " + u.bs.Name
	c.Before = &plans.Value{Bitstream: p.bitstreamOf(card.Bitstream), Attrs: map[string]string{attrImage: card.Bitstream}}
	c.After = &plans.Value{Bitstream: u.bs.Name, SHA256: u.bs.SHA256, AFUID: u.bs.AFUID,
		Attrs: map[string]string{attrDeployable: card.Deployable, attrRP: card.RPUUID, attrImage: img}}
	c.DependsOn = p.imageDeps(u.bs.Name)
	if h := sn.holder(card.RPUUID); h != nil {
		c.Held = &plans.Hold{Gate: plans.GateInUse, Why: "held by running server " + h.Name}
	}
	p.out = append(p.out, c)
}

// bitstreamOf names the fleet bitstream whose image id is, or "".
func (p *planner) bitstreamOf(id string) string {
	for name, img := range p.images {
		if img == id && id != "" {
			return name
		}
	}
	return ""
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

// planServer gives a VM its accelerator: a server booted with the right
// device profile is left alone; another one is replaced with a flavor
// that carries it, since Nova cannot resize or migrate a server with
// accelerators.
func (p *planner) planServer(u use, sn *Node, card *Card) {
	b, node := u.b, u.node
	vmID := plans.VMID(node.Name, b.VM)
	srv := sn.server(b.VM)
	if srv == nil {
		p.report(vmID, node.Name, nil, false, "no server "+b.VM+" on host "+node.Hostname+" (fpgaops does not create servers)")
		return
	}
	profile := ProfileName(*u.bs, u.fpga.Board)
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
			p.report(vmID, node.Name, nil, true, "server "+b.VM+" has no bound accelerator request for "+profile)
		case bound != card.RPUUID:
			p.report(vmID, node.Name, nil, true, "server "+b.VM+" holds another card than "+plans.CardID(node.Name, u.fpga.Slot)+" (Placement chose it)")
		}
		return
	}
	flavor := FlavorName(srv.VCPUs, srv.RAM, srv.Disk, profile)
	var deps []string
	if id, ok := p.profileChange[profile]; ok {
		deps = append(deps, id)
	}
	switch f := p.st.flavor(flavor); {
	case f == nil:
		if _, planned := p.flavorChange[flavor]; !planned {
			c := change(objFlavor+flavor, plans.StepCreate, plans.ActionCreate)
			c.Reason = "no flavor with accel:device_profile=" + profile + " for the size of " + b.VM
			c.After = &plans.Value{Attrs: map[string]string{attrName: flavor, attrVCPUs: strconv.Itoa(srv.VCPUs),
				attrRAM: strconv.Itoa(srv.RAM), attrDisk: strconv.Itoa(srv.Disk), attrDeviceProfile: profile}}
			c.DependsOn = slices.Clone(deps)
			p.flavorChange[flavor] = c.ID
			p.out = append(p.out, c)
		}
		deps = append(deps, p.flavorChange[flavor])
	case f.DeviceProfile != profile || f.VCPUs != srv.VCPUs || f.RAM != srv.RAM || f.Disk != srv.Disk:
		p.report(objFlavor+flavor, "", nil, true, "flavor "+flavor+" exists but does not match its name (accel:device_profile="+f.DeviceProfile+")")
		return
	}
	was := srv.DeviceProfile
	if was == "" {
		was = "no accelerator"
	}
	c := change(vmID, plans.StepReplace, plans.ActionReplace)
	onCard(&c, node.Name, u.fpga)
	c.Binding, c.Disruptive, c.DependsOn = b.Name, true, deps
	c.Reason = "server " + b.VM + " runs with " + was + ", binding " + b.Name + " wants " + profile + "; Nova cannot resize or migrate servers with accelerators"
	c.Before = &plans.Value{VM: b.VM, Running: srv.Status == "ACTIVE", Attrs: map[string]string{
		attrServer: srv.ID, attrFlavor: srv.FlavorName, attrDeviceProfile: srv.DeviceProfile,
		attrHost: node.Hostname, attrImage: srv.ImageID, attrKeyName: srv.KeyName}}
	c.After = &plans.Value{VM: b.VM, Running: true, Attrs: map[string]string{
		attrFlavor: flavor, attrDeviceProfile: profile, attrHost: node.Hostname}}
	p.out = append(p.out, c)
}

// planTraits checks each card's function traits against what Cyborg says
// the card runs, for the cards that run an image of a fleet bitstream:
// a difference is drift, corrected in drift mode "correct".
func (p *planner) planTraits(nodes []*spec.Node) {
	afuOf := map[string]string{} // image ID -> AFU ID
	for _, bs := range p.fleet.Bitstreams {
		for _, im := range p.st.Images {
			if im.Name == ImageName(bs) && im.SHA256 == bs.SHA256 {
				afuOf[im.ID] = bs.AFUID
			}
		}
	}
	for _, n := range nodes {
		sn := p.nodes[n.Name]
		if sn == nil || sn.State != observed.NodeOK {
			continue
		}
		for i := range n.FPGAs {
			f := &n.FPGAs[i]
			card := sn.card(f.PCI)
			if card == nil {
				continue
			}
			cid := plans.CardID(n.Name, f.Slot)
			if card.FPGATotal < 1 {
				p.report(cid, n.Name, f, true, "resource provider "+card.RPName+" has no FPGA inventory")
			}
			if f.InterfaceID != "" && !slices.Contains(card.Traits, RegionTrait(f.InterfaceID)) {
				p.report(cid, n.Name, f, true, "placement lacks region trait "+RegionTrait(f.InterfaceID))
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
			if p.fleet.Policy.Drift != spec.DriftCorrect {
				p.report(cid, n.Name, f, true, reason)
				continue
			}
			c := change(cid, plans.StepUpdate, plans.ActionUpdate)
			onCard(&c, n.Name, f)
			c.Drift, c.Reason = true, "drift: "+reason
			add := ""
			if !has {
				add = want
			}
			c.Before = &plans.Value{Attrs: map[string]string{attrTraits: strings.Join(card.Traits, ",")}}
			c.After = &plans.Value{Attrs: map[string]string{attrRP: card.RPUUID, attrGeneration: strconv.Itoa(card.Generation),
				attrAdd: add, attrRemove: strings.Join(stale, ",")}}
			p.out = append(p.out, c)
		}
	}
}

func withImage(g map[string]string, image string) map[string]string {
	out := maps.Clone(g)
	out[attrBitstreamID] = image
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
