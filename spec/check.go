package spec

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	// Time zones of maintenance windows resolve the same on every machine,
	// whether or not it has a zoneinfo database.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// checkBitstream checks a Bitstream document on its own: where its image
// is, and for a file in the repository, that the file is a sound GBS image
// of at most max bytes agreeing with what the document declares. It fills
// in the IDs and size read from the file. Fields that failed the schema
// are not checked again.
func checkBitstream(r *Repo, d *document, max int64) ErrorList {
	b := d.bitstream
	var errs ErrorList
	name := d.name()
	switch {
	case !d.has("file") && !d.has("url"):
		return ErrorList{d.errorf(nil, "bitstream %s: set file (a GBS file in the repository) or url", name)}
	case d.has("file") && d.has("url"):
		return ErrorList{d.errorf([]string{"url"}, "bitstream %s: set file or url, not both", name)}
	case d.has("url"):
		for _, f := range []string{"interfaceID", "afuID"} {
			if !d.has(f) {
				errs = append(errs, d.errorf(nil, "bitstream %s: a bitstream fetched from a url needs %s, which cannot be read from a file here", name, f))
			}
		}
		return errs
	case !d.ok("file"):
		return nil
	}
	at := []string{"file"}
	clean, err := cleanPath(b.File)
	if err != nil {
		return ErrorList{d.errorf(at, "bitstream %s: file %s is outside the repository", name, b.File)}
	}
	b.File = clean
	gbs, err := r.inspectGBS(clean, max)
	var fe *FileError
	switch {
	case errors.As(err, &fe):
		msg := fmt.Sprintf("bitstream %s: file %s", name, fe.Error())
		if _, _, ok := fe.TooLarge(); ok {
			msg += ", the Policy's limits.maxBitstreamBytes"
		}
		return ErrorList{d.errorf(at, "%s", msg)}
	case err != nil:
		return ErrorList{d.errorf(at, "bitstream %s: file %s: %v", name, b.File, err)}
	}
	if d.ok("sha256") && gbs.SHA256 != b.SHA256 {
		errs = append(errs, d.errorf([]string{"sha256"}, "bitstream %s: sha256 does not match file %s, which has %s", name, b.File, gbs.SHA256))
	}
	if b.InterfaceID != "" && b.InterfaceID != gbs.InterfaceID() {
		errs = append(errs, d.errorf([]string{"interfaceID"}, "bitstream %s: interfaceID does not match the GBS metadata's interface-uuid %s", name, gbs.InterfaceID()))
	}
	if b.AFUID != "" && b.AFUID != gbs.AFUID() {
		errs = append(errs, d.errorf([]string{"afuID"}, "bitstream %s: afuID does not match the GBS metadata's accelerator-type-uuid %s", name, gbs.AFUID()))
	}
	b.InterfaceID, b.AFUID, b.Size = gbs.InterfaceID(), gbs.AFUID(), gbs.Size
	return errs
}

// assemble checks the documents against each other and builds the fleet.
// Broken documents take part as far as their good fields allow; ghosts
// are names declared by documents that could not be read.
func assemble(docs []*document, ghosts map[declared]bool) (*Fleet, ErrorList) {
	var errs ErrorList
	f := &Fleet{Policy: Policy{Drift: DriftReport}}
	first := make(map[declared]*document, len(docs))
	nodes := map[string]*document{}
	bitstreams := map[string]*document{}
	var bindings, policies []*document
	for _, d := range docs {
		name := d.name()
		if name == "" || !d.ok("name") {
			// Any reference to its kind may be meant for it.
			ghosts[declared{d.kind, anyName}] = true
		}
		if name == "" {
			continue // reported as missing
		}
		key := declared{d.kind, name}
		if prev, ok := first[key]; ok {
			errs = append(errs, d.errorf([]string{"name"}, "%s %s is already declared at %s", strings.ToLower(d.kind), name, prev.pos("name")))
			continue
		}
		first[key] = d
		switch d.kind {
		case KindNode:
			nodes[name] = d
		case KindBitstream:
			bitstreams[name] = d
		case KindBinding:
			bindings = append(bindings, d)
		case KindPolicy:
			policies = append(policies, d)
		}
		if d.broken {
			continue
		}
		switch d.kind {
		case KindNode:
			// The node's own copy of its cards, sorted below: the
			// document may serve the next load (FileCache).
			n := *d.node
			n.FPGAs = slices.Clone(n.FPGAs)
			f.Nodes = append(f.Nodes, n)
		case KindBitstream:
			f.Bitstreams = append(f.Bitstreams, *d.bitstream)
		}
	}
	for i, d := range policies {
		if i > 0 {
			errs = append(errs, d.errorf([]string{"name"}, "policy %s: a fleet has at most one Policy, and %s is declared at %s", d.name(), policies[0].name(), policies[0].pos("name")))
			continue
		}
		f.Policy = *d.policy
	}
	errs = append(errs, checkBindings(bindings, nodes, bitstreams, ghosts)...)
	for _, d := range bindings {
		if !d.broken {
			f.Bindings = append(f.Bindings, *d.binding)
		}
	}
	slices.SortFunc(f.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for i := range f.Nodes {
		slices.SortFunc(f.Nodes[i].FPGAs, func(a, b FPGA) int { return strings.Compare(a.Slot, b.Slot) })
	}
	slices.SortFunc(f.Bitstreams, func(a, b Bitstream) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(f.Bindings, func(a, b Binding) int { return strings.Compare(a.Name, b.Name) })
	return f, errs
}

// checkNode checks a node's cards against each other and their boards,
// leaving out the fields that failed the schema.
func checkNode(d *document) ErrorList {
	var errs ErrorList
	n := d.node
	name := d.name()
	// Only OpenStack reads these names, and only for a node with a hostname.
	if n.Hostname == "" && d.ok("hostname") {
		for _, f := range []struct{ key, value string }{{"resourceProvider", n.ResourceProvider}, {"deviceHostname", n.DeviceHostname}} {
			if f.value != "" {
				errs = append(errs, d.errorf([]string{f.key}, "node %s: %s names the node in OpenStack: set hostname too", name, f.key))
			}
		}
	}
	slots := map[string]int{}
	pcis := map[string]int{}
	for i, c := range n.FPGAs {
		idx := strconv.Itoa(i)
		at := func(field string) []string { return []string{"fpgas", idx, field} }
		if d.ok(at("slot")...) {
			if j, ok := slots[c.Slot]; ok {
				errs = append(errs, d.errorf(at("slot"), "node %s: slot %s is already used by fpgas[%d]", name, c.Slot, j))
			} else {
				slots[c.Slot] = i
			}
		}
		if d.ok(at("pci")...) {
			if j, ok := pcis[c.PCI]; ok {
				errs = append(errs, d.errorf(at("pci"), "node %s fpga %s: PCI address %s is already used by fpgas[%d] (%s)", name, c.Slot, c.PCI, j, n.FPGAs[j].Slot))
			} else {
				pcis[c.PCI] = i
			}
		}
		if info, ok := LookupBoard(c.Board); ok && d.ok(at("vfs")...) && c.VFs > info.MaxVFs {
			errs = append(errs, d.errorf(at("vfs"), "node %s fpga %s: vfs %d is more than the %s supports (%d)", name, c.Slot, c.VFs, c.Board, info.MaxVFs))
		}
	}
	return errs
}

// checkPolicy parses what the schema can only shape-check: cron
// expressions and time zones, leaving out the fields that failed the
// schema.
func checkPolicy(d *document) ErrorList {
	var errs ErrorList
	p := d.policy
	name := d.name()
	if p.Schedule != "" {
		if _, err := cron.ParseStandard(p.Schedule); err != nil {
			errs = append(errs, d.errorf([]string{"schedule"}, "policy %s: schedule %q: %v", name, p.Schedule, err))
		}
	}
	for i, w := range p.Windows {
		idx := strconv.Itoa(i)
		at := func(field string) []string { return []string{"windows", idx, field} }
		if d.ok(at("schedule")...) {
			if _, err := cron.ParseStandard(w.Schedule); err != nil {
				errs = append(errs, d.errorf(at("schedule"), "policy %s: windows[%d]: schedule %q: %v", name, i, w.Schedule, err))
			}
		}
		if d.ok(at("duration")...) && w.Duration <= 0 {
			errs = append(errs, d.errorf(at("duration"), "policy %s: windows[%d]: duration must be more than 0", name, i))
		}
		if w.TimeZone != "" {
			if _, err := time.LoadLocation(w.TimeZone); err != nil {
				errs = append(errs, d.errorf(at("timezone"), "policy %s: windows[%d]: unknown time zone %s", name, i, w.TimeZone))
			}
		}
	}
	if p.Rollout != nil {
		errs = append(errs, checkRollout(d, p.Rollout)...)
	}
	return errs
}

// checkRollout checks what relates a rollout's fields: steps that grow
// and end with every card, and checks that say what they check.
func checkRollout(d *document, r *Rollout) ErrorList {
	var errs ErrorList
	name := d.name()
	if d.okUnder("rollout.steps") && len(r.Steps) > 0 {
		lastCount, lastShare := 0, 0
		for i, s := range r.Steps {
			at := []string{"rollout", "steps", strconv.Itoa(i)}
			n, share := ParseStep(s)
			switch {
			case share && n <= lastShare, !share && n <= lastCount:
				errs = append(errs, d.errorf(at, "policy %s: rollout step %q does not grow: each step takes more cards than the one before", name, s))
			}
			if share {
				lastShare = n
			} else {
				lastCount = n
			}
		}
		if last := r.Steps[len(r.Steps)-1]; last != "100%" {
			errs = append(errs, d.errorf([]string{"rollout", "steps", strconv.Itoa(len(r.Steps) - 1)},
				"policy %s: the last rollout step is %q; it must be \"100%%\", so that the rollout reaches every card", name, last))
		}
	}
	for i, c := range r.Checks {
		at := []string{"rollout", "checks", strconv.Itoa(i)}
		if !d.okUnder(strings.Join(at, ".")) {
			continue
		}
		if (c.HTTP == nil) == (c.Prometheus == nil) {
			errs = append(errs, d.errorf(at, "policy %s: rollout check %s: give exactly one of http and prometheus", name, c.Name))
		}
	}
	return errs
}

// ParseStep reads a rollout step: a count of cards, or with share a
// percentage of them.
func ParseStep(s string) (n int, share bool) {
	s, share = strings.CutSuffix(s, "%")
	n, _ = strconv.Atoi(s)
	return n, share
}

// checkBindings resolves every binding's references and checks what a
// card allows: one bitstream per card (one PR region), each function bound
// once, VFs within the card's count, a PF binding only on a card without
// VFs, a bitstream built for the card's PR interface, and each VM on one
// node.
//
// A check runs when every field it needs passed the schema, in the binding
// and in the documents it names; a name declared only by a document that
// could not be read (a ghost) is not reported as undeclared. So a broken
// document is checked as far as it can be, and its mistakes do not
// cascade.
func checkBindings(bindings []*document, nodes, bitstreams map[string]*document, ghosts map[declared]bool) ErrorList {
	var errs ErrorList
	type card struct {
		bitstream string
		by        *document // first binding naming the bitstream
		pf, vf    *document // first PF and VF bindings
	}
	type cardKey struct{ node, slot string }
	type functionKey struct {
		card cardKey
		fn   Function
	}
	cards := make(map[cardKey]*card, len(bindings))
	functions := make(map[functionKey]*document, len(bindings))
	vmNode := map[string]*document{}
	undeclared := func(kind, name string) bool {
		return !ghosts[declared{kind, name}] && !ghosts[declared{"", name}] &&
			!ghosts[declared{kind, anyName}] && !ghosts[declared{"", anyName}]
	}
	for _, d := range bindings {
		b := d.binding
		who := "binding " + d.name()
		var nd, bd *document
		if d.ok("node") {
			if nd = nodes[b.Node]; nd == nil && undeclared(KindNode, b.Node) {
				errs = append(errs, d.errorf([]string{"node"}, "%s: node %s is not declared", who, b.Node))
			}
		}
		// A bitstream declared only by a ghost still has its name, which
		// is all a card's PR region needs.
		bsDeclared := false
		if d.ok("bitstream") {
			bd = bitstreams[b.Bitstream]
			bsDeclared = bd != nil || !undeclared(KindBitstream, b.Bitstream)
			if !bsDeclared {
				errs = append(errs, d.errorf([]string{"bitstream"}, "%s: bitstream %s is not declared", who, b.Bitstream))
			}
		}
		if b.VM != "" && d.ok("node") {
			if prev, seen := vmNode[b.VM]; seen && prev.binding.Node != b.Node {
				errs = append(errs, d.errorf([]string{"vm"}, "%s: vm %s runs on node %s (binding %s at %s), not on node %s", who, b.VM, prev.binding.Node, prev.name(), prev.pos("vm"), b.Node))
			} else if !seen {
				vmNode[b.VM] = d
			}
		}
		if nd != nil {
			errs = append(errs, checkPlatform(d, nd)...)
		}
		if nd == nil || !d.ok("fpga") {
			continue
		}
		slot := slices.IndexFunc(nd.node.FPGAs, func(c FPGA) bool { return c.Slot == b.FPGA })
		if slot < 0 {
			// A node whose cards failed the schema may have the slot.
			if nd.okUnder("fpgas") {
				errs = append(errs, d.errorf([]string{"fpga"}, "%s: node %s has no fpga in slot %s", who, b.Node, b.FPGA))
			}
			continue
		}
		fpga := &nd.node.FPGAs[slot]
		vfsKnown := nd.ok("fpgas", strconv.Itoa(slot), "vfs")
		id := CardID(b.Node, b.FPGA)
		ck := cardKey{b.Node, b.FPGA}
		c := cards[ck]
		if c == nil {
			c = &card{}
			cards[ck] = c
		}
		if d.ok("function") {
			fn := functionKey{ck, b.Function}
			if prev, dup := functions[fn]; dup {
				errs = append(errs, d.errorf([]string{"function"}, "%s: function %s of %s is already bound by binding %s at %s", who, b.Function, id, prev.name(), prev.pos("function")))
			} else {
				functions[fn] = d
			}
			switch {
			case !vfsKnown:
			case b.Function.PF && fpga.VFs > 0:
				errs = append(errs, d.errorf([]string{"function"}, "%s: pf gives the whole card %s to one user, but the card has vfs: %d (set vfs: 0 at %s)", who, id, fpga.VFs, nd.pos(vfsPath(nd.node, b.FPGA)...)))
			case !b.Function.PF && b.Function.VF >= fpga.VFs:
				errs = append(errs, d.errorf([]string{"function"}, "%s: %s is out of range: card %s has vfs: %d", who, b.Function, id, fpga.VFs))
			}
			if b.Function.PF {
				if c.vf != nil {
					errs = append(errs, d.errorf([]string{"function"}, "%s: pf binding on card %s excludes VF bindings such as binding %s", who, id, c.vf.name()))
				} else if c.pf == nil {
					c.pf = d
				}
			} else {
				if c.pf != nil {
					errs = append(errs, d.errorf([]string{"function"}, "%s: card %s is bound whole (pf) by binding %s, so its VFs cannot be bound", who, id, c.pf.name()))
				} else if c.vf == nil {
					c.vf = d
				}
			}
		}
		if !bsDeclared {
			continue
		}
		switch {
		case c.by == nil:
			c.bitstream, c.by = b.Bitstream, d
		case c.bitstream != b.Bitstream:
			errs = append(errs, d.errorf([]string{"bitstream"}, "%s: card %s has one PR region, and binding %s loads bitstream %s into it, not %s", who, id, c.by.name(), c.bitstream, b.Bitstream))
		}
		if bd == nil {
			continue
		}
		bs := bd.bitstream
		if fpga.InterfaceID != "" && bs.InterfaceID != "" && fpga.InterfaceID != bs.InterfaceID {
			errs = append(errs, d.errorf([]string{"bitstream"}, "%s: bitstream %s is built for PR interface %s, but card %s declares interface %s", who, b.Bitstream, bs.InterfaceID, id, fpga.InterfaceID))
		}
	}
	return errs
}

// checkPlatform checks that a binding fits its node's platform: a pool
// only on a Kubernetes node, whose cards go to pods, and a VM only on
// another node. A node whose kubernetes field failed the schema is left
// out.
func checkPlatform(d, nd *document) ErrorList {
	b, n := d.binding, nd.node
	if !nd.ok("kubernetes") {
		return nil
	}
	who := "binding " + d.name()
	switch {
	case n.Kubernetes != "" && b.VM != "" && d.ok("vm"):
		return ErrorList{d.errorf([]string{"vm"}, "%s: node %s is a Kubernetes node (kubernetes: %s at %s): its cards go to the pods of a pool, not to vm %s; set pool instead",
			who, b.Node, n.Kubernetes, nd.pos("kubernetes"), b.VM)}
	case n.Kubernetes == "" && b.Pool != "" && d.ok("pool"):
		return ErrorList{d.errorf([]string{"pool"}, "%s: pool %s needs a Kubernetes node, and node %s (at %s) sets no kubernetes",
			who, b.Pool, b.Node, nd.pos("name"))}
	}
	return nil
}

// vfsPath is the path of a card's vfs field, or of the card when the
// field is left out.
func vfsPath(n *Node, slot string) []string {
	for i, c := range n.FPGAs {
		if c.Slot == slot {
			return []string{"fpgas", strconv.Itoa(i), "vfs"}
		}
	}
	return nil
}
