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
	attrRemove        = "remove"
	// attrFunctionID is the Glance image property Cyborg's bind reads
	// after programming a card (cyborg/objects/extarq/fpga_ext_arq.py):
	// the AFU ID, whose function ID trait it then sets.
	attrFunctionID = "accel:function_id"
)

// Placement trait names Cyborg's Intel driver reports.
const (
	TraitIntel          = "CUSTOM_FPGA_INTEL"
	traitRegionPrefix   = "CUSTOM_FPGA_REGION_INTEL_"
	traitFunctionPrefix = "CUSTOM_FPGA_FUNCTION_ID_INTEL_"
	// traitFunctionAny is the prefix of every function ID trait: Cyborg's
	// bind removes them all before it sets the one of what it programmed.
	traitFunctionAny = "CUSTOM_FPGA_FUNCTION_ID_"
)

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
// it cannot change it reports, cards of boards Cyborg does not expose
// first. It is pure and deterministic, and holds a change only where the
// cloud itself forbids it (plans.GateInUse): windows, protected bindings
// and the budget are the planner's.
func Plan(desired *spec.Fleet, nodes []*spec.Node, st *State) []plans.Change {
	p := planner{fleet: desired, st: st, images: map[string]string{}, imageChange: map[string]string{},
		profileChange: map[string]string{}, flavorChange: map[string]string{}, nodes: map[string]*Node{},
		reports: map[string]*plans.Change{}, imageByID: map[string]*Image{}, bySHA: map[string]*spec.Bitstream{},
		pooled: map[string]bool{}}
	for i := range st.Nodes {
		p.nodes[st.Nodes[i].Name] = &st.Nodes[i]
	}
	for i := range st.Images {
		p.imageByID[st.Images[i].ID] = &st.Images[i]
	}
	for i := range desired.Bitstreams {
		bs := &desired.Bitstreams[i]
		if p.bySHA[bs.SHA256] == nil {
			p.bySHA[bs.SHA256] = bs
		}
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
	// profile or flavor this plan makes (or, for an image, updates) to
	// the change that does it.
	imageChange, profileChange, flavorChange map[string]string
	nodes                                    map[string]*Node
	// reports gathers, per object, what the plan reports about it.
	reports map[string]*plans.Change
	// imageByID indexes the observed images; bySHA the fleet's
	// bitstreams by digest (the first by name where two share one).
	imageByID map[string]*Image
	bySHA     map[string]*spec.Bitstream
	// pooled are the resource providers of cards a pool binding keeps
	// programmed: what they run is that binding's business.
	pooled map[string]bool
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
	exposed := map[*spec.FPGA]bool{}
	for _, n := range nodes {
		owned[n.Name] = n
		for i := range n.FPGAs {
			f := &n.FPGAs[i]
			if why := unsupportedBoard(n, f); why != "" {
				p.report(plans.CardID(n.Name, f.Slot), n.Name, f, false, why)
				continue
			}
			exposed[f] = true
		}
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
		if !ok || !ok2 || !exposed[f] {
			continue // the spec's checks report dangling references
		}
		if b.VM != "" && bs.AFUID == "" {
			p.report(plans.VMID(n.Name, b.VM), n.Name, nil, false, "bitstream "+bs.Name+" declares no afuID: Cyborg's bind programs the card, "+
				"then reads accel:function_id from the image and fails without it (openstack/cyborg cyborg/objects/extarq/fpga_ext_arq.py)")
			continue
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
		card := sn.card(u.fpga)
		if card == nil {
			p.report(plans.CardID(u.node.Name, u.fpga.Slot), u.node.Name, u.fpga, false,
				fmt.Sprintf("no FPGA resource provider %s_%s (or named after a VF of the card) under %s in Placement",
					DeviceHostname(u.node), u.fpga.PCI, RootProvider(u.node)))
			continue
		}
		if u.b.VM == "" {
			p.planPool(u, sn, card)
			continue
		}
		p.planServer(u, sn, card)
	}
	p.planTraits(nodes, exposed)
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

// planImages makes a Glance image of every bitstream in use that has none,
// and gives one that lacks it the accel:function_id Cyborg's bind reads.
func (p *planner) planImages(uses []use) {
	want := map[string]*spec.Bitstream{}
	for _, u := range uses {
		want[u.bs.Name] = u.bs
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		bs := want[name]
		if im := p.findImage(bs); im != nil {
			p.images[name] = im.ID
			if bs.AFUID == "" || im.FunctionID == bs.AFUID {
				continue
			}
			c := change(objImage+name, plans.StepUpdate, plans.ActionUpdate)
			c.Reason = "Glance image " + im.Name + " has accel:function_id " + orNothing(im.FunctionID) + ", bitstream " + name +
				"'s AFU is " + bs.AFUID + ": Cyborg's bind reads it (openstack/cyborg cyborg/objects/extarq/fpga_ext_arq.py)"
			c.Before = &plans.Value{Bitstream: name, Attrs: map[string]string{attrUUID: im.ID, attrFunctionID: im.FunctionID}}
			c.After = &plans.Value{Bitstream: name, SHA256: bs.SHA256, AFUID: bs.AFUID,
				Attrs: map[string]string{attrUUID: im.ID, attrName: im.Name, attrFunctionID: bs.AFUID}}
			p.imageChange[name] = c.ID
			p.out = append(p.out, c)
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
		// Apply sets accel:function_id from the AFU ID.
		c.After = &plans.Value{Bitstream: name, SHA256: bs.SHA256, AFUID: bs.AFUID, Attrs: attrs}
		p.imageChange[name] = c.ID
		p.out = append(p.out, c)
	}
}

func orNothing(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
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
func (p *planner) findImage(bs *spec.Bitstream) *Image {
	for i := range p.st.Images {
		im := &p.st.Images[i]
		if im.Name == ImageName(*bs) && im.SHA256 == bs.SHA256 && im.Status == "active" && (bs.Size == 0 || im.Size == 0 || im.Size == bs.Size) {
			return im
		}
	}
	return nil
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
// never while a server holds it. A card fpgaops programmed with the
// binding's bitstream, on which Cyborg now reads another function, was
// reprogrammed behind its back: drift.
func (p *planner) planPool(u use, sn *Node, card *Card) {
	cid := plans.CardID(u.node.Name, u.fpga.Slot)
	if card.Deployable == "" {
		p.report(cid, u.node.Name, u.fpga, false, "Cyborg has no deployable on resource provider "+card.RPName)
		return
	}
	p.pooled[card.RPUUID] = true
	r := p.running(card)
	if r.is(u.bs) && !r.other {
		return
	}
	c := change(cid, plans.StepProgram, plans.ActionProgram)
	onCard(&c, u.node.Name, u.fpga)
	c.Binding = u.b.Name
	c.Reason = "card runs " + r.String() + ", binding " + u.b.Name + " wants " + u.bs.Name
	if r.is(u.bs) {
		why := "card was programmed with " + u.bs.Name + ", but Cyborg reports function " + strings.Join(r.afus, ",") + " on it: programmed since"
		if p.fleet.Policy.Drift != spec.DriftCorrect {
			p.report(cid, u.node.Name, u.fpga, true, why)
			return
		}
		c.Drift, c.Reason = true, "drift: "+why
	}
	c.Before = &plans.Value{SHA256: r.sha}
	if r.bs != nil {
		c.Before.Bitstream = r.bs.Name
	}
	if len(r.afus) == 1 {
		c.Before.AFUID = r.afus[0]
	}
	c.After = &plans.Value{Bitstream: u.bs.Name, SHA256: u.bs.SHA256, AFUID: u.bs.AFUID,
		Attrs: map[string]string{attrDeployable: card.Deployable, attrRP: card.RPUUID, attrImage: p.images[u.bs.Name]}}
	c.DependsOn = p.imageDeps(u.bs.Name)
	if h := sn.holder(card.RPUUID); h != nil {
		c.Held = &plans.Hold{Gate: plans.GateInUse, Why: "held by running server " + h.Name}
	}
	p.out = append(p.out, c)
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
	// A bind reads the image's function ID: wait for its update too.
	deps := p.imageDeps(u.bs.Name)
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
			if id, ok := p.profileChange[profile]; ok {
				c.DependsOn = []string{id}
			}
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

// planTraits checks each card's provider: its FPGA inventory, the region
// trait of its declared interface, and its function ID traits against
// what the card was last programmed with. A function ID trait beside the
// one of what the card runs is drift, removed in drift mode "correct"; a
// card without one is not (the host cannot read the AFU of a port a VM
// holds). Another function than the record's, on a card no pool binding
// keeps, is drift to report: its servers got it from Cyborg.
func (p *planner) planTraits(nodes []*spec.Node, exposed map[*spec.FPGA]bool) {
	for _, n := range nodes {
		sn := p.nodes[n.Name]
		if sn == nil || sn.State != observed.NodeOK {
			continue
		}
		for i := range n.FPGAs {
			f := &n.FPGAs[i]
			card := sn.card(f)
			if card == nil || !exposed[f] {
				continue
			}
			cid := plans.CardID(n.Name, f.Slot)
			if card.FPGATotal < 1 {
				p.report(cid, n.Name, f, true, "resource provider "+card.RPName+" has no FPGA inventory")
			}
			if f.InterfaceID != "" && !slices.Contains(card.Traits, RegionTrait(f.InterfaceID)) {
				p.report(cid, n.Name, f, true, "placement lacks region trait "+RegionTrait(f.InterfaceID))
			}
			r := p.running(card)
			if r.other && !p.pooled[card.RPUUID] {
				p.report(cid, n.Name, f, true, "card was programmed with "+r.bs.Name+", but Cyborg reports function "+strings.Join(r.afus, ",")+" on it")
			}
			if r.bs == nil || r.bs.AFUID == "" || r.other {
				continue
			}
			want := FunctionTrait(r.bs.AFUID)
			var stale []string
			for _, t := range card.Traits {
				if strings.HasPrefix(t, traitFunctionAny) && t != want {
					stale = append(stale, t)
				}
			}
			if len(stale) == 0 {
				continue
			}
			reason := "placement traits do not match what the card runs (" + want + "): " + strings.Join(stale, ", ")
			if p.fleet.Policy.Drift != spec.DriftCorrect {
				p.report(cid, n.Name, f, true, reason)
				continue
			}
			c := change(cid, plans.StepUpdate, plans.ActionUpdate)
			onCard(&c, n.Name, f)
			c.Drift, c.Reason = true, "drift: "+reason
			c.Before = &plans.Value{Attrs: map[string]string{attrTraits: strings.Join(card.Traits, ",")}}
			c.After = &plans.Value{Attrs: map[string]string{attrRP: card.RPUUID, attrGeneration: strconv.Itoa(card.Generation),
				attrRemove: strings.Join(stale, ",")}}
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
