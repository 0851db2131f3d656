package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// Step is the production Reconciler: observe the fleet, plan against the
// store's inventory, apply with the store's journal, and record the cards
// that converged.
type Step struct {
	// Provider reaches the fleet; or NewProvider builds one for each
	// revision, since a revision may add nodes or change how they are
	// reached.
	Provider    providers.Provider
	NewProvider func(*spec.Fleet) (providers.Provider, error)
	Store       *state.Store
	// Concurrency bounds nodes observed and cards changed at once.
	Concurrency int
	NodeTimeout time.Duration
	Log         *slog.Logger
	// Now is the clock for maintenance windows; nil means time.Now.
	Now func() time.Time
	// OpenStack leaves the cards of nodes with a hostname to OpenStack
	// (reconcile.Options.OpenStack): a cloud manages their VMs.
	OpenStack bool
	// Cloud, when set, applies the cloud's part after the fleet's
	// changes (OpenStackStep).
	Cloud CloudStep
}

// errShutdown refuses a card chain that had not started when shutdown
// began.
var errShutdown = errors.New("not started: the controller is shutting down")

func (s *Step) Reconcile(ctx context.Context, rev source.Revision, fleet *spec.Fleet) (Result, error) {
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	prov := s.Provider
	if s.NewProvider != nil {
		p, err := s.NewProvider(fleet)
		if err != nil {
			return Result{}, err
		}
		prov = p
	}
	obs, err := reconcile.Observe(ctx, fleet, prov, s.Concurrency, s.NodeTimeout)
	if err != nil {
		return Result{Interrupted: ctx.Err() != nil}, err
	}
	applied, err := s.appliedDigests()
	if err != nil {
		return Result{}, err
	}
	plan, err := reconcile.NewPlan(fleet, obs, now(), reconcile.Options{Applied: applied, OpenStack: s.OpenStack})
	if err != nil {
		return Result{}, err
	}
	drain := newDrainJournal(ctx, s.Store.Journal(), plan)
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ex := &execute.Executor{
		Provider:    prov,
		Images:      execute.RepoImages{Root: fleet.Root},
		Journal:     drain,
		Concurrency: s.Concurrency,
		Log:         log.With("revision", rev.Commit),
	}
	// The executor runs on a context that shutdown does not cancel, so
	// that the steps of a card in flight complete; the drain journal keeps
	// it from starting other cards once ctx ends.
	rep, runErr := ex.Apply(context.WithoutCancel(ctx), fleet, plan)
	res := summariseRun(fleet, obs.Nodes, plan, rep, drain)
	if rep != nil {
		if err := s.recordApplied(rep.Converged); err != nil {
			return res, errors.Join(runErr, err)
		}
	}
	if s.Cloud == nil {
		return res, runErr
	}
	if ctx.Err() != nil {
		// Shutdown: the cloud's changes wait for the next run.
		res.Interrupted = true
		return res, runErr
	}
	// Like the card chains, a cloud change in flight (a server being
	// replaced) completes even if shutdown begins meanwhile.
	cloud, cloudErr := s.Cloud.ApplyCloud(context.WithoutCancel(ctx), fleet, now())
	res.addCloud(cloud)
	return res, errors.Join(runErr, cloudErr)
}

// appliedDigests is the store's inventory. A store that has none yet
// starts from the applied digests `fpgaops apply` left in the same state
// directory, so that taking over from hand-run applies keeps their
// history.
func (s *Step) appliedDigests() (map[string]string, error) {
	applied, err := s.Store.Applied()
	if err != nil || len(applied) > 0 {
		return applied, err
	}
	return execute.ReadApplied(s.Store.Dir())
}

// recordApplied updates the store's inventory, and mirrors it into the
// file `fpgaops plan --state-dir` reads, so that a plan made by hand
// against the controller's state directory tells drift the same way.
func (s *Step) recordApplied(converged map[string]string) error {
	if len(converged) == 0 {
		return nil
	}
	if err := s.Store.RecordApplied(converged); err != nil {
		return err
	}
	return execute.RecordApplied(s.Store.Dir(), converged)
}

// drainJournal wraps the journal: the executor asks it before each change,
// and once ctx has ended it refuses the first change of every card that
// has not started, while the cards already started go on to the end of
// their chain.
type drainJournal struct {
	execute.Journal
	ctx     context.Context
	cardOf  map[string]string
	mu      sync.Mutex
	started map[string]bool
	refused map[string]bool
}

func newDrainJournal(ctx context.Context, j execute.Journal, p *reconcile.Plan) *drainJournal {
	d := &drainJournal{Journal: j, ctx: ctx, cardOf: map[string]string{}, started: map[string]bool{}, refused: map[string]bool{}}
	for i := range p.Changes {
		c := &p.Changes[i]
		d.cardOf[execute.Key(c)] = c.Node + "/" + c.Card
	}
	return d
}

func (d *drainJournal) Done(key string) (bool, error) {
	card := d.cardOf[key]
	d.mu.Lock()
	if !d.started[card] {
		if d.ctx.Err() != nil {
			d.refused[card] = true
			d.mu.Unlock()
			return false, errShutdown
		}
		d.started[card] = true
	}
	d.mu.Unlock()
	return d.Journal.Done(key)
}

func (d *drainJournal) wasRefused(card string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.refused[card]
}

func (d *drainJournal) interrupted() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.refused) > 0
}

// summariseRun counts what the plan asked and how the run went, overall
// and per node.
func summariseRun(fleet *spec.Fleet, nodes []observed.Node, p *reconcile.Plan, rep *execute.Report, d *drainJournal) Result {
	res := Result{
		Plan: map[string]int{
			string(reconcile.ActionProgram): p.Summary.Program,
			string(reconcile.ActionSetVFs):  p.Summary.SetVFs,
			string(reconcile.ActionAttach):  p.Summary.Attach,
			string(reconcile.ActionDetach):  p.Summary.Detach,
			string(reconcile.ActionReport):  p.Summary.Report,
			"held":                          p.Summary.Held,
			"noop":                          p.Summary.Noop,
		},
		Results:     map[string]int{},
		Applied:     map[string]int{},
		Interrupted: d.interrupted(),
	}
	status := make([]execute.Status, len(p.Changes))
	if rep != nil {
		for i, r := range rep.Results {
			if i < len(status) {
				status[i] = r.Status
			}
		}
		res.Results = map[string]int{"applied": rep.Applied, "skipped": rep.Skipped, "failed": rep.Failed, "blocked": rep.Blocked, "held": rep.Held,
			string(execute.StatusPendingRestart): rep.PendingRestart}
	}
	per := map[string]*state.NodeSummary{}
	for _, n := range fleet.Nodes {
		per[n.Name] = &state.NodeSummary{Name: n.Name, State: "ok", Cards: len(n.FPGAs)}
	}
	for _, n := range nodes {
		if s, ok := per[n.Name]; ok {
			s.State, s.Reason = string(n.State), n.Reason
		}
	}
	drifted := map[string]bool{}
	for i := range p.Changes {
		c := &p.Changes[i]
		ns := per[c.Node]
		if ns == nil {
			ns = &state.NodeSummary{Name: c.Node}
			per[c.Node] = ns
		}
		if c.Drift && !drifted[c.Object] {
			drifted[c.Object] = true
			res.Drift++
			ns.Drift++
		}
		if c.Action == reconcile.ActionNoop {
			continue
		}
		st := status[i]
		switch {
		case st == execute.StatusApplied:
			res.Applied[string(c.Action)]++
			ns.Changes++
		case st == execute.StatusSkipped:
		case (st == execute.StatusFailed || st == execute.StatusBlocked) && d.wasRefused(c.Node+"/"+c.Card):
			// Shutdown kept the card from starting: nothing failed, the
			// change waits for the next run.
			res.Results[string(st)]--
			res.Results["not-started"]++
			ns.Pending++
			res.Violations++
		case st == execute.StatusFailed || st == execute.StatusBlocked:
			ns.Failed++
			res.Violations++
		default: // held, reported, not run
			ns.Pending++
			res.Violations++
		}
	}
	for _, n := range fleet.Nodes {
		res.Nodes = append(res.Nodes, *per[n.Name])
	}
	return res
}
