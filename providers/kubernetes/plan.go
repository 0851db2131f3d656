package kubernetes

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

// Objects of the plan besides cards: "device-class/NAME" (shared by the
// nodes), a card's devices in its node's slice ("node/N/fpga/SLOT/devices"),
// and the devices of a node's slice whose card the repository no longer
// has ("node/N/devices").
const (
	objClass   = "device-class/"
	objDevices = "/devices"
)

// Attribute keys of the changes' Before and After (plans.Value.Attrs)
// besides the devices' own: what the plan shows, and what Apply reads.
const (
	attrSlice    = "slice"
	attrDevices  = "devices"
	attrName     = "name"
	attrSelector = "selector"
	attrPodUID   = "pod-uid"
	attrClaims   = "claims"
	attrPods     = "pods"
)

// Plan compares the desired fleet with the observed cluster and cards and
// returns the changes for the Kubernetes nodes: a DeviceClass per pool,
// each card's devices published, refreshed or withdrawn, and a card to
// reprogram (or whose VFs change) as the chain withdraw, evictions, VFs,
// program, publish; what it cannot change it reports. It is pure and
// deterministic, and holds a change only where the cluster itself forbids
// it (an eviction a PodDisruptionBudget refuses, plans.GateInUse):
// windows, protected bindings and the budget are the planner's.
func Plan(desired *spec.Fleet, nodes []*spec.Node, st *State) []plans.Change {
	p := planner{fleet: desired, st: st, bindings: map[string][]*spec.Binding{}, nodes: make(map[string]*Node, len(st.Nodes)), reports: map[string]int{}}
	for i := range st.Nodes {
		p.nodes[st.Nodes[i].Name] = &st.Nodes[i]
	}
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		k := b.Node + "/" + b.FPGA
		p.bindings[k] = append(p.bindings[k], b)
	}
	p.planClasses(nodes)
	for _, n := range nodes {
		p.planNode(n)
	}
	sort.SliceStable(p.out, func(i, j int) bool { return p.out[i].ID < p.out[j].ID })
	return p.out
}

type planner struct {
	fleet *spec.Fleet
	st    *State
	// bindings are the fleet's bindings by "node/slot".
	bindings map[string][]*spec.Binding
	// nodes are the observed nodes by name.
	nodes map[string]*Node
	out   []plans.Change
	// reports are the index in out of the report on each object.
	reports map[string]int
}

// change starts a change of this backend.
func change(object string, step plans.Step, action plans.Action) plans.Change {
	return plans.Change{ID: object + ":" + string(step), Object: object, Step: step, Action: action, Backend: Name}
}

func onCard(c *plans.Change, node string, f *spec.FPGA) {
	c.Node, c.Card, c.CardPCI = node, f.Slot, f.PCI
}

func (p *planner) report(object, node string, f *spec.FPGA, drift bool, why string) {
	if i, ok := p.reports[object]; ok {
		r := &p.out[i]
		r.Reason += "; " + why
		r.Drift = r.Drift || drift
		return
	}
	p.reports[object] = len(p.out)
	r := change(object, plans.StepReport, plans.ActionReport)
	r.Node = node
	if f != nil {
		onCard(&r, node, f)
	}
	r.Drift, r.Reason = drift, why
	p.out = append(p.out, r)
}

// planClasses makes, or corrects, the DeviceClass of every pool a
// binding on these nodes names.
func (p *planner) planClasses(nodes []*spec.Node) {
	pools := map[string]bool{}
	for _, n := range nodes {
		for i := range n.FPGAs {
			for _, b := range p.bindings[n.Name+"/"+n.FPGAs[i].Slot] {
				if b.Pool != "" {
					pools[b.Pool] = true
				}
			}
		}
	}
	for _, pool := range slices.Sorted(maps.Keys(pools)) {
		name, sel := ClassName(pool), ClassSelector(pool)
		after := &plans.Value{Attrs: map[string]string{attrName: name, AttrPool: pool, attrSelector: sel}}
		var c plans.Change
		switch have := p.st.class(name); {
		case have == nil:
			c = change(objClass+name, plans.StepCreate, plans.ActionCreate)
			c.Reason = "no DeviceClass for pool " + pool
		case have.Selector != sel:
			c = change(objClass+name, plans.StepUpdate, plans.ActionUpdate)
			c.Reason = "DeviceClass " + name + " selects other devices than pool " + pool + "'s"
			c.Before = &plans.Value{Attrs: map[string]string{attrName: name, attrSelector: have.Selector}}
		default:
			continue
		}
		c.After = after
		p.out = append(p.out, c)
	}
}

func (p *planner) planNode(n *spec.Node) {
	sn := p.nodes[n.Name]
	if sn == nil || sn.State != observed.NodeOK {
		reason := "not observed"
		if sn != nil {
			reason = sn.Reason
		}
		p.report(plans.NodeID(n.Name), n.Name, nil, false, "Kubernetes node "+n.Kubernetes+" could not be observed: "+reason)
		return
	}
	if !sn.Registered {
		p.report(plans.NodeID(n.Name), n.Name, nil, false, "the cluster has no node "+n.Kubernetes+": no pod is scheduled to its devices")
	}
	published := map[string][]Device{}
	slots := map[string]bool{}
	for i := range n.FPGAs {
		slots[n.FPGAs[i].Slot] = true
	}
	var stale []string
	if sn.Slice != nil {
		for _, d := range sn.Slice.Devices {
			if s := d.Attrs[AttrSlot]; slots[s] {
				published[s] = append(published[s], d)
			} else {
				stale = append(stale, d.Name)
			}
		}
	}
	if len(stale) > 0 {
		c := change(plans.NodeID(n.Name)+objDevices, plans.StepDetach, plans.ActionDetach)
		c.Node = n.Name
		c.Reason = "ResourceSlice " + sn.Slice.Name + " offers devices of no card of the repository: " + strings.Join(stale, ", ")
		c.Before = &plans.Value{Attrs: map[string]string{attrSlice: sn.Slice.Name, attrDevices: strings.Join(stale, ",")}}
		p.out = append(p.out, c)
	}
	claimed := map[string]bool{}
	for i := range n.FPGAs {
		f := &n.FPGAs[i]
		for _, a := range p.planCard(n, sn, f, published[f.Slot]) {
			claimed[a.Claim+" "+a.Device] = true
		}
	}
	for _, a := range sn.Allocations {
		if !claimed[a.Claim+" "+a.Device] && slices.ContainsFunc(a.Pods, Pod.running) {
			p.report(plans.NodeID(n.Name), n.Name, nil, true, "claim "+a.Claim+" holds "+a.Device+", a device of no card of the repository")
		}
	}
}

// cardView is one card of a node: the repository's, the agent's, what the
// slice offers of it and the claims that hold it.
type cardView struct {
	n        *spec.Node
	sn       *Node
	f        *spec.FPGA
	card     *Card
	bindings []*spec.Binding
	bs       *spec.Bitstream
	// devs are the card's devices in the slice now.
	devs []Device
	// allocs are the allocations of the card's devices.
	allocs []Allocation
}

func (v *cardView) id() string { return plans.CardID(v.n.Name, v.f.Slot) }

// binding is the binding the card's disruptive changes serve: a
// protected one if any, so that the planner's protection applies.
func (v *cardView) binding() string {
	name := ""
	for _, b := range v.bindings {
		if b.Protected {
			return b.Name
		}
		if name == "" {
			name = b.Name
		}
	}
	return name
}

// deviceNames are the names of every device the card has or had: its
// PF's and VFs' and those the slice offers.
func (v *cardView) deviceNames() map[string]string {
	out := map[string]string{DeviceName(v.f.PCI): "pf"}
	if v.card != nil {
		for _, vf := range v.card.VFs {
			out[DeviceName(vf.PCI)] = "vf" + strconv.Itoa(vf.Index)
		}
	}
	for _, d := range v.devs {
		out[d.Name] = d.Attrs[AttrFunction]
	}
	return out
}

// planCard plans one card and returns the allocations of its devices.
func (p *planner) planCard(n *spec.Node, sn *Node, f *spec.FPGA, devs []Device) []Allocation {
	v := &cardView{n: n, sn: sn, f: f, card: sn.card(f.PCI), bindings: p.bindings[n.Name+"/"+f.Slot], devs: devs}
	names := v.deviceNames()
	for _, a := range sn.Allocations {
		if _, ok := names[a.Device]; ok {
			v.allocs = append(v.allocs, a)
		}
	}
	for _, b := range v.bindings {
		if bs, ok := p.fleet.Bitstream(b.Bitstream); ok {
			v.bs = bs
		}
	}
	switch {
	case v.card == nil:
		// The planner reports the missing card.
		p.withdraw(v, nil, false, "no card at "+f.PCI)
		return v.allocs
	case len(v.card.Problems) > 0:
		// The planner reports a sick card and holds what gives it work.
		p.withdraw(v, nil, false, "the card reports "+strings.Join(v.card.Problems, "; "))
		return v.allocs
	case v.bs == nil:
		p.drift(v, nil)
		p.withdraw(v, nil, false, "no binding gives it out")
		return v.allocs
	case v.bs.InterfaceID != "" && v.card.InterfaceID != "" && v.bs.InterfaceID != v.card.InterfaceID:
		p.report(v.id(), n.Name, f, false, fmt.Sprintf("bitstream %s is built for PR interface %s, the card has %s: it is not programmed",
			v.bs.Name, v.bs.InterfaceID, v.card.InterfaceID))
		return v.allocs
	}
	afu := v.card.AFUID
	if afu == "" {
		// The host cannot read a port a VF container holds: the devices
		// say what the card was published running.
		for _, d := range devs {
			if d.Attrs[AttrAFUID] == v.bs.AFUID {
				afu = v.bs.AFUID
			}
		}
	}
	o := newOffer(f, v.card, v.bs, v.bindings)
	if afu != v.bs.AFUID || v.card.NumVFs != f.VFs {
		p.reset(v, o, afu)
		return v.allocs
	}
	p.refresh(v, o)
	return v.allocs
}

// holders are the running pods whose claims hold the card's devices,
// once each, sorted, with the claims and devices they hold them through.
func (v *cardView) holders() (pods []Pod, claims map[string][]string, devices map[string]string) {
	claims, devices = map[string][]string{}, map[string]string{}
	seen := map[string]bool{}
	for _, a := range v.allocs {
		for _, pod := range a.Pods {
			if !pod.running() {
				continue
			}
			id := pod.ID()
			if !slices.Contains(claims[id], a.Claim) {
				claims[id] = append(claims[id], a.Claim)
			}
			if _, ok := devices[id]; !ok {
				devices[id] = a.Device
			}
			if !seen[id] {
				seen[id] = true
				pods = append(pods, pod)
			}
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].ID() < pods[j].ID() })
	return pods, claims, devices
}

// withdraw takes the card's devices out of the slice, if it offers any:
// a detach of them. The first step of a reset is an update of them to
// none instead (reset true): it starts giving the card new work, so the
// core planner holds it with the card's reset for a sick or quarantined
// card, or one the rollout has not released, and the evictions wait with
// it. With pods that hold them it is as disruptive as their evictions,
// and gated with them.
func (p *planner) withdraw(v *cardView, pods []Pod, reset bool, why string) *plans.Change {
	if len(v.devs) == 0 {
		return nil
	}
	var names []string
	for _, d := range v.devs {
		names = append(names, d.Name)
	}
	held := &plans.Value{Attrs: map[string]string{attrSlice: v.sn.Slice.Name, attrDevices: strings.Join(names, ","), AttrSlot: v.f.Slot}}
	c := change(v.id()+objDevices, plans.StepDetach, plans.ActionDetach)
	c.Before = held
	if reset {
		// Still the chain's detach step: it comes first in the plan.
		c = change(v.id()+objDevices, plans.StepDetach, plans.ActionUpdate)
		c.Before, c.After = held, &plans.Value{Attrs: map[string]string{attrSlice: v.sn.Slice.Name, attrDevices: "", AttrSlot: v.f.Slot}}
	}
	onCard(&c, v.n.Name, v.f)
	c.Binding = v.binding()
	c.Reason = "withdraw " + strings.Join(names, ", ") + " from ResourceSlice " + v.sn.Slice.Name + ": " + why
	if len(pods) > 0 {
		var ids []string
		for _, pod := range pods {
			ids = append(ids, pod.ID())
		}
		c.Disruptive = true
		c.Before.VM = pods[0].ID()
		c.Before.Attrs[attrPods] = strings.Join(ids, ",")
		c.Reason += "; no new claim gets them while " + strings.Join(ids, ", ") + " are evicted"
	}
	p.out = append(p.out, c)
	return &p.out[len(p.out)-1]
}

// reset plans the chain that reprograms the card or changes its VFs:
// withdraw, evict the pods that hold it, VFs off, program, VFs on, and
// offer it again.
func (p *planner) reset(v *cardView, o offer, afu string) {
	n, f, card, bs := v.n, v.f, v.card, v.bs
	what := "VFs " + strconv.Itoa(card.NumVFs) + " -> " + strconv.Itoa(f.VFs)
	if afu != bs.AFUID {
		what = "program " + bs.Name
	}
	pods, claims, devices := v.holders()
	var blocked *Pod
	for i := range pods {
		if pods[i].Blocked != "" {
			blocked = &pods[i]
			break
		}
	}
	var last []string
	if w := p.withdraw(v, pods, true, "the card is reset ("+what+")"); w != nil {
		last = append(last, w.ID)
		if blocked != nil {
			w.Held = &plans.Hold{Gate: plans.GateInUse, Why: "the eviction of " + blocked.ID() + " is refused: " + blocked.Blocked}
		}
	}
	names := v.deviceNames()
	var evictions []string
	for _, pod := range pods {
		fn := names[devices[pod.ID()]]
		if fn == "" {
			fn = "pf"
		}
		id := pod.ID()
		c := change(plans.AttachmentID(n.Name, f.Slot, fn, id), plans.StepDetach, plans.ActionDetach)
		onCard(&c, n.Name, f)
		c.Binding, c.Disruptive, c.DependsOn = v.binding(), true, slices.Clone(last)
		pci, _ := pciOf(devices[id])
		c.Before = &plans.Value{VM: id, Running: pod.Phase == "Running", Function: fn, PCI: pci, Attrs: map[string]string{
			attrPodUID: pod.UID, attrClaims: strings.Join(claims[id], ","), attrDevices: devices[id]}}
		c.Reason = "evict pod " + id + ": its claim " + strings.Join(claims[id], ", ") + " holds " + devices[id] + ", and the card is reset (" + what + ")"
		switch {
		case pod.Blocked != "":
			c.Held = &plans.Hold{Gate: plans.GateInUse, Why: pod.Blocked}
		case blocked != nil:
			c.Held = &plans.Hold{Gate: plans.GateInUse, Why: "the eviction of " + blocked.ID() + " is refused: " + blocked.Blocked}
		}
		evictions = append(evictions, c.ID)
		p.out = append(p.out, c)
	}
	last = append(last, evictions...)
	step := func(s plans.Step, a plans.Action) *plans.Change {
		c := change(v.id(), s, a)
		onCard(&c, n.Name, f)
		c.Binding, c.DependsOn = v.binding(), last
		p.out = append(p.out, c)
		last = []string{c.ID}
		return &p.out[len(p.out)-1]
	}
	vfs := func(s plans.Step) {
		c := step(s, plans.ActionSetVFs)
		before, after := card.NumVFs, f.VFs
		c.Before, c.After = &plans.Value{VFs: &before}, &plans.Value{VFs: &after}
		c.Reason = fmt.Sprintf("card has %d VF(s) on, the repository says %d", before, after)
	}
	if f.VFs < card.NumVFs {
		vfs(plans.StepVFsOff)
	}
	if afu != bs.AFUID {
		c := step(plans.StepProgram, plans.ActionProgram)
		c.Before = &plans.Value{AFUID: card.AFUID, Bitstream: p.bitstreamOf(card.AFUID)}
		c.After = &plans.Value{Bitstream: bs.Name, SHA256: bs.SHA256, AFUID: bs.AFUID}
		c.Reason = "card runs " + describeAFU(card.AFUID, c.Before.Bitstream) + ", binding " + v.binding() + " wants " + bs.Name
	}
	if f.VFs > card.NumVFs {
		vfs(plans.StepVFsOn)
	}
	if o.empty() {
		return
	}
	c := change(v.id()+objDevices, plans.StepAttach, plans.ActionAttach)
	onCard(&c, n.Name, f)
	c.Binding, c.DependsOn = v.binding(), last
	c.After = &plans.Value{Attrs: o.Attrs(SliceName(n.Kubernetes))}
	c.Reason = "offer the card to pool " + poolList(o) + " again, running " + bs.Name
	p.out = append(p.out, c)
}

// refresh keeps the devices of a card that runs what it should as the
// repository says: offered, with the right attributes, or withdrawn. A
// claim that holds a device fpgaops does not offer, or through another
// pool's class, is drift.
func (p *planner) refresh(v *cardView, o offer) {
	n, f := v.n, v.f
	want, ok := o.devices(f.PCI, v.card.VFs)
	if !ok {
		p.report(v.id(), n.Name, f, false, "a function a binding gives out is not on the card")
		return
	}
	slice := SliceName(n.Kubernetes)
	p.drift(v, want)
	switch {
	case sameDevices(want, v.devs):
	case len(want) == 0:
		p.withdraw(v, nil, false, "no binding gives it to a pool")
	case len(v.devs) == 0:
		c := change(v.id()+objDevices, plans.StepAttach, plans.ActionAttach)
		onCard(&c, n.Name, f)
		c.Binding = v.binding()
		c.After = &plans.Value{Attrs: o.Attrs(slice)}
		c.Reason = "offer the card, running " + v.bs.Name + ", to pool " + poolList(o)
		p.out = append(p.out, c)
	default:
		c := change(v.id()+objDevices, plans.StepUpdate, plans.ActionUpdate)
		onCard(&c, n.Name, f)
		c.Binding = v.binding()
		var names []string
		for _, d := range v.devs {
			names = append(names, d.Name)
		}
		before := map[string]string{attrSlice: slice, attrDevices: strings.Join(names, ",")}
		maps.Copy(before, v.devs[0].Attrs)
		c.Before, c.After = &plans.Value{Attrs: before}, &plans.Value{Attrs: o.Attrs(slice)}
		c.Reason = "the card's devices in ResourceSlice " + slice + " differ from the repository's"
		p.out = append(p.out, c)
	}
}

// drift reports the claims of running pods that hold a device of the card
// fpgaops does not offer (want), or hold one through the DeviceClass of
// another pool.
func (p *planner) drift(v *cardView, want []Device) {
	pools := map[string]string{}
	for _, d := range want {
		pools[d.Name] = d.Attrs[AttrPool]
	}
	for _, a := range v.allocs {
		if !slices.ContainsFunc(a.Pods, Pod.running) {
			continue
		}
		pool, offered := pools[a.Device]
		switch cp := PoolOfClass(a.Class); {
		case !offered:
			p.report(v.id(), v.n.Name, v.f, true, "claim "+a.Claim+" holds "+a.Device+", which fpgaops does not offer")
		case cp != "" && cp != pool:
			p.report(v.id(), v.n.Name, v.f, true, "claim "+a.Claim+" holds "+a.Device+" through DeviceClass "+a.Class+" of pool "+cp+", and the card is pool "+pool+"'s")
		}
	}
}

// bitstreamOf names the fleet bitstream whose AFU is afu, or "".
func (p *planner) bitstreamOf(afu string) string {
	if afu == "" {
		return ""
	}
	for _, b := range p.fleet.Bitstreams {
		if b.AFUID == afu {
			return b.Name
		}
	}
	return ""
}

func describeAFU(afu, bitstream string) string {
	switch {
	case bitstream != "":
		return bitstream
	case afu == "":
		return "an AFU the host cannot read"
	}
	return "AFU " + afu
}

func poolList(o offer) string {
	var pools []string
	for _, fn := range slices.Sorted(maps.Keys(o.pools)) {
		if !slices.Contains(pools, o.pools[fn]) {
			pools = append(pools, o.pools[fn])
		}
	}
	return strings.Join(pools, ", ")
}
