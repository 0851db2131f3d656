package providers

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// Backend is the platform that runs the VMs of some of the fleet's nodes
// (libvirt, OpenStack, the simulated fleet; next Kubernetes). Each node
// has exactly one. The engine observes the node's VMs through it, and for
// the card chains the planner makes, attaches and detaches functions
// through it. A backend may also restart VMs (Restarter) and tell in the
// dry run whether an attach can succeed (AttachChecker).
type Backend interface {
	// Name names the backend in plans, logs and --vms ("libvirt").
	Name() string
	VMs
}

// Planner is a backend whose platform attaches and programs its nodes'
// cards itself: a cloud with a scheduler (OpenStack's Nova and Cyborg),
// where a VM gets its accelerator at boot and the card is programmed by
// the cloud. For its nodes the planner makes no card chain; the backend
// plans the changes of its own objects (images, device profiles, flavors,
// servers) in the plan's vocabulary, the planner gates them with
// everything else, and the executor carries them out through Apply.
type Planner interface {
	Backend
	// ObservePlatform reads what the platform runs for these nodes and
	// the objects they share. The result is the backend's own JSON: the
	// observation keeps it (observed.Fleet.Platforms), so that snapshots,
	// fingerprints and saved plans cover it, and Plan reads it back.
	ObservePlatform(ctx context.Context, desired *spec.Fleet, nodes []*spec.Node) (json.RawMessage, error)
	// Plan derives the backend's changes from the desired fleet and the
	// platform's observation. It is pure. Each change names the backend
	// (plans.Change.Backend), has an ID unique in the plan, and says what
	// it depends on, whether it disrupts a VM (Before.VM) and which
	// binding it serves; the backend holds a change only for what it
	// alone can judge (plans.GateInUse). Windows, protected bindings and
	// the budget are the planner's.
	Plan(desired *spec.Fleet, nodes []*spec.Node, platform json.RawMessage) ([]plans.Change, error)
	// Check is the dry run of one change: whatever can be checked before
	// anything is touched (an image's digest). The executor checks every
	// change of a plan before it runs the first.
	Check(ctx context.Context, desired *spec.Fleet, c *plans.Change) error
	// Apply carries out one change. The changes it depends on have
	// succeeded, in this run or an earlier one; what they made must be
	// found again on the platform, not remembered.
	Apply(ctx context.Context, desired *spec.Fleet, c *plans.Change) error
}

// Env is what every backend may use.
type Env struct {
	// Getenv reads the environment (OS_* for OpenStack); nil means none.
	Getenv func(string) string
	// HTTP carries requests to the nodes' agents, with the controller's
	// client certificate: a backend that reaches a node at its endpoint
	// uses it.
	HTTP *http.Client
	Log  *slog.Logger
}

// Var reads one variable of the environment, "" when there is none.
func (e Env) Var(k string) string {
	if e.Getenv == nil {
		return ""
	}
	return e.Getenv(k)
}

// Kind is a kind of backend: what registering a backend takes (see
// providers/all). Its flags are bound to the value, so a command makes
// its own kinds.
type Kind interface {
	// Name is the backend's name, as --vms takes it.
	Name() string
	// Flags adds the backend's own flags (--os-cloud).
	Flags(fs *pflag.FlagSet)
	// Claims reports whether, with --vms auto, the backend serves the
	// node: the first kind that claims a node serves it.
	Claims(n *spec.Node, env Env) bool
	// Open makes the backend. It connects lazily: opening makes no call.
	Open(env Env) (Backend, error)
}

// Auto is the --vms value under which each node goes to the first kind
// that claims it.
const Auto = "auto"

// Selection is which backend serves each node.
type Selection struct {
	// ByNode maps each node to its backend.
	ByNode map[string]Backend
	// Planners are the selected backends that plan their own changes,
	// with the nodes they own, in kind order.
	Planners []Owner
}

// Owner is a Planner and the nodes it owns, in fleet order.
type Owner struct {
	Planner
	Nodes []*spec.Node
}

// Owned maps each node a Planner owns to its name: the planner's
// reconcile.Options.Owned.
func (s *Selection) Owned() map[string]string {
	out := map[string]string{}
	for _, o := range s.Planners {
		for _, n := range o.Nodes {
			out[n.Name] = o.Name()
		}
	}
	return out
}

// VMs routes each node's VM calls to its backend.
func (s *Selection) VMs() VMs {
	sides := make(map[string]VMs, len(s.ByNode))
	for n, b := range s.ByNode {
		sides[n] = b
	}
	return VMsByNode(sides)
}

// Planner returns the selected Planner of this name.
func (s *Selection) Planner(name string) (Planner, bool) {
	for _, o := range s.Planners {
		if o.Name() == name {
			return o.Planner, true
		}
	}
	return nil, false
}

// Select chooses each node's backend: the kind choice names for every
// node, or with Auto the first kind that claims the node. Each kind is
// opened once, when a node first needs it.
func Select(kinds []Kind, choice string, nodes []spec.Node, env Env) (*Selection, error) {
	if choice == "" {
		choice = Auto
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.Name()
	}
	if choice != Auto && !slices.Contains(names, choice) {
		return nil, fmt.Errorf("--vms %q: want %s or %s", choice, Auto, strings.Join(names, ", "))
	}
	sel := &Selection{ByNode: make(map[string]Backend, len(nodes))}
	opened := make([]Backend, len(kinds))
	owners := make([]*Owner, len(kinds))
	for i := range nodes {
		n := &nodes[i]
		k := -1
		for j, kind := range kinds {
			if choice == kind.Name() || choice == Auto && kind.Claims(n, env) {
				k = j
				break
			}
		}
		if k < 0 {
			return nil, fmt.Errorf("node %s: no backend serves it (kinds: %s)", n.Name, strings.Join(names, ", "))
		}
		if opened[k] == nil {
			b, err := kinds[k].Open(env)
			if err != nil {
				return nil, fmt.Errorf("backend %s: %w", kinds[k].Name(), err)
			}
			opened[k] = b
			if p, ok := b.(Planner); ok {
				owners[k] = &Owner{Planner: p}
			}
		}
		sel.ByNode[n.Name] = opened[k]
		if owners[k] != nil {
			owners[k].Nodes = append(owners[k].Nodes, n)
		}
	}
	for _, o := range owners {
		if o != nil {
			sel.Planners = append(sel.Planners, *o)
		}
	}
	return sel, nil
}
