// Package observed is the model of what fpgaops found on the fleet: per
// node, the FPGA cards as the fpga package reports them and the VMs with
// the PCI functions they hold. It is plain data that serialises to JSON, so
// a snapshot can be saved and planned against offline.
package observed

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/fpgaops/fpgaops/fpga"
)

// Version is the snapshot format version written into Fleet.Version.
const Version = 1

// Fleet is one observation of every node, and of the platforms of the
// backends that plan their own changes (providers.Planner).
type Fleet struct {
	Version int    `json:"version"`
	Nodes   []Node `json:"nodes"`
	// Platforms holds, by backend name, what each such backend observed of
	// its platform, in the backend's own JSON: a snapshot or a saved plan
	// carries it, and the fingerprint covers it.
	Platforms map[string]json.RawMessage `json:"platforms,omitempty"`
}

// NodeState says whether a node could be observed.
type NodeState string

const (
	NodeOK      NodeState = "ok"
	NodeUnknown NodeState = "unknown"
)

// Node is what one node runs. When State is NodeUnknown, Reason says why
// and nothing else is meaningful: the planner plans nothing destructive
// for it.
type Node struct {
	Name   string        `json:"name"`
	State  NodeState     `json:"state"`
	Reason string        `json:"reason,omitempty"`
	FPGAs  []fpga.Device `json:"fpgas,omitempty"`
	VMs    []VM          `json:"vms,omitempty"`
}

// VM is a virtual machine on a node.
type VM struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
	// Hostdevs are the PCI functions the VM holds.
	Hostdevs []Hostdev `json:"hostdevs,omitempty"`
	// RestartToChange is true for a running VM whose platform cannot
	// attach or detach its devices live: a change to it is made in its
	// definition and takes effect when it restarts.
	RestartToChange bool `json:"restartToChange,omitempty"`
}

// Hostdev is a PCI function given to a VM. Live is true when a running VM
// holds it now; Config when the VM's persistent definition names it.
type Hostdev struct {
	PCI    string `json:"pci"`
	Live   bool   `json:"live,omitempty"`
	Config bool   `json:"config,omitempty"`
}

// Holds reports whether the VM holds the function, live or in its config.
func (vm *VM) Holds(pci string) bool {
	for _, h := range vm.Hostdevs {
		if h.PCI == pci {
			return true
		}
	}
	return false
}

// Node returns the node with this name.
func (f *Fleet) Node(name string) (*Node, bool) {
	i := sort.Search(len(f.Nodes), func(i int) bool { return f.Nodes[i].Name >= name })
	if i < len(f.Nodes) && f.Nodes[i].Name == name {
		return &f.Nodes[i], true
	}
	return nil, false
}

// Sort puts nodes in name order, which Node relies on, and VMs and
// hostdevs in a stable order.
func (f *Fleet) Sort() {
	slices.SortFunc(f.Nodes, nodeOrder)
	for i := range f.Nodes {
		n := &f.Nodes[i]
		slices.SortFunc(n.FPGAs, cardOrder)
		slices.SortFunc(n.VMs, vmOrder)
		for j := range n.VMs {
			slices.SortFunc(n.VMs[j].Hostdevs, hostdevOrder)
		}
	}
}

// The orders Sort puts an observation in.
func nodeOrder(a, b Node) int        { return strings.Compare(a.Name, b.Name) }
func cardOrder(a, b fpga.Device) int { return strings.Compare(a.PCI, b.PCI) }
func vmOrder(a, b VM) int            { return strings.Compare(a.Name, b.Name) }
func hostdevOrder(a, b Hostdev) int  { return strings.Compare(a.PCI, b.PCI) }

// Fingerprint is a digest of the observation, recorded in saved plans so
// that a plan made against another state of the fleet is refused.
//
// It reads f and writes nothing of it, so that it may run beside the
// planner: what it must sort, it sorts in a copy.
func (f *Fleet) Fingerprint() string {
	c := *f
	c.Nodes = append([]Node(nil), f.Nodes...)
	slices.SortFunc(c.Nodes, nodeOrder)
	for i := range c.Nodes {
		n := &c.Nodes[i]
		if !slices.IsSortedFunc(n.FPGAs, cardOrder) {
			n.FPGAs = slices.Clone(n.FPGAs)
			slices.SortFunc(n.FPGAs, cardOrder)
		}
		sorted := slices.IsSortedFunc(n.VMs, vmOrder)
		for _, vm := range n.VMs {
			sorted = sorted && slices.IsSortedFunc(vm.Hostdevs, hostdevOrder)
		}
		if !sorted {
			n.VMs = slices.Clone(n.VMs)
			slices.SortFunc(n.VMs, vmOrder)
			for j := range n.VMs {
				n.VMs[j].Hostdevs = slices.Clone(n.VMs[j].Hostdevs)
				slices.SortFunc(n.VMs[j].Hostdevs, hostdevOrder)
			}
		}
	}
	// Streamed into the hash: a 10,000-node observation is tens of MB of
	// JSON, never held whole.
	h := sha256.New()
	if err := json.NewEncoder(h).Encode(c); err != nil {
		panic(err) // plain data always marshals
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Decode reads a snapshot, refusing unknown fields and other versions,
// and sorts it.
func Decode(r io.Reader) (*Fleet, error) {
	var obs Fleet
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obs); err != nil {
		return nil, err
	}
	if obs.Version != Version {
		return nil, fmt.Errorf("version %d, want %d", obs.Version, Version)
	}
	obs.Sort()
	return &obs, nil
}
