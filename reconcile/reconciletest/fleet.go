// Package reconciletest is an in-memory fleet that implements
// providers.Provider for tests of the executor. It keeps the hardware's
// rules (a card is programmed through its PF with VFs off, never under a
// running VM; SR-IOV changes through zero; a function has one holder) and
// refuses what breaks them, counting each such attempt as a violation. It
// injects faults on demand and can "kill" a run after a number of steps.
package reconciletest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// Fleet is the fake. Its zero value is not usable; call New.
type Fleet struct {
	mu         sync.Mutex
	nodes      map[string]*node
	faults     []*fault
	calls      []string
	violations []string
	// kill, when set, cancels the run after killAfter more mutations;
	// dead is set then: a killed process makes no call any more.
	kill      context.CancelFunc
	killAfter int
	dead      bool
	// wrongAFU makes Program load something else than asked on these cards
	// ("node/pci"), as a bad image or a flaky PR would.
	wrongAFU map[string]bool
	// emptying counts, per card ("node/pci"), the programs still to fail
	// leaving the PR region empty.
	emptying map[string]int
}

type node struct {
	name  string
	down  error
	cards map[string]*card
	vms   map[string]*vm
}

type card struct {
	dev fpga.Device // PCI, IDs, board, interface, health, TotalVFs
	afu string
	vfs int
}

type vm struct {
	name    string
	running bool
	// restartToChange: its platform cannot attach or detach live (as
	// libvirt's test driver); attach and detach change the definition
	// only and return providers.ErrNeedsRestart, and Restart brings the
	// definition in.
	restartToChange bool
	hostdevs        map[string]observed.Hostdev
}

// New builds the fleet from an observation: the fake starts in exactly
// that state. Unknown nodes stay unreachable.
func New(obs *observed.Fleet) *Fleet {
	f := &Fleet{nodes: map[string]*node{}, wrongAFU: map[string]bool{}, emptying: map[string]int{}}
	for _, on := range obs.Nodes {
		n := &node{name: on.Name, cards: map[string]*card{}, vms: map[string]*vm{}}
		if on.State != observed.NodeOK {
			n.down = errors.New(on.Reason)
		}
		for _, d := range on.FPGAs {
			c := &card{dev: d, afu: d.AFUID(), vfs: d.NumVFs}
			c.dev.VFs, c.dev.Ports = nil, nil
			if c.dev.TotalVFs == 0 {
				c.dev.TotalVFs = 1
			}
			n.cards[d.PCI] = c
		}
		for _, ov := range on.VMs {
			v := &vm{name: ov.Name, running: ov.Running, restartToChange: ov.RestartToChange, hostdevs: map[string]observed.Hostdev{}}
			for _, h := range ov.Hostdevs {
				v.hostdevs[h.PCI] = h
			}
			n.vms[ov.Name] = v
		}
		f.nodes[on.Name] = n
	}
	return f
}

// vfPCI is the address of a card's VF: the PF's address with the
// function number index+1, as these single-port cards number them.
func vfPCI(pf string, index int) string {
	dot := strings.LastIndexByte(pf, '.')
	return fmt.Sprintf("%s.%d", pf[:dot], index+1)
}

// Fail makes the next times calls of op ("observe", "set-vfs", "program",
// "attach", "detach") on node and target (a PCI address, or "" for any;
// for set-vfs also "PCI=N", the calls that set N VFs) fail with err;
// times < 0 fails forever. Wrap err with providers.Transient for a
// passing fault.
func (f *Fleet) Fail(op, nodeName, target string, err error, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &fault{op: op, node: nodeName, target: target, err: err, times: times})
}

// LoadWrongAFU makes Program on this card load an AFU other than the
// bitstream's, without an error: only verification can catch it.
func (f *Fleet) LoadWrongAFU(nodeName, pci string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.wrongAFU[nodeName+"/"+pci] = true
}

// FailProgramEmptying makes the next times programs of this card fail as
// a partial reconfiguration can on hardware: with an error, leaving the
// PR region empty (its AFU ID reads as nothing).
func (f *Fleet) FailProgramEmptying(nodeName, pci string, times int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emptying[nodeName+"/"+pci] = times
}

// SetProblems makes the card report these health problems (none: healthy
// again), as a card does after a fatal error or once it cools down.
func (f *Fleet) SetProblems(nodeName, pci string, problems ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.nodes[nodeName].cards {
		if c.dev.PCI == pci {
			c.dev.Health.Problems = problems
		}
	}
}

// KillAfter lets n more mutations succeed; the one after cancels the run
// (as a killed process would stop) and fails without changing anything,
// as does every call after it, until Revive.
func (f *Fleet) KillAfter(n int, cancel context.CancelFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.kill, f.killAfter = cancel, n
}

// Revive lets calls through again after a kill: the next process.
func (f *Fleet) Revive() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = false
}

// Calls lists every mutation that took effect, in order
// ("program compute-01 0000:5e:00.0 nfv-fw-v2").
func (f *Fleet) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Violations lists the unsafe requests the fake refused.
func (f *Fleet) Violations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.violations...)
}

type fault struct {
	op, node, target string
	err              error
	times            int
}

// enter checks faults and the kill switch for a call; mutating calls
// count towards the kill.
func (f *Fleet) enter(ctx context.Context, op, nodeName, target string, mutates bool) (*node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if f.dead {
		return nil, errKilled
	}
	n, ok := f.nodes[nodeName]
	if !ok {
		return nil, fmt.Errorf("node %s: no such node", nodeName)
	}
	if n.down != nil {
		return nil, providers.Transient(fmt.Errorf("node %s: %w", nodeName, n.down))
	}
	if err := f.fault(op, nodeName, target); err != nil {
		return nil, err
	}
	if mutates && f.kill != nil {
		if f.killAfter == 0 {
			f.kill()
			f.kill, f.dead = nil, true
			return nil, errKilled
		}
		f.killAfter--
	}
	return n, nil
}

// fault returns the error of the first fault that matches, and counts
// it.
func (f *Fleet) fault(op, nodeName, target string) error {
	for _, ft := range f.faults {
		if ft.op == op && ft.node == nodeName && (ft.target == "" || ft.target == target) && ft.times != 0 {
			if ft.times > 0 {
				ft.times--
			}
			return ft.err
		}
	}
	return nil
}

// errKilled is what every call of a killed run gets.
var errKilled = errors.New("the process was killed")

func (f *Fleet) violate(format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	f.violations = append(f.violations, msg)
	return errors.New("refused: " + msg)
}

// liveHolders lists the running VMs holding a function of the card live.
func (n *node) liveHolders(c *card, vfsOnly bool) []string {
	var out []string
	for _, v := range n.vms {
		if !v.running {
			continue
		}
		for pci, h := range v.hostdevs {
			if !h.Live {
				continue
			}
			if (!vfsOnly && pci == c.dev.PCI) || n.isVF(c, pci) {
				out = append(out, v.name+" holds "+pci)
			}
		}
	}
	sort.Strings(out)
	return out
}

func (n *node) isVF(c *card, pci string) bool {
	for i := 0; i < c.dev.TotalVFs; i++ {
		if vfPCI(c.dev.PCI, i) == pci {
			return true
		}
	}
	return false
}

// functionExists reports whether pci is a card's PF or one of its
// enabled VFs.
func (n *node) functionExists(pci string) bool {
	for _, c := range n.cards {
		if c.dev.PCI == pci {
			return true
		}
		for i := 0; i < c.vfs; i++ {
			if vfPCI(c.dev.PCI, i) == pci {
				return true
			}
		}
	}
	return false
}

// ObserveCards implements providers.Cards.
func (f *Fleet) ObserveCards(ctx context.Context, sn *spec.Node) ([]fpga.Device, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "observe", sn.Name, "", false)
	if err != nil {
		return nil, err
	}
	return n.devices(), nil
}

func (n *node) devices() []fpga.Device {
	out := make([]fpga.Device, 0, len(n.cards))
	for _, c := range n.cards {
		d := c.dev
		d.NumVFs = c.vfs
		d.VFs = nil
		for i := 0; i < c.vfs; i++ {
			d.VFs = append(d.VFs, fpga.Function{Index: i, PCI: vfPCI(d.PCI, i), Driver: "vfio-pci"})
		}
		d.Ports = []fpga.Port{{ID: 0, AFUID: c.afu, OnVF: c.vfs > 0}}
		d.Health.Problems = append([]string(nil), c.dev.Health.Problems...)
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PCI < out[j].PCI })
	return out
}

// SetVFs implements providers.Cards.
func (f *Fleet) SetVFs(ctx context.Context, sn *spec.Node, pci string, num int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fault("set-vfs", sn.Name, fmt.Sprintf("%s=%d", pci, num)); err != nil {
		return err
	}
	n, err := f.enter(ctx, "set-vfs", sn.Name, pci, true)
	if err != nil {
		return err
	}
	c, ok := n.cards[pci]
	if !ok {
		return fmt.Errorf("no card at %s", pci)
	}
	if num == c.vfs {
		return nil
	}
	if num > c.dev.TotalVFs || num < 0 {
		return fmt.Errorf("card %s supports %d VFs, not %d", pci, c.dev.TotalVFs, num)
	}
	if num > 0 && c.vfs > 0 {
		return fmt.Errorf("card %s: sriov_numvfs: device busy (go through 0)", pci)
	}
	if h := n.liveHolders(c, true); len(h) > 0 {
		return f.violate("set VFs of %s on %s to %d while %s", pci, sn.Name, num, strings.Join(h, ", "))
	}
	c.vfs = num
	f.calls = append(f.calls, fmt.Sprintf("set-vfs %s %s %d", sn.Name, pci, num))
	return nil
}

// Program implements providers.Cards.
func (f *Fleet) Program(ctx context.Context, sn *spec.Node, pci string, img providers.Image) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "program", sn.Name, pci, true)
	if err != nil {
		return err
	}
	c, ok := n.cards[pci]
	if !ok {
		return fmt.Errorf("no card at %s", pci)
	}
	bs := img.Bitstream
	if img.Data != nil {
		sum := sha256.Sum256(img.Data)
		if hex.EncodeToString(sum[:]) != bs.SHA256 {
			return f.violate("program %s on %s with an image whose digest is not %s", pci, sn.Name, bs.SHA256)
		}
	}
	if !c.dev.Health.OK() {
		return f.violate("program unhealthy card %s on %s", pci, sn.Name)
	}
	if c.vfs > 0 {
		return f.violate("program %s on %s with %d VF(s) on", pci, sn.Name, c.vfs)
	}
	if h := n.liveHolders(c, false); len(h) > 0 {
		return f.violate("program %s on %s while %s", pci, sn.Name, strings.Join(h, ", "))
	}
	if c.dev.InterfaceID != "" && c.dev.InterfaceID != bs.InterfaceID {
		return f.violate("program %s on %s (interface %s) with %s built for %s", pci, sn.Name, c.dev.InterfaceID, bs.Name, bs.InterfaceID)
	}
	if f.emptying[sn.Name+"/"+pci] > 0 {
		f.emptying[sn.Name+"/"+pci]--
		c.afu = ""
		f.calls = append(f.calls, fmt.Sprintf("program %s %s %s (failed, region empty)", sn.Name, pci, bs.Name))
		return errors.New("PR error: the region is left unprogrammed")
	}
	c.afu = bs.AFUID
	if f.wrongAFU[sn.Name+"/"+pci] {
		c.afu = strings.Repeat("0", 31) + "1"
	}
	f.calls = append(f.calls, fmt.Sprintf("program %s %s %s", sn.Name, pci, bs.Name))
	return nil
}

// ObserveVMs implements providers.VMs.
func (f *Fleet) ObserveVMs(ctx context.Context, sn *spec.Node) ([]observed.VM, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "observe", sn.Name, "", false)
	if err != nil {
		return nil, err
	}
	return n.observedVMs(), nil
}

func (n *node) observedVMs() []observed.VM {
	out := make([]observed.VM, 0, len(n.vms))
	for _, v := range n.vms {
		ov := observed.VM{Name: v.name, Running: v.running, RestartToChange: v.running && v.restartToChange}
		for _, h := range v.hostdevs {
			ov.Hostdevs = append(ov.Hostdevs, h)
		}
		sort.Slice(ov.Hostdevs, func(i, j int) bool { return ov.Hostdevs[i].PCI < ov.Hostdevs[j].PCI })
		out = append(out, ov)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Attach implements providers.VMs.
func (f *Fleet) Attach(ctx context.Context, sn *spec.Node, vmName, pci string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "attach", sn.Name, pci, true)
	if err != nil {
		return err
	}
	v, ok := n.vms[vmName]
	if !ok {
		return fmt.Errorf("no VM %s on %s", vmName, sn.Name)
	}
	if !n.functionExists(pci) {
		return fmt.Errorf("no PCI function %s on %s", pci, sn.Name)
	}
	for _, o := range n.vms {
		if _, held := o.hostdevs[pci]; held && o.name != vmName {
			return f.violate("attach %s to %s on %s while %s holds it", pci, vmName, sn.Name, o.name)
		}
	}
	if v.running && v.restartToChange {
		h := v.hostdevs[pci]
		v.hostdevs[pci] = observed.Hostdev{PCI: pci, Live: h.Live, Config: true}
		f.calls = append(f.calls, fmt.Sprintf("attach %s %s %s config", sn.Name, vmName, pci))
		if h.Live {
			return nil
		}
		return fmt.Errorf("VM %s on %s: attach %s: %w", vmName, sn.Name, pci, providers.ErrNeedsRestart)
	}
	v.hostdevs[pci] = observed.Hostdev{PCI: pci, Live: v.running, Config: true}
	f.calls = append(f.calls, fmt.Sprintf("attach %s %s %s", sn.Name, vmName, pci))
	return nil
}

// CheckAttach implements providers.AttachChecker: the VM must be on the
// node, and so must the function when its address is known.
func (f *Fleet) CheckAttach(ctx context.Context, sn *spec.Node, vmName, pci string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "check-attach", sn.Name, pci, false)
	if err != nil {
		return err
	}
	if _, ok := n.vms[vmName]; !ok {
		return fmt.Errorf("no VM %s on %s", vmName, sn.Name)
	}
	if pci != "" && !n.functionExists(pci) {
		return fmt.Errorf("no PCI function %s on %s", pci, sn.Name)
	}
	return nil
}

// Restart implements providers.Restarter: the running VM stops and starts
// again, holding what its definition names.
func (f *Fleet) Restart(ctx context.Context, sn *spec.Node, vmName string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "restart", sn.Name, vmName, true)
	if err != nil {
		return err
	}
	v, ok := n.vms[vmName]
	if !ok {
		return fmt.Errorf("no VM %s on %s", vmName, sn.Name)
	}
	for pci, h := range v.hostdevs {
		if !h.Config {
			delete(v.hostdevs, pci)
			continue
		}
		if !n.functionExists(pci) {
			return f.violate("start %s on %s with %s, which does not exist", vmName, sn.Name, pci)
		}
		v.hostdevs[pci] = observed.Hostdev{PCI: pci, Live: true, Config: true}
	}
	v.running = true
	f.calls = append(f.calls, fmt.Sprintf("restart %s %s", sn.Name, vmName))
	return nil
}

// Detach implements providers.VMs.
func (f *Fleet) Detach(ctx context.Context, sn *spec.Node, vmName, pci string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.enter(ctx, "detach", sn.Name, pci, true)
	if err != nil {
		return err
	}
	v, ok := n.vms[vmName]
	if !ok {
		return fmt.Errorf("no VM %s on %s", vmName, sn.Name)
	}
	h, held := v.hostdevs[pci]
	if !held {
		return fmt.Errorf("VM %s on %s does not hold %s", vmName, sn.Name, pci)
	}
	if v.running && v.restartToChange && h.Live {
		v.hostdevs[pci] = observed.Hostdev{PCI: pci, Live: true}
		f.calls = append(f.calls, fmt.Sprintf("detach %s %s %s config", sn.Name, vmName, pci))
		return fmt.Errorf("VM %s on %s: detach %s: %w", vmName, sn.Name, pci, providers.ErrNeedsRestart)
	}
	delete(v.hostdevs, pci)
	f.calls = append(f.calls, fmt.Sprintf("detach %s %s %s", sn.Name, vmName, pci))
	return nil
}

// Snapshot is the fleet's state now, as an observation would report it;
// faults do not apply to it.
func (f *Fleet) Snapshot() *observed.Fleet {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &observed.Fleet{Version: observed.Version}
	for _, n := range f.nodes {
		on := observed.Node{Name: n.name, State: observed.NodeOK}
		if n.down != nil {
			on = observed.Node{Name: n.name, State: observed.NodeUnknown, Reason: n.down.Error()}
		} else {
			on.FPGAs, on.VMs = n.devices(), n.observedVMs()
		}
		out.Nodes = append(out.Nodes, on)
	}
	out.Sort()
	return out
}

var (
	_ providers.Provider      = (*Fleet)(nil)
	_ providers.Restarter     = (*Fleet)(nil)
	_ providers.AttachChecker = (*Fleet)(nil)
)

// Kind is a backend kind that serves every node with this fake fleet's
// VM side, for tests of the engine (with the fleet as its card side too).
func (f *Fleet) Kind() providers.Kind { return kind{f} }

type kind struct{ f *Fleet }

func (k kind) Name() string                                  { return "fake" }
func (k kind) Flags(*pflag.FlagSet)                          {}
func (k kind) Claims(*spec.Node, providers.Env) bool         { return true }
func (k kind) Open(providers.Env) (providers.Backend, error) { return backend{k.f}, nil }

// backend is the fleet's VM side as a backend; Restart and CheckAttach
// pass on.
type backend struct{ *Fleet }

func (backend) Name() string { return "fake" }
