package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// interfaceOf is the PR interface each board's cards have.
func interfaceOf(b spec.Board) string { return madeUpID("fim", string(b)) }

func madeUpID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%s\x00", p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// writeBitstreams writes two GBS images per board into dir/bitstreams and
// returns their specs, indexed by board.
func writeBitstreams(t testing.TB, dir string) map[spec.Board][]spec.Bitstream {
	t.Helper()
	out := map[spec.Board][]spec.Bitstream{}
	for _, info := range spec.Boards {
		for _, fn := range []string{"nlb", "dma"} {
			out[info.Board] = append(out[info.Board], writeImage(t, dir, info.Board, fn))
		}
	}
	return out
}

// writeImage writes the GBS image of function fn for the board into
// dir/bitstreams; its AFU ID is imageAFU(fn, board).
func writeImage(t testing.TB, dir string, board spec.Board, fn string) spec.Bitstream {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "bitstreams"), 0o755); err != nil {
		t.Fatal(err)
	}
	name := fn + "-" + string(board)
	md := bitstream.Metadata{Version: 1, PlatformName: string(board), AFUImage: bitstream.AFUImage{
		MagicNo: bitstream.MagicNo, InterfaceUUID: interfaceOf(board),
		AcceleratorClusters: []bitstream.Cluster{{Name: fn, TotalContexts: 1, AcceleratorTypeUUID: imageAFU(fn, board)}},
	}}
	data, err := bitstream.Build(md, bytes.Repeat([]byte(name), 256))
	if err != nil {
		t.Fatal(err)
	}
	file := "bitstreams/" + name + ".gbs"
	if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return spec.Bitstream{Name: name, File: file, SHA256: hex.EncodeToString(sum[:]),
		InterfaceID: interfaceOf(board), AFUID: imageAFU(fn, board), Size: int64(len(data))}
}

// imageAFU is the AFU ID of function fn's image for the board.
func imageAFU(fn string, board spec.Board) string { return madeUpID("afu", fn+"-"+string(board)) }

// buildFleet is a fleet of n nodes with cards cards each (at most 4): a
// VF bound to a VM, the whole card (PF) bound to another VM, a
// preprogrammed card with no VM, and another VF bound to a VM. seed picks
// each binding's bitstream, so the same n with another seed rebinds every
// card. Endpoints point at base.
func buildFleet(dir string, images map[spec.Board][]spec.Bitstream, n, cards, seed int, base string) *spec.Fleet {
	f := &spec.Fleet{Root: dir, Policy: spec.Policy{
		Name: "default", Drift: spec.DriftCorrect,
		Budget: spec.Budget{MaxDisruptedVMs: 1 << 20, MaxCardsInFlight: 1 << 20},
	}}
	seen := map[string]bool{}
	for i := range n {
		name := fmt.Sprintf("node-%05d", i+1)
		board := spec.Boards[i%len(spec.Boards)].Board
		node := spec.Node{Name: name, Endpoint: base + "/nodes/" + name}
		modes := []struct {
			slot, pci string
			fn        spec.Function
			vfs       int
			vm        string
		}{
			{"pac0", "0000:3b:00.0", spec.VF(0), 1, "vm-" + name + "-a"},
			{"pac1", "0000:5e:00.0", spec.PF, 0, "vm-" + name + "-b"},
			{"pac2", "0000:86:00.0", spec.VF(0), 1, ""},
			{"pac3", "0000:af:00.0", spec.VF(0), 1, "vm-" + name + "-d"},
		}
		for k, m := range modes[:cards] {
			node.FPGAs = append(node.FPGAs, spec.FPGA{Slot: m.slot, PCI: m.pci, Board: board, VFs: m.vfs, InterfaceID: interfaceOf(board)})
			bs := images[board][(i+k+seed)%len(images[board])]
			if !seen[bs.Name] {
				seen[bs.Name] = true
				f.Bitstreams = append(f.Bitstreams, bs)
			}
			f.Bindings = append(f.Bindings, spec.Binding{
				Name: name + "-" + m.slot, Node: name, FPGA: m.slot, Function: m.fn, VM: m.vm, Bitstream: bs.Name,
			})
		}
		f.Nodes = append(f.Nodes, node)
	}
	sortFleet(f)
	return f
}

func sortFleet(f *spec.Fleet) {
	sortBy(f.Bitstreams, func(b spec.Bitstream) string { return b.Name })
	sortBy(f.Bindings, func(b spec.Binding) string { return b.Name })
}

func sortBy[T any](s []T, key func(T) string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && key(s[j]) < key(s[j-1]); j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// world is a simulated fleet behind an HTTP server, and the one engine
// every command uses, with a state directory, reaching it as `fpgaops
// apply --vms endpoint --insecure` does.
type world struct {
	t      testing.TB
	dir    string
	images map[spec.Board][]spec.Bitstream
	sim    *sim.Sim
	url    string
	engine *engine.Engine
	store  *state.Local
	fleet  *spec.Fleet
	cards  int
	conc   int
	// planned holds what each plan was made from, for apply.
	planned map[*plans.Plan]*engine.Planned
}

// now is the clock of every world: no maintenance window applies.
var now = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func newWorld(t testing.TB, nodes int, opts sim.Options) *world {
	t.Helper()
	return newWorldOf(t, nodes, 3, 32, opts)
}

// newWorldOf is newWorld with cards per node and the controller's
// concurrency.
func newWorldOf(t testing.TB, nodes, cards, conc int, opts sim.Options) *world {
	t.Helper()
	dir := t.TempDir()
	w := &world{t: t, dir: dir, images: writeBitstreams(t, dir), conc: conc, cards: cards, planned: map[*plans.Plan]*engine.Planned{}}
	// The sim serves the nodes of the fleet it is given; endpoints are
	// filled in once its address is known.
	s, err := sim.New(buildFleet(dir, w.images, nodes, cards, 0, ""), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	w.sim, w.url = s, srv.URL
	w.fleet = buildFleet(dir, w.images, nodes, cards, 0, srv.URL)
	if w.store, err = state.Open(filepath.Join(t.TempDir(), "state"), state.Options{Holder: "e2e"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	w.engine = &engine.Engine{
		Kinds: []providers.Kind{sim.Kind{}}, VMs: sim.Name, Store: w.store,
		Agents:      agent.Transport{Insecure: true, Concurrency: conc},
		Concurrency: conc, NodeTimeout: 30 * time.Second,
		Retry: execute.Retry{Attempts: 6, Base: time.Millisecond, Max: 20 * time.Millisecond},
		Log:   slog.New(slog.DiscardHandler),
		Now:   func() time.Time { return now },
	}
	return w
}

// rebind changes the desired state to the one seed picks.
func (w *world) rebind(seed int) {
	w.fleet = buildFleet(w.dir, w.images, len(w.fleet.Nodes), w.cards, seed, w.url)
}

func (w *world) observe() *observed.Fleet {
	w.t.Helper()
	obs, err := w.engine.Observe(context.Background(), w.fleet)
	if err != nil {
		w.t.Fatal(err)
	}
	return obs
}

func (w *world) plan() *plans.Plan {
	w.t.Helper()
	p, err := w.engine.Plan(context.Background(), w.fleet, engine.PlanOptions{})
	if err != nil {
		w.t.Fatal(err)
	}
	w.planned[p.Plan] = p
	return p.Plan
}

// apply carries out a plan plan() made, recording what converged.
func (w *world) apply(p *plans.Plan) (*execute.Report, error) {
	w.t.Helper()
	planned, ok := w.planned[p]
	if !ok {
		w.t.Fatal("apply of a plan the world did not make")
	}
	out, err := w.engine.Apply(context.Background(), planned, engine.ApplyOptions{Trigger: "apply"})
	if out == nil {
		return nil, err
	}
	return out.Report, err
}

func (w *world) stats() sim.Stats { return w.sim.Stats() }
