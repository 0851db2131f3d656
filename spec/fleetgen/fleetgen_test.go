package fleetgen_test

import (
	"testing"

	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

func TestGenerateValid(t *testing.T) {
	dir := t.TempDir()
	if err := fleetgen.Generate(fleetgen.Options{Dir: dir, Nodes: 7, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	f, err := spec.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Nodes) != 7 || f.FPGACount() != 28 || len(f.Bindings) != 28 || len(f.Bitstreams) != 6 {
		t.Fatalf("got %d nodes, %d fpgas, %d bindings, %d bitstreams", len(f.Nodes), f.FPGACount(), len(f.Bindings), len(f.Bitstreams))
	}
}
