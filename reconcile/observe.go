package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"golang.org/x/sync/errgroup"
)

// Observe asks the provider for every node's cards and VMs, at most
// concurrency nodes at once, each within perNodeTimeout. A node that fails
// to answer is marked unknown with the reason, and the planner will plan
// nothing for it; Observe itself fails only when ctx ends. The result is
// sorted, so its fingerprint is stable. This is the only part of the
// package that does I/O.
func Observe(ctx context.Context, fleet *spec.Fleet, p providers.Provider, concurrency int, perNodeTimeout time.Duration) (*observed.Fleet, error) {
	if concurrency <= 0 {
		concurrency = 1
	}
	nodes := make([]observed.Node, len(fleet.Nodes))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency)
	for i := range fleet.Nodes {
		n := &fleet.Nodes[i]
		g.Go(func() error {
			nodes[i] = observeNode(gctx, n, p, perNodeTimeout)
			return nil
		})
	}
	_ = g.Wait() // workers never fail: an unreachable node is data
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("observe: %w", err)
	}
	out := &observed.Fleet{Version: observed.Version, Nodes: nodes}
	out.Sort()
	return out, nil
}

func observeNode(ctx context.Context, n *spec.Node, p providers.Provider, timeout time.Duration) observed.Node {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	unknown := func(what string, err error) observed.Node {
		return observed.Node{Name: n.Name, State: observed.NodeUnknown, Reason: what + ": " + err.Error()}
	}
	// The card side and the VM side are separate services: ask both at
	// once, so a node costs one round trip, not two.
	var (
		vms    []observed.VM
		vmErr  error
		vmDone = make(chan struct{})
	)
	go func() {
		defer close(vmDone)
		vms, vmErr = p.ObserveVMs(ctx, n)
	}()
	devs, err := p.ObserveCards(ctx, n)
	<-vmDone
	if err != nil {
		return unknown("cards", err)
	}
	if vmErr != nil {
		return unknown("VMs", vmErr)
	}
	return observed.Node{Name: n.Name, State: observed.NodeOK, FPGAs: devs, VMs: vms}
}
