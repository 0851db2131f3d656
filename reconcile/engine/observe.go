package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"golang.org/x/sync/errgroup"
)

// observe observes the target: every node's cards and VMs, and at the
// same time the platform of each backend that plans its own changes. A
// platform that cannot be observed makes the nodes it owns unknown, like
// a node that does not answer: nothing is planned for them.
func (e *Engine) observe(ctx context.Context, t *target) (*observed.Fleet, error) {
	type platform struct {
		name string
		data json.RawMessage
		err  error
	}
	platforms := make([]platform, len(t.sel.Planners))
	var wg sync.WaitGroup
	for i, o := range t.sel.Planners {
		wg.Go(func() {
			data, err := o.ObservePlatform(ctx, t.desired, o.Nodes)
			platforms[i] = platform{o.Name(), data, err}
		})
	}
	obs, err := observeNodes(ctx, t.desired, t.provider, e.concurrency(), e.NodeTimeout, e.Observed)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	for i, p := range platforms {
		if p.err == nil {
			if obs.Platforms == nil {
				obs.Platforms = map[string]json.RawMessage{}
			}
			obs.Platforms[p.name] = p.data
			continue
		}
		e.log().Warn("platform not observed: its nodes are unknown", "backend", p.name, "err", p.err)
		for _, n := range t.sel.Planners[i].Nodes {
			if on, ok := obs.Node(n.Name); ok && on.State == observed.NodeOK {
				*on = observed.Node{Name: n.Name, State: observed.NodeUnknown, Reason: p.name + ": " + p.err.Error()}
			}
		}
	}
	return obs, nil
}

// Observe asks the provider for every node's cards and VMs, at most
// concurrency nodes at once, each within perNodeTimeout. A node that fails
// to answer is marked unknown with the reason, and the planner will plan
// nothing for it; Observe itself fails only when ctx ends. The result is
// sorted, so its fingerprint is stable.
func Observe(ctx context.Context, fleet *spec.Fleet, p providers.Provider, concurrency int, perNodeTimeout time.Duration) (*observed.Fleet, error) {
	return observeNodes(ctx, fleet, p, concurrency, perNodeTimeout, nil)
}

// observeNodes is Observe telling done, when set, of each node observed.
func observeNodes(ctx context.Context, fleet *spec.Fleet, p providers.Provider, concurrency int, perNodeTimeout time.Duration, done func(observed.Node)) (*observed.Fleet, error) {
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
			if done != nil {
				done(nodes[i])
			}
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
