package engine

import (
	"context"
	"fmt"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
)

// Saved prepares a saved plan for Apply. It observes the fleet again: the
// plan runs when the fleet is still the one it was made against, or
// resumes when the journal holds an interrupted run of exactly this plan
// (whose steps are why the fleet differs); otherwise it is refused. It is
// refused too when a maintenance window that allowed its disruptive
// changes when it was made no longer does.
func (e *Engine) Saved(ctx context.Context, file *planfile.File) (*Planned, error) {
	t, err := e.connect(file.Desired, false)
	if err != nil {
		return nil, err
	}
	obs, err := e.observe(ctx, t)
	if err != nil {
		return nil, err
	}
	p := &Planned{Desired: file.Desired, Observed: obs, Plan: file.Plan, t: t}
	if fp := obs.Fingerprint(); fp != file.ObservedFingerprint {
		if p.Resume, err = e.interrupted(file.Plan); err != nil {
			return nil, err
		}
		if !p.Resume {
			return nil, fmt.Errorf("the fleet has changed since the plan was made (observed %.12s, planned against %.12s); plan again", fp, file.ObservedFingerprint)
		}
	}
	if err := e.windowsStillOpen(t, obs, file.Plan); err != nil {
		return nil, err
	}
	return p, nil
}

// interrupted reports whether the journal holds an unfinished run of the
// plan.
func (e *Engine) interrupted(p *plans.Plan) (bool, error) {
	if e.Store == nil {
		return false, nil
	}
	key, err := e.Store.Journal().Plan()
	return key == execute.PlanKey(p), err
}

// windowsStillOpen refuses a saved plan whose disruptive changes the
// maintenance windows no longer allow: it was made when they did. It
// plans again now and compares what the windows hold.
func (e *Engine) windowsStillOpen(t *target, obs *observed.Fleet, saved *plans.Plan) error {
	again, err := e.plan(t, obs)
	if err != nil {
		return err
	}
	held := map[string]string{}
	// A VM restart needs an open window too; outside one the re-plan
	// makes the change wait for the VM's restart instead.
	restarts := map[string]bool{}
	for i := range again.Changes {
		c := &again.Changes[i]
		if c.Held != nil && c.Held.Gate == plans.GateWindow {
			held[c.ID] = c.Held.Why
		}
		if c.Restart == plans.RestartVM {
			restarts[c.ID] = true
		}
	}
	for i := range saved.Changes {
		c := &saved.Changes[i]
		if why, ok := held[c.ID]; ok && c.Runnable() {
			return fmt.Errorf("%s may no longer run: %s; plan again inside a window", c.ID, why)
		}
		if c.Runnable() && c.Restart == plans.RestartVM && !restarts[c.ID] {
			return fmt.Errorf("%s may no longer restart %s: no maintenance window allows it now; plan again inside a window", c.ID, c.VM())
		}
	}
	return nil
}
