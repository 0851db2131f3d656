package reconcile

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/policy"
	"github.com/fpgaops/fpgaops/spec"
)

// Options tune the planner.
type Options struct {
	// Applied maps a card's ID ("node/compute-01/fpga/pac0") to the
	// desired digest last applied to it. A card whose desired digest still
	// equals it but whose live state differs has drifted. Nil means no
	// history: nothing is drift.
	Applied map[string]string
	// Owned maps the nodes whose cards a backend attaches and programs
	// itself (a cloud's scheduler) to that backend's name. The planner
	// plans no card chain for them; it still reports what no backend
	// fixes (an unknown node, a missing, mismatched or unhealthy card),
	// and holds the backend's changes that would give a sick card work.
	Owned map[string]string
	// Backend holds the changes those backends planned for their nodes
	// and for the objects they share (providers.Planner). The planner
	// gates them with the card chains: protected bindings, windows,
	// dependencies and the budget's waves.
	Backend []plans.Change
	// Quarantined maps the cards an earlier run found sick to why: they
	// are held (plans.GateHealth) until an operator clears them, even
	// when they read healthy again.
	Quarantined map[string]string
	// Rollout, when set, says for each card the policy's rollout
	// reprograms its step (from 1; 0 outside the rollout) and why it may
	// not change in this run ("" when it may): its changes are then held
	// (plans.GateRollout).
	Rollout func(card string) (step int, hold string)
	// Only, when set, limits the plan to these cards: a repair such as a
	// rollout's revert. Other cards get no change.
	Only map[string]bool
	// Repair plans a repair: maintenance windows do not hold it (the
	// budget, protected bindings and every other gate still do).
	Repair bool
}

// NewPlan is the planner: from the desired fleet, an observation of the
// live fleet and the time, it derives every change, in the safety order,
// with the policy's gates applied. It is pure: no I/O, no clock, no
// randomness; the same inputs give the same plan. It does not modify its
// inputs (it sorts a copy of obs's node list when obs is unsorted).
func NewPlan(desired *spec.Fleet, obs *observed.Fleet, now time.Time, opts Options) (*plans.Plan, error) {
	if desired == nil || obs == nil {
		return nil, errors.New("plan: desired and observed state are both required")
	}
	pol, err := policy.Compile(desired)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	if !sort.SliceIsSorted(obs.Nodes, func(i, j int) bool { return obs.Nodes[i].Name < obs.Nodes[j].Name }) {
		c := *obs
		c.Nodes = append([]observed.Node(nil), obs.Nodes...)
		sort.Slice(c.Nodes, func(i, j int) bool { return c.Nodes[i].Name < c.Nodes[j].Name })
		obs = &c
	}
	// The digest and the fingerprint hash the whole fleet and the whole
	// observation: they take a core of their own while the plan is made.
	var digest, fingerprint string
	var hashes sync.WaitGroup
	hashes.Go(func() { digest = desired.Digest() })
	hashes.Go(func() { fingerprint = obs.Fingerprint() })
	pl := &planner{
		policy:     pol,
		opts:       opts,
		bitstreams: make(map[string]*spec.Bitstream, len(desired.Bitstreams)),
		byAFU:      make(map[string]string, len(desired.Bitstreams)),
		sick:       map[string]*plans.Hold{},
	}
	for i := range desired.Bitstreams {
		b := &desired.Bitstreams[i]
		pl.bitstreams[b.Name] = b
		if _, dup := pl.byAFU[b.AFUID]; !dup {
			pl.byAFU[b.AFUID] = b.Name
		}
	}
	var errs []error
	pairs := pair(desired, obs)
	for i := range pairs {
		if err := pl.node(&pairs[i]); err != nil {
			errs = append(errs, err)
		}
	}
	if err := pl.addBackend(opts.Backend); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		hashes.Wait()
		return nil, fmt.Errorf("plan: %w", errors.Join(errs...))
	}

	pl.gateBackendCards()
	pl.gatePrune()
	pl.gateDisruption(now)
	pl.gateRestart(now)
	pl.holdUselessDetaches()
	changes := pl.flatten()
	idx := indexByID(changes)
	if len(idx) != len(changes) {
		hashes.Wait()
		return nil, fmt.Errorf("plan: %w", duplicateIDs(changes))
	}
	holdDependents(changes, idx)
	holdDetachesForHeldEnds(changes)
	budget := pol.Budget()
	waves := assignWaves(changes, idx, budget)
	hashes.Wait()

	return &plans.Plan{
		FormatVersion:       plans.FormatVersion,
		Revision:            desired.Revision,
		DesiredDigest:       digest,
		ObservedFingerprint: fingerprint,
		CreatedAt:           now.UTC(),
		Drift:               string(pol.Drift()),
		Budget:              budget,
		Waves:               waves,
		Changes:             changes,
		Summary:             plans.Summarize(changes),
		Owned:               owned(desired, opts.Owned),
	}, nil
}

type planner struct {
	policy     *policy.Policy
	opts       Options
	bitstreams map[string]*spec.Bitstream
	byAFU      map[string]string
	chains     []*chain
	nodeOnly   []*plans.Change
	// sick holds the cards fpgaops gives no work, by card ID.
	sick map[string]*plans.Hold
	// backend holds the backends' changes, copied.
	backend []plans.Change
	changes slab[plans.Change]
	values  slab[plans.Value]
	ints    slab[int]
	// managed counts the functions of desired cards that VMs hold: the
	// base of the prune share.
	managed int
}

func (pl *planner) node(np *nodePair) error {
	n := np.Node
	if !np.Known() {
		reason := "the node is not in the observation"
		if np.Obs != nil && np.Obs.Reason != "" {
			reason = np.Obs.Reason
		}
		pl.nodeOnly = append(pl.nodeOnly, &plans.Change{
			ID: plans.NodeID(n.Name) + ":unknown", Action: plans.ActionReport, Step: plans.StepReport,
			Object: plans.NodeID(n.Name), Node: n.Name,
			Before: &plans.Value{Note: "unknown: " + reason},
			Reason: fmt.Sprintf("node %s could not be observed (%s); nothing is planned for its %d card(s)", n.Name, reason, len(n.FPGAs)),
		})
		return nil
	}
	v := &nodeView{node: n, boundVMs: map[string]bool{}, wanted: map[string]string{},
		vms: make(map[string]*observed.VM, len(np.Obs.VMs))}
	for c := range np.Cards {
		for _, b := range np.Cards[c].Bindings {
			if b.VM != "" {
				v.boundVMs[b.VM] = true
				v.wanted[np.Cards[c].Card.Slot+"/"+b.Function.String()] = b.VM
			}
		}
	}
	for i := range np.Obs.VMs {
		v.vms[np.Obs.VMs[i].Name] = &np.Obs.VMs[i]
	}
	var errs []error
	first := len(pl.chains)
	for c := range np.Cards {
		ch, err := pl.card(v, &np.Cards[c])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		pl.chains = append(pl.chains, ch)
	}
	linkMoves(pl.chains[first:])
	return errors.Join(errs...)
}

// linkMoves makes a VM that moves between cards of a node give up its old
// function before it gets the new one.
func linkMoves(chains []*chain) {
	leaving := map[string][]string{} // VM -> replace detaches
	for _, ch := range chains {
		for i, d := range ch.detach {
			if ch.kinds[i] == detachReplace {
				leaving[d.Before.VM] = append(leaving[d.Before.VM], d.ID)
			}
		}
	}
	if len(leaving) == 0 {
		return
	}
	for _, ch := range chains {
		for _, a := range ch.attach {
			for _, id := range leaving[a.After.VM] {
				if !slices.Contains(a.DependsOn, id) {
					a.DependsOn = append(append([]string(nil), a.DependsOn...), id)
				}
			}
		}
	}
}

// addBackend takes in the backends' changes: each must carry an ID unique
// in the plan, an action and the backend's name; a change that names no
// digest gets one (the journal keys on it).
func (pl *planner) addBackend(changes []plans.Change) error {
	pl.backend = slices.Clone(changes)
	var errs []error
	for i := range pl.backend {
		c := &pl.backend[i]
		switch {
		case c.ID == "" || c.Action == "" || c.Step == "":
			errs = append(errs, fmt.Errorf("backend %s: a change without an ID, action or step (%q)", c.Backend, c.ID))
		case c.Backend == "":
			errs = append(errs, fmt.Errorf("%s: no backend named", c.ID))
		}
		if c.Digest == "" {
			c.Digest = changeDigest(c)
		}
	}
	return errors.Join(errs...)
}

// owned lists the owned nodes by backend, sorted.
func owned(desired *spec.Fleet, nodes map[string]string) map[string][]string {
	if len(nodes) == 0 {
		return nil
	}
	out := map[string][]string{}
	for i := range desired.Nodes {
		if b := nodes[desired.Nodes[i].Name]; b != "" {
			out[b] = append(out[b], desired.Nodes[i].Name)
		}
	}
	for _, ns := range out {
		sort.Strings(ns)
	}
	return out
}

// slab hands out pointers into chunks of T: a plan has hundreds of
// thousands of small objects, and one allocation per chunk keeps the
// planner fast on large fleets.
type slab[T any] struct{ buf []T }

func (s *slab[T]) alloc() *T {
	if len(s.buf) == cap(s.buf) {
		s.buf = make([]T, 0, 1024)
	}
	s.buf = s.buf[:len(s.buf)+1]
	return &s.buf[len(s.buf)-1]
}

func (pl *planner) val(v plans.Value) *plans.Value {
	p := pl.values.alloc()
	*p = v
	return p
}

func (pl *planner) intp(n int) *int {
	p := pl.ints.alloc()
	*p = n
	return p
}

// flatten lists every change in the plan's order: node, card, step, ID.
// A backend's objects that belong to no node (shared by many) come first.
func (pl *planner) flatten() []plans.Change {
	n := len(pl.nodeOnly) + len(pl.backend)
	for _, ch := range pl.chains {
		n += len(ch.other) + len(ch.detach) + len(ch.attach) + 3
	}
	ptrs := make([]*plans.Change, 0, n)
	ptrs = append(ptrs, pl.nodeOnly...)
	for _, ch := range pl.chains {
		ptrs = ch.appendAll(ptrs)
	}
	for i := range pl.backend {
		ptrs = append(ptrs, &pl.backend[i])
	}
	sort.SliceStable(ptrs, func(i, j int) bool {
		a, b := ptrs[i], ptrs[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		if a.Card != b.Card {
			return a.Card < b.Card
		}
		if oa, ob := a.Step.Order(), b.Step.Order(); oa != ob {
			return oa < ob
		}
		return a.ID < b.ID
	})
	out := make([]plans.Change, len(ptrs))
	for i, c := range ptrs {
		out[i] = *c
	}
	return out
}

// indexByID maps change IDs to their index.
func indexByID(changes []plans.Change) map[string]int {
	idx := make(map[string]int, len(changes))
	for i := range changes {
		idx[changes[i].ID] = i
	}
	return idx
}

// duplicateIDs names the IDs that more than one change has.
func duplicateIDs(changes []plans.Change) error {
	seen := make(map[string]bool, len(changes))
	var errs []error
	for i := range changes {
		if id := changes[i].ID; seen[id] {
			errs = append(errs, fmt.Errorf("%s: two changes have this ID", id))
		} else {
			seen[id] = true
		}
	}
	return errors.Join(errs...)
}
