package engine

import (
	"slices"
	"testing"

	"github.com/fpgaops/fpgaops/spec"
)

func TestScopeOf(t *testing.T) {
	base := func() *spec.Fleet {
		return &spec.Fleet{
			Policy:     spec.Policy{Name: "dc1"},
			Bitstreams: []spec.Bitstream{{Name: "a"}, {Name: "b"}},
			Nodes: []spec.Node{
				{Name: "n1", FPGAs: []spec.FPGA{{Slot: "pac0"}}},
				{Name: "n2", FPGAs: []spec.FPGA{{Slot: "pac0"}}},
				{Name: "n3", FPGAs: []spec.FPGA{{Slot: "pac0"}}},
			},
			Bindings: []spec.Binding{
				{Name: "n1-pac0", Node: "n1", FPGA: "pac0", Bitstream: "a"},
				{Name: "n2-pac0", Node: "n2", FPGA: "pac0", Bitstream: "a"},
			},
		}
	}
	for _, tc := range []struct {
		name   string
		change func(f *spec.Fleet)
		want   []string // nil: the whole fleet
	}{
		{"nothing changed", func(*spec.Fleet) {}, nil},
		{"a binding moved", func(f *spec.Fleet) { f.Bindings[1].Bitstream = "b" }, []string{"n2"}},
		{"a binding added", func(f *spec.Fleet) {
			f.Bindings = append(f.Bindings, spec.Binding{Name: "n3-pac0", Node: "n3", FPGA: "pac0", Bitstream: "b"})
		}, []string{"n3"}},
		{"a binding removed", func(f *spec.Fleet) { f.Bindings = f.Bindings[:1] }, []string{"n2"}},
		{"a binding moved to another node", func(f *spec.Fleet) { f.Bindings[1].Node = "n3" }, []string{"n2", "n3"}},
		{"a node's card changed", func(f *spec.Fleet) { f.Nodes[0].FPGAs[0].VFs = 2 }, []string{"n1"}},
		{"a node added", func(f *spec.Fleet) { f.Nodes = append(f.Nodes, spec.Node{Name: "n4"}) }, []string{"n4"}},
		{"a node removed", func(f *spec.Fleet) { f.Nodes = f.Nodes[:2] }, nil},
		{"a node renamed", func(f *spec.Fleet) { f.Nodes[2].Name = "n9" }, nil},
		{"the policy changed", func(f *spec.Fleet) { f.Policy.Budget.MaxDisruptedVMs = 3 }, nil},
		{"a bitstream changed", func(f *spec.Fleet) { f.Bitstreams[1].SHA256 = "00" }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after := base()
			tc.change(after)
			got, ok := ScopeOf(base(), after)
			if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
				t.Errorf("ScopeOf = %v, %v; want %v", got, ok, tc.want)
			}
		})
	}
	if _, ok := ScopeOf(nil, base()); ok {
		t.Error("a scope without an earlier fleet")
	}
}
