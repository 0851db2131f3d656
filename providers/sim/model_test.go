package sim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/fpgatest"
	"github.com/fpgaops/fpgaops/spec"
)

// The in-memory cards must behave as the sysfs host code sees a card
// change on a fake sysfs tree (fpgatest), the model the sim used to run
// on: these tests drive both with the same operations and compare every
// answer and every inventory.

// modelCards are the cards of the node both sides hold: one on each
// driver stack.
var modelCards = []spec.FPGA{
	{Slot: "pac0", PCI: "0000:5e:00.0", Board: spec.BoardN3000, VFs: 1},
	{Slot: "pac1", PCI: "0000:af:00.0", Board: spec.BoardPACA10, VFs: 1},
	{Slot: "pac2", PCI: "0000:3b:00.0", Board: spec.BoardD5005, VFs: 1},
}

// modelImage builds a GBS for the board's made-up PR interface; other
// makes one for another interface, which every card refuses.
func modelImage(t *testing.T, board spec.Board, name string, other bool) ([]byte, string) {
	t.Helper()
	iface := derivedID("interface", string(board))
	if other {
		iface = derivedID("another interface")
	}
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{
		MagicNo: bitstream.MagicNo, InterfaceUUID: iface,
		AcceleratorClusters: []bitstream.Cluster{{Name: name, TotalContexts: 1, AcceleratorTypeUUID: derivedID("afu", name)}},
	}}
	data, err := bitstream.Build(md, bytes.Repeat([]byte(name), 64))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

// side is what the comparison drives: a card host and the two things
// libvirt and a user program do to it.
type side interface {
	fpga.Host
	hold(pci string, toVM bool) error
	setBusy(pci string, busy bool) error
}

// treeSide is the reference: the real sysfs host over a fake tree, with
// the agent's AFU recall, and functions moved between drivers as libvirt
// moves managed hostdevs for the one VM, which holds what held says.
type treeSide struct {
	*fpga.SysfsHost
	tree *fpgatest.Tree
	seen map[string]string
	held map[string]bool
}

func newTreeSide(t *testing.T) *treeSide {
	t.Helper()
	tree := fpgatest.NewTree(t.TempDir())
	for _, f := range modelCards {
		stack := fpga.StackDFL
		if f.Board == spec.BoardPACA10 {
			stack = fpga.StackIntelFPGA
		}
		err := tree.AddCard(fpgatest.Card{PCI: f.PCI, Board: f.Board, Stack: stack,
			InterfaceID: derivedID("interface", string(f.Board)), AFUID: derivedID("factory-afu", string(f.Board))})
		if err != nil {
			t.Fatal(err)
		}
	}
	return &treeSide{SysfsHost: tree.Host(), tree: tree, seen: map[string]string{}, held: map[string]bool{}}
}

func (s *treeSide) Discover(ctx context.Context) ([]fpga.Device, error) {
	devs, err := s.SysfsHost.Discover(ctx)
	if err != nil {
		return nil, err
	}
	agent.RecallAFU(devs, s.seen)
	return devs, nil
}

func (s *treeSide) hold(pci string, toVM bool) error {
	if s.held[pci] == toVM {
		return nil // attach and detach are idempotent
	}
	devs, err := s.Discover(context.Background())
	if err != nil {
		return err
	}
	driver := ""
	if toVM {
		driver = driverVFIO
	}
	s.held[pci] = toVM
	for _, d := range devs {
		if d.PCI == pci {
			return s.tree.BindPF(pci, driver)
		}
		for _, vf := range d.VFs {
			if vf.PCI == pci {
				return s.tree.BindVF(d.PCI, vf.Index, driver)
			}
		}
	}
	delete(s.held, pci)
	return agent.Errorf(404, agent.CodeNotFound, "no FPGA function at %s", pci)
}

func (s *treeSide) setBusy(pci string, busy bool) error { return s.tree.SetPortBusy(pci, busy) }

// simSide is the sim's node, with a VM that is stopped, so that the
// sim's guard for running guests stays out of the comparison and the
// card's own rules answer.
type simSide struct {
	guarded
}

func newSimSide(t *testing.T) *simSide {
	t.Helper()
	f := &spec.Fleet{Nodes: []spec.Node{{Name: "n1", FPGAs: modelCards}}}
	s, err := New(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.node("n1")
	if err != nil {
		t.Fatal(err)
	}
	n.vms = []vmState{{Name: "vm"}}
	return &simSide{guarded{s, n}}
}

func (s *simSide) hold(pci string, toVM bool) error {
	return s.s.hostdevChange(context.Background(), s.n, "vm", pci, toVM)
}

func (s *simSide) setBusy(pci string, busy bool) error { return s.s.SetPortBusy("n1", pci, busy) }

// status is how the agent would answer err: what the two sides must
// agree on (their messages differ: the tree's name its paths).
func status(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, fpga.ErrHeld), errors.Is(err, fpga.ErrPortBusy), errors.Is(err, fpga.ErrInterfaceMismatch):
		return "conflict"
	case errors.Is(err, fpga.ErrDigestMismatch):
		return "digest mismatch"
	case errors.Is(err, fpga.ErrNoCard):
		return "not found"
	}
	var api *agent.Error
	if errors.As(err, &api) {
		return api.Code
	}
	return "internal"
}

// modelOp is one operation on both sides.
type modelOp struct {
	name string
	do   func(side) error
}

func modelOps(t *testing.T) []modelOp {
	t.Helper()
	var ops []modelOp
	ctx := context.Background()
	for _, f := range modelCards {
		pci, vf := f.PCI, vfAddr(f.PCI, 0)
		for _, img := range []struct {
			name  string
			other bool
		}{{"a", false}, {"b", false}, {"wrong", true}} {
			data, sum := modelImage(t, f.Board, img.name+string(f.Board), img.other)
			for _, force := range []bool{false, true} {
				ops = append(ops, modelOp{fmt.Sprintf("program %s %s force=%v", pci, img.name, force), func(s side) error {
					return s.Program(ctx, pci, data, fpga.ProgramOptions{SHA256: sum, Force: force})
				}})
			}
		}
		ops = append(ops, modelOp{"program " + pci + " with a wrong digest", func(s side) error {
			data, _ := modelImage(t, f.Board, "a", false)
			return s.Program(ctx, pci, data, fpga.ProgramOptions{SHA256: hex.EncodeToString(make([]byte, 32))})
		}})
		for _, n := range []int{0, 1, 2} {
			ops = append(ops, modelOp{fmt.Sprintf("set %s VFs to %d", pci, n), func(s side) error { return s.SetVFs(ctx, pci, n) }})
		}
		for _, fn := range []string{pci, vf} {
			ops = append(ops,
				modelOp{"hold " + fn, func(s side) error { return s.hold(fn, true) }},
				modelOp{"release " + fn, func(s side) error { return s.hold(fn, false) }})
		}
		ops = append(ops,
			modelOp{"busy " + pci, func(s side) error { return s.setBusy(pci, true) }},
			modelOp{"free " + pci, func(s side) error { return s.setBusy(pci, false) }})
	}
	return ops
}

// compare checks that both sides answer an inventory alike.
func compare(t *testing.T, step string, ref, got side) {
	t.Helper()
	want, err := ref.Discover(context.Background())
	if err != nil {
		t.Fatalf("%s: reference: %v", step, err)
	}
	have, err := got.Discover(context.Background())
	if err != nil {
		t.Fatalf("%s: sim: %v", step, err)
	}
	if !reflect.DeepEqual(have, want) {
		t.Fatalf("%s: inventories differ\nsim:       %+v\nreference: %+v", step, have, want)
	}
}

func TestModelMatchesSysfsOnFakeTree(t *testing.T) {
	ops := modelOps(t)
	for seed := range uint64(3) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			ref, got := newTreeSide(t), newSimSide(t)
			compare(t, "fresh", ref, got)
			rng := rand.New(rand.NewPCG(seed, 7))
			var trail []string
			for i := range 150 {
				op := ops[rng.IntN(len(ops))]
				trail = append(trail, op.name)
				step := fmt.Sprintf("step %d (%s)", i, op.name)
				errRef := op.do(ref)
				errSim := op.do(got)
				if status(errRef) != status(errSim) {
					t.Fatalf("%s: reference answers %s (%v), sim %s (%v)\nafter %q", step, status(errRef), errRef, status(errSim), errSim, trail)
				}
				compare(t, step, ref, got)
			}
		})
	}
}
