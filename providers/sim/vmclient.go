package sim

import (
	"context"
	"net/http"
	"net/url"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// Paths of the simulated VM API, relative to a node's endpoint.
const (
	PathVMs    = "/v1/vms"
	PathAttach = "/v1/vms/{vm}/attach"
	PathDetach = "/v1/vms/{vm}/detach"
)

// VMList is the answer to GET /v1/vms.
type VMList struct {
	VMs []observed.VM `json:"vms"`
}

// HostdevRequest is the body of attach and detach.
type HostdevRequest struct {
	PCI string `json:"pci"`
}

// VMClient is the VM side of a provider for simulated nodes: it reaches
// the sim's VM API at each node's endpoint.
type VMClient struct {
	c *agent.Client
}

var _ providers.VMs = (*VMClient)(nil)

// NewVMClient returns a VM side that sends its requests through c.
func NewVMClient(c *agent.Client) *VMClient { return &VMClient{c: c} }

// ObserveVMs lists the node's simulated VMs.
func (v *VMClient) ObserveVMs(ctx context.Context, node *spec.Node) ([]observed.VM, error) {
	var l VMList
	if err := v.c.Do(ctx, node, http.MethodGet, PathVMs, nil, &l); err != nil {
		return nil, err
	}
	return l.VMs, nil
}

// Attach gives the PCI function to the VM.
func (v *VMClient) Attach(ctx context.Context, node *spec.Node, vm, pci string) error {
	return v.hostdev(ctx, node, PathAttach, vm, pci)
}

// Detach takes the PCI function from the VM.
func (v *VMClient) Detach(ctx context.Context, node *spec.Node, vm, pci string) error {
	return v.hostdev(ctx, node, PathDetach, vm, pci)
}

func (v *VMClient) hostdev(ctx context.Context, node *spec.Node, path, vm, pci string) error {
	b, err := agent.JSONBody(HostdevRequest{PCI: pci})
	if err != nil {
		return err
	}
	return v.c.Do(ctx, node, http.MethodPost, vmPath(path, vm), b, nil)
}

func vmPath(p, vm string) string {
	return p[:len("/v1/vms/")] + url.PathEscape(vm) + p[len("/v1/vms/{vm}"):]
}
