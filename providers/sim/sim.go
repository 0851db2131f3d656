package sim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// Options tune a simulated fleet.
type Options struct {
	// StateDir keeps the fleet's state (cards, VMs, counters) across
	// restarts, in one small file. Empty means memory only.
	StateDir string
	// Latency is added to every request to a node.
	Latency time.Duration
	// FailRate is the share [0, 1] of node requests answered 503 before
	// anything is done; which ones follows from Seed, the node and the
	// count of its requests.
	FailRate float64
	Seed     int64
	// Timing is the modelled time of changes; SetTiming changes it.
	Timing Timing
	// Sleep spends modelled time, returning early with an error when ctx
	// (the sim's own, ended by Close) ends; nil means a timer. Tests
	// replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
	// FaultyAFUs are AFU IDs that misbehave: a card running one reports
	// an error on its port from its next observation on, as an AFU that
	// hangs its workload does, so that rollouts can be rehearsed.
	FaultyAFUs []string
}

// Timing is how long changes take on the simulated hardware. The time is
// spent inside the request, per card: a card makes one change at a time,
// different cards change in parallel, and no lock wider than the card is
// held meanwhile.
type Timing struct {
	// Program is how long one partial reconfiguration takes; each takes
	// up to ProgramJitter more, a share of it drawn from the seed, the
	// node, the card and the count of its PRs.
	Program       time.Duration `json:"program"`
	ProgramJitter time.Duration `json:"programJitter"`
	// VFs is how long turning a card's VFs on or off takes, Attach how
	// long moving a function into or out of a VM takes.
	VFs    time.Duration `json:"vfs"`
	Attach time.Duration `json:"attach"`
}

func (t Timing) check() error {
	var errs []error
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"program time", t.Program}, {"program jitter", t.ProgramJitter}, {"VF time", t.VFs}, {"attach time", t.Attach}} {
		if d.d < 0 {
			errs = append(errs, fmt.Errorf("%s %v: want 0 or more", d.name, d.d))
		}
	}
	return errors.Join(errs...)
}

// Timing is the modelled time of changes now.
func (s *Sim) Timing() Timing { return *s.timing.Load() }

// SetTiming changes the modelled time of the changes that start from now.
func (s *Sim) SetTiming(t Timing) error {
	if err := t.check(); err != nil {
		return err
	}
	s.timing.Store(&t)
	return nil
}

// Sim is a simulated fleet: every node of a fleet in memory, built on
// first touch from what the fleet declares. It is safe for concurrent
// use; no lock covers more than one node.
type Sim struct {
	opts Options
	// index finds a node by name; nodes holds one entry per fleet node, in
	// the fleet's order, built on first touch.
	index map[string]int
	nodes []node
	// bindings holds each node's bindings, by the node's index.
	bindings   [][]*spec.Binding
	bitstreams map[string]*spec.Bitstream
	boards     map[spec.Board]*board
	store      *store
	api        agent.Server
	handler    http.Handler
	// ctx ends when the sim closes, cutting modelled time short.
	ctx       context.Context
	cancel    context.CancelFunc
	closeOnce sync.Once
	closeErr  error
	// failRate holds the float64 bits of the current fail rate.
	failRate atomic.Uint64
	timing   atomic.Pointer[Timing]
}

// FailRate is the share of node requests answered 503 now.
func (s *Sim) FailRate() float64 { return math.Float64frombits(s.failRate.Load()) }

// SetFailRate changes the share of node requests answered 503.
func (s *Sim) SetFailRate(p float64) error {
	if p < 0 || p > 1 || math.IsNaN(p) {
		return fmt.Errorf("fail rate %v: want a share between 0 and 1", p)
	}
	s.failRate.Store(math.Float64bits(p))
	return nil
}

// Stats are the fleet's counters; GET /sim/stats answers them.
type Stats struct {
	Nodes int `json:"nodes"`
	// NodesTouched is how many nodes have been built so far.
	NodesTouched int   `json:"nodesTouched"`
	NodesDown    int   `json:"nodesDown"`
	Requests     int64 `json:"requests"`
	// Faults counts requests answered 503 by the fail rate.
	Faults   int64 `json:"faults"`
	Programs int64 `json:"programs"`
	SetVFs   int64 `json:"setVFs"`
	Attaches int64 `json:"attaches"`
	Detaches int64 `json:"detaches"`
	// Violations are requests that would have hurt a running guest:
	// programming a card, or changing its VFs, while a running VM holds
	// one of its functions. The sim refuses them.
	Violations int64 `json:"violations"`
	// Refused counts other requests the sim refused (bad input, wrong
	// state), violations not included.
	Refused int64 `json:"refused"`
	// Failed counts changes a targeted fault failed (InjectFault).
	Failed int64 `json:"failed"`
}

func (s *Stats) add(c counters) {
	s.Requests += c.Requests
	s.Faults += c.Faults
	s.Programs += c.Programs
	s.SetVFs += c.SetVFs
	s.Attaches += c.Attaches
	s.Detaches += c.Detaches
	s.Violations += c.Violations
	s.Refused += c.Refused
	s.Failed += c.Failed
}

// Check reports every mistake in the options at once.
func (o Options) Check() error {
	var errs []error
	if o.FailRate < 0 || o.FailRate > 1 || math.IsNaN(o.FailRate) {
		errs = append(errs, fmt.Errorf("fail rate %v: want a share between 0 and 1", o.FailRate))
	}
	if o.Latency < 0 {
		errs = append(errs, fmt.Errorf("latency %v: want 0 or more", o.Latency))
	}
	if err := o.Timing.check(); err != nil {
		errs = append(errs, err)
	}
	for _, id := range o.FaultyAFUs {
		if !bitstream.ValidID(id) {
			errs = append(errs, fmt.Errorf("faulty AFU %q: want an AFU ID of 32 hex digits", id))
		}
	}
	return errors.Join(errs...)
}

// New serves every node of the fleet.
func New(fleet *spec.Fleet, opts Options) (*Sim, error) {
	if err := opts.Check(); err != nil {
		return nil, err
	}
	opts.FaultyAFUs = slices.Clone(opts.FaultyAFUs)
	for i, id := range opts.FaultyAFUs {
		opts.FaultyAFUs[i] = bitstream.NormalizeID(id)
	}
	s := &Sim{opts: opts, index: make(map[string]int, len(fleet.Nodes)),
		nodes: make([]node, len(fleet.Nodes)), bindings: make([][]*spec.Binding, len(fleet.Nodes)),
		bitstreams: make(map[string]*spec.Bitstream, len(fleet.Bitstreams)), boards: map[spec.Board]*board{}}
	for _, info := range spec.Boards {
		s.boards[info.Board] = newBoard(info)
	}
	for i := range fleet.Nodes {
		s.index[fleet.Nodes[i].Name] = i
		s.nodes[i].spec = &fleet.Nodes[i]
	}
	for i := range fleet.Bitstreams {
		s.bitstreams[fleet.Bitstreams[i].Name] = &fleet.Bitstreams[i]
	}
	for i := range fleet.Bindings {
		b := &fleet.Bindings[i]
		if j, ok := s.index[b.Node]; ok {
			s.bindings[j] = append(s.bindings[j], b)
		}
	}
	s.failRate.Store(math.Float64bits(opts.FailRate))
	s.timing.Store(&opts.Timing)
	if opts.StateDir != "" {
		st, err := openStore(opts.StateDir)
		if err != nil {
			return nil, err
		}
		s.store = st
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// Each node keeps its fencing token as its agent would, in memory.
	fence, _ := agent.OpenFence("", false)
	s.api = agent.Server{Host: s.hostFor, Log: opts.Log, Fence: fence}
	mux := http.NewServeMux()
	s.api.Register(mux, "/nodes/{node}")
	mux.HandleFunc("GET /nodes/{node}"+PathVMs, s.api.Fenced("/nodes/{node}", s.listVMs))
	mux.HandleFunc("POST /nodes/{node}"+PathAttach, s.api.Fenced("/nodes/{node}", s.attach))
	mux.HandleFunc("POST /nodes/{node}"+PathDetach, s.api.Fenced("/nodes/{node}", s.detach))
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, r *http.Request) {
		agent.WriteJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /sim/nodes/{node}/down", func(w http.ResponseWriter, r *http.Request) { s.setDown(w, r, true) })
	mux.HandleFunc("POST /sim/nodes/{node}/up", func(w http.ResponseWriter, r *http.Request) { s.setDown(w, r, false) })
	mux.HandleFunc("POST /sim/nodes/{node}/faults", s.injectFault)
	s.handler = mux
	return s, nil
}

// Handler serves the fleet: node APIs under /nodes/{node}/, the sim's own
// under /sim/.
func (s *Sim) Handler() http.Handler { return http.HandlerFunc(s.serve) }

// serve adds what every node request goes through: a node that is down
// drops the connection, latency, and injected faults.
func (s *Sim) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := nodeOf(r.URL.Path)
	if !ok {
		s.handler.ServeHTTP(w, r)
		return
	}
	n, err := s.node(name)
	if err != nil {
		s.api.Fail(w, r, err)
		return
	}
	if n.isDown() {
		// A node that is gone does not answer: the connection drops.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if s.opts.Latency > 0 {
		t := time.NewTimer(s.opts.Latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if n.fault(s.opts.Seed, s.FailRate()) {
		s.api.Fail(w, r, agent.Errorf(http.StatusServiceUnavailable, agent.CodeUnavailable, "node %s: injected fault, try again", name))
		return
	}
	s.handler.ServeHTTP(w, r)
}

// nodeOf returns the node a /nodes/{node}/... path names.
func nodeOf(p string) (string, bool) {
	rest, ok := strings.CutPrefix(p, "/nodes/")
	if !ok || rest == "" {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "/")
	return name, name != ""
}

// Stats sums every node's counters.
func (s *Sim) Stats() Stats {
	st := Stats{Nodes: len(s.nodes)}
	for i := range s.nodes {
		n := &s.nodes[i]
		n.mu.Lock()
		if n.built {
			st.NodesTouched++
			st.add(n.stats)
			if n.down {
				st.NodesDown++
			}
		}
		n.mu.Unlock()
	}
	return st
}

// SetDown makes a node stop answering (its connections drop) or answer
// again.
func (s *Sim) SetDown(name string, down bool) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	n.down = down
	n.mu.Unlock()
	return nil
}

func (s *Sim) setDown(w http.ResponseWriter, r *http.Request, down bool) {
	if err := s.SetDown(r.PathValue("node"), down); err != nil {
		s.api.Fail(w, r, err)
		return
	}
	agent.WriteJSON(w, http.StatusOK, map[string]bool{"down": down})
}

// SetPortBusy makes port 0 of the node's card at pci look open by another
// process (or free again): a program that is not forced, and turning VFs
// on, are then refused, as on a host where a user program holds the AFU.
func (s *Sim) SetPortBusy(name, pci string, busy bool) error {
	n, err := s.node(name)
	if err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	c := n.card(pci)
	if c == nil {
		return fmt.Errorf("node %s: no FPGA card at %s", name, pci)
	}
	c.busy = busy
	return n.save(s)
}

// Close ends the modelled time of changes in flight (they fail as
// unavailable, having changed nothing more) and closes the state file.
// State in a StateDir is already there: every change is written as it
// happens. An in-memory sim leaves nothing behind.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		if s.store != nil {
			s.closeErr = s.store.close()
		}
	})
	return s.closeErr
}

// node returns the named node, built.
func (s *Sim) node(name string) (*node, error) {
	i, ok := s.index[name]
	if !ok {
		return nil, agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no node %q in the simulated fleet", name)
	}
	n := &s.nodes[i]
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.built {
		if err := s.build(n, s.bindings[i]); err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
	}
	return n, nil
}

// build makes the node's cards and VMs as the fleet declares them, then
// applies its saved state. Callers hold n.mu.
func (s *Sim) build(n *node, bindings []*spec.Binding) error {
	cards := make([]card, len(n.spec.FPGAs))
	ports := map[fpga.Stack]int{}
	for i, f := range n.spec.FPGAs {
		c := &cards[i]
		if err := s.initCard(c, f, bindings); err != nil {
			return fmt.Errorf("fpga %s: %w", f.Slot, err)
		}
		// Port device nodes are numbered per driver, across the node's
		// cards in order, a port per VF after the PF's.
		c.portNum = ports[c.board.stack]
		ports[c.board.stack] += 1 + c.totalVFs()
	}
	n.cards = cards
	for _, b := range bindings {
		if b.VM != "" && !hasVM(n.vms, b.VM) {
			n.vms = append(n.vms, vmState{Name: b.VM, Running: true})
		}
	}
	sortVMs(n.vms)
	if s.store != nil {
		rec, ok, err := s.store.get(n.spec.Name)
		if err != nil {
			return err
		}
		if ok {
			n.restore(rec)
		}
	}
	n.built = true
	return nil
}

// initCard makes c as a card comes from the factory: the declared PR
// interface (or the one its bitstream needs, so the fleet can converge),
// the factory AFU, VFs off.
func (s *Sim) initCard(c *card, f spec.FPGA, bindings []*spec.Binding) error {
	b, ok := s.boards[f.Board]
	if !ok {
		return fmt.Errorf("unknown board %q", f.Board)
	}
	if !fpga.IsPCIAddress(f.PCI) {
		return fmt.Errorf("PCI address %q: want the form 0000:5e:00.0", f.PCI)
	}
	if b.info.MaxVFs > maxVFs {
		return fmt.Errorf("board %s: %d VFs, the sim models at most %d", f.Board, b.info.MaxVFs, maxVFs)
	}
	c.pci, c.board, c.afu = f.PCI, b, b.factoryAFU
	c.iface = f.InterfaceID
	if c.iface == "" {
		for _, bd := range bindings {
			if bd.FPGA == f.Slot {
				if bs, ok := s.bitstreams[bd.Bitstream]; ok {
					c.iface = bs.InterfaceID
				}
				break
			}
		}
	}
	if c.iface == "" {
		c.iface = b.iface
	}
	c.iface = bitstream.NormalizeID(c.iface)
	return nil
}

func hasVM(vms []vmState, name string) bool {
	return slices.ContainsFunc(vms, func(v vmState) bool { return v.Name == name })
}

func sortVMs(vms []vmState) {
	slices.SortFunc(vms, func(a, b vmState) int { return strings.Compare(a.Name, b.Name) })
}

// derivedID is a stable made-up 32-hex ID.
func derivedID(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (n *node) isDown() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}

// hostFor is the agent API's view of a node.
func (s *Sim) hostFor(r *http.Request) (fpga.Host, error) {
	n, err := s.node(r.PathValue("node"))
	if err != nil {
		return nil, err
	}
	return guarded{s, n}, nil
}

func (s *Sim) listVMs(w http.ResponseWriter, r *http.Request) {
	n, err := s.node(r.PathValue("node"))
	if err != nil {
		s.api.Fail(w, r, err)
		return
	}
	n.mu.Lock()
	vms := make([]observed.VM, 0, len(n.vms))
	for _, v := range n.vms {
		o := observed.VM{Name: v.Name, Running: v.Running}
		for _, h := range v.Hostdevs {
			o.Hostdevs = append(o.Hostdevs, observed.Hostdev{PCI: h, Live: v.Running, Config: true})
		}
		vms = append(vms, o)
	}
	n.mu.Unlock()
	agent.WriteJSON(w, http.StatusOK, VMList{VMs: vms})
}

func (s *Sim) attach(w http.ResponseWriter, r *http.Request) { s.hostdev(w, r, true) }
func (s *Sim) detach(w http.ResponseWriter, r *http.Request) { s.hostdev(w, r, false) }

func (s *Sim) hostdev(w http.ResponseWriter, r *http.Request, attach bool) {
	n, err := s.node(r.PathValue("node"))
	if err != nil {
		s.api.Fail(w, r, err)
		return
	}
	var req HostdevRequest
	if err := s.api.Decode(w, r, &req); err != nil {
		s.api.Fail(w, r, err)
		return
	}
	if err := s.hostdevChange(r.Context(), n, r.PathValue("vm"), req.PCI, attach); err != nil {
		s.api.Fail(w, r, err)
		return
	}
	agent.WriteJSON(w, http.StatusOK, struct{}{})
}

// pause spends modelled time; it fails only when the sim closes.
func (s *Sim) pause(d time.Duration) error {
	if d <= 0 {
		return nil
	}
	var err error
	if s.opts.Sleep != nil {
		err = s.opts.Sleep(s.ctx, d)
	} else {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.ctx.Done():
			t.Stop()
			err = s.ctx.Err()
		}
	}
	if err != nil {
		return errClosing
	}
	return nil
}

// errClosing ends a change whose modelled time the sim's Close cut short.
var errClosing = agent.Errorf(http.StatusServiceUnavailable, agent.CodeUnavailable, "the simulated fleet is shutting down")

// prTime is how long the card's next PR takes: the program time plus a
// share of the jitter that the seed, the node, the card and the count of
// its PRs decide, so that a run repeats.
func (s *Sim) prTime(node string, c *card) time.Duration {
	t := s.timing.Load()
	if t.ProgramJitter <= 0 {
		return t.Program
	}
	return t.Program + time.Duration(float64(t.ProgramJitter)*draw(s.opts.Seed, c.prs, node, c.pci))
}
