package engine

import (
	"context"
	"reflect"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
)

// Scope limits a run to some nodes, so that a commit that changes one
// binding of a 10,000-node fleet is acted on in the time of its node, not
// of the fleet: those nodes alone are observed, fresh, and only their
// cards get changes. The rest of the fleet keeps Base, an earlier
// observation, which serves the plan's context (the run's node summary)
// and is never the ground of a change: no change, disruptive or not, is
// planned from it. Drift elsewhere waits for a run without a scope.
type Scope struct {
	Nodes []string
	Base  *observed.Fleet
}

// ScopeOf is the scope of the change from before to after: the nodes
// whose declaration or bindings differ. ok is false when the change
// reaches beyond nodes (a policy, a bitstream, a node removed: its cards
// may be pruned) or nothing changed, which asks for a run over the whole
// fleet.
func ScopeOf(before, after *spec.Fleet) (nodes []string, ok bool) {
	if before == nil || after == nil || !reflect.DeepEqual(before.Policy, after.Policy) ||
		!reflect.DeepEqual(before.Bitstreams, after.Bitstreams) {
		return nil, false
	}
	was := make(map[string]*spec.Node, len(before.Nodes))
	for i := range before.Nodes {
		was[before.Nodes[i].Name] = &before.Nodes[i]
	}
	if len(after.Nodes) < len(was) {
		return nil, false
	}
	wasBound, bound := bindingsByNode(before), bindingsByNode(after)
	for i := range after.Nodes {
		n := &after.Nodes[i]
		old, found := was[n.Name]
		if !found || !reflect.DeepEqual(old, n) || !reflect.DeepEqual(wasBound[n.Name], bound[n.Name]) {
			nodes = append(nodes, n.Name)
		}
		delete(was, n.Name)
	}
	if len(was) > 0 {
		return nil, false // a node was renamed away
	}
	return nodes, len(nodes) > 0
}

func bindingsByNode(f *spec.Fleet) map[string][]spec.Binding {
	m := map[string][]spec.Binding{}
	for _, b := range f.Bindings {
		m[b.Node] = append(m[b.Node], b)
	}
	return m
}

// scoped says why a scope cannot hold for this run ("" when it can, or
// there is none):
// what a platform backend plans, and a rollout's checks, read the whole
// fleet.
func scoped(t *target, desired *spec.Fleet, s *Scope) string {
	switch {
	case s == nil:
		return ""
	case len(s.Nodes) == 0:
		return "no node in the scope"
	case s.Base == nil:
		return "no earlier observation"
	case len(t.sel.Planners) > 0:
		return "a platform backend plans the whole fleet"
	case desired.Policy.Rollout != nil:
		return "the policy has a rollout"
	}
	return ""
}

// observeScope observes the scope's nodes and takes the rest from its
// base; a node the base lacks is unknown.
func (e *Engine) observeScope(ctx context.Context, t *target, s *Scope) (*observed.Fleet, error) {
	in := s.nodes()
	sub := *t.desired
	sub.Nodes = nil
	for _, n := range t.desired.Nodes {
		if in[n.Name] {
			sub.Nodes = append(sub.Nodes, n)
		}
	}
	fresh, err := observeNodes(ctx, &sub, t.provider, e.concurrency(), e.NodeTimeout, e.Observed)
	if err != nil {
		return nil, err
	}
	out := &observed.Fleet{Version: observed.Version, Nodes: fresh.Nodes}
	for _, n := range t.desired.Nodes {
		if in[n.Name] {
			continue
		}
		if on, ok := s.Base.Node(n.Name); ok {
			out.Nodes = append(out.Nodes, *on)
		} else {
			out.Nodes = append(out.Nodes, observed.Node{Name: n.Name, State: observed.NodeUnknown, Reason: "not observed in this run"})
		}
	}
	out.Sort()
	return out, nil
}

// nodes is the scope's nodes as a set.
func (s *Scope) nodes() map[string]bool {
	in := make(map[string]bool, len(s.Nodes))
	for _, n := range s.Nodes {
		in[n] = true
	}
	return in
}

// only is the planner's set of cards for the scope's nodes.
func (s *Scope) only(desired *spec.Fleet) map[string]bool {
	in := s.nodes()
	cards := map[string]bool{}
	for _, n := range desired.Nodes {
		if in[n.Name] {
			for _, c := range n.FPGAs {
				cards[plans.CardID(n.Name, c.Slot)] = true
			}
		}
	}
	return cards
}
