package fleetgen_test

import (
	"testing"

	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// A simulated fleet serves every node from one URL, at /nodes/NAME: the
// endpoint template names each node.
func TestEndpointTemplate(t *testing.T) {
	dir := t.TempDir()
	if err := fleetgen.Generate(fleetgen.Options{Dir: dir, Nodes: 3, Endpoint: "http://127.0.0.1:9440/nodes/{node}"}); err != nil {
		t.Fatal(err)
	}
	f, err := spec.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range f.Nodes {
		if want := "http://127.0.0.1:9440/nodes/" + n.Name; n.Endpoint != want {
			t.Errorf("node %s endpoint %q; want %q", n.Name, n.Endpoint, want)
		}
	}
}
