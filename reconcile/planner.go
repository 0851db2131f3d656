package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// NewPlan is the planner: from the desired fleet, an observation of the
// live fleet and the time, it derives every change, in the safety order,
// with the policy's gates applied. It is pure: no I/O, no clock, no
// randomness; the same inputs give the same plan. It does not modify its
// inputs (it sorts a copy of obs's node list when obs is unsorted).
func NewPlan(desired *spec.Fleet, obs *observed.Fleet, now time.Time, opts Options) (*Plan, error) {
	if desired == nil || obs == nil {
		return nil, errors.New("plan: desired and observed state are both required")
	}
	ws, err := compileWindows(desired.Policy)
	if err != nil {
		return nil, fmt.Errorf("plan: policy %s: %w", desired.Policy.Name, err)
	}
	if !sort.SliceIsSorted(obs.Nodes, func(i, j int) bool { return obs.Nodes[i].Name < obs.Nodes[j].Name }) {
		c := *obs
		c.Nodes = append([]observed.Node(nil), obs.Nodes...)
		sort.Slice(c.Nodes, func(i, j int) bool { return c.Nodes[i].Name < c.Nodes[j].Name })
		obs = &c
	}
	switch desired.Policy.Drift {
	case "", spec.DriftReport, spec.DriftCorrect:
	default:
		return nil, fmt.Errorf("plan: policy %s: drift mode %q: want report or correct", desired.Policy.Name, desired.Policy.Drift)
	}

	pl := &planner{
		desired:    desired,
		opts:       opts,
		bitstreams: make(map[string]*spec.Bitstream, len(desired.Bitstreams)),
		byAFU:      make(map[string]string, len(desired.Bitstreams)),
	}
	for i := range desired.Bitstreams {
		b := &desired.Bitstreams[i]
		pl.bitstreams[b.Name] = b
		if _, dup := pl.byAFU[b.AFUID]; !dup {
			pl.byAFU[b.AFUID] = b.Name
		}
	}
	var errs []error
	pairs := pair(desired, obs)
	for i := range pairs {
		if err := pl.node(&pairs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("plan: %w", errors.Join(errs...))
	}

	pl.gatePrune()
	pl.gateDisruption(ws, now)
	pl.gateRestart(ws, now)
	pl.holdUselessDetaches()
	changes := pl.flatten()
	idx := indexByID(changes)
	holdDependents(changes, idx)
	budget := effectiveBudget(desired.Policy.Budget)
	waves := assignWaves(changes, idx, budget)

	p := &Plan{
		FormatVersion:       FormatVersion,
		Revision:            desired.Revision,
		DesiredDigest:       DesiredDigest(desired),
		ObservedFingerprint: obs.Fingerprint(),
		CreatedAt:           now.UTC(),
		Drift:               string(driftMode(desired.Policy)),
		Budget:              budget,
		Waves:               waves,
		Changes:             changes,
		CloudManaged:        pl.cloud,
	}
	sort.Strings(p.CloudManaged)
	p.Summary = summarise(changes)
	return p, nil
}

func driftMode(p spec.Policy) spec.DriftMode {
	if p.Drift == "" {
		return spec.DriftReport
	}
	return p.Drift
}

func effectiveBudget(b spec.Budget) Budget {
	out := Budget{MaxCardsInFlight: b.MaxCardsInFlight, MaxDisruptedVMs: b.MaxDisruptedVMs}
	if out.MaxCardsInFlight <= 0 {
		out.MaxCardsInFlight = DefaultMaxCardsInFlight
	}
	if out.MaxDisruptedVMs <= 0 {
		out.MaxDisruptedVMs = DefaultMaxDisruptedVMs
	}
	return out
}

// DesiredDigest is a digest of the desired fleet: what a saved plan was
// made for.
func DesiredDigest(f *spec.Fleet) string {
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(f); err != nil {
		panic(err) // plain data always marshals
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CardID is the canonical ID of a card as an object of the plan.
func CardID(node, slot string) string { return "node/" + node + "/fpga/" + slot }

// AttachmentID is the canonical ID of "this function of this card, held by
// this VM".
func AttachmentID(node, slot string, fn spec.Function, vm string) string {
	return CardID(node, slot) + "/" + fn.String() + "/vm/" + vm
}

// detachKind says why a function is taken from a VM.
type detachKind int

const (
	// detachCycle: the VM keeps the function, but the card must be reset
	// under it; it is attached again afterwards.
	detachCycle detachKind = iota
	// detachReplace: a binding gives the function to another VM, or gives
	// this VM another function: the repository changed who holds what.
	detachReplace
	// detachPrune: no binding mentions the VM and function any more.
	detachPrune
)

// chain is every change of one card, before gates and flattening.
type chain struct {
	card    string // object ID
	node    string
	detach  []*Change
	kinds   []detachKind
	blocks  []bool // detach must finish before the card is reset
	vfsOff  *Change
	program *Change
	vfsOn   *Change
	attach  []*Change
	other   []*Change // report or noop
	// resetHold is why the card cannot be reset, if it cannot.
	resetHold *Hold
}

func (c *chain) resetting() bool { return c.vfsOff != nil || c.program != nil || c.vfsOn != nil }

type planner struct {
	desired    *spec.Fleet
	opts       Options
	bitstreams map[string]*spec.Bitstream
	byAFU      map[string]string
	chains     []*chain
	nodeOnly   []*Change
	changes    slab[Change]
	values     slab[Value]
	ints       slab[int]
	// managed counts the functions of desired cards that VMs hold: the
	// base of the prune share.
	managed int
	// cloud lists the cloud-managed nodes planned.
	cloud []string
}

func (pl *planner) node(np *nodePair) error {
	n := np.Node
	if CloudManaged(n, pl.opts) {
		pl.cloud = append(pl.cloud, n.Name)
	}
	if !np.Known() {
		reason := "the node is not in the observation"
		if np.Obs != nil && np.Obs.Reason != "" {
			reason = np.Obs.Reason
		}
		pl.nodeOnly = append(pl.nodeOnly, &Change{
			ID: "node/" + n.Name + ":unknown", Action: ActionReport, Step: StepReport,
			Object: "node/" + n.Name, Node: n.Name,
			Before: &Value{Note: "unknown: " + reason},
			Reason: fmt.Sprintf("node %s could not be observed (%s); nothing is planned for its %d card(s)", n.Name, reason, len(n.FPGAs)),
		})
		return nil
	}
	// VMs that some binding on this node names: their other hostdevs on
	// managed cards are replaced, not pruned.
	boundVMs := map[string]bool{}
	wanted := map[string]string{} // PCI-less key card/fn -> VM
	for c := range np.Cards {
		for _, b := range np.Cards[c].Bindings {
			if b.VM != "" {
				boundVMs[b.VM] = true
				wanted[np.Cards[c].Card.Slot+"/"+b.Function.String()] = b.VM
			}
		}
	}
	vms := make(map[string]*observed.VM, len(np.Obs.VMs))
	for i := range np.Obs.VMs {
		vms[np.Obs.VMs[i].Name] = &np.Obs.VMs[i]
	}
	var errs []error
	first := len(pl.chains)
	for c := range np.Cards {
		ch, err := pl.card(n, &np.Cards[c], boundVMs, wanted, vms)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pl.chains = append(pl.chains, ch)
	}
	linkMoves(pl.chains[first:])
	return errors.Join(errs...)
}

// linkMoves makes a VM that moves between cards of a node give up its old
// function before it gets the new one.
func linkMoves(chains []*chain) {
	leaving := map[string][]string{} // VM -> replace detaches
	for _, ch := range chains {
		for i, d := range ch.detach {
			if ch.kinds[i] == detachReplace {
				leaving[d.Before.VM] = append(leaving[d.Before.VM], d.ID)
			}
		}
	}
	if len(leaving) == 0 {
		return
	}
	for _, ch := range chains {
		for _, a := range ch.attach {
			for _, id := range leaving[a.After.VM] {
				if !slices.Contains(a.DependsOn, id) {
					a.DependsOn = append(append([]string(nil), a.DependsOn...), id)
				}
			}
		}
	}
}

func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	if id == "" {
		return "(unknown)"
	}
	return id
}

// slab hands out pointers into chunks of T: a plan has hundreds of
// thousands of small objects, and one allocation per chunk keeps the
// planner fast on large fleets.
type slab[T any] struct{ buf []T }

func (s *slab[T]) alloc() *T {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, 1024)
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

func (pl *planner) val(v Value) *Value {
	p := pl.values.alloc()
	*p = v
	return p
}

func (pl *planner) intp(n int) *int {
	p := pl.ints.alloc()
	*p = n
	return p
}

// card plans one card: the safety order detach, VFs off, program, VFs on,
// attach, each step depending on the one before.
func (pl *planner) card(n *spec.Node, cp *cardPair, boundVMs map[string]bool, wanted map[string]string, vms map[string]*observed.VM) (*chain, error) {
	card := cp.Card
	cid := CardID(n.Name, card.Slot)
	ch := &chain{card: cid, node: n.Name}
	digest := cardDigest(n.Name, cp.Card, cp.Bindings, pl.bitstreams)
	mk := func(step Step, action Action, object string) *Change {
		id := object + ":" + string(step)
		c := pl.changes.alloc()
		*c = Change{ID: id, Action: action, Step: step, Object: object, Node: n.Name,
			Card: card.Slot, CardPCI: card.PCI, Digest: digest}
		return c
	}

	// The card's bitstream: every binding on a card loads the same one,
	// since a card has one PR region.
	var bs *spec.Bitstream
	for _, b := range cp.Bindings {
		got, ok := pl.bitstreams[b.Bitstream]
		if !ok {
			return nil, fmt.Errorf("%s: binding %s: bitstream %q is not defined", cid, b.Name, b.Bitstream)
		}
		if bs != nil && bs.Name != got.Name {
			return nil, fmt.Errorf("%s: bindings ask for bitstreams %s and %s; a card runs one", cid, bs.Name, got.Name)
		}
		bs = got
	}

	dev := cp.Dev
	if dev == nil {
		c := mk(StepReport, ActionReport, cid)
		c.After = pl.val(Value{PCI: card.PCI, Note: "board " + string(card.Board)})
		c.Reason = fmt.Sprintf("no FPGA at %s on node %s; nothing is planned for card %s", card.PCI, n.Name, card.Slot)
		ch.other = append(ch.other, c)
		return ch, nil
	}
	if dev.Board != "" && dev.Board != string(card.Board) {
		c := mk(StepReport, ActionReport, cid)
		c.Before = pl.val(Value{PCI: dev.PCI, Note: "board " + dev.Board})
		c.After = pl.val(Value{PCI: card.PCI, Note: "board " + string(card.Board)})
		c.Reason = fmt.Sprintf("the card at %s is a %s, the repository says %s; nothing is planned for it", card.PCI, dev.Board, card.Board)
		ch.other = append(ch.other, c)
		return ch, nil
	}
	if !dev.Health.OK() {
		c := mk(StepReport, ActionReport, cid)
		c.Before = pl.val(Value{AFUID: dev.AFUID(), Note: "unhealthy: " + strings.Join(dev.Health.Problems, "; ")})
		c.Reason = fmt.Sprintf("card %s reports problems (%s); it is neither programmed nor given to VMs until it is healthy",
			card.Slot, strings.Join(dev.Health.Problems, "; "))
		ch.other = append(ch.other, c)
		return ch, nil
	}
	if CloudManaged(n, pl.opts) {
		// Nova and Cyborg attach and program this card; the OpenStack
		// plan covers it. Its hostdevs are not ours to prune either.
		return ch, nil
	}

	afu := dev.AFUID()
	if afu == "" && bs != nil && pl.opts.Applied[cid] == digest {
		// A VM holds the port's VF, so the host cannot read what it
		// runs; the last apply loaded this very bitstream, and an
		// unknown AFU is no reason to take the card from the VM.
		afu = bs.AFUID
	}
	needProgram := bs != nil && afu != bs.AFUID
	vfChange := dev.NumVFs != card.VFs
	reset := needProgram || vfChange
	var resetWhy string
	switch {
	case needProgram && vfChange:
		resetWhy = fmt.Sprintf("%s is reprogrammed with %s and its VFs go from %d to %d", card.Slot, bs.Name, dev.NumVFs, card.VFs)
	case needProgram:
		resetWhy = fmt.Sprintf("%s is reprogrammed with %s", card.Slot, bs.Name)
	case vfChange:
		resetWhy = fmt.Sprintf("%s's VFs go from %d to %d", card.Slot, dev.NumVFs, card.VFs)
	}

	// Who should hold what, and who does.
	type want struct {
		b  *spec.Binding
		ok bool // held now and kept
	}
	wants := make([]want, 0, len(cp.Bindings))
	for _, b := range cp.Bindings {
		if b.VM != "" {
			wants = append(wants, want{b: b})
		}
	}
	var blocking []string
	for _, h := range cp.Holders {
		pl.managed++
		keep := -1
		for i := range wants {
			if wants[i].b.VM == h.VM.Name && wants[i].b.Function == h.Function {
				keep = i
			}
		}
		if keep >= 0 && !(reset && h.Live()) && !pendingAttach(h) {
			wants[keep].ok = true
			continue
		}
		if keep >= 0 && pendingAttach(h) {
			// In the definition, not yet in the running VM: the attach is
			// planned again, and waits for the restart or makes it.
			continue
		}
		obj := AttachmentID(n.Name, card.Slot, h.Function, h.VM.Name)
		c := mk(StepDetach, ActionDetach, obj)
		c.Before = pl.val(Value{VM: h.VM.Name, Running: h.VM.Running, Function: h.Function.String(), PCI: h.Hostdev.PCI})
		c.Disruptive = h.Live()
		if h.Live() && h.VM.RestartToChange {
			c.Restart = RestartWait
		}
		var kind detachKind
		switch {
		case keep >= 0:
			kind = detachCycle
			c.Binding = wants[keep].b.Name
			c.Reason = fmt.Sprintf("%s; %s gets %s back afterwards", resetWhy, h.VM.Name, h.Function)
		case wanted[card.Slot+"/"+h.Function.String()] != "":
			kind = detachReplace
			c.Reason = fmt.Sprintf("the repository gives %s/%s to %s", card.Slot, h.Function, wanted[card.Slot+"/"+h.Function.String()])
		case boundVMs[h.VM.Name]:
			kind = detachReplace
			c.Reason = fmt.Sprintf("the repository gives %s other functions, not %s/%s", h.VM.Name, card.Slot, h.Function)
		default:
			kind = detachPrune
			c.Reason = fmt.Sprintf("no binding gives %s/%s to %s", card.Slot, h.Function, h.VM.Name)
		}
		block := reset && h.Live()
		ch.detach = append(ch.detach, c)
		ch.kinds = append(ch.kinds, kind)
		ch.blocks = append(ch.blocks, block)
		if block {
			blocking = append(blocking, c.ID)
		}
	}

	last := blocking
	if reset && dev.NumVFs > 0 {
		c := mk(StepVFsOff, ActionSetVFs, cid)
		c.Before, c.After = pl.val(Value{VFs: pl.intp(dev.NumVFs)}), pl.val(Value{VFs: pl.intp(0)})
		switch {
		case needProgram:
			c.Reason = "the PR region is programmed through the PF: VFs go off first"
		case card.VFs == 0:
			c.Reason = card.Slot + " wants no VFs"
		default:
			c.Reason = fmt.Sprintf("SR-IOV goes from %d to %d VFs through 0", dev.NumVFs, card.VFs)
		}
		c.DependsOn = last
		ch.vfsOff = c
		last = []string{c.ID}
	}
	if needProgram {
		c := mk(StepProgram, ActionProgram, cid)
		before := pl.val(Value{AFUID: dev.AFUID()})
		if name, ok := pl.byAFU[dev.AFUID()]; ok && dev.AFUID() != "" {
			before.Bitstream = name
		}
		c.Before = before
		c.After = pl.val(Value{Bitstream: bs.Name, SHA256: bs.SHA256, AFUID: bs.AFUID})
		c.Reason = card.Slot + " runs AFU " + short(dev.AFUID()) + "; " + bindingNames(cp.Bindings) + " " + bs.Name + " (AFU " + short(bs.AFUID) + ")"
		c.DependsOn = last
		if dev.InterfaceID != "" && bs.InterfaceID != "" && dev.InterfaceID != bs.InterfaceID {
			c.Held = &Hold{Gate: GateInterface, Why: fmt.Sprintf("the card's PR interface is %s, bitstream %s is built for %s; it is never programmed",
				dev.InterfaceID, bs.Name, bs.InterfaceID)}
			ch.resetHold = c.Held
		}
		ch.program = c
		last = []string{c.ID}
	}
	if reset && card.VFs > 0 {
		c := mk(StepVFsOn, ActionSetVFs, cid)
		from := dev.NumVFs
		if ch.vfsOff != nil {
			from = 0
		}
		c.Before, c.After = pl.val(Value{VFs: pl.intp(from)}), pl.val(Value{VFs: pl.intp(card.VFs)})
		c.Reason = card.Slot + " wants " + strconv.Itoa(card.VFs) + " VF(s)"
		c.DependsOn = last
		ch.vfsOn = c
		last = []string{c.ID}
	}
	for _, w := range wants {
		if w.ok {
			continue
		}
		b := w.b
		obj := AttachmentID(n.Name, card.Slot, b.Function, b.VM)
		c := mk(StepAttach, ActionAttach, obj)
		c.Binding = b.Name
		pci := ""
		if ch.vfsOn == nil || b.Function.PF {
			pci = functionPCI(dev, b.Function)
		}
		vm, ok := vms[b.VM]
		c.After = pl.val(Value{VM: b.VM, Function: b.Function.String(), PCI: pci})
		if ok {
			c.After.Running = vm.Running
		}
		deps := last
		// The same function taken from another VM, or this VM leaving
		// another function of the node, must happen first.
		for i, d := range ch.detach {
			if d.Before.Function == b.Function.String() && ch.kinds[i] != detachCycle && !slices.Contains(deps, d.ID) {
				deps = append(append([]string(nil), deps...), d.ID)
			}
		}
		c.DependsOn = deps
		switch {
		case !ok:
			c.Reason = "binding " + b.Name
			c.After.Note = "VM not found"
			c.Held = &Hold{Gate: GateMissing, Why: fmt.Sprintf("VM %s is not on node %s", b.VM, n.Name)}
		case vm.Running && vm.RestartToChange:
			c.Restart = RestartWait
			c.Reason = "binding " + b.Name + "; " + b.VM + " is running where devices cannot be attached live: its definition now, the running VM at its restart"
		case vm.Running:
			c.Reason = "binding " + b.Name + "; " + b.VM + " is running: attached live and in its definition"
		default:
			c.Reason = "binding " + b.Name + "; " + b.VM + " is stopped: its definition only"
		}
		if pci == "" && !b.Function.PF {
			c.Reason += "; the address of " + b.Function.String() + " is known once VFs are on"
		}
		ch.attach = append(ch.attach, c)
	}

	if len(ch.detach)+len(ch.attach) == 0 && !ch.resetting() {
		c := mk(StepNoop, ActionNoop, cid)
		v := pl.val(Value{AFUID: dev.AFUID(), VFs: pl.intp(dev.NumVFs)})
		if bs != nil {
			v.Bitstream = bs.Name
		}
		c.Before, c.After = v, v
		ch.other = append(ch.other, c)
		return ch, nil
	}

	// Drift: the card's desired state is what was last applied, yet the
	// live state differs.
	if applied, ok := pl.opts.Applied[cid]; ok && applied == digest {
		if driftMode(pl.desired.Policy) == spec.DriftReport {
			c := mk(StepReport, ActionReport, cid)
			c.ID = cid + ":drift"
			c.Drift = true
			c.Before = pl.val(Value{AFUID: dev.AFUID(), VFs: pl.intp(dev.NumVFs)})
			c.After = pl.val(Value{VFs: pl.intp(card.VFs)})
			if bs != nil {
				c.After.Bitstream, c.After.AFUID = bs.Name, bs.AFUID
			}
			c.Reason = "drift since the last apply: " + card.Slot + " " + driftSummary(ch, dev, card) + "; drift mode is report, so it is not corrected"
			return &chain{card: cid, node: n.Name, other: []*Change{c}}, nil
		}
		for _, c := range ch.all() {
			c.Drift = true
			c.Reason = "drift: " + c.Reason
		}
	}
	return ch, nil
}

// bindingNames is "binding a wants" or "bindings a, b want".
func bindingNames(bs []*spec.Binding) string {
	names := make([]string, len(bs))
	for i, b := range bs {
		names[i] = b.Name
	}
	if len(names) == 1 {
		return "binding " + names[0] + " wants"
	}
	return "bindings " + strings.Join(names, ", ") + " want"
}

// driftSummary says in words how a card differs from what was applied.
func driftSummary(ch *chain, dev *fpga.Device, card *spec.FPGA) string {
	var parts []string
	cycled := map[string]bool{}
	for i, d := range ch.detach {
		if ch.kinds[i] == detachCycle {
			cycled[d.Before.VM+"/"+d.Before.Function] = true
			continue
		}
		parts = append(parts, fmt.Sprintf("%s holds %s, which no binding gives it", d.Before.VM, d.Before.Function))
	}
	if ch.program != nil {
		parts = append(parts, fmt.Sprintf("runs AFU %s instead of %s", short(ch.program.Before.AFUID), ch.program.After.Bitstream))
	}
	if dev.NumVFs != card.VFs {
		parts = append(parts, fmt.Sprintf("has %d VF(s) instead of %d", dev.NumVFs, card.VFs))
	}
	for _, a := range ch.attach {
		if !cycled[a.After.VM+"/"+a.After.Function] {
			parts = append(parts, fmt.Sprintf("%s lacks %s", a.After.VM, a.After.Function))
		}
	}
	return strings.Join(parts, ", ")
}

// all lists the chain's changes in step order.
func (c *chain) all() []*Change {
	out := append([]*Change(nil), c.other...)
	out = append(out, c.detach...)
	for _, x := range []*Change{c.vfsOff, c.program, c.vfsOn} {
		if x != nil {
			out = append(out, x)
		}
	}
	return append(out, c.attach...)
}

// cardDigest is a digest of everything the repository says about a card:
// the journal and drift detection key on it. bindings are sorted by name.
func cardDigest(node string, c *spec.FPGA, bindings []*spec.Binding, bitstreams map[string]*spec.Bitstream) string {
	buf := make([]byte, 0, 256)
	field := func(s string) { buf = append(append(buf, s...), 0) }
	field(node)
	field(c.Slot)
	field(c.PCI)
	field(string(c.Board))
	buf = strconv.AppendInt(buf, int64(c.VFs), 10)
	field("")
	field(c.InterfaceID)
	for _, b := range bindings {
		field(b.Name)
		field(b.Function.String())
		field(b.VM)
		field(b.Bitstream)
		if bs, ok := bitstreams[b.Bitstream]; ok {
			field(bs.SHA256)
		} else {
			field("")
		}
	}
	sum := sha256.Sum256(buf)
	return hex.EncodeToString(sum[:8])
}

// CardDigests returns the desired digest of every card, by card ID: what
// a run records as applied once a card has converged (Options.Applied).
func CardDigests(desired *spec.Fleet) map[string]string {
	bitstreams := make(map[string]*spec.Bitstream, len(desired.Bitstreams))
	for i := range desired.Bitstreams {
		bitstreams[desired.Bitstreams[i].Name] = &desired.Bitstreams[i]
	}
	type slotKey struct{ node, slot string }
	bindings := map[slotKey][]*spec.Binding{}
	for i := range desired.Bindings {
		b := &desired.Bindings[i]
		bindings[slotKey{b.Node, b.FPGA}] = append(bindings[slotKey{b.Node, b.FPGA}], b)
	}
	out := make(map[string]string, desired.FPGACount())
	for i := range desired.Nodes {
		n := &desired.Nodes[i]
		for c := range n.FPGAs {
			card := &n.FPGAs[c]
			bs := bindings[slotKey{n.Name, card.Slot}]
			sort.Slice(bs, func(a, b int) bool { return bs[a].Name < bs[b].Name })
			out[CardID(n.Name, card.Slot)] = cardDigest(n.Name, card, bs, bitstreams)
		}
	}
	return out
}

// gatePrune holds every prune detach when prune is off, when it would
// remove every managed attachment (unless allowed), or when it would
// remove more than the allowed share.
func (pl *planner) gatePrune() {
	p := pl.desired.Policy.Prune
	var prunes []*Change
	for _, ch := range pl.chains {
		for i, d := range ch.detach {
			if ch.kinds[i] == detachPrune {
				prunes = append(prunes, d)
			}
		}
	}
	if len(prunes) == 0 {
		return
	}
	var why string
	switch {
	case !p.Enabled:
		why = "prune is off in the policy"
	case len(prunes) == pl.managed && !p.AllowEmpty:
		why = fmt.Sprintf("refusing to prune all %d managed attachments (allowEmpty is off)", pl.managed)
	case p.MaxShare > 0 && float64(len(prunes)) > p.MaxShare*float64(pl.managed):
		why = fmt.Sprintf("pruning %d of %d managed attachments exceeds maxShare %s",
			len(prunes), pl.managed, strconv.FormatFloat(p.MaxShare, 'g', -1, 64))
	default:
		return
	}
	for _, d := range prunes {
		if d.Held == nil {
			d.Held = &Hold{Gate: GatePrune, Why: why}
		}
	}
}

// gateDisruption holds detaches of protected bindings, and disruptive
// changes outside the maintenance windows.
func (pl *planner) gateDisruption(ws windows, now time.Time) {
	protected := map[string]bool{}
	for _, b := range pl.desired.Bindings {
		if b.Protected {
			protected[b.Name] = true
		}
	}
	allowed, why := ws.allowDisruption(now)
	for _, ch := range pl.chains {
		for _, d := range ch.detach {
			if d.Held != nil {
				continue
			}
			if d.Binding != "" && protected[d.Binding] {
				d.Held = &Hold{Gate: GateProtected, Why: fmt.Sprintf("binding %s is protected: fpgaops never detaches it", d.Binding)}
				continue
			}
			if d.Disruptive && !allowed {
				d.Held = &Hold{Gate: GateWindow, Why: why}
			}
		}
	}
}

// pendingAttach reports whether the VM's definition names the function but
// the running VM does not hold it yet: an attach made where devices cannot
// be attached live, waiting for the VM's restart.
func pendingAttach(h holder) bool {
	return h.VM.Running && h.VM.RestartToChange && h.Hostdev.Config && !h.Hostdev.Live
}

// gateRestart decides how each change that takes effect only at a VM's
// restart (Restart set by card) does: when the policy's vmRestart allows
// it and a maintenance window is open, the executor restarts the VM (a
// disruption, counted against the budget); otherwise the change waits for
// the restart, and what depends on it (the card's reset, the function
// given to another VM) is held, since the running VM still holds the
// function.
func (pl *planner) gateRestart(ws windows, now time.Time) {
	allowed, _ := ws.allowDisruption(now)
	restart := pl.desired.Policy.VMRestart && allowed
	// A restart takes every function from the VM for a while: never for
	// a VM that holds a protected binding's.
	protected := map[string]bool{}
	for i := 0; restart && i < len(pl.desired.Bindings); i++ {
		if b := &pl.desired.Bindings[i]; b.Protected && b.VM != "" {
			protected[b.Node+"/"+b.VM] = true
		}
	}
	waiting := map[string]*Change{}
	for _, ch := range pl.chains {
		for _, list := range [2][]*Change{ch.detach, ch.attach} {
			for _, c := range list {
				if c.Restart == "" || c.Held != nil {
					continue
				}
				if restart && !protected[c.Node+"/"+c.VM()] {
					c.Restart = RestartVM
					c.Disruptive = true
					c.Reason += "; fpgaops restarts " + c.VM() + " (policy vmRestart)"
					continue
				}
				c.Reason += "; waits for " + c.VM() + "'s restart"
				if c.Action == ActionDetach {
					waiting[c.ID] = c
				}
			}
		}
	}
	if len(waiting) == 0 {
		return
	}
	whyWait := func(c *Change) string {
		switch {
		case !pl.desired.Policy.VMRestart:
			return "the policy's vmRestart is off"
		case !allowed:
			return "no maintenance window is open"
		}
		return "it holds a protected binding's function, so fpgaops does not restart it"
	}
	for _, ch := range pl.chains {
		for _, c := range ch.all() {
			if c.Held != nil {
				continue
			}
			for _, d := range c.DependsOn {
				w, ok := waiting[d]
				if !ok {
					continue
				}
				c.Held = &Hold{Gate: GateRestart, Why: fmt.Sprintf("%s keeps %s until it restarts: its platform cannot detach live, and %s",
					w.Before.VM, w.Before.PCI, whyWait(w))}
				if (c == ch.vfsOff || c == ch.program || c == ch.vfsOn) && ch.resetHold == nil {
					ch.resetHold = c.Held
				}
				break
			}
		}
	}
}

// holdUselessDetaches: when a card cannot be reset, the detaches that only
// served the reset would disrupt VMs for nothing; hold them too.
func (pl *planner) holdUselessDetaches() {
	for _, ch := range pl.chains {
		if !ch.resetting() {
			continue
		}
		hold := ch.resetHold
		if hold == nil {
			for i, d := range ch.detach {
				if ch.blocks[i] && d.Held != nil {
					hold = &Hold{Gate: GateDependency, Why: fmt.Sprintf("%s cannot be reset: %s is held (%s)", ch.card, d.ID, d.Held.Gate)}
					break
				}
			}
		}
		if hold == nil {
			continue
		}
		for i, d := range ch.detach {
			if ch.kinds[i] == detachCycle && d.Held == nil {
				d.Held = &Hold{Gate: GateDependency, Why: fmt.Sprintf("only needed to reset %s, which is held: %s", ch.card, hold.Why)}
			}
		}
	}
}

// flatten lists every change in the plan's order: node, card, step, ID.
func (pl *planner) flatten() []Change {
	n := len(pl.nodeOnly)
	for _, ch := range pl.chains {
		n += len(ch.other) + len(ch.detach) + len(ch.attach) + 3
	}
	ptrs := make([]*Change, 0, n)
	ptrs = append(ptrs, pl.nodeOnly...)
	for _, ch := range pl.chains {
		ptrs = append(ptrs, ch.all()...)
	}
	sort.SliceStable(ptrs, func(i, j int) bool {
		a, b := ptrs[i], ptrs[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		if a.Card != b.Card {
			return a.Card < b.Card
		}
		if oa, ob := a.Step.order(), b.Step.order(); oa != ob {
			return oa < ob
		}
		return a.ID < b.ID
	})
	out := make([]Change, len(ptrs))
	for i, c := range ptrs {
		out[i] = *c
	}
	return out
}

// indexByID maps change IDs to their index.
func indexByID(changes []Change) map[string]int {
	idx := make(map[string]int, len(changes))
	for i := range changes {
		idx[changes[i].ID] = i
	}
	return idx
}

// holdDependents holds every change that depends, directly or not, on a
// held change.
func holdDependents(changes []Change, idx map[string]int) {
	state := make([]int8, len(changes)) // 0 unvisited, 1 visiting, 2 done
	var visit func(i int) *Hold
	visit = func(i int) *Hold {
		c := &changes[i]
		if state[i] == 2 || state[i] == 1 {
			return c.Held
		}
		state[i] = 1
		if c.Held == nil {
			for _, d := range c.DependsOn {
				j, ok := idx[d]
				if !ok {
					continue
				}
				if visit(j) != nil {
					c.Held = &Hold{Gate: GateDependency, Why: "waits for " + d + ", which is held"}
					break
				}
			}
		}
		state[i] = 2
		return c.Held
	}
	for i := range changes {
		visit(i)
	}
}

// assignWaves groups the runnable changes into waves within the budget and
// returns how many waves there are. Cards joined by a dependency (a VM
// moving between them) form one group and share a wave; a group that
// alone exceeds the budget is held. changes are in plan order, so a card's
// changes are adjacent.
func assignWaves(changes []Change, idx map[string]int, b Budget) int {
	// Number the cards, then union-find over them.
	card := make([]int, len(changes))
	ncards := 0
	for i := range changes {
		if i > 0 && (changes[i].Node != changes[i-1].Node || changes[i].Card != changes[i-1].Card) {
			ncards++
		}
		card[i] = ncards
	}
	ncards++
	parent := make([]int, ncards)
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	for i := range changes {
		if !changes[i].Runnable() {
			continue
		}
		for _, d := range changes[i].DependsOn {
			if j, ok := idx[d]; ok && card[j] != card[i] {
				a, b := find(card[i]), find(card[j])
				if a < b {
					parent[b] = a
				} else if b < a {
					parent[a] = b
				}
			}
		}
	}
	type group struct {
		members  []int
		cards    int
		lastCard int
		vms      []string
	}
	groups := make(map[int]*group)
	var order []int
	for i := range changes {
		c := &changes[i]
		if !c.Runnable() {
			continue
		}
		root := find(card[i])
		g, ok := groups[root]
		if !ok {
			g = &group{lastCard: -1}
			groups[root] = g
			order = append(order, root)
		}
		g.members = append(g.members, i)
		if card[i] != g.lastCard {
			g.cards++
			g.lastCard = card[i]
		}
		if c.Disruptive && !slices.Contains(g.vms, c.VM()) {
			g.vms = append(g.vms, c.VM())
		}
	}
	wave, cards, vms := 0, 0, 0
	for _, root := range order {
		g := groups[root]
		if g.cards > b.MaxCardsInFlight || len(g.vms) > b.MaxDisruptedVMs {
			why := fmt.Sprintf("changing %d card(s) and disrupting %d VM(s) together exceeds the budget of %d card(s) and %d disrupted VM(s) at once",
				g.cards, len(g.vms), b.MaxCardsInFlight, b.MaxDisruptedVMs)
			for _, i := range g.members {
				changes[i].Held = &Hold{Gate: GateBudget, Why: why}
			}
			continue
		}
		if wave == 0 || cards+g.cards > b.MaxCardsInFlight || vms+len(g.vms) > b.MaxDisruptedVMs {
			wave++
			cards, vms = 0, 0
		}
		cards += g.cards
		vms += len(g.vms)
		for _, i := range g.members {
			changes[i].Wave = wave
		}
	}
	return wave
}

func summarise(changes []Change) Summary {
	var s Summary
	for i := range changes {
		c := &changes[i]
		switch {
		case c.Action == ActionNoop:
			s.Noop++
		case c.Action == ActionReport:
			s.Report++
		case c.Held != nil:
			s.Held++
		case c.Action == ActionProgram:
			s.Program++
		case c.Action == ActionSetVFs:
			s.SetVFs++
		case c.Action == ActionAttach:
			s.Attach++
		case c.Action == ActionDetach:
			s.Detach++
		}
	}
	return s
}
