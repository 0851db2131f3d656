package sim_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
)

func TestStateFollowsTheRepository(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	f := start(t, testFleet(), sim.Options{StateDir: dir})
	const vf = "0000:5e:00.1"
	if err := f.cards.SetVFs(ctx, f.node, "0000:5e:00.0", 1); err != nil {
		t.Fatal(err)
	}
	if err := f.vms.Attach(ctx, f.node, "db-01", vf); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Close(); err != nil {
		t.Fatal(err)
	}

	// The repository drops the A10 and names a new VM.
	fleet := testFleet()
	fleet.Nodes[0].FPGAs = fleet.Nodes[0].FPGAs[:1]
	fleet.Bindings = append(fleet.Bindings, spec.Binding{Name: "web-01-accel", Node: "compute-01", FPGA: "pac0", Function: spec.PF, VM: "web-01", Bitstream: "nlb"})
	g := start(t, fleet, sim.Options{StateDir: dir})
	devs, err := g.cards.ObserveCards(ctx, g.node)
	if err != nil {
		t.Fatal(err)
	}
	if len(devs) != 1 || devs[0].NumVFs != 1 || devs[0].VFs[0].Driver != "vfio-pci" {
		t.Fatalf("after restart the cards are %+v; want the N3000 alone, its VF in a VM", devs)
	}
	vms, err := g.vms.ObserveVMs(ctx, g.node)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 2 || vms[0].Name != "db-01" || !vms[0].Holds(vf) || vms[1].Name != "web-01" || len(vms[1].Hostdevs) != 0 {
		t.Fatalf("after restart VMs = %+v; want db-01 holding %s and a new web-01 holding nothing", vms, vf)
	}
}

func TestStateDirRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		{"in use by another sim", func(t *testing.T, dir string) {
			s, err := sim.New(testFleet(), sim.Options{StateDir: dir})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
		}, "in use by another simulated fleet"},
		{"the fake trees of an earlier version", func(t *testing.T, dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "nodes", "compute-01", "root"), 0o755); err != nil {
				t.Fatal(err)
			}
		}, "fake sysfs trees of an earlier version"},
		{"another format", func(t *testing.T, dir string) {
			db, err := bolt.Open(filepath.Join(dir, sim.StateFile), 0o644, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket([]byte("meta"))
				if err != nil {
					return err
				}
				return b.Put([]byte("format"), []byte("9"))
			})
			if err != nil {
				t.Fatal(err)
			}
		}, `format "9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			s, err := sim.New(testFleet(), sim.Options{StateDir: dir})
			if err == nil {
				s.Close()
				t.Fatalf("New succeeded; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("err = %v; want it to name %s and say %q", err, dir, tt.want)
			}
		})
	}
}

func TestCorruptNodeRecord(t *testing.T) {
	dir := t.TempDir()
	f := start(t, testFleet(), sim.Options{StateDir: dir})
	if err := f.cards.SetVFs(context.Background(), f.node, "0000:5e:00.0", 1); err != nil {
		t.Fatal(err)
	}
	if err := f.sim.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, sim.StateFile), 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("nodes")).Put([]byte("compute-01"), []byte("{not json"))
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	g := start(t, testFleet(), sim.Options{StateDir: dir})
	_, err = g.cards.ObserveCards(context.Background(), g.node)
	var apiErr *agentapi.Error
	if !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "node compute-01") || !strings.Contains(err.Error(), sim.StateFile) {
		t.Fatalf("a node with a corrupt record: err = %v; want an error naming the node and %s", err, sim.StateFile)
	}
}

func TestInMemoryLeavesNothingBehind(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	f := start(t, testFleet(), sim.Options{})
	if err := f.cards.Program(context.Background(), f.node, "0000:5e:00.0", image(t, "nlb", afuNLB)); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("an in-memory sim wrote %d entries to TMPDIR (%s, ...); want none", len(ents), ents[0].Name())
	}
}
