package sim

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// Options tune a simulated fleet.
type Options struct {
	// StateDir keeps the fleet's state (fake sysfs trees, VMs, counters)
	// across restarts. Empty means a temporary directory removed by Close.
	StateDir string
	// Latency is added to every request to a node.
	Latency time.Duration
	// FailRate is the share [0, 1] of node requests answered 503 before
	// anything is done; which ones follows from Seed, the node and the
	// count of its requests.
	FailRate float64
	Seed     int64
	// NewHost builds the card side of one node in dir from the node's
	// declared cards; nil means a fake sysfs tree with the fake
	// programmer.
	NewHost HostFactory
	Log     *slog.Logger
}

// HostFactory builds a node's host in dir, which survives restarts when
// the sim has a state directory. fresh is true when dir was just created
// and the cards must be put in their initial state.
type HostFactory func(dir string, cards []Card, fresh bool) (fpga.Host, error)

// Card is how a simulated card starts: what the node declares, plus the
// IDs a card in the field would have.
type Card struct {
	PCI         string
	Board       spec.Board
	Stack       fpga.Stack
	InterfaceID string
	// AFUID is what the card runs before fpgaops programs it.
	AFUID    string
	TotalVFs int
}

// Sim is a simulated fleet. Nodes are built on first touch, so a fleet of
// thousands costs little until it is used.
type Sim struct {
	fleet   *spec.Fleet
	opts    Options
	dir     string
	tempDir bool
	newHost HostFactory
	api     agent.Server
	mu      sync.Mutex
	nodes   map[string]*node
	// building holds a channel per node being built, closed when done.
	building map[string]chan struct{}
	// buildSlots bounds how many nodes build at once: building is disk
	// work, and too many at once only make each slower.
	buildSlots chan struct{}
	handler    http.Handler
	closed     bool
	// failRate holds the float64 bits of the current fail rate.
	failRate atomic.Uint64
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
	Faults       int64 `json:"faults"`
	Programs     int64 `json:"programs"`
	SetVFs       int64 `json:"setVFs"`
	Attaches     int64 `json:"attaches"`
	Detaches     int64 `json:"detaches"`
	// Violations are requests that would have hurt a running guest:
	// programming a card, or changing its VFs, while a running VM holds
	// one of its functions. The sim refuses them.
	Violations int64 `json:"violations"`
	// Refused counts other requests the sim refused (bad input, wrong
	// state), violations not included.
	Refused int64 `json:"refused"`
}

func (s *Stats) add(o Stats) {
	s.Requests += o.Requests
	s.Faults += o.Faults
	s.Programs += o.Programs
	s.SetVFs += o.SetVFs
	s.Attaches += o.Attaches
	s.Detaches += o.Detaches
	s.Violations += o.Violations
	s.Refused += o.Refused
}

// New serves every node of the fleet.
func New(fleet *spec.Fleet, opts Options) (*Sim, error) {
	if opts.FailRate < 0 || opts.FailRate > 1 || math.IsNaN(opts.FailRate) {
		return nil, fmt.Errorf("fail rate %v: want a share between 0 and 1", opts.FailRate)
	}
	if opts.Latency < 0 {
		return nil, fmt.Errorf("latency %v: want 0 or more", opts.Latency)
	}
	s := &Sim{fleet: fleet, opts: opts, nodes: map[string]*node{}, building: map[string]chan struct{}{}, newHost: opts.NewHost,
		buildSlots: make(chan struct{}, max(2, runtime.NumCPU()))}
	s.failRate.Store(math.Float64bits(opts.FailRate))
	if s.newHost == nil {
		s.newHost = FakeTreeHost
	}
	if opts.StateDir == "" {
		d, err := os.MkdirTemp("", "fpgaops-sim-")
		if err != nil {
			return nil, err
		}
		s.dir, s.tempDir = d, true
	} else {
		if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		s.dir = opts.StateDir
	}
	s.api = agent.Server{Host: s.hostFor, Log: opts.Log}
	mux := http.NewServeMux()
	s.api.Register(mux, "/nodes/{node}")
	mux.HandleFunc("GET /nodes/{node}"+PathVMs, s.listVMs)
	mux.HandleFunc("POST /nodes/{node}"+PathAttach, s.attach)
	mux.HandleFunc("POST /nodes/{node}"+PathDetach, s.detach)
	mux.HandleFunc("GET /sim/stats", func(w http.ResponseWriter, r *http.Request) {
		agent.WriteJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("POST /sim/nodes/{node}/down", func(w http.ResponseWriter, r *http.Request) { s.setDown(w, r, true) })
	mux.HandleFunc("POST /sim/nodes/{node}/up", func(w http.ResponseWriter, r *http.Request) { s.setDown(w, r, false) })
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
	const prefix = "/nodes/"
	if len(p) <= len(prefix) || p[:len(prefix)] != prefix {
		return "", false
	}
	rest := p[len(prefix):]
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' {
			return rest[:i], i > 0
		}
	}
	return rest, true
}

// Stats sums every node's counters.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	nodes := make([]*node, 0, len(s.nodes))
	for _, n := range s.nodes {
		nodes = append(nodes, n)
	}
	s.mu.Unlock()
	st := Stats{Nodes: len(s.fleet.Nodes), NodesTouched: len(nodes)}
	for _, n := range nodes {
		n.mu.Lock()
		st.add(n.state.Stats)
		if n.down {
			st.NodesDown++
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

// Close removes a temporary state directory. State in a StateDir is
// already on disk: every change is written as it happens.
func (s *Sim) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.tempDir {
		return os.RemoveAll(s.dir)
	}
	return nil
}

// node is one simulated node. Its mutex serialises every change to it,
// as one host's driver would.
type node struct {
	mu    sync.Mutex
	name  string
	dir   string
	host  fpga.Host
	state nodeState
	down  bool
	// devs caches what the host discovered. Only the sim changes its
	// trees, so the cache holds until the sim changes this node; reading
	// a tree costs many syscalls, and a fleet of thousands is observed
	// over and over.
	devs []fpga.Device
}

// discover returns the node's cards, from the cache when it holds.
// Callers hold n.mu and must not change the result.
func (n *node) discover(ctx context.Context) ([]fpga.Device, error) {
	if n.devs != nil {
		return n.devs, nil
	}
	devs, err := n.host.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if n.state.SeenAFU == nil {
		n.state.SeenAFU = map[string]string{}
	}
	if agent.RecallAFU(devs, n.state.SeenAFU) {
		if err := n.save(); err != nil {
			return nil, err
		}
	}
	if devs == nil {
		devs = []fpga.Device{}
	}
	n.devs = devs
	return devs, nil
}

// changed drops the cache after the sim changed the node's tree (or may
// have, when a change failed halfway).
func (n *node) changed() { n.devs = nil }

// nodeState is what survives a restart besides the card trees.
type nodeState struct {
	VMs   []vmState `json:"vms"`
	Stats Stats     `json:"stats"`
	// SeenAFU is the last AFU ID read from each port (agent.RecallAFU).
	SeenAFU map[string]string `json:"seenAFU,omitempty"`
}

type vmState struct {
	Name     string   `json:"name"`
	Running  bool     `json:"running"`
	Hostdevs []string `json:"hostdevs,omitempty"`
}

const stateFile = "state.json"

// node returns the named node, building it on first touch. A few nodes
// build at once; requests for a node being built wait for it.
func (s *Sim) node(name string) (*node, error) {
	for {
		s.mu.Lock()
		if n, ok := s.nodes[name]; ok {
			s.mu.Unlock()
			return n, nil
		}
		if wait, ok := s.building[name]; ok {
			s.mu.Unlock()
			<-wait
			continue // built, or failed: look again
		}
		sn, ok := s.fleet.Node(name)
		if !ok {
			s.mu.Unlock()
			return nil, agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no node %q in the simulated fleet", name)
		}
		done := make(chan struct{})
		s.building[name] = done
		s.mu.Unlock()

		s.buildSlots <- struct{}{}
		n, err := s.build(sn)
		<-s.buildSlots
		s.mu.Lock()
		delete(s.building, name)
		if err == nil {
			s.nodes[name] = n
		}
		s.mu.Unlock()
		close(done)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", name, err)
		}
		return n, nil
	}
}

func (s *Sim) build(sn *spec.Node) (*node, error) {
	dir := filepath.Join(s.dir, "nodes", sn.Name)
	n := &node{name: sn.Name, dir: dir}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	fresh := errors.Is(err, os.ErrNotExist)
	switch {
	case fresh:
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, err
		}
		n.state.VMs = initialVMs(s.fleet, sn.Name)
	case err != nil:
		return nil, err
	default:
		if err := json.Unmarshal(data, &n.state); err != nil {
			return nil, fmt.Errorf("%s: %w", stateFile, err)
		}
	}
	host, err := s.newHost(filepath.Join(dir, "root"), initialCards(s.fleet, sn), fresh)
	if err != nil {
		return nil, err
	}
	n.host = host
	if fresh {
		if err := n.save(); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// initialVMs are the VMs the bindings name on the node: running, holding
// nothing.
func initialVMs(f *spec.Fleet, node string) []vmState {
	var vms []vmState
	for _, b := range f.Bindings {
		if b.Node != node || b.VM == "" {
			continue
		}
		if !slices.ContainsFunc(vms, func(v vmState) bool { return v.Name == b.VM }) {
			vms = append(vms, vmState{Name: b.VM, Running: true})
		}
	}
	slices.SortFunc(vms, func(a, b vmState) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return vms
}

// initialCards describes the node's cards as they come from the factory:
// the declared PR interface (or the one the card's bitstream needs, so the
// fleet can converge), a factory AFU, VFs off. Arria 10 cards run the
// out-of-tree intel-fpga driver, as on the CentOS hosts they shipped
// with; the others run upstream DFL.
func initialCards(f *spec.Fleet, n *spec.Node) []Card {
	cards := make([]Card, 0, len(n.FPGAs))
	for _, c := range n.FPGAs {
		card := Card{PCI: c.PCI, Board: c.Board, Stack: fpga.StackDFL, InterfaceID: c.InterfaceID}
		if c.Board == spec.BoardPACA10 {
			card.Stack = fpga.StackIntelFPGA
		}
		if info, ok := spec.LookupBoard(c.Board); ok {
			card.TotalVFs = info.MaxVFs
		}
		if card.InterfaceID == "" {
			for _, b := range f.Bindings {
				if b.Node == n.Name && b.FPGA == c.Slot {
					if bs, ok := f.Bitstream(b.Bitstream); ok {
						card.InterfaceID = bs.InterfaceID
					}
					break
				}
			}
		}
		if card.InterfaceID == "" {
			card.InterfaceID = derivedID("interface", string(c.Board))
		}
		card.AFUID = derivedID("factory-afu", string(c.Board))
		cards = append(cards, card)
	}
	return cards
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

// save writes the node's state atomically. Callers hold n.mu (or own n).
func (n *node) save() error {
	data, err := json.Marshal(n.state)
	if err != nil {
		return err
	}
	tmp := filepath.Join(n.dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(n.dir, stateFile))
}

func (n *node) isDown() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.down
}

// fault counts a request and says whether to fail it: a hash of the seed,
// the node and the request's number, so a run with the same seed and the
// same requests per node fails the same ones.
func (n *node) fault(seed int64, rate float64) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.state.Stats.Requests++
	if rate <= 0 {
		return false
	}
	h := sha256.New()
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], uint64(seed))
	binary.LittleEndian.PutUint64(b[8:], uint64(n.state.Stats.Requests))
	h.Write(b[:])
	h.Write([]byte(n.name))
	x := binary.LittleEndian.Uint64(h.Sum(nil)[:8])
	if float64(x)/float64(math.MaxUint64) < rate {
		n.state.Stats.Faults++
		return true
	}
	return false
}

// hostFor is the agent API's view of a node: its card host behind the
// guard that refuses what would hurt a running guest.
func (s *Sim) hostFor(r *http.Request) (fpga.Host, error) {
	n, err := s.node(r.PathValue("node"))
	if err != nil {
		return nil, err
	}
	return guarded{n}, nil
}

// guarded is a node's card host as the VMs see it.
type guarded struct{ n *node }

func (g guarded) Discover(ctx context.Context) ([]fpga.Device, error) {
	g.n.mu.Lock()
	defer g.n.mu.Unlock()
	return g.n.discover(ctx)
}

func (g guarded) SetVFs(ctx context.Context, pci string, count int) error {
	return g.change(ctx, pci, "change the VFs of", &g.n.state.Stats.SetVFs, func() error {
		return g.n.host.SetVFs(ctx, pci, count)
	})
}

func (g guarded) Program(ctx context.Context, pci string, image []byte, opts fpga.ProgramOptions) error {
	return g.change(ctx, pci, "program", &g.n.state.Stats.Programs, func() error {
		return g.n.host.Program(ctx, pci, image, opts)
	})
}

// change makes a change to a card unless a running VM holds it, and counts
// it in done, or as refused when the host refuses it.
func (g guarded) change(ctx context.Context, pci, what string, done *int64, do func() error) error {
	n := g.n
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.checkFree(ctx, pci, what); err != nil {
		return err
	}
	defer n.changed()
	if err := do(); err != nil {
		n.state.Stats.Refused++
		n.saveQuiet()
		return err
	}
	*done++
	return n.save()
}

// checkFree refuses, and counts a violation, when a running VM holds a
// function of the card. Callers hold n.mu.
func (n *node) checkFree(ctx context.Context, pci, what string) error {
	devs, err := n.discover(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(devs, func(d fpga.Device) bool { return d.PCI == pci })
	if i < 0 {
		n.state.Stats.Refused++
		n.saveQuiet()
		return agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no FPGA card at %s", pci)
	}
	fns := []string{pci}
	for _, vf := range devs[i].VFs {
		fns = append(fns, vf.PCI)
	}
	for _, vm := range n.state.VMs {
		if !vm.Running {
			continue
		}
		for _, h := range vm.Hostdevs {
			if slices.Contains(fns, h) {
				n.state.Stats.Violations++
				n.saveQuiet()
				return agent.Errorf(http.StatusConflict, agent.CodeConflict,
					"refused to %s card %s: running VM %s holds its function %s", what, pci, vm.Name, h)
			}
		}
	}
	return nil
}

// saveQuiet saves after a refusal; the refusal is what the caller reports.
func (n *node) saveQuiet() { _ = n.save() }

func (s *Sim) listVMs(w http.ResponseWriter, r *http.Request) {
	n, err := s.node(r.PathValue("node"))
	if err != nil {
		s.api.Fail(w, r, err)
		return
	}
	n.mu.Lock()
	vms := make([]observed.VM, 0, len(n.state.VMs))
	for _, v := range n.state.VMs {
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

// hostdev attaches or detaches a function. Both are idempotent, so a
// retried request does no harm.
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
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.hostdev(r.Context(), r.PathValue("vm"), req.PCI, attach); err != nil {
		n.state.Stats.Refused++
		n.saveQuiet()
		s.api.Fail(w, r, err)
		return
	}
	if err := n.save(); err != nil {
		s.api.Fail(w, r, err)
		return
	}
	agent.WriteJSON(w, http.StatusOK, struct{}{})
}

// hostdev changes the VM's functions. Callers hold n.mu.
func (n *node) hostdev(ctx context.Context, vmName, pci string, attach bool) error {
	vi := slices.IndexFunc(n.state.VMs, func(v vmState) bool { return v.Name == vmName })
	if vi < 0 {
		return agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no VM %q on node %s", vmName, n.name)
	}
	vm := &n.state.VMs[vi]
	held := slices.Contains(vm.Hostdevs, pci)
	if !attach {
		if held {
			devs, err := n.discover(ctx)
			if err != nil {
				return err
			}
			n.changed()
			if b, ok := n.host.(functionBinder); ok {
				if err := b.BindFunction(devs, pci, false); err != nil {
					return err
				}
			}
			vm.Hostdevs = slices.DeleteFunc(vm.Hostdevs, func(h string) bool { return h == pci })
			n.state.Stats.Detaches++
		}
		return nil
	}
	if held {
		return nil
	}
	for _, o := range n.state.VMs {
		if slices.Contains(o.Hostdevs, pci) {
			return agent.Errorf(http.StatusConflict, agent.CodeConflict, "function %s is held by VM %s", pci, o.Name)
		}
	}
	devs, err := n.discover(ctx)
	if err != nil {
		return err
	}
	if !hasFunction(devs, pci) {
		return agent.Errorf(http.StatusNotFound, agent.CodeNotFound, "no FPGA function at %s on node %s", pci, n.name)
	}
	n.changed()
	if b, ok := n.host.(functionBinder); ok {
		if err := b.BindFunction(devs, pci, true); err != nil {
			return err
		}
	}
	vm.Hostdevs = append(vm.Hostdevs, pci)
	slices.Sort(vm.Hostdevs)
	n.state.Stats.Attaches++
	return nil
}

func hasFunction(devs []fpga.Device, pci string) bool {
	for _, d := range devs {
		if d.PCI == pci {
			return true
		}
		for _, vf := range d.VFs {
			if vf.PCI == pci {
				return true
			}
		}
	}
	return false
}
