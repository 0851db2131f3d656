package render_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile/render"
)

func TestObserveBar(t *testing.T) {
	var out bytes.Buffer
	b := render.NewObserveBar(&out, 4)
	steps := []struct {
		state observed.NodeState
		want  string
	}{
		{"", "\rObserving [........................] 0/4 nodes, 0 unknown\x1b[K"},
		{observed.NodeOK, "\rObserving [######..................] 1/4 nodes, 0 unknown\x1b[K"},
		{observed.NodeUnknown, "\rObserving [############............] 2/4 nodes, 1 unknown\x1b[K"},
		{observed.NodeOK, "\rObserving [##################......] 3/4 nodes, 1 unknown\x1b[K"},
		{observed.NodeOK, "\rObserving [########################] 4/4 nodes, 1 unknown\x1b[K"},
	}
	for i, s := range steps {
		if i > 0 {
			out.Reset()
			b.Observed(observed.Node{Name: fmt.Sprint("n", i), State: s.state})
		}
		if got := out.String(); got != s.want {
			t.Fatalf("step %d drew %q, want %q", i, got, s.want)
		}
	}
	out.Reset()
	b.Close()
	b.Close()
	if out.String() != "\n" {
		t.Fatalf("Close wrote %q; want one newline ending the status line", out.String())
	}
}

// A large fleet is drawn a bounded number of times, however many nodes
// answer, and always ends on the full count; Observed is safe from many
// goroutines.
func TestObserveBarBoundsRedraws(t *testing.T) {
	var out bytes.Buffer
	const nodes = 10000
	b := render.NewObserveBar(&out, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() { b.Observed(observed.Node{Name: fmt.Sprint("n", i), State: observed.NodeOK}) })
	}
	wg.Wait()
	draws := strings.Count(out.String(), "\r")
	if draws > 202 {
		t.Errorf("%d redraws for %d nodes, want at most 202", draws, nodes)
	}
	if !strings.HasSuffix(out.String(), "10000/10000 nodes, 0 unknown\x1b[K") {
		t.Errorf("last draw: %q", out.String()[max(0, out.Len()-80):])
	}
}

func TestObservedSummary(t *testing.T) {
	obs := &observed.Fleet{Nodes: []observed.Node{
		{Name: "a", State: observed.NodeOK, FPGAs: make([]fpga.Device, 2), VMs: []observed.VM{
			{Name: "x", Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.1"}, {PCI: "0000:af:00.1"}}}, {Name: "y"}}},
		{Name: "b", State: observed.NodeUnknown, Reason: "cards: timeout"},
	}}
	if got, want := render.ObservedSummary(obs), "2 nodes (1 unknown), 2 FPGAs, 2 VMs holding 2 functions"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
