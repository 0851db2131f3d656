package execute

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/policy"
	"github.com/fpgaops/fpgaops/reconcile/state"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// ImageSource gives the image to program for a bitstream; its errors name
// the bitstream.
type ImageSource interface {
	Image(ctx context.Context, bs spec.Bitstream) (providers.Image, error)
}

// RepoImages reads bitstreams that live in the repository through the
// repository's reader (spec.Repo): never out of it, never a file that is
// not regular, never more than Max bytes (0: the default), and only with
// the declared digest. A bitstream with a URL is passed on without data,
// for the node to fetch and check.
type RepoImages struct {
	Root string
	Max  int64
}

func (r RepoImages) Image(_ context.Context, bs spec.Bitstream) (providers.Image, error) {
	if bs.File == "" {
		return providers.Image{Bitstream: bs}, nil
	}
	repo, err := spec.OpenRepo(r.Root)
	if err != nil {
		return providers.Image{}, err
	}
	defer repo.Close()
	data, err := repo.ReadBitstream(bs, r.Max)
	if err != nil {
		return providers.Image{}, err
	}
	return providers.Image{Bitstream: bs, Data: data}, nil
}

// Retry says how passing faults are retried: up to Attempts calls in all,
// waiting Base, 2*Base, 4*Base ... at most Max between them.
type Retry struct {
	Attempts  int
	Base, Max time.Duration
}

// DefaultRetry is used when Executor.Retry is zero.
var DefaultRetry = Retry{Attempts: 4, Base: 500 * time.Millisecond, Max: 10 * time.Second}

func (r Retry) backoff(attempt int) time.Duration {
	d := r.Base << (attempt - 1)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	return d
}

// DefaultRestartTimeout is used when Executor.RestartTimeout is zero.
const DefaultRestartTimeout = 5 * time.Minute

// Executor carries out plans. Provider and Images are required; the rest
// have defaults.
type Executor struct {
	// Provider reaches the cards and the VMs of the card chains.
	Provider providers.Provider
	// Backends carry out the changes they planned (plans.Change.Backend),
	// by name.
	Backends map[string]providers.Planner
	Images   ImageSource
	// Journal defaults to one that lasts a single run.
	Journal state.Journal
	// Resume continues the journal's interrupted run of the same plan,
	// skipping the steps it completed. Only a caller that knows the plan
	// is that run's (the same saved plan, applied again after a kill)
	// sets it; a run of a fresh plan never needs it.
	Resume   bool
	Progress Progress
	// Concurrency bounds how many independent cards change at once within
	// a wave; 0 means the plan's budget of cards in flight.
	Concurrency int
	Retry       Retry
	// RestartTimeout bounds one restart of a VM (a guest may ignore the
	// shutdown request); 0 means DefaultRestartTimeout.
	RestartTimeout time.Duration
	// Policy, when set, is asked before each wave that disrupts a VM
	// whether its windows still allow it: a long apply stops at the wave
	// that would start outside them, and what is left is held.
	Policy *policy.Policy
	// Now is the clock for Policy; nil means time.Now.
	Now func() time.Time
	// Sleep waits between retries; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
}

// Report is how a run went: one result per change, in plan order, the
// counts of how they ended, and the cards that converged with the
// desired digest they converged to (what the planner's Options.Applied
// wants next time).
type Report struct {
	Results   []plans.Result    `json:"results"`
	Converged map[string]string `json:"converged"`
	plans.Counts
	// Compensations are what was done to put back what failed chains took
	// away; Degraded the VMs left without a function they held before.
	Compensations []plans.Compensation `json:"compensations,omitempty"`
	Degraded      []plans.Degraded     `json:"degraded,omitempty"`
	// Stopped says why the run stopped before its last wave, when it did.
	Stopped string `json:"stopped,omitempty"`
}

func (r *Report) failed() int { return r.Failed + r.Blocked }

// ErrValidate marks a plan refused before anything was touched.
var ErrValidate = errors.New("plan refused before any change")

// Apply validates every change of the plan and then runs it, wave after
// wave. A failed change stops the changes that depend on it; independent
// cards go on. It returns the report with an error when any change
// failed, was blocked, or the context ended.
func (e *Executor) Apply(ctx context.Context, desired *spec.Fleet, p *plans.Plan) (*Report, error) {
	x := &run{
		Executor: e,
		desired:  desired,
		plan:     p,
		results:  make([]plans.Result, len(p.Changes)),
		index:    make(map[string]int, len(p.Changes)),
		images:   map[string]providers.Image{},
	}
	x.defaults()
	x.indexDesired()
	x.dependents = dependentsOf(p.Changes)
	for i := range p.Changes {
		x.index[p.Changes[i].ID] = i
		x.results[i] = plans.Result{ID: p.Changes[i].ID, Status: plans.StatusNotRun}
		if p.Changes[i].Held != nil {
			x.results[i].Status = plans.StatusHeld
		}
	}
	if err := x.validate(ctx); err != nil {
		return nil, err
	}
	if err := x.Journal.Begin(PlanKey(p), x.Resume); err != nil {
		return nil, err
	}
	waves := make([][]int, p.Waves+1)
	for i := range p.Changes {
		if c := &p.Changes[i]; c.Runnable() && c.Wave >= 1 && c.Wave <= p.Waves {
			waves[c.Wave] = append(waves[c.Wave], i)
		}
	}
	for w := 1; w <= p.Waves && ctx.Err() == nil; w++ {
		if why := x.windowClosed(waves[w]); why != "" {
			x.stopped = fmt.Sprintf("stopped before wave %d of %d: %s", w, p.Waves, why)
			x.holdFrom(waves[w:], plans.Hold{Gate: plans.GateWindow, Why: why})
			x.Log.Warn("the maintenance window closed during the run: the rest is held", "wave", w, "why", why)
			break
		}
		x.wave(ctx, waves[w])
	}
	rep := x.report()
	if err := ctx.Err(); err != nil && rep.NotRun > 0 {
		return rep, fmt.Errorf("stopped before %d change(s): %w", rep.NotRun, err)
	}
	if rep.failed() > 0 {
		return rep, fmt.Errorf("%d change(s) failed and %d were blocked by them", rep.Failed, rep.Blocked)
	}
	if err := x.Journal.Finish(); err != nil {
		return rep, err
	}
	return rep, nil
}

type run struct {
	*Executor
	desired *spec.Fleet
	// nodes and bitstreams index the desired state by name.
	nodes      map[string]*spec.Node
	bitstreams map[string]*spec.Bitstream
	plan       *plans.Plan
	results    []plans.Result
	index      map[string]int
	mu         sync.Mutex // guards images, degraded, compensations
	images     map[string]providers.Image
	// stopped says why the run stopped before its last wave.
	stopped string
	// dependents maps each change ID to what depends on it.
	dependents    map[string][]int
	degraded      []plans.Degraded
	compensations []plans.Compensation
}

func (x *run) indexDesired() {
	x.nodes = make(map[string]*spec.Node, len(x.desired.Nodes))
	for i := range x.desired.Nodes {
		x.nodes[x.desired.Nodes[i].Name] = &x.desired.Nodes[i]
	}
	x.bitstreams = make(map[string]*spec.Bitstream, len(x.desired.Bitstreams))
	for i := range x.desired.Bitstreams {
		x.bitstreams[x.desired.Bitstreams[i].Name] = &x.desired.Bitstreams[i]
	}
}

func (x *run) defaults() {
	c := *x.Executor
	if c.Journal == nil {
		c.Journal = &memJournal{done: map[string]bool{}}
	}
	if c.Progress == nil {
		c.Progress = NoProgress{}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = x.plan.Budget.MaxCardsInFlight
		if c.Concurrency <= 0 {
			c.Concurrency = policy.DefaultMaxCardsInFlight
		}
	}
	if c.Retry.Attempts <= 0 {
		c.Retry = DefaultRetry
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.RestartTimeout <= 0 {
		c.RestartTimeout = DefaultRestartTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	x.Executor = &c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
