package spec_test

import (
	"testing"

	"github.com/fpgaops/fpgaops/spec"
)

func TestLoadExample(t *testing.T) {
	f, err := spec.Load("../examples/fleet")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes %d fpgas %d bitstreams %d bindings", len(f.Nodes), f.FPGACount(), len(f.Bitstreams), len(f.Bindings))
}
