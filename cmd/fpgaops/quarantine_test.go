package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// A kernel-shaped DFL tree whose FME logs a catastrophic error: the card
// reads unhealthy in inventory, and the plan holds programming it with
// gate health, naming the register and its value.
func TestCatastrophicErrorHoldsTheProgram(t *testing.T) {
	root := filepath.Join(t.TempDir(), "root")
	tree := fpgatest.NewTree(root)
	if err := tree.AddCard(fpgatest.Card{PCI: "0000:5e:00.0", Board: spec.BoardN3000, Stack: fpga.StackDFL,
		InterfaceID: "9d7324a15c0e4f62b6e83a41f07c2d95", Health: fpgatest.Health{CatFatal: 0x1}}); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "inventory", "--root", root)
	if code != 0 || !strings.Contains(out, "fme errors/catfatal_errors = 0x1") {
		t.Fatalf("inventory: exit %d\n%s%s", code, out, errOut)
	}
	devs, err := fpga.NewSysfsHost(root, nil).Discover(context.Background())
	if err != nil || len(devs) != 1 {
		t.Fatalf("discover: %v, %+v", err, devs)
	}

	// The example fleet's fresh observation, with compute-01's pac0 as the
	// tree shows it.
	var obs observed.Fleet
	data, err := os.ReadFile("../../examples/observed/fresh.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &obs); err != nil {
		t.Fatal(err)
	}
	for i := range obs.Nodes[0].FPGAs {
		if obs.Nodes[0].FPGAs[i].PCI == devs[0].PCI {
			obs.Nodes[0].FPGAs[i] = devs[0]
		}
	}
	file := filepath.Join(t.TempDir(), "observed.json")
	if data, err = json.Marshal(obs); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, "plan", "--repo", "../../examples/fleet", "--observed", file, "-o", "json")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	var p plans.Plan
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatal(err)
	}
	const id = "node/compute-01/fpga/pac0:program"
	c, ok := p.Change(id)
	if !ok || c.Held == nil || c.Held.Gate != plans.GateHealth || !strings.Contains(c.Held.Why, "fme errors/catfatal_errors = 0x1") {
		t.Fatalf("%s: %+v, want held by gate health naming the register", id, c)
	}
	if other, ok := p.Change("node/compute-01/fpga/pac1:program"); !ok || other.Held != nil {
		t.Fatalf("the healthy pac1 is held too: %+v", other)
	}
}

// quarantine list and release work on a state directory, refuse what is
// not quarantined without releasing anything, and send a writer the
// controller holds off to --server.
func TestQuarantineCommands(t *testing.T) {
	dir := t.TempDir()
	store, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	if err := store.Quarantine(
		state.Quarantine{Card: "node/compute-01/fpga/pac0", Since: t0, Reason: "fme errors/catfatal_errors = 0x1"},
		state.Quarantine{Card: "node/compute-02/fpga/pac0", Since: t0, Reason: "bitstream_id is all ones: firmware crashed"},
	); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "quarantine", "release", "--all", "--state-dir", dir)
	if code != 1 || !strings.Contains(errOut, "release through the running controller with --server") {
		t.Fatalf("release beside a holder of the state: exit %d: %s", code, errOut)
	}
	store.Close()

	code, out, _ := runCLI(t, "quarantine", "list", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "node/compute-01/fpga/pac0  2026-12-01T03:00:00Z  fme errors/catfatal_errors = 0x1") ||
		!strings.Contains(out, "node/compute-02/fpga/pac0") {
		t.Fatalf("list: exit %d:\n%s", code, out)
	}
	code, _, errOut = runCLI(t, "quarantine", "release", "node/compute-01/fpga/pac0", "node/compute-09/fpga/pac0", "compute-01", "--state-dir", dir)
	if code != 1 || !strings.Contains(errOut, `"compute-01" is not a card ID (node/NODE/fpga/SLOT)`) {
		t.Fatalf("release of a bad ID: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "quarantine", "release", "node/compute-01/fpga/pac0", "node/compute-09/fpga/pac0", "--state-dir", dir)
	if code != 1 || !strings.Contains(errOut, "card node/compute-09/fpga/pac0 is not quarantined") {
		t.Fatalf("release of a card not quarantined: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCLI(t, "quarantine", "release", "node/compute-01/fpga/pac0", "--state-dir", dir)
	if code != 0 || !strings.Contains(out, "Released node/compute-01/fpga/pac0 (quarantined since 2026-12-01T03:00:00Z: fme errors/catfatal_errors = 0x1).") {
		t.Fatalf("release: exit %d: %s%s", code, out, errOut)
	}
	code, out, _ = runCLI(t, "quarantine", "list", "--state-dir", dir, "-o", "json")
	var qs []state.Quarantine
	if code != 0 || json.Unmarshal([]byte(out), &qs) != nil || len(qs) != 1 || qs[0].Card != "node/compute-02/fpga/pac0" {
		t.Fatalf("list -o json after one release: exit %d:\n%s", code, out)
	}
	code, _, errOut = runCLI(t, "quarantine", "list")
	if code != 1 || !strings.Contains(errOut, "give one of --state-dir or --server") {
		t.Fatalf("list without a place: exit %d: %s", code, errOut)
	}
}
