package providers

import (
	"context"
	"fmt"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// VMsByNode sends each node's VM calls to the VM side chosen for it, by
// node name: a fleet may mix libvirt, OpenStack and simulated nodes.
// Restart and CheckAttach pass on to a node's side when it has them.
func VMsByNode(sides map[string]VMs) VMs { return vmsByNode(sides) }

type vmsByNode map[string]VMs

func (v vmsByNode) side(node *spec.Node) (VMs, error) {
	s, ok := v[node.Name]
	if !ok {
		return nil, fmt.Errorf("node %s: no VM side", node.Name)
	}
	return s, nil
}

func (v vmsByNode) ObserveVMs(ctx context.Context, node *spec.Node) ([]observed.VM, error) {
	s, err := v.side(node)
	if err != nil {
		return nil, err
	}
	return s.ObserveVMs(ctx, node)
}

func (v vmsByNode) Attach(ctx context.Context, node *spec.Node, vm, pci string) error {
	s, err := v.side(node)
	if err != nil {
		return err
	}
	return s.Attach(ctx, node, vm, pci)
}

func (v vmsByNode) Detach(ctx context.Context, node *spec.Node, vm, pci string) error {
	s, err := v.side(node)
	if err != nil {
		return err
	}
	return s.Detach(ctx, node, vm, pci)
}

func (v vmsByNode) Restart(ctx context.Context, node *spec.Node, vm string) error {
	s, err := v.side(node)
	if err != nil {
		return err
	}
	return Restart(ctx, s, node, vm)
}

func (v vmsByNode) CheckAttach(ctx context.Context, node *spec.Node, vm, pci string) error {
	s, err := v.side(node)
	if err != nil {
		return err
	}
	return CheckAttach(ctx, s, node, vm, pci)
}
