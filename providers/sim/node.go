package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// node is one simulated node, built on first touch. Its mutex guards its
// state and its cards' state, for short critical sections only: the
// modelled time of a change is spent holding the card's op lock alone, so
// the node's other cards, its inventory and the rest of the fleet go on.
type node struct {
	mu    sync.Mutex
	spec  *spec.Node
	built bool
	down  bool
	cards []card
	vms   []vmState
	// seen is the last AFU ID read from each card's port 0
	// (agent.RecallAFU), as the node's agent remembers it.
	seen   map[string]string
	stats  counters
	faults []Fault
}

type vmState struct {
	Name     string   `json:"name"`
	Running  bool     `json:"running"`
	Hostdevs []string `json:"hostdevs,omitempty"`
}

// counters are one node's share of Stats.
type counters struct {
	Requests   int64 `json:"requests,omitempty"`
	Faults     int64 `json:"faults,omitempty"`
	Programs   int64 `json:"programs,omitempty"`
	SetVFs     int64 `json:"setVFs,omitempty"`
	Attaches   int64 `json:"attaches,omitempty"`
	Detaches   int64 `json:"detaches,omitempty"`
	Violations int64 `json:"violations,omitempty"`
	Refused    int64 `json:"refused,omitempty"`
	Failed     int64 `json:"failed,omitempty"`
}

// card returns the node's card whose PF is at pci, or nil. The cards
// slice never changes once built.
func (n *node) card(pci string) *card {
	for i := range n.cards {
		if n.cards[i].pci == pci {
			return &n.cards[i]
		}
	}
	return nil
}

// cardOf returns the card one of whose functions (PF or VF) is at pci.
// Callers hold n.mu.
func (n *node) cardOf(pci string) *card {
	for i := range n.cards {
		if c := &n.cards[i]; c.pci == pci || c.vfIndex(pci) >= 0 {
			return c
		}
	}
	return nil
}

// discover renders the node's cards as its agent answers them: sorted by
// PCI address, with the AFU IDs of ports a VM holds recalled. Callers
// hold n.mu. The recall is remembered in n.seen and saved with the next
// change, not here: reads stay free of writes.
func (n *node) discover() []fpga.Device {
	devs := make([]fpga.Device, len(n.cards))
	for i := range n.cards {
		devs[i] = n.cards[i].device()
	}
	slices.SortFunc(devs, func(a, b fpga.Device) int { return strings.Compare(a.PCI, b.PCI) })
	if n.seen == nil {
		n.seen = make(map[string]string, len(n.cards))
	}
	agent.RecallAFU(devs, n.seen)
	return devs
}

// markFaulty makes the cards that run a faulty AFU show the error their
// port logged, as the sysfs host code reads it (a warning of the port's
// errors/errors register, which programming clears).
func (s *Sim) markFaulty(devs []fpga.Device) {
	if len(s.opts.FaultyAFUs) == 0 {
		return
	}
	for i := range devs {
		d := &devs[i]
		for _, p := range d.Ports {
			if p.ID == 0 && slices.Contains(s.opts.FaultyAFUs, bitstream.NormalizeID(p.AFUID)) {
				d.Health.Registers = append(d.Health.Registers, fpga.Register{Name: "port 0 errors/errors", Value: faultyPortErrors, Severity: fpga.SeverityWarning})
				d.Health.Warnings = append(d.Health.Warnings, fmt.Sprintf("port 0 errors/errors = %#x", faultyPortErrors))
			}
		}
	}
}

// faultyPortErrors is what a faulty AFU's port logs: an AFU access error.
const faultyPortErrors = 0x1

// fault counts a request and says whether to fail it: a hash of the seed,
// the node and the request's number, so a run with the same seed and the
// same requests per node fails the same ones.
func (n *node) fault(seed int64, rate float64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stats.Requests++
	if rate > 0 && draw(seed, uint64(n.stats.Requests), n.spec.Name) < rate {
		n.stats.Faults++
		return true
	}
	return false
}

// draw is a share in [0, 1) that follows from the seed, a count and
// names alone, so that a run with the same seed repeats.
func draw(seed int64, count uint64, names ...string) float64 {
	h := sha256.New()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], count)
	h.Write(b[:])
	for i, name := range names {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(name))
	}
	x := binary.LittleEndian.Uint64(h.Sum(nil)[:8])
	return float64(x>>11) / (1 << 53)
}

// checkFree refuses, and counts a violation, when a running VM holds a
// function of the card. Callers hold n.mu.
func (n *node) checkFree(c *card, what string) error {
	fns := c.functions()
	for _, vm := range n.vms {
		if !vm.Running {
			continue
		}
		for _, h := range vm.Hostdevs {
			if slices.Contains(fns, h) {
				n.stats.Violations++
				return agent.Errorf(http.StatusConflict, agent.CodeConflict,
					"refused to %s card %s: running VM %s holds its function %s", what, c.pci, vm.Name, h)
			}
		}
	}
	return nil
}

// guarded is a node's cards as the agent API sees them: the careful
// programmer's behaviour, behind the guard that refuses what would hurt a
// running guest.
type guarded struct {
	s *Sim
	n *node
}

var _ fpga.Host = guarded{}

func (g guarded) Discover(context.Context) ([]fpga.Device, error) {
	g.n.mu.Lock()
	defer g.n.mu.Unlock()
	devs := g.n.discover()
	g.s.markFaulty(devs)
	return devs, nil
}

// begin takes the card's op lock and the node's lock for a change of the
// card, refusing (and counting) a card that is not there or that a
// running VM holds. On success the caller holds both and must call end.
func (g guarded) begin(ctx context.Context, pci, what string) (*card, error) {
	n := g.n
	c := n.card(pci)
	if c == nil {
		err := agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no FPGA card at %s", pci)
		n.mu.Lock()
		defer n.mu.Unlock()
		n.tally(err)
		n.saveQuiet(g.s)
		return nil, err
	}
	c.op.Lock()
	if err := ctx.Err(); err != nil {
		c.op.Unlock()
		return nil, err
	}
	n.mu.Lock()
	n.discover() // what the agent reads first, and remembers
	if err := n.checkFree(c, what); err != nil {
		n.saveQuiet(g.s)
		n.mu.Unlock()
		c.op.Unlock()
		return nil, err
	}
	return c, nil
}

// pause spends modelled time on a change with the node unlocked; the
// card's op lock stays held. It fails only when the sim closes.
func (g guarded) pause(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	g.n.mu.Unlock()
	err := g.s.pause(d)
	g.n.mu.Lock()
	return err
}

// vfsOff turns the card's VFs off, after the VF time.
func (g guarded) vfsOff(c *card) error {
	if err := g.pause(g.s.timing.Load().VFs); err != nil {
		return err
	}
	c.vfsOff()
	return nil
}

// vfsOn turns n VFs on, after the VF time, unless the drivers refuse.
func (g guarded) vfsOn(c *card, n int) error {
	if err := c.checkVFsOn(n); err != nil {
		return err
	}
	if err := g.pause(g.s.timing.Load().VFs); err != nil {
		return err
	}
	c.vfsOn(n)
	return nil
}

func (g guarded) SetVFs(ctx context.Context, pci string, count int) error {
	wrap := func(err error) error { return fmt.Errorf("fpga %s: set VFs to %d: %w", pci, count, err) }
	c, err := g.begin(ctx, pci, "change the VFs of")
	if err != nil {
		return err
	}
	if err := c.checkVFs(count); err != nil {
		return g.end(c, wrap(err))
	}
	if count == c.numVFs {
		g.n.mu.Unlock()
		c.op.Unlock()
		return nil
	}
	if f, ok := g.n.takeFault(FaultSetVFs, c); ok {
		return g.end(c, wrap(f.err()))
	}
	if c.numVFs > 0 {
		if err := g.vfsOff(c); err != nil {
			return g.end(c, wrap(err))
		}
	}
	if count > 0 {
		if err := g.vfsOn(c, count); err != nil {
			return g.end(c, wrap(err))
		}
	}
	g.n.stats.SetVFs++
	return g.end(c, nil)
}

func (g guarded) Program(ctx context.Context, pci string, image []byte, opts fpga.ProgramOptions) error {
	wrap := func(err error) error { return fmt.Errorf("fpga %s: program: %w", pci, err) }
	c, err := g.begin(ctx, pci, "program")
	if err != nil {
		return err
	}
	img, err := checkImage(image, opts.SHA256)
	if err == nil {
		err = c.checkProgram(img, opts.Force)
	}
	if err != nil {
		return g.end(c, wrap(err))
	}
	// VFs off and port 0 back to the PF: PR goes through the PF's FME.
	vfs := c.numVFs
	if vfs > 0 {
		if err := g.vfsOff(c); err != nil {
			return g.end(c, wrap(err))
		}
	}
	c.prs++
	if err := g.pause(g.s.prTime(g.n.spec.Name, c)); err != nil {
		return g.end(c, wrap(err))
	}
	if f, ok := g.n.takeFault(FaultProgram, c); ok {
		// A failed PR leaves the VFs off, so that no VM gets a port of
		// unknown AFU, as the agent does on hardware.
		if f.EmptyRegion {
			c.afu = emptyAFU
		}
		return g.end(c, wrap(fmt.Errorf("PR on port 0: %w", f.err())))
	}
	c.afu = img.AFUID()
	if vfs > 0 {
		if err := g.vfsOn(c, vfs); err != nil {
			return g.end(c, wrap(err))
		}
	}
	g.n.stats.Programs++
	return g.end(c, nil)
}

// checkImage is the careful programmer's first step: the image must have
// the digest the caller gave, and parse.
func checkImage(image []byte, want string) (*bitstream.File, error) {
	if want == "" {
		return nil, fpga.ErrNoDigest
	}
	sum := sha256.Sum256(image)
	if got := fmt.Sprintf("%x", sum); got != want {
		return nil, fmt.Errorf("%w: image has sha256 %s, want %s", fpga.ErrDigestMismatch, got, want)
	}
	return bitstream.Parse(image)
}

// end ends a change of the card: counted as it ended, the node saved,
// both locks released. Callers hold both.
func (g guarded) end(c *card, err error) error {
	g.n.tally(err)
	if serr := g.n.save(g.s); err == nil {
		err = serr
	}
	g.n.mu.Unlock()
	c.op.Unlock()
	return err
}

// tally counts a change that did not go through: failed by a targeted
// fault, cut short by Close (not counted), or refused. Callers hold n.mu.
func (n *node) tally(err error) {
	switch {
	case err == nil, errors.Is(err, errClosing):
	case errors.Is(err, errInjected):
		n.stats.Failed++
	default:
		n.stats.Refused++
	}
}

// hostdevChange attaches or detaches a function. Both are idempotent,
// so a retried request does no harm.
func (s *Sim) hostdevChange(ctx context.Context, n *node, vmName, pci string, attach bool) error {
	n.mu.Lock()
	c := n.cardOf(pci)
	n.mu.Unlock()
	if c != nil {
		c.op.Lock()
		defer c.op.Unlock()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	changed, err := n.hostdev(s, c, vmName, pci, attach)
	switch {
	case err != nil:
		n.tally(err)
		n.saveQuiet(s)
		return err
	case !changed:
		return nil
	}
	return n.save(s)
}

// hostdev moves a function into or out of a VM, after the attach time.
// Callers hold n.mu and, when c is not nil, c.op: c is the card whose
// function pci is, looked up before c.op was taken. It reports whether it
// changed anything.
func (n *node) hostdev(s *Sim, c *card, vmName, pci string, attach bool) (bool, error) {
	vi := slices.IndexFunc(n.vms, func(v vmState) bool { return v.Name == vmName })
	if vi < 0 {
		return false, agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no VM %q on node %s", vmName, n.spec.Name)
	}
	if held := slices.Contains(n.vms[vi].Hostdevs, pci); attach == held {
		return false, nil
	}
	if attach {
		for _, o := range n.vms {
			if slices.Contains(o.Hostdevs, pci) {
				return false, agent.Errorf(http.StatusConflict, agent.CodeConflict, "function %s is held by VM %s", pci, o.Name)
			}
		}
	}
	n.discover() // the agent's last look before the function moves
	vf := -1
	if c != nil {
		vf = c.vfIndex(pci)
	}
	if c == nil || (c.pci != pci && vf < 0) {
		return false, agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no FPGA function at %s on node %s", pci, n.spec.Name)
	}
	op := FaultDetach
	if attach {
		op = FaultAttach
	}
	if f, ok := n.takeFault(op, c); ok {
		return false, fmt.Errorf("node %s: %s %s for VM %s: %w", n.spec.Name, op, pci, vmName, f.err())
	}
	if d := s.timing.Load().Attach; d > 0 {
		n.mu.Unlock()
		err := s.pause(d)
		n.mu.Lock()
		if err != nil {
			return false, err
		}
	}
	// libvirt's managed hostdevs: the function goes to vfio-pci for the
	// VM, and back to the host driver after.
	switch {
	case vf >= 0 && attach:
		c.vfVFIO |= 1 << vf
	case vf >= 0:
		c.vfVFIO &^= 1 << vf
	default:
		c.pfVFIO = attach
	}
	vm := &n.vms[vi]
	if attach {
		vm.Hostdevs = append(vm.Hostdevs, pci)
		slices.Sort(vm.Hostdevs)
		n.stats.Attaches++
	} else {
		vm.Hostdevs = slices.DeleteFunc(vm.Hostdevs, func(h string) bool { return h == pci })
		n.stats.Detaches++
	}
	return true, nil
}
