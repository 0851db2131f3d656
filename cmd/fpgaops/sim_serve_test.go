package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// TestSimServeStopsWithAChangeInFlight stops a sim whose only card is in
// the middle of an hour-long PR: the command must end cleanly (exit 0,
// which simServe checks), not wait out the PR or the server's shutdown
// timeout.
func TestSimServeStopsWithAChangeInFlight(t *testing.T) {
	dir := t.TempDir()
	if err := fleetgen.Generate(fleetgen.Options{Dir: dir, Nodes: 1, FPGAsPerNode: 1}); err != nil {
		t.Fatal(err)
	}
	url, stop := simServe(t, "--repo", dir, "--program-time", "1h")
	fleet, err := spec.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := fleet.Nodes[0]
	n.Endpoint = url + "/nodes/" + n.Name
	images, err := fleetgen.Images()
	if err != nil {
		t.Fatal(err)
	}
	var img providers.Image
	for _, i := range images {
		if i.Board == n.FPGAs[0].Board {
			sum := sha256.Sum256(i.Data)
			img = providers.Image{Data: i.Data, Bitstream: spec.Bitstream{Name: i.Name, SHA256: hex.EncodeToString(sum[:]), AFUID: i.AFUID}}
			break
		}
	}
	errs := make(chan error, 1)
	go func() { errs <- agent.NewClient(nil).Program(context.Background(), &n, n.FPGAs[0].PCI, img) }()
	for i := 0; simStats(t, url).Requests == 0; i++ {
		if i == 1000 {
			t.Fatal("the program request never reached the sim")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-errs; err == nil {
		t.Fatal("a PR cut short by the stop succeeded")
	}
}
