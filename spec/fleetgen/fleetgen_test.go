package fleetgen_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

func generate(t *testing.T, opts fleetgen.Options) *spec.Fleet {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	if err := fleetgen.Generate(opts); err != nil {
		t.Fatal(err)
	}
	f, err := spec.Load(opts.Dir)
	if err != nil {
		t.Fatalf("the generated fleet does not load:\n%v", err)
	}
	return f
}

func TestGenerateValid(t *testing.T) {
	tests := []struct {
		name                             string
		opts                             fleetgen.Options
		nodes, fpgas, bindings, noVM, pf int
	}{
		{"default cards", fleetgen.Options{Nodes: 7, Seed: 1}, 7, 28, 28, 7, 7},
		{"one card", fleetgen.Options{Nodes: 5, FPGAsPerNode: 1}, 5, 5, 5, 0, 0},
		{"most cards", fleetgen.Options{Nodes: 2, FPGAsPerNode: fleetgen.MaxFPGAsPerNode, Seed: -3}, 2, 32, 32, 8, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := generate(t, tt.opts)
			noVM, pf := 0, 0
			for _, b := range f.Bindings {
				if b.VM == "" {
					noVM++
				}
				if b.Function.PF {
					pf++
				}
			}
			if len(f.Nodes) != tt.nodes || f.FPGACount() != tt.fpgas || len(f.Bindings) != tt.bindings || noVM != tt.noVM || pf != tt.pf {
				t.Errorf("got %d nodes, %d fpgas, %d bindings (%d without VM, %d pf), want %d, %d, %d (%d, %d)",
					len(f.Nodes), f.FPGACount(), len(f.Bindings), noVM, pf, tt.nodes, tt.fpgas, tt.bindings, tt.noVM, tt.pf)
			}
			if len(f.Bitstreams) != len(spec.Boards)*fleetgen.BitstreamsPerBoard {
				t.Errorf("%d bitstreams", len(f.Bitstreams))
			}
			boards := map[spec.Board]bool{}
			for _, n := range f.Nodes {
				for _, c := range n.FPGAs {
					boards[c.Board] = true
				}
			}
			if tt.nodes >= 3 && len(boards) != len(spec.Boards) {
				t.Errorf("boards %v: want every board", boards)
			}
			if f.Policy.Drift != spec.DriftCorrect || len(f.Policy.Windows) != 0 || f.Policy.Budget.MaxDisruptedVMs < tt.bindings {
				t.Errorf("policy %+v does not let every change through", f.Policy)
			}
		})
	}
}

// TestSeed: another seed keeps nodes, cards and VMs, and changes every
// binding's bitstream.
func TestSeed(t *testing.T) {
	a := generate(t, fleetgen.Options{Nodes: 6, Seed: 1})
	b := generate(t, fleetgen.Options{Nodes: 6, Seed: 2})
	for i := range a.Nodes {
		an, bn := a.Nodes[i], b.Nodes[i]
		if an.Name != bn.Name || len(an.FPGAs) != len(bn.FPGAs) {
			t.Fatalf("node %d: %s vs %s", i, an.Name, bn.Name)
		}
		for j := range an.FPGAs {
			if an.FPGAs[j].PCI != bn.FPGAs[j].PCI || an.FPGAs[j].Board != bn.FPGAs[j].Board {
				t.Errorf("node %s card %d differs: %+v vs %+v", an.Name, j, an.FPGAs[j], bn.FPGAs[j])
			}
		}
	}
	for i := range a.Bindings {
		x, y := a.Bindings[i], b.Bindings[i]
		if x.Name != y.Name || x.VM != y.VM || x.Function != y.Function {
			t.Errorf("binding %s changed beyond its bitstream: %+v vs %+v", x.Name, x, y)
		}
		if x.Bitstream == y.Bitstream {
			t.Errorf("binding %s keeps bitstream %s", x.Name, x.Bitstream)
		}
	}
	// The same options give the same bytes.
	d1, d2 := t.TempDir(), t.TempDir()
	generate(t, fleetgen.Options{Dir: d1, Nodes: 3, Seed: 5})
	generate(t, fleetgen.Options{Dir: d2, Nodes: 3, Seed: 5})
	for _, p := range []string{"nodes/node-00002.yaml", "bitstreams/bitstreams.yaml", "bitstreams/n3000-afu-1.gbs", "policy.yaml"} {
		x, err1 := os.ReadFile(filepath.Join(d1, p))
		y, err2 := os.ReadFile(filepath.Join(d2, p))
		if err1 != nil || err2 != nil || string(x) != string(y) {
			t.Errorf("%s differs between two runs (%v, %v)", p, err1, err2)
		}
	}
}

func TestEndpoint(t *testing.T) {
	f := generate(t, fleetgen.Options{Nodes: 2, Endpoint: "https://127.0.0.1:9443"})
	for _, n := range f.Nodes {
		if n.Endpoint != "https://127.0.0.1:9443" {
			t.Errorf("node %s endpoint %q", n.Name, n.Endpoint)
		}
	}
	f = generate(t, fleetgen.Options{Nodes: 1})
	if want := "https://node-00001.fleet.example:9443"; f.Nodes[0].Endpoint != want {
		t.Errorf("endpoint %q, want %q", f.Nodes[0].Endpoint, want)
	}
}

func TestGenerateRefuses(t *testing.T) {
	tests := []struct {
		name string
		opts fleetgen.Options
	}{
		{"no dir", fleetgen.Options{Nodes: 1}},
		{"no nodes", fleetgen.Options{Dir: t.TempDir()}},
		{"too many cards", fleetgen.Options{Dir: t.TempDir(), Nodes: 1, FPGAsPerNode: fleetgen.MaxFPGAsPerNode + 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := fleetgen.Generate(tt.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
