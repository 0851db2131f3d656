// Package engine is fpgaops's reconcile, the one loop that `plan`,
// `apply`, `apply PLANFILE` and the controller all run:
//
//	desired fleet ─ connect (a backend per node) ─ observe ─ plan ─ apply ─ record
//
// It owns the order of those steps and the rules between them: which
// backend serves each node, that a node or a platform that cannot be
// observed is unknown, which observation a saved plan may still be
// applied against (the same one, or the journal's interrupted run of it),
// and what is kept after a run (the cards that converged, the run in the
// history). What each step does is elsewhere: planning in reconcile,
// applying in reconcile/execute, reaching the fleet in providers, keeping
// state in reconcile/state.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/policy"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
)

// Engine runs reconciles against a fleet. Kinds is required; the rest
// have defaults.
type Engine struct {
	// Kinds are the backends it may use (providers/all.Kinds()), their
	// flags parsed.
	Kinds []providers.Kind
	// VMs chooses every node's backend: providers.Auto (the default) or a
	// kind's name.
	VMs string
	// Agents is how the nodes' agents are reached: the card side.
	Agents agent.Transport
	// Cards, when set, is the card side instead of the agents (the local
	// sysfs of the node fpgaops runs on, a fake): endpoints are neither
	// checked nor called.
	Cards providers.Cards
	// Getenv reads the environment for the backends; nil means os.Getenv.
	Getenv func(string) string
	// Store keeps the journal, the inventory of what converged and the
	// history. Nil keeps nothing: every plan is made without history and
	// a journal lasts one apply.
	Store state.Store
	// Concurrency bounds the nodes observed and the cards changed at once;
	// 0 means 64 nodes, and the plan's budget for cards.
	Concurrency int
	// NodeTimeout bounds observing one node; a node that does not answer
	// in time is unknown. 0 means no bound but the context's.
	NodeTimeout time.Duration
	// Observed, when set, hears of each node as its observation ends,
	// from several goroutines at once: a progress display.
	Observed func(observed.Node)
	// Retry and RestartTimeout tune the executor (execute.Executor).
	Retry          execute.Retry
	RestartTimeout time.Duration
	Log            *slog.Logger
	// Now is the clock for maintenance windows; nil means time.Now.
	Now func() time.Time
	// LastGood loads the fleet of an earlier revision, which a failed
	// rollout step reverts its cards to; nil when there is no history (a
	// failed rollout then halts).
	LastGood func(ctx context.Context, revision string) (*spec.Fleet, error)
	// Prometheus answers the rollout's Prometheus checks; nil fails them.
	Prometheus *Prometheus
}

// DefaultConcurrency is how many nodes are observed at once by default.
const DefaultConcurrency = 64

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}

// target is a desired fleet wired to what serves its nodes.
type target struct {
	desired *spec.Fleet
	sel     *providers.Selection
	// provider is the card side and the VM backends, by node; cards the
	// card side alone.
	provider providers.Provider
	cards    providers.Cards
}

// connect chooses each node's backend and the card side that reaches its
// agent. offline is for a plan against a saved observation: no endpoint
// is checked and nothing will be called.
func (e *Engine) connect(desired *spec.Fleet, offline bool) (*target, error) {
	getenv := e.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	env := providers.Env{Getenv: getenv, Log: e.log()}
	if !offline && e.Cards == nil {
		tr := e.Agents
		if tr.Concurrency == 0 {
			tr.Concurrency = e.concurrency()
		}
		if err := tr.CheckEndpoints(desired.Nodes); err != nil {
			return nil, err
		}
		hc, err := tr.HTTPClient()
		if err != nil {
			return nil, err
		}
		env.HTTP = hc
	}
	sel, err := providers.Select(e.Kinds, e.VMs, desired.Nodes, env)
	if err != nil {
		return nil, err
	}
	var cards providers.Cards = agent.NewClient(env.HTTP)
	if e.Cards != nil {
		cards = e.Cards
	}
	return &target{desired: desired, sel: sel, provider: providers.Compose(cards, sel.VMs()), cards: cards}, nil
}

func (e *Engine) concurrency() int {
	if e.Concurrency > 0 {
		return e.Concurrency
	}
	return DefaultConcurrency
}

// Planned is a plan with what it was made from; Apply carries it out.
type Planned struct {
	Desired  *spec.Fleet
	Observed *observed.Fleet
	Plan     *plans.Plan
	// Resume is set when the plan is a saved one whose interrupted run
	// the journal holds: the steps it completed are skipped.
	Resume bool
	// Scope are the nodes the plan covers when PlanOptions.Scope held;
	// nil when it covers the whole fleet.
	Scope []string
	t     *target
	// rollout is the run's part of the policy's rollout, saved by Apply.
	rollout *rolloutRun
}

// PlanOptions tune Plan.
type PlanOptions struct {
	// Observed, when set, is a saved observation to plan against: nothing
	// of the fleet is called, and the plan cannot be applied.
	Observed *observed.Fleet
	// Scope, when set, limits the run to its nodes where it can (see
	// Scope); Planned.Scoped says whether it did.
	Scope *Scope
}

// Plan observes the fleet the desired state names (or takes the saved
// observation) and plans, with what earlier runs converged to telling
// drift from new intent.
func (e *Engine) Plan(ctx context.Context, desired *spec.Fleet, opts PlanOptions) (*Planned, error) {
	t, err := e.connect(desired, opts.Observed != nil)
	if err != nil {
		return nil, err
	}
	scope := opts.Scope
	if opts.Observed != nil {
		scope = nil // a saved observation has nothing to scope
	}
	if why := scoped(t, desired, scope); why != "" {
		e.log().Debug("the run observes the whole fleet", "why", why)
		scope = nil
	}
	obs := opts.Observed
	switch {
	case obs != nil:
	case scope != nil:
		if obs, err = e.observeScope(ctx, t, scope); err != nil {
			return nil, err
		}
	default:
		if obs, err = e.observe(ctx, t); err != nil {
			return nil, err
		}
	}
	popts, err := e.options(t, obs)
	if err != nil {
		return nil, err
	}
	if scope != nil {
		popts.Only = scope.only(desired)
	}
	p, err := reconcile.NewPlan(desired, obs, e.now(), popts)
	if err != nil {
		return nil, err
	}
	planned := &Planned{Desired: desired, Observed: obs, Plan: p}
	if scope != nil {
		planned.Scope = scope.Nodes
	}
	if desired.Policy.Rollout != nil {
		rp, ro, err := e.planRollout(ctx, t, obs, popts, p, opts.Observed != nil)
		if err != nil {
			return nil, err
		}
		rp.rollout = ro
		planned = rp
	}
	if opts.Observed == nil {
		planned.t = t
	}
	return planned, nil
}

// plan is the planner's call, without a rollout.
func (e *Engine) plan(t *target, obs *observed.Fleet) (*plans.Plan, error) {
	opts, err := e.options(t, obs)
	if err != nil {
		return nil, err
	}
	return reconcile.NewPlan(t.desired, obs, e.now(), opts)
}

// options are the planner's options: the inventory, the quarantine, the
// backends' own changes and the nodes they own.
func (e *Engine) options(t *target, obs *observed.Fleet) (reconcile.Options, error) {
	opts := reconcile.Options{Owned: t.sel.Owned()}
	if e.Store != nil {
		applied, err := e.Store.Applied()
		if err != nil {
			return opts, err
		}
		opts.Applied = applied
		qs, err := e.Store.Quarantined()
		if err != nil {
			return opts, err
		}
		for _, q := range qs {
			if opts.Quarantined == nil {
				opts.Quarantined = map[string]string{}
			}
			opts.Quarantined[q.Card] = q.Why()
		}
	}
	for _, o := range t.sel.Planners {
		platform, ok := obs.Platforms[o.Name()]
		if !ok {
			continue // not observed: its nodes are unknown
		}
		changes, err := o.Plan(t.desired, o.Nodes, platform)
		if err != nil {
			return opts, fmt.Errorf("backend %s: %w", o.Name(), err)
		}
		opts.Backend = append(opts.Backend, changes...)
	}
	return opts, nil
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Progress hears about each change as it runs.
	Progress execute.Progress
	// Trigger, when set, records the run in the history under this
	// trigger ("apply"); the controller records its runs itself.
	Trigger string
}

// Outcome is how an apply went.
type Outcome struct {
	Report *execute.Report
	// Run summarises the plan and the apply, per node too: what the
	// history keeps of it.
	Run state.Run
	// Rollout is the policy's rollout after the run, nil without one.
	Rollout *rollout.State
	// Next, when set, is when the rollout wants the next run: the end of
	// its step's bake.
	Next time.Time
}

// ErrNotApplicable is returned for a plan made against a saved
// observation.
var ErrNotApplicable = errors.New("a plan made against a saved observation cannot be applied: plan against the fleet")

// Apply carries out the plan with the store's journal, then records the
// cards that converged (and, with a trigger, the run). When ctx ends, the
// card chains in flight finish and no other starts. The error is the
// executor's (a change failed, or the run stopped) joined with any error
// recording it.
func (e *Engine) Apply(ctx context.Context, p *Planned, opts ApplyOptions) (*Outcome, error) {
	if p.t == nil {
		return nil, ErrNotApplicable
	}
	started := e.now()
	pol, err := policy.Compile(p.Desired)
	if err != nil {
		return nil, err
	}
	times := newTimings(opts.Progress, e.now)
	ex := &execute.Executor{
		Policy:         pol,
		Now:            e.now,
		Provider:       p.t.provider,
		Backends:       map[string]providers.Planner{},
		Images:         execute.RepoImages{Root: p.Desired.Root, Max: p.Desired.Policy.MaxBitstreamBytes()},
		Resume:         p.Resume,
		Progress:       times,
		Concurrency:    e.Concurrency,
		Retry:          e.Retry,
		RestartTimeout: e.RestartTimeout,
		Log:            e.log().With("revision", p.Desired.Revision),
	}
	for _, o := range p.t.sel.Planners {
		ex.Backends[o.Name()] = o.Planner
	}
	if e.Store != nil {
		ex.Journal = e.Store.Journal()
		// The plan holds a sick card already; the quarantine keeps it
		// held after it reads healthy, until an operator releases it.
		if err := e.Store.Quarantine(sick(p.Desired, p.Observed, started)...); err != nil {
			return nil, err
		}
		// What the rollout read before this run (a failed step, a bake
		// begun) outlives a crash in the middle of it.
		if p.rollout != nil {
			if err := e.Store.PutRollout(p.rollout.state); err != nil {
				return nil, err
			}
		}
	}
	rep, runErr := ex.Apply(ctx, p.Desired, p.Plan)
	if rep == nil {
		return nil, runErr // refused before any change
	}
	out := &Outcome{Report: rep, Run: summarise(p.Desired, p.Observed, p.Plan, rep, times)}
	out.Run.Scope = len(p.Scope)
	if ro := p.rollout; ro != nil {
		e.recordRollout(ro, rep.Converged)
		out.Rollout, out.Next = ro.state, ro.state.BakeUntil
		out.Run.Rollout, out.Run.RolloutEvents = ro.state.Summary(), ro.events
		if e.Store != nil {
			if err := e.Store.PutRollout(ro.state); err != nil {
				runErr = errors.Join(runErr, err)
			}
		}
	}
	if e.Store == nil {
		return out, runErr
	}
	// A card fpgaops changed but did not finish is forgotten: the next
	// plan finishes it (or, after a revert, puts it back) whatever the
	// drift mode, since the difference is fpgaops's own doing.
	err = errors.Join(e.Store.RecordApplied(rep.Converged), e.Store.Forget(halfDone(p.Plan, rep)...))
	if opts.Trigger != "" {
		run := out.Run
		run.Trigger, run.Revision = opts.Trigger, p.Desired.Revision
		run.StartedAt, run.FinishedAt = started, e.now()
		run.DurationSeconds = run.FinishedAt.Sub(started).Seconds()
		run.Outcome = state.OutcomeApplied
		if runErr != nil {
			run.Outcome, run.Error = state.OutcomeFailed, runErr.Error()
			if ctx.Err() != nil {
				run.Outcome = state.OutcomeInterrupted
			}
		}
		err = errors.Join(err, e.Store.AddRun(&run))
		out.Run.ID = run.ID
	}
	return out, errors.Join(runErr, err)
}

// halfDone lists the cards a run changed without converging them.
func halfDone(p *plans.Plan, rep *execute.Report) []string {
	var out []string
	seen := map[string]bool{}
	for i := range p.Changes {
		c := &p.Changes[i]
		id := plans.CardID(c.Node, c.Card)
		if c.Card == "" || seen[id] || !rep.Results[i].Status.Done() {
			continue
		}
		if _, ok := rep.Converged[id]; !ok {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// Observe observes the fleet the desired state names, as Plan does,
// without planning: what `fpgaops observe --out` saves and `--observed`
// reads back, and what `fpgaops import` adopts.
func (e *Engine) Observe(ctx context.Context, desired *spec.Fleet) (*observed.Fleet, error) {
	t, err := e.connect(desired, false)
	if err != nil {
		return nil, err
	}
	return e.observe(ctx, t)
}
