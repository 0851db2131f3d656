package etcdstore_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/ha/etcdtest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/reconcile/state/etcdstore"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// fleetOf is what a run of a fleet of n nodes of four cards records: a
// run with every node, the inventory of every card, and every card in
// quarantine (the worst case).
func fleetOf(n int) (*state.Run, controller.Status, map[string]string, []state.Quarantine) {
	run := &state.Run{Trigger: "schedule", Revision: fmt.Sprintf("%040x", 7), Outcome: state.OutcomeApplied}
	inv := map[string]string{}
	var qs []state.Quarantine
	for i := range n {
		name := fleetgen.NodeName(i)
		run.Nodes = append(run.Nodes, state.NodeSummary{Name: name, State: "ok", Cards: 4, Changes: 3, Pending: i % 3})
		for k := range 4 {
			card := fmt.Sprintf("node/%s/fpga/pac%d", name, k)
			inv[card] = digest(i*4 + k)
			qs = append(qs, state.Quarantine{Card: card, Since: time.Unix(1e9, 0), Reason: "fme error register 0x1 (fatal)"})
		}
	}
	last := *run
	st := controller.Status{Source: "https://git.example.com/fleet.git", Nodes: run.Nodes, LastRun: &last}
	return run, st, inv, qs
}

// TestFitsAt10000Nodes writes what a 10,000-node fleet records to a real
// etcd, which refuses any request over 1.5 MiB: the run, the status,
// every card's inventory at once and every card quarantined.
func TestFitsAt10000Nodes(t *testing.T) {
	c := etcdtest.Client(t, etcdtest.Start(t, 1).Endpoints()...)
	s, _ := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/big"})
	run, st, inv, qs := fleetOf(10000)
	must(t, s.AddRun(run))
	must(t, s.PutStatus(st))
	must(t, s.RecordApplied(inv))
	must(t, s.Quarantine(qs...))
	got, err := s.Applied()
	must(t, err)
	if len(got) != len(inv) {
		t.Fatalf("inventory holds %d cards; want %d", len(got), len(inv))
	}
	runs, err := s.Runs(1)
	must(t, err)
	if len(runs) != 1 || len(runs[0].Nodes) != 10000 {
		t.Fatalf("the run read back has %d nodes; want 10000", len(runs[0].Nodes))
	}
	var back controller.Status
	if found, err := s.Status(&back); !found || err != nil || len(back.Nodes) != 10000 {
		t.Fatalf("status read back: %v, %v, %d nodes", found, err, len(back.Nodes))
	}
}

// digest is a desired digest as a real fleet has them: random-looking.
func digest(i int) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "card %d", i))
	return hex.EncodeToString(sum[:])
}
