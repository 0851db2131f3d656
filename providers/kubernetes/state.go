package kubernetes

import (
	"sort"

	"github.com/fpgaops/fpgaops/observed"
)

// State is one observation of the cluster and of the cards of the nodes
// the backend owns. It is plain data; slices are sorted, so equal
// clusters give equal States.
type State struct {
	// Classes are the DeviceClasses fpgaops made, one per pool.
	Classes []Class `json:"deviceClasses"`
	Nodes   []Node  `json:"nodes"`
}

// Class is a DeviceClass fpgaops made (it carries its label).
type Class struct {
	Name string `json:"name"`
	// Selector is its one CEL selector.
	Selector string `json:"selector"`
}

// Node is what one fleet node is in the cluster. When State is
// observed.NodeUnknown, Reason says why and nothing else is meaningful.
type Node struct {
	Name string `json:"name"`
	// Kubernetes is the node's name in the cluster, and the name of its
	// devices' pool.
	Kubernetes string             `json:"kubernetes"`
	State      observed.NodeState `json:"state"`
	Reason     string             `json:"reason,omitempty"`
	// Registered is true when the cluster has a Node of that name.
	Registered bool `json:"registered"`
	// Cards are what the node's agent reads.
	Cards []Card `json:"cards,omitempty"`
	// Slice is the node's ResourceSlice of the driver, nil if none.
	Slice *Slice `json:"slice,omitempty"`
	// Allocations are the devices of the node's pool that claims hold.
	Allocations []Allocation `json:"allocations,omitempty"`
}

// Card is an FPGA card as the node's agent reads it.
type Card struct {
	PCI         string `json:"pci"`
	Board       string `json:"board,omitempty"`
	InterfaceID string `json:"interfaceID,omitempty"`
	// AFUID is what port 0 runs, "" when the host cannot read it.
	AFUID  string     `json:"afuID,omitempty"`
	NumVFs int        `json:"numVFs"`
	VFs    []Function `json:"vfs,omitempty"`
	// Problems are what makes the card unhealthy.
	Problems []string `json:"problems,omitempty"`
}

// Function is a VF of a card.
type Function struct {
	Index  int    `json:"index"`
	PCI    string `json:"pci"`
	Driver string `json:"driver,omitempty"`
}

// Slice is the node's ResourceSlice: its pool's generation and devices.
type Slice struct {
	Name       string   `json:"name"`
	Generation int64    `json:"generation"`
	Devices    []Device `json:"devices"`
}

// Device is a device of the slice with its string attributes, by their
// names without the driver's domain.
type Device struct {
	Name  string            `json:"name"`
	Attrs map[string]string `json:"attributes"`
}

// Allocation is a device of the node's pool that a claim holds.
type Allocation struct {
	Claim    string `json:"claim"` // namespace/name
	ClaimUID string `json:"claimUID"`
	Device   string `json:"device"`
	Request  string `json:"request"`
	Class    string `json:"deviceClass,omitempty"`
	// Pods are the pods the claim is reserved for.
	Pods []Pod `json:"pods,omitempty"`
}

// Pod is a pod a claim is reserved for.
type Pod struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	UID       string `json:"uid"`
	Phase     string `json:"phase,omitempty"`
	// Gone is true when the pod no longer exists, or another pod has its
	// name: the claim's reservation is stale.
	Gone bool `json:"gone,omitempty"`
	// Blocked says why an eviction would be refused now: a
	// PodDisruptionBudget that allows no disruption.
	Blocked string `json:"blocked,omitempty"`
}

// ID is the pod as the plan names it, namespace/name.
func (p Pod) ID() string { return p.Namespace + "/" + p.Name }

// running reports whether the pod may still use its devices.
func (p Pod) running() bool {
	return !p.Gone && p.Phase != "Succeeded" && p.Phase != "Failed"
}

// Sort puts every list in a stable order.
func (s *State) Sort() {
	sort.Slice(s.Classes, func(i, j int) bool { return s.Classes[i].Name < s.Classes[j].Name })
	sort.Slice(s.Nodes, func(i, j int) bool { return s.Nodes[i].Name < s.Nodes[j].Name })
	for i := range s.Nodes {
		n := &s.Nodes[i]
		sort.Slice(n.Cards, func(a, b int) bool { return n.Cards[a].PCI < n.Cards[b].PCI })
		if n.Slice != nil {
			d := n.Slice.Devices
			sort.Slice(d, func(a, b int) bool { return d[a].Name < d[b].Name })
		}
		a := n.Allocations
		sort.Slice(a, func(x, y int) bool {
			if a[x].Device != a[y].Device {
				return a[x].Device < a[y].Device
			}
			return a[x].Claim < a[y].Claim
		})
		for j := range a {
			p := a[j].Pods
			sort.Slice(p, func(x, y int) bool { return p[x].ID() < p[y].ID() })
		}
	}
}

func (s *State) class(name string) *Class {
	for i := range s.Classes {
		if s.Classes[i].Name == name {
			return &s.Classes[i]
		}
	}
	return nil
}

func (n *Node) card(pci string) *Card {
	for i := range n.Cards {
		if n.Cards[i].PCI == pci {
			return &n.Cards[i]
		}
	}
	return nil
}
