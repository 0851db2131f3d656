package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"

	// Time zones of maintenance windows resolve the same on every machine,
	// whether or not it has a zoneinfo database.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"

	"github.com/fpgaops/fpgaops/bitstream"
)

// checkBitstream checks a Bitstream document on its own: where its image
// is, and for a file in the repository, that the file is a sound GBS image
// agreeing with what the document declares. It fills in the IDs and size
// read from the file.
func checkBitstream(fsys fs.FS, d *document) ErrorList {
	b := d.bitstream
	var errs ErrorList
	switch {
	case b.File == "" && b.URL == "":
		return ErrorList{d.errorf(nil, "bitstream %s: set file (a GBS file in the repository) or url", b.Name)}
	case b.File != "" && b.URL != "":
		return ErrorList{d.errorf([]string{"url"}, "bitstream %s: set file or url, not both", b.Name)}
	case b.URL != "":
		for _, f := range []string{"interfaceID", "afuID"} {
			if n, _ := lookupYAML(d.root, []string{f}); n == nil {
				errs = append(errs, d.errorf(nil, "bitstream %s: a bitstream fetched from a url needs %s, which cannot be read from a file here", b.Name, f))
			}
		}
		return errs
	}
	at := []string{"file"}
	clean := path.Clean(strings.ReplaceAll(b.File, `\`, "/"))
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || !fs.ValidPath(clean) {
		return ErrorList{d.errorf(at, "bitstream %s: file %s is outside the repository", b.Name, b.File)}
	}
	b.File = clean
	data, err := fs.ReadFile(fsys, clean)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return ErrorList{d.errorf(at, "bitstream %s: file %s does not exist", b.Name, b.File)}
		case strings.Contains(err.Error(), "escapes"):
			return ErrorList{d.errorf(at, "bitstream %s: file %s is outside the repository", b.Name, b.File)}
		}
		return ErrorList{d.errorf(at, "bitstream %s: file %s: %v", b.Name, b.File, unwrapPath(err))}
	}
	gbs, err := bitstream.Parse(data)
	if err != nil {
		return ErrorList{d.errorf(at, "bitstream %s: file %s: %v", b.Name, b.File, err)}
	}
	if gbs.SHA256 != b.SHA256 {
		errs = append(errs, d.errorf([]string{"sha256"}, "bitstream %s: sha256 does not match file %s, which has %s", b.Name, b.File, gbs.SHA256))
	}
	if b.InterfaceID != "" && b.InterfaceID != gbs.InterfaceID() {
		errs = append(errs, d.errorf([]string{"interfaceID"}, "bitstream %s: interfaceID does not match the GBS metadata's interface-uuid %s", b.Name, gbs.InterfaceID()))
	}
	if b.AFUID != "" && b.AFUID != gbs.AFUID() {
		errs = append(errs, d.errorf([]string{"afuID"}, "bitstream %s: afuID does not match the GBS metadata's accelerator-type-uuid %s", b.Name, gbs.AFUID()))
	}
	b.InterfaceID, b.AFUID, b.Size = gbs.InterfaceID(), gbs.AFUID(), gbs.Size
	return errs
}

// unwrapPath drops the operation and path an fs error repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// assemble checks the documents against each other and builds the fleet.
func assemble(docs []*document) (*Fleet, ErrorList) {
	var errs ErrorList
	f := &Fleet{Policy: Policy{Drift: DriftReport}}
	type declared struct{ kind, name string }
	first := make(map[declared]*document, len(docs))
	nodes := map[string]*document{}
	bitstreams := map[string]*document{}
	var bindings, policies []*document
	for _, d := range docs {
		if d.broken && d.name() == "" {
			continue
		}
		key := declared{d.kind, d.name()}
		if prev, ok := first[key]; ok {
			errs = append(errs, d.errorf([]string{"name"}, "%s %s is already declared at %s", strings.ToLower(d.kind), d.name(), prev.pos("name")))
			continue
		}
		first[key] = d
		if d.broken {
			switch d.kind {
			case KindNode:
				nodes[d.name()] = d
			case KindBitstream:
				bitstreams[d.name()] = d
			}
			continue
		}
		switch d.kind {
		case KindNode:
			nodes[d.node.Name] = d
			f.Nodes = append(f.Nodes, *d.node)
		case KindBitstream:
			bitstreams[d.bitstream.Name] = d
			f.Bitstreams = append(f.Bitstreams, *d.bitstream)
		case KindBinding:
			bindings = append(bindings, d)
		case KindPolicy:
			policies = append(policies, d)
		}
	}
	for i, d := range policies {
		if i > 0 {
			errs = append(errs, d.errorf([]string{"name"}, "policy %s: a fleet has at most one Policy, and %s is declared at %s", d.policy.Name, policies[0].policy.Name, policies[0].pos("name")))
			continue
		}
		f.Policy = *d.policy
	}
	errs = append(errs, checkBindings(bindings, nodes, bitstreams)...)
	for _, d := range bindings {
		f.Bindings = append(f.Bindings, *d.binding)
	}
	slices.SortFunc(f.Nodes, func(a, b Node) int { return strings.Compare(a.Name, b.Name) })
	for i := range f.Nodes {
		slices.SortFunc(f.Nodes[i].FPGAs, func(a, b FPGA) int { return strings.Compare(a.Slot, b.Slot) })
	}
	slices.SortFunc(f.Bitstreams, func(a, b Bitstream) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(f.Bindings, func(a, b Binding) int { return strings.Compare(a.Name, b.Name) })
	return f, errs
}

// checkNode checks a node's cards against each other and their boards.
func checkNode(d *document) ErrorList {
	var errs ErrorList
	n := d.node
	slots := map[string]int{}
	pcis := map[string]int{}
	for i, c := range n.FPGAs {
		at := func(field string) []string { return []string{"fpgas", fmt.Sprint(i), field} }
		if j, ok := slots[c.Slot]; ok {
			errs = append(errs, d.errorf(at("slot"), "node %s: slot %s is already used by fpgas[%d]", n.Name, c.Slot, j))
		} else {
			slots[c.Slot] = i
		}
		if j, ok := pcis[c.PCI]; ok {
			errs = append(errs, d.errorf(at("pci"), "node %s fpga %s: PCI address %s is already used by fpgas[%d] (%s)", n.Name, c.Slot, c.PCI, j, n.FPGAs[j].Slot))
		} else {
			pcis[c.PCI] = i
		}
		if info, ok := LookupBoard(c.Board); ok && c.VFs > info.MaxVFs {
			errs = append(errs, d.errorf(at("vfs"), "node %s fpga %s: vfs %d is more than the %s supports (%d)", n.Name, c.Slot, c.VFs, c.Board, info.MaxVFs))
		}
	}
	return errs
}

// checkPolicy parses what the schema can only shape-check: cron
// expressions and time zones.
func checkPolicy(d *document) ErrorList {
	var errs ErrorList
	p := d.policy
	if p.Schedule != "" {
		if _, err := cron.ParseStandard(p.Schedule); err != nil {
			errs = append(errs, d.errorf([]string{"schedule"}, "policy %s: schedule %q: %v", p.Name, p.Schedule, err))
		}
	}
	for i, w := range p.Windows {
		at := func(field string) []string { return []string{"windows", fmt.Sprint(i), field} }
		if _, err := cron.ParseStandard(w.Schedule); err != nil {
			errs = append(errs, d.errorf(at("schedule"), "policy %s: windows[%d]: schedule %q: %v", p.Name, i, w.Schedule, err))
		}
		if w.Duration <= 0 {
			errs = append(errs, d.errorf(at("duration"), "policy %s: windows[%d]: duration must be more than 0", p.Name, i))
		}
		if w.TimeZone != "" {
			if _, err := time.LoadLocation(w.TimeZone); err != nil {
				errs = append(errs, d.errorf(at("timezone"), "policy %s: windows[%d]: unknown time zone %s", p.Name, i, w.TimeZone))
			}
		}
	}
	return errs
}

// checkBindings resolves every binding's references and checks what a
// card allows: one bitstream per card (one PR region), each function bound
// once, VFs within the card's count, a PF binding only on a card without
// VFs, a bitstream built for the card's PR interface, and each VM on one
// node.
func checkBindings(bindings []*document, nodes, bitstreams map[string]*document) ErrorList {
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
	for _, d := range bindings {
		b := d.binding
		who := "binding " + b.Name
		nd, ok := nodes[b.Node]
		if !ok {
			errs = append(errs, d.errorf([]string{"node"}, "%s: node %s is not declared", who, b.Node))
		}
		bd, bok := bitstreams[b.Bitstream]
		if !bok {
			errs = append(errs, d.errorf([]string{"bitstream"}, "%s: bitstream %s is not declared", who, b.Bitstream))
		}
		if b.VM != "" {
			if prev, seen := vmNode[b.VM]; seen && prev.binding.Node != b.Node {
				errs = append(errs, d.errorf([]string{"vm"}, "%s: vm %s runs on node %s (binding %s at %s), not on node %s", who, b.VM, prev.binding.Node, prev.binding.Name, prev.pos("vm"), b.Node))
			} else if !seen {
				vmNode[b.VM] = d
			}
		}
		if !ok || nd.broken {
			continue
		}
		fpga, ok := nd.node.FPGA(b.FPGA)
		if !ok {
			errs = append(errs, d.errorf([]string{"fpga"}, "%s: node %s has no fpga in slot %s", who, b.Node, b.FPGA))
			continue
		}
		id := CardID(b.Node, b.FPGA)
		ck := cardKey{b.Node, b.FPGA}
		fn := functionKey{ck, b.Function}
		if prev, dup := functions[fn]; dup {
			errs = append(errs, d.errorf([]string{"function"}, "%s: function %s of %s is already bound by binding %s at %s", who, b.Function, id, prev.binding.Name, prev.pos("function")))
		} else {
			functions[fn] = d
		}
		if b.Function.PF {
			if fpga.VFs > 0 {
				errs = append(errs, d.errorf([]string{"function"}, "%s: pf gives the whole card %s to one user, but the card has vfs: %d (set vfs: 0 at %s)", who, id, fpga.VFs, nd.pos(vfsPath(nd.node, b.FPGA)...)))
			}
		} else if b.Function.VF >= fpga.VFs {
			errs = append(errs, d.errorf([]string{"function"}, "%s: %s is out of range: card %s has vfs: %d", who, b.Function, id, fpga.VFs))
		}
		c := cards[ck]
		if c == nil {
			c = &card{}
			cards[ck] = c
		}
		if b.Function.PF {
			if c.vf != nil {
				errs = append(errs, d.errorf([]string{"function"}, "%s: pf binding on card %s excludes VF bindings such as binding %s", who, id, c.vf.binding.Name))
			} else if c.pf == nil {
				c.pf = d
			}
		} else {
			if c.pf != nil {
				errs = append(errs, d.errorf([]string{"function"}, "%s: card %s is bound whole (pf) by binding %s, so its VFs cannot be bound", who, id, c.pf.binding.Name))
			} else if c.vf == nil {
				c.vf = d
			}
		}
		if !bok || bd.broken {
			continue
		}
		switch {
		case c.by == nil:
			c.bitstream, c.by = b.Bitstream, d
		case c.bitstream != b.Bitstream:
			errs = append(errs, d.errorf([]string{"bitstream"}, "%s: card %s has one PR region, and binding %s loads bitstream %s into it, not %s", who, id, c.by.binding.Name, c.bitstream, b.Bitstream))
		}
		bs := bd.bitstream
		if fpga.InterfaceID != "" && bs.InterfaceID != "" && fpga.InterfaceID != bs.InterfaceID {
			errs = append(errs, d.errorf([]string{"bitstream"}, "%s: bitstream %s is built for PR interface %s, but card %s declares interface %s", who, b.Bitstream, bs.InterfaceID, id, fpga.InterfaceID))
		}
	}
	return errs
}

// vfsPath is the path of a card's vfs field, or of the card when the
// field is left out.
func vfsPath(n *Node, slot string) []string {
	for i, c := range n.FPGAs {
		if c.Slot == slot {
			return []string{"fpgas", fmt.Sprint(i), "vfs"}
		}
	}
	return nil
}
