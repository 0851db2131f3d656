package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

const (
	testIface = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"
	testAFU   = "aa11b2c3d4e5f60718293a4b5c6d7e01"
)

// poolFleet is one node with two blank N3000 cards that the repository
// keeps programmed (pool bindings, no VM): each card's chain is program,
// then VFs on.
func poolFleet(t *testing.T) (*spec.Fleet, *observed.Fleet) {
	t.Helper()
	root := t.TempDir()
	md := bitstream.Metadata{Version: 1, PlatformName: "n3000", AFUImage: bitstream.AFUImage{
		MagicNo: bitstream.MagicNo, InterfaceUUID: bitstream.FormatUUID(testIface),
		AcceleratorClusters: []bitstream.Cluster{{Name: "fw", TotalContexts: 1, AcceleratorTypeUUID: bitstream.FormatUUID(testAFU)}},
	}}
	data, err := bitstream.Build(md, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "fw.gbs"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	card := func(slot, pci string) spec.FPGA {
		return spec.FPGA{Slot: slot, PCI: pci, Board: spec.BoardN3000, VFs: 1}
	}
	desired := &spec.Fleet{
		Root:       root,
		Nodes:      []spec.Node{{Name: "compute-01", FPGAs: []spec.FPGA{card("pac0", "0000:5e:00.0"), card("pac1", "0000:af:00.0")}}},
		Bitstreams: []spec.Bitstream{{Name: "fw", File: "fw.gbs", SHA256: hex.EncodeToString(sum[:]), InterfaceID: testIface, AFUID: testAFU, Size: int64(len(data))}},
		Bindings: []spec.Binding{
			{Name: "pool-0", Node: "compute-01", FPGA: "pac0", Function: spec.VF(0), Bitstream: "fw"},
			{Name: "pool-1", Node: "compute-01", FPGA: "pac1", Function: spec.VF(0), Bitstream: "fw"},
		},
		Policy: spec.Policy{Name: "default"},
	}
	dev := func(pci string) fpga.Device {
		return fpga.Device{PCI: pci, Vendor: 0x8086, DeviceID: 0x0b30, Board: "pac-n3000", Stack: fpga.StackDFL,
			InterfaceID: testIface, TotalVFs: 1, Ports: []fpga.Port{{ID: 0}}}
	}
	obs := &observed.Fleet{Version: observed.Version, Nodes: []observed.Node{{
		Name: "compute-01", State: observed.NodeOK,
		FPGAs: []fpga.Device{dev("0000:5e:00.0"), dev("0000:af:00.0")},
	}}}
	return desired, obs
}

func TestStepConverges(t *testing.T) {
	t.Parallel()
	desired, obs := poolFleet(t)
	fake := reconciletest.New(obs)
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	step := &Step{Engine: fakeEngine(fake, fake, store, 4)}
	res, err := step.Reconcile(context.Background(), source.Revision{Commit: "c1"}, desired)
	if err != nil {
		t.Fatal(err)
	}
	if res.Run.Violations != 0 || res.Interrupted || res.Run.Applied.Program != 2 || res.Run.Applied.SetVFs != 2 {
		t.Fatalf("result: %+v", res)
	}
	want := []state.NodeSummary{{Name: "compute-01", State: "ok", Cards: 2, Changes: 4}}
	if !reflect.DeepEqual(res.Run.Nodes, want) {
		t.Fatalf("nodes = %+v, want %+v", res.Run.Nodes, want)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Fatalf("unsafe requests: %v", v)
	}
	inv, err := store.Applied()
	if err != nil || len(inv) != 2 {
		t.Fatalf("inventory = %v, %v", inv, err)
	}
	// A second run finds nothing to do.
	res, err = step.Reconcile(context.Background(), source.Revision{Commit: "c1"}, desired)
	if err != nil || res.Run.Applied.Total() != 0 || res.Run.Violations != 0 {
		t.Fatalf("second run: %+v, %v", res, err)
	}
}

// fakeEngine is an engine over a fake fleet: its VM side the only
// backend, cards its card side.
func fakeEngine(fake *reconciletest.Fleet, cards providers.Cards, store state.Store, concurrency int) *engine.Engine {
	return &engine.Engine{Kinds: []providers.Kind{fake.Kind()}, Cards: cards, Store: store,
		Concurrency: concurrency, NodeTimeout: 5 * time.Second}
}

// stopAfterFirst is the fleet's card side, which signals shutdown right
// after the first change takes effect.
type stopAfterFirst struct {
	providers.Cards
	once sync.Once
	stop context.CancelFunc
}

func (s *stopAfterFirst) Program(ctx context.Context, n *spec.Node, pci string, img providers.Image) error {
	err := s.Cards.Program(ctx, n, pci, img)
	s.once.Do(s.stop)
	return err
}

func TestStepShutdownFinishesCardInFlight(t *testing.T) {
	t.Parallel()
	desired, obs := poolFleet(t)
	fake := reconciletest.New(obs)
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// One card at a time, so that the second has not started when the
	// first is programmed.
	step := &Step{Engine: fakeEngine(fake, &stopAfterFirst{Cards: fake, stop: cancel}, store, 1)}
	res, err := step.Reconcile(ctx, source.Revision{Commit: "c1"}, desired)
	if err == nil || !res.Interrupted {
		t.Fatalf("got %+v, %v; want an interrupted run", res, err)
	}
	want := []string{
		"program compute-01 0000:5e:00.0 fw",
		"set-vfs compute-01 0000:5e:00.0 1",
	}
	if got := fake.Calls(); !reflect.DeepEqual(got, want) {
		t.Fatalf("calls = %q, want the first card's whole chain and nothing of the second: %q", got, want)
	}
	if v := fake.Violations(); len(v) > 0 {
		t.Fatalf("unsafe requests: %v", v)
	}
	// The card left for the next run is not a failure.
	if r := res.Run.Results; r.Failed != 0 || r.Blocked != 0 || r.NotRun != 2 || r.Applied != 2 {
		t.Fatalf("results = %+v; want 2 applied, 2 not run, nothing failed", r)
	}
}

// Under approval: manual, a Step with no one to approve holds every
// disruptive change, and makes the rest.
func TestStepWithoutApproverHoldsDisruption(t *testing.T) {
	t.Parallel()
	desired, obs := poolFleet(t)
	desired.Policy.Approval = spec.ApprovalManual
	desired.Bindings[0].VM = "vnf-a"
	card := &obs.Nodes[0].FPGAs[0]
	card.NumVFs, card.VFs, card.Ports = 1, []fpga.Function{{Index: 0, PCI: "0000:5e:00.1"}}, []fpga.Port{{ID: 0, AFUID: strings.Repeat("c", 32)}}
	obs.Nodes[0].VMs = []observed.VM{{Name: "vnf-a", Running: true, Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.1", Live: true, Config: true}}}}
	fake := reconciletest.New(obs)
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	step := &Step{Engine: fakeEngine(fake, fake, store, 4)}
	res, err := step.Reconcile(context.Background(), source.Revision{Commit: "c1"}, desired)
	if err != nil {
		t.Fatal(err)
	}
	var held []string
	for _, c := range res.Run.Changes {
		if c.Gate() == plans.GateApproval {
			held = append(held, c.ID)
		}
	}
	if len(held) != 1 || held[0] != "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach" {
		t.Errorf("held for approval: %v", held)
	}
	if got := fake.Calls(); !reflect.DeepEqual(got, []string{"program compute-01 0000:af:00.0 fw", "set-vfs compute-01 0000:af:00.0 1"}) {
		t.Errorf("calls = %q; want pac1's chain only", got)
	}
}
