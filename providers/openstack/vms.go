package openstack

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers/openstack/cyborg"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
)

// ErrNovaAttaches is what Attach and Detach return: on OpenStack, Nova
// and Cyborg give servers their accelerators, at boot, through the flavor;
// fpgaops changes that through the OpenStack plan (a new flavor and a
// replaced server), never by moving PCI functions itself.
var ErrNovaAttaches = errors.New("on OpenStack, Nova attaches accelerators at boot: the OpenStack plan replaces the server instead")

// ObserveVMs lists the servers on the node's host. A server holds the
// functions named in the attach handles of its bound ARQs; both Live and
// Config are set, since Nova gives them for the server's whole life.
// Nova's libvirt driver puts them into the domain only when every one is
// of type PCI (nova/virt/libvirt/driver.py): Cyborg's fake driver hands
// out TEST_PCI handles, and a server with one holds nothing.
func (b *Backend) ObserveVMs(ctx context.Context, node *spec.Node) ([]observed.VM, error) {
	if node.Hostname == "" {
		return nil, fmt.Errorf("node %s: no hostname: OpenStack does not manage its VMs", node.Name)
	}
	c, err := b.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	pages, err := servers.List(c.Compute, servers.ListOpts{AllTenants: true, Host: node.Hostname}).AllPages(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: nova: servers: %w", node.Name, err)
	}
	list, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, fmt.Errorf("node %s: nova: servers: %w", node.Name, err)
	}
	arqs, err := cyborg.ListARQs(ctx, c.Accelerator, "")
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	var vms []observed.VM
	for _, s := range list {
		if s.Host != node.Hostname {
			continue
		}
		vm := observed.VM{Name: s.Name, Running: s.Status == "ACTIVE"}
		allPCI := true
		for _, a := range arqs {
			if a.Instance() != s.ID || a.State != cyborg.ARQBound {
				continue
			}
			if a.AttachHandleType != attachPCIType {
				allPCI = false
				continue
			}
			if pci := attachPCI(a.AttachHandleInfo); pci != "" {
				vm.Hostdevs = append(vm.Hostdevs, observed.Hostdev{PCI: pci, Live: true, Config: true})
			}
		}
		if !allPCI {
			vm.Hostdevs = nil
		}
		sort.Slice(vm.Hostdevs, func(i, j int) bool { return vm.Hostdevs[i].PCI < vm.Hostdevs[j].PCI })
		vms = append(vms, vm)
	}
	sort.Slice(vms, func(i, j int) bool { return vms[i].Name < vms[j].Name })
	return vms, nil
}

// attachPCIType is the one attach handle type Nova gives a server.
const attachPCIType = "PCI"

// attachPCI turns an ARQ's attach handle into "dddd:bb:dd.f".
func attachPCI(h map[string]string) string {
	if h["bus"] == "" || h["device"] == "" || h["function"] == "" {
		return ""
	}
	dom := h["domain"]
	if dom == "" {
		dom = "0000"
	}
	return strings.ToLower(fmt.Sprintf("%s:%s:%s.%s", dom, h["bus"], h["device"], h["function"]))
}

// Attach refuses: see ErrNovaAttaches.
func (b *Backend) Attach(_ context.Context, node *spec.Node, vm, pci string) error {
	return fmt.Errorf("node %s vm %s: attach %s: %w", node.Name, vm, pci, ErrNovaAttaches)
}

// Detach refuses: see ErrNovaAttaches.
func (b *Backend) Detach(_ context.Context, node *spec.Node, vm, pci string) error {
	return fmt.Errorf("node %s vm %s: detach %s: %w", node.Name, vm, pci, ErrNovaAttaches)
}
