package controller

import (
	"context"

	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// Step is the production Reconciler: one engine run (observe, plan,
// apply, record the cards that converged) per valid revision.
type Step struct {
	Engine *engine.Engine
}

// Reconcile plans and applies the revision. Shutdown (ctx ending) starts
// no new card chain; the chains in flight finish, and the result says the
// run was interrupted.
func (s *Step) Reconcile(ctx context.Context, rev source.Revision, fleet *spec.Fleet) (Result, error) {
	e := s.Engine
	planned, err := e.Plan(ctx, fleet, engine.PlanOptions{})
	if err != nil {
		return Result{Interrupted: ctx.Err() != nil}, err
	}
	cards := engine.Health(fleet, planned.Observed)
	out, err := e.Apply(ctx, planned, engine.ApplyOptions{})
	if out == nil {
		return Result{Interrupted: ctx.Err() != nil, Cards: cards}, err
	}
	return Result{Run: out.Run, Interrupted: out.Report.NotRun > 0 && ctx.Err() != nil, Cards: cards,
		Rollout: out.Rollout, Next: out.Next}, err
}
