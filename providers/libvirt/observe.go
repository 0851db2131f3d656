package libvirt

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"

	lv "github.com/digitalocean/go-libvirt"
	"golang.org/x/sync/errgroup"
	"libvirt.org/go/libvirtxml"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// ObserveVMs lists the node's domains, whether each runs, and the PCI
// functions each holds: Live from the running definition, Config from the
// persistent one. Running domains are marked RestartToChange when the
// driver cannot change them live. A lost connection is re-dialled once.
func (p *Provider) ObserveVMs(ctx context.Context, node *spec.Node) ([]observed.VM, error) {
	vms, err := p.observeVMs(ctx, node)
	if err != nil && ctx.Err() == nil && isTransport(err) {
		vms, err = p.observeVMs(ctx, node)
	}
	return vms, ctxErr(ctx, node, err)
}

func (p *Provider) observeVMs(ctx context.Context, node *spec.Node) ([]observed.VM, error) {
	c, err := p.conn(ctx, node)
	if err != nil {
		return nil, err
	}
	defer p.watch(ctx, node.Name, c)()
	// Two listings say which domains run (an ID other than -1) and which
	// are persistent, instead of two calls per domain.
	doms, _, err := c.l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, fmt.Errorf("node %s: list domains: %w", node.Name, p.fail(node.Name, c, err))
	}
	pers, _, err := c.l.ConnectListAllDomains(1, lv.ConnectListDomainsPersistent)
	if err != nil {
		return nil, fmt.Errorf("node %s: list domains: %w", node.Name, p.fail(node.Name, c, err))
	}
	persistent := make(map[lv.UUID]bool, len(pers))
	for _, d := range pers {
		persistent[d.UUID] = true
	}
	// The definitions are read in parallel over the one connection; each
	// result has its own slot, so the order stays the listing's.
	states := make([]*domainState, len(doms))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, d := range doms {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			s := &domainState{dom: d, running: d.ID != -1, persistent: persistent[d.UUID]}
			err := s.readDefs(c)
			if hasCode(err, lv.ErrNoDomain) {
				return nil // undefined since the listing
			}
			if err != nil {
				return fmt.Errorf("node %s vm %s: %w", node.Name, d.Name, p.fail(node.Name, c, err))
			}
			states[i] = s
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	restart := !c.liveChanges()
	vms := make([]observed.VM, 0, len(doms))
	for _, s := range states {
		if s != nil {
			vm := s.vm()
			vm.RestartToChange = vm.Running && restart
			vms = append(vms, vm)
		}
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return vms, nil
}

// domainState is what one domain holds.
type domainState struct {
	dom        lv.Domain
	running    bool
	persistent bool
	// live and config are the PCI functions of the running and the
	// persistent definition; config is the definition to change.
	live, config []string
	def          *libvirtxml.Domain
}

// readDomain reads one domain's state and definitions.
func readDomain(c *conn, d lv.Domain) (*domainState, error) {
	s := &domainState{dom: d}
	active, err := c.l.DomainIsActive(d)
	if err != nil {
		return nil, err
	}
	s.running = active == 1
	pers, err := c.l.DomainIsPersistent(d)
	if err != nil {
		return nil, err
	}
	s.persistent = pers == 1
	return s, s.readDefs(c)
}

// readDefs reads the running definition of a running domain and the
// persistent one of a persistent domain.
func (s *domainState) readDefs(c *conn) error {
	d := s.dom
	if s.running {
		x, err := c.l.DomainGetXMLDesc(d, 0)
		if err != nil {
			return err
		}
		var live libvirtxml.Domain
		if err := live.Unmarshal(x); err != nil {
			return fmt.Errorf("parse domain XML: %w", err)
		}
		s.live = pciHostdevs(&live)
	}
	if s.persistent {
		x, err := c.l.DomainGetXMLDesc(d, lv.DomainXMLInactive)
		if err != nil {
			return err
		}
		s.def = &libvirtxml.Domain{}
		if err := s.def.Unmarshal(x); err != nil {
			return fmt.Errorf("parse persistent domain XML: %w", err)
		}
		s.config = pciHostdevs(s.def)
	}
	return nil
}

func (s *domainState) vm() observed.VM {
	vm := observed.VM{Name: s.dom.Name, Running: s.running}
	idx := map[string]int{}
	add := func(pci string) *observed.Hostdev {
		if i, ok := idx[pci]; ok {
			return &vm.Hostdevs[i]
		}
		idx[pci] = len(vm.Hostdevs)
		vm.Hostdevs = append(vm.Hostdevs, observed.Hostdev{PCI: pci})
		return &vm.Hostdevs[len(vm.Hostdevs)-1]
	}
	for _, pci := range s.live {
		add(pci).Live = true
	}
	for _, pci := range s.config {
		add(pci).Config = true
	}
	sort.Slice(vm.Hostdevs, func(i, j int) bool { return vm.Hostdevs[i].PCI < vm.Hostdevs[j].PCI })
	return vm
}

// PCIDevice is a PCI function of a node as libvirt's node devices show it.
type PCIDevice struct {
	// PCI is the address, "0000:5e:00.1".
	PCI     string `json:"pci"`
	Vendor  uint16 `json:"vendor"`
	Product uint16 `json:"product"`
	// Driver is the bound kernel driver, or "".
	Driver     string `json:"driver,omitempty"`
	IOMMUGroup int    `json:"iommuGroup"`
	NUMANode   int    `json:"numaNode"`
	// PhysFn is the PF's address when this function is a VF.
	PhysFn string `json:"physFn,omitempty"`
}

// ObservePCI lists the node's PCI devices, in address order.
func (p *Provider) ObservePCI(ctx context.Context, node *spec.Node) ([]PCIDevice, error) {
	devs, err := p.observePCI(ctx, node)
	if err != nil && ctx.Err() == nil && isTransport(err) {
		devs, err = p.observePCI(ctx, node)
	}
	return devs, ctxErr(ctx, node, err)
}

func (p *Provider) observePCI(ctx context.Context, node *spec.Node) ([]PCIDevice, error) {
	c, err := p.conn(ctx, node)
	if err != nil {
		return nil, err
	}
	defer p.watch(ctx, node.Name, c)()
	// The test driver rejects the ACTIVE/INACTIVE flags; CAP_PCI_DEV
	// alone works everywhere.
	names, _, err := c.l.ConnectListAllNodeDevices(1, uint32(lv.ConnectListNodeDevicesCapPciDev))
	if err != nil {
		return nil, fmt.Errorf("node %s: list PCI devices: %w", node.Name, p.fail(node.Name, c, err))
	}
	out := make([]PCIDevice, 0, len(names))
	for _, n := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		x, err := c.l.NodeDeviceGetXMLDesc(n.Name, 0)
		if hasCode(err, lv.ErrNoNodeDevice) {
			continue // gone since the listing (a VF turned off)
		}
		if err != nil {
			return nil, fmt.Errorf("node %s: PCI device %s: %w", node.Name, n.Name, p.fail(node.Name, c, err))
		}
		d, ok, err := parseNodeDevice(x)
		if err != nil {
			return nil, fmt.Errorf("node %s: PCI device %s: %w", node.Name, n.Name, err)
		}
		if ok {
			out = append(out, d)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PCI < out[j].PCI })
	return out, nil
}

func parseNodeDevice(x string) (PCIDevice, bool, error) {
	var nd libvirtxml.NodeDevice
	if err := nd.Unmarshal(x); err != nil {
		return PCIDevice{}, false, err
	}
	pc := nd.Capability.PCI
	if pc == nil {
		return PCIDevice{}, false, nil
	}
	a, ok := pciAddress(pc.Domain, pc.Bus, pc.Slot, pc.Function)
	if !ok {
		return PCIDevice{}, false, nil
	}
	d := PCIDevice{PCI: a.String(), Vendor: hexID(pc.Vendor.ID), Product: hexID(pc.Product.ID), NUMANode: -1}
	if nd.Driver != nil {
		d.Driver = nd.Driver.Name
	}
	if pc.IOMMUGroup != nil {
		d.IOMMUGroup = pc.IOMMUGroup.Number
	}
	if pc.NUMA != nil {
		d.NUMANode = pc.NUMA.Node
	}
	for _, sc := range pc.Capabilities {
		if pf := sc.PhysFunction; pf != nil {
			if pa, ok := pciAddress(pf.Address.Domain, pf.Address.Bus, pf.Address.Slot, pf.Address.Function); ok {
				d.PhysFn = pa.String()
			}
		}
	}
	return d, true, nil
}

func hexID(s string) uint16 {
	n, _ := strconv.ParseUint(s, 0, 16)
	return uint16(n)
}

// DomainXML returns the domain's definition: the running one, or with
// inactive set the persistent one.
func (p *Provider) DomainXML(ctx context.Context, node *spec.Node, vm string, inactive bool) (string, error) {
	c, err := p.conn(ctx, node)
	if err != nil {
		return "", fmt.Errorf("node %s vm %s: %w", node.Name, vm, err)
	}
	defer p.watch(ctx, node.Name, c)()
	dom, err := c.l.DomainLookupByName(vm)
	if hasCode(err, lv.ErrNoDomain) {
		return "", fmt.Errorf("node %s vm %s: %w", node.Name, vm, ErrNoDomain)
	}
	if err != nil {
		return "", fmt.Errorf("node %s vm %s: %w", node.Name, vm, p.fail(node.Name, c, err))
	}
	var flags lv.DomainXMLFlags
	if inactive {
		flags = lv.DomainXMLInactive
	}
	x, err := c.l.DomainGetXMLDesc(dom, flags)
	if err != nil {
		return "", fmt.Errorf("node %s vm %s: %w", node.Name, vm, p.fail(node.Name, c, err))
	}
	return x, nil
}

// ctxErr reports a call cut off because ctx ended as that, not as the
// broken connection it left behind.
func ctxErr(ctx context.Context, node *spec.Node, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("node %s: %w", node.Name, ctx.Err())
	}
	return err
}
