package libvirt

import (
	"context"
	"fmt"

	lv "github.com/digitalocean/go-libvirt"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

var _ providers.AttachChecker = (*Provider)(nil)
var _ providers.Restarter = (*Provider)(nil)

// CheckAttach reports, changing nothing, whether Attach could give the
// function at pci to the VM: the node must have the domain and, when pci
// is not empty, a PCI device at that address. pci is empty for a VF that
// does not exist yet; only the domain is checked then. The errors are
// those Attach returns (ErrNoDomain, ErrNoPCIDevice), naming the node, the
// domain and the address.
func (p *Provider) CheckAttach(ctx context.Context, node *spec.Node, vm, pci string) error {
	errorf := func(err error) error {
		if pci == "" {
			return fmt.Errorf("node %s vm %s: %w", node.Name, vm, err)
		}
		return fmt.Errorf("node %s vm %s hostdev %s: %w", node.Name, vm, pci, err)
	}
	if pci != "" {
		a, err := spec.ParsePCIAddress(pci)
		if err != nil {
			return errorf(err)
		}
		devs, err := p.ObservePCI(ctx, node)
		if err != nil {
			return errorf(err)
		}
		found := false
		for _, d := range devs {
			if d.PCI == a.String() {
				found = true
				break
			}
		}
		if !found {
			return errorf(ErrNoPCIDevice)
		}
	}
	c, err := p.conn(ctx, node)
	if err != nil {
		return errorf(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer p.watch(ctx, node.Name, c)()
	_, err = c.l.DomainLookupByName(vm)
	switch {
	case hasCode(err, lv.ErrNoDomain):
		return errorf(ErrNoDomain)
	case err != nil:
		return errorf(p.fail(node.Name, c, err))
	}
	return nil
}
