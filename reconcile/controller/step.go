package controller

import (
	"context"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// Watcher hears a run as it goes: its plan, once made, then each change
// as it starts and ends (from the executor's goroutines), then the
// results (nil when the apply was refused). The dashboard is one.
type Watcher interface {
	Planned(desired *spec.Fleet, obs *observed.Fleet, p *plans.Plan)
	execute.Progress
	Applied(p *plans.Plan, results []plans.Result)
}

// Step is the production Reconciler: one engine run (observe, plan,
// apply, record the cards that converged) per valid revision. It is
// also the Planner of pull requests.
type Step struct {
	Engine *engine.Engine
	// Watcher, when set, hears each run.
	Watcher Watcher
	// Approver holds back the disruptive changes nobody has approved,
	// under the policy's approval: manual; without one, all of them are.
	Approver Approver
	// ScopeFor is how long after observing the whole fleet a new
	// revision's run observes and plans only the nodes it changes
	// (engine.Scope): a one-binding commit reaches its card in seconds
	// whatever the fleet's size. A run of the same revision, and any
	// run once ScopeFor has passed, observes the whole fleet, which
	// finds drift. 0 observes the whole fleet every run.
	ScopeFor time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	// What the last run planned from, to scope the next; Reconcile calls
	// do not overlap (the controller's loop makes them one by one).
	last struct {
		desired  *spec.Fleet
		observed *observed.Fleet
		full     time.Time // when the whole fleet was last observed
	}
}

// scope is the run's scope: nil for the whole fleet.
func (s *Step) scope(fleet *spec.Fleet, now time.Time) *engine.Scope {
	if s.ScopeFor <= 0 || s.last.observed == nil || now.Sub(s.last.full) >= s.ScopeFor {
		return nil
	}
	nodes, ok := engine.ScopeOf(s.last.desired, fleet)
	if !ok {
		return nil
	}
	return &engine.Scope{Nodes: nodes, Base: s.last.observed}
}

// Reconcile plans and applies the revision. Shutdown (ctx ending) starts
// no new card chain; the chains in flight finish, and the result says the
// run was interrupted.
func (s *Step) Reconcile(ctx context.Context, rev source.Revision, fleet *spec.Fleet) (Result, error) {
	e := s.Engine
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	started := now()
	planned, err := e.Plan(ctx, fleet, engine.PlanOptions{Scope: s.scope(fleet, started)})
	if err != nil {
		return Result{Interrupted: ctx.Err() != nil}, err
	}
	s.last.desired, s.last.observed = fleet, planned.Observed
	if planned.Scope == nil {
		s.last.full = started
	}
	cards := engine.Health(fleet, planned.Observed)
	if fleet.Policy.Approval == spec.ApprovalManual {
		if s.Approver != nil {
			s.Approver.HoldUnapproved(rev.Commit, planned.Plan)
		} else {
			reconcile.Hold(planned.Plan, func(c *plans.Change) *plans.Hold {
				if c.Disruptive {
					return &plans.Hold{Gate: plans.GateApproval, Why: approvalWhy}
				}
				return nil
			})
		}
	}
	var progress execute.Progress
	if s.Watcher != nil {
		s.Watcher.Planned(fleet, planned.Observed, planned.Plan)
		progress = s.Watcher
	}
	out, err := e.Apply(ctx, planned, engine.ApplyOptions{Progress: progress})
	if s.Watcher != nil {
		var results []plans.Result
		if out != nil {
			results = out.Report.Results
		}
		s.Watcher.Applied(planned.Plan, results)
	}
	if out == nil {
		return Result{Interrupted: ctx.Err() != nil, Cards: cards}, err
	}
	return Result{Run: out.Run, Interrupted: out.Report.NotRun > 0 && ctx.Err() != nil, Cards: cards,
		Rollout: out.Rollout, Next: out.Next}, err
}

// Plan plans head without applying it: it observes the fleet through the
// nodes of trusted, then plans head against that observation, so that
// only endpoints of a revision the controller took are called.
func (s *Step) Plan(ctx context.Context, head, trusted *spec.Fleet) (*plans.Plan, error) {
	obs, err := s.Engine.Observe(ctx, trusted)
	if err != nil {
		return nil, err
	}
	planned, err := s.Engine.Plan(ctx, head, engine.PlanOptions{Observed: obs})
	if err != nil {
		return nil, err
	}
	return planned.Plan, nil
}
