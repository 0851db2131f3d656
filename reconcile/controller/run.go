package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// RunOnce makes one run now, whether suspended or not, and returns its
// record: `fpgaops run --once`.
func (c *Controller) RunOnce(ctx context.Context, trigger string) state.Run {
	return *c.reconcile(ctx, trigger)
}

// reconcile is one run: fetch, verify, validate, reconcile, record.
func (c *Controller) reconcile(ctx context.Context, trigger string) *state.Run {
	start := c.now()
	run := &state.Run{Trigger: trigger, StartedAt: start}
	c.mu.Lock()
	c.status.setCondition(Reconciling, "True", ReasonProgressing, "run triggered by "+trigger, start)
	c.mu.Unlock()
	c.log.Info("run started", "trigger", trigger)
	// Should the process die in this run, the next start records it.
	var (
		rev   source.Revision
		stage string
		err   = c.opts.Store.Running(run)
	)
	switch {
	case err != nil && c.opts.Leader != nil:
		// A leader never changes the fleet without the shared store.
		stage, run.Outcome, run.Error = "store", state.OutcomeFailed, "not started: the shared state cannot record it: "+err.Error()
	case err != nil:
		c.log.Error("run in flight not recorded", "err", err)
		fallthrough
	default:
		rev, stage, err = c.attempt(ctx, run)
	}
	end := c.now()
	run.FinishedAt = end
	run.DurationSeconds = end.Sub(start).Seconds()
	c.metrics.observe(run, stage)
	// The history first: it gives the run its ID, and the run is not
	// changed once the status shares it.
	if err := c.opts.Store.AddRun(run); err != nil {
		c.log.Error("history not recorded", "err", err)
	}
	c.reportEnded(run)

	c.mu.Lock()
	st := &c.status
	ready, _ := st.Condition(Ready)
	wasFailing := failing(ready)
	if rev.Commit != "" {
		st.LastAttemptedRevision = rev.Commit
		st.LastAttemptedAt = &end
	}
	inForce := "no revision applied yet"
	if c.lastGood != "" {
		inForce = "revision " + c.lastGood + " stays in force"
	}
	switch run.Outcome {
	case state.OutcomeApplied:
		c.failures = 0
		c.lastGood = rev.Commit
		st.LastAppliedRevision, st.LastAppliedAt = rev.Commit, &end
		msg := fmt.Sprintf("applied revision %s: %d change(s), %d violation(s)", rev.Commit, run.Results.Applied, run.Violations)
		st.setCondition(Ready, "True", ReasonSucceeded, msg, end)
		st.setCondition(Stalled, "False", ReasonSucceeded, "", end)
		c.metrics.lastApplied.Set(float64(end.Unix()))
	case state.OutcomeRejected:
		// Retrying the same commit cannot help: wait for the schedule or
		// a push.
		c.failures = 0
		reason := ReasonValidationFailed
		if stage == "verify" {
			reason = ReasonVerificationFailed
		}
		msg := run.Error + "; " + inForce
		st.setCondition(Ready, "False", reason, msg, end)
		st.setCondition(Stalled, "True", reason, msg, end)
	case state.OutcomeInterrupted:
		st.setCondition(Ready, "False", ReasonInterrupted, "shutdown interrupted the run; "+inForce, end)
	default:
		c.failures++
		reason := ReasonReconcileFailed
		switch {
		case run.Outcome == state.OutcomeFetchFailed:
			reason = ReasonFetchFailed
		case stage == "observe":
			reason = ReasonNodesUnknown
		}
		st.setCondition(Ready, "False", reason, run.Error+"; "+inForce, end)
		st.setCondition(Stalled, "False", reason, "retrying", end)
	}
	st.noteFailure(run)
	c.noteApprovals(run)
	if run.Nodes != nil {
		st.noteHeld(run)
		st.Nodes, st.Violations, st.Drift = run.Nodes, run.Violations, run.Drift
		st.Unknown, st.Degraded = run.Unknown, run.Degraded
		st.setCondition(NodesObserved, boolStatus(run.Unknown == 0), reasonUnknown(run.Unknown), unknownMessage(run), end)
		st.setCondition(Degraded, boolStatus(len(run.Degraded) > 0), reasonDegraded(len(run.Degraded)), degradedMessage(run.Degraded), end)
		c.metrics.nodesUnknown.Set(float64(run.Unknown))
		c.metrics.vmsDegraded.Set(float64(len(run.Degraded)))
	}
	st.setCondition(Reconciling, "False", ReasonIdle, "", end)
	st.ConsecutiveFailures = c.failures
	last := *run
	last.Changes = nil // history show has them; the status stays small
	st.LastRun = &last
	snapshot := st.clone()
	keep := []string{c.lastGood, rev.Commit}
	var events []notify.Event
	if c.opts.Notifier != nil {
		events = c.events(run, stage, wasFailing)
	}
	c.mu.Unlock()
	if len(events) > 0 {
		c.opts.Notifier.Notify(events...)
	}

	if err := c.opts.Store.PutStatus(snapshot); err != nil {
		c.log.Error("status not recorded", "err", err)
	}
	if err := c.opts.Source.Retain(keep...); err != nil {
		c.log.Warn("old revisions not removed", "err", err)
	}
	attrs := []any{"trigger", trigger, "outcome", run.Outcome, "revision", rev.Commit,
		"duration", end.Sub(start).Round(time.Millisecond), "violations", run.Violations, "drift", run.Drift}
	c.logChanges(run)
	if err != nil {
		c.log.Error("run failed", append(attrs, "stage", stage, "err", err)...)
	} else {
		c.log.Info("run finished", attrs...)
	}
	return run
}

// logChanges logs one line per change that failed or was held back, with
// why: the history keeps them too (fpgaops history show RUN).
func (c *Controller) logChanges(run *state.Run) {
	for i := range run.Changes {
		ch := &run.Changes[i]
		attrs := []any{"run", run.ID, "change", ch.ID, "action", ch.Action, "node", ch.Node}
		if ch.VM != "" {
			attrs = append(attrs, "vm", ch.VM)
		}
		switch {
		case ch.Status == plans.StatusFailed:
			c.log.Error("change failed", append(attrs, "attempts", ch.Attempts, "err", ch.Error)...)
		case ch.Held != nil:
			c.log.Warn("change held", append(attrs, "gate", ch.Held.Gate, "why", ch.Held.Why)...)
		case ch.Status == plans.StatusHeld: // held when a window closed mid-run
			c.log.Warn("change held", append(attrs, "gate", plans.GateWindow, "why", ch.Error)...)
		}
	}
	if run.ChangesOmitted > 0 {
		c.log.Warn("more changes than the history keeps of a run: those left out are not logged", "run", run.ID, "omitted", run.ChangesOmitted)
	}
}

// attempt does the run's work and fills run in; it returns the revision
// (zero if the fetch failed), the stage that failed and its error.
func (c *Controller) attempt(ctx context.Context, run *state.Run) (source.Revision, string, error) {
	rev, err := c.opts.Source.Fetch(ctx)
	if err != nil {
		run.Error = err.Error()
		switch {
		case ctx.Err() != nil:
			run.Outcome = state.OutcomeInterrupted
			return rev, "fetch", err
		case errors.Is(err, source.ErrUntrusted):
			run.Outcome = state.OutcomeRejected
			return rev, "verify", err
		case errors.Is(err, source.ErrRejected):
			// The commit lacks the repository's path: fetching again
			// cannot help, only a new commit or another --path.
			run.Outcome = state.OutcomeRejected
			return rev, "validate", err
		}
		run.Outcome = state.OutcomeFetchFailed
		return rev, "fetch", err
	}
	run.Revision, run.Ref, run.Subject = rev.Commit, rev.Ref, rev.Subject
	c.reportStarted(rev.Commit)

	fleet, err := c.opts.Load(rev.Dir)
	if err != nil {
		run.Outcome = state.OutcomeRejected
		run.Problems = problems(err)
		run.Error = fmt.Sprintf("revision %s rejected: %s", rev.Commit, summarise(run.Problems))
		return rev, "validate", err
	}
	fleet.Revision = rev.Commit
	c.followPolicy(fleet.Policy)
	if c.opts.Drift != "" {
		fleet.Policy.Drift = c.opts.Drift
	}

	c.mu.Lock()
	c.trusted = fleet
	c.mu.Unlock()
	res, err := c.opts.Reconciler.Reconcile(ctx, rev, fleet)
	r := res.Run
	run.Plan, run.Results, run.Applied, run.Failed = r.Plan, r.Results, r.Applied, r.Failed
	run.Violations, run.Drift, run.Nodes, run.Unknown = r.Violations, r.Drift, r.Nodes, r.Unknown
	run.Degraded, run.Compensations, run.Stopped = r.Degraded, r.Compensations, r.Stopped
	run.Rollout, run.RolloutEvents, run.Scope = r.Rollout, r.RolloutEvents, r.Scope
	c.mu.Lock()
	c.noteRollout(res.Rollout, res.Next, c.now())
	c.mu.Unlock()
	run.Changes, run.ChangesOmitted = r.Changes, r.ChangesOmitted
	c.metrics.countChanges(r.Applied, r.Failed)
	if res.Cards != nil {
		c.metrics.setCards(res.Cards)
	}
	if qs, qerr := c.opts.Store.Quarantined(); qerr == nil {
		c.metrics.setQuarantine(qs)
	}
	switch {
	case res.Interrupted || (err != nil && ctx.Err() != nil):
		run.Outcome = state.OutcomeInterrupted
		if err != nil {
			run.Error = err.Error()
		}
		return rev, "reconcile", err
	case err != nil:
		run.Outcome = state.OutcomeFailed
		run.Error = fmt.Sprintf("revision %s: %v", rev.Commit, err)
		return rev, "reconcile", err
	case len(r.Nodes) > 0 && r.Unknown == len(r.Nodes):
		// Nothing was observed, so nothing was applied: not a success.
		err := fmt.Errorf("no node of the fleet could be observed (%d unknown; %s: %s)", r.Unknown, r.Nodes[0].Name, r.Nodes[0].Reason)
		run.Outcome, run.Error = state.OutcomeFailed, err.Error()
		return rev, "observe", err
	}
	run.Outcome = state.OutcomeApplied
	return rev, "", nil
}

// problems turns a load error into positioned problems.
func problems(err error) []state.Problem {
	var list spec.ErrorList
	if errors.As(err, &list) {
		out := make([]state.Problem, len(list))
		for i, e := range list {
			out[i] = state.Problem{File: e.Pos.File, Line: e.Pos.Line, Col: e.Pos.Col, Message: e.Msg}
		}
		return out
	}
	var one spec.Error
	if errors.As(err, &one) {
		return []state.Problem{{File: one.Pos.File, Line: one.Pos.Line, Col: one.Pos.Col, Message: one.Msg}}
	}
	return []state.Problem{{Message: err.Error()}}
}

// summarise shows the first problem as file:line:col: message, and how
// many more there are.
func summarise(ps []state.Problem) string {
	if len(ps) == 0 {
		return "invalid"
	}
	e := spec.Error{Pos: spec.Pos{File: ps[0].File, Line: ps[0].Line, Col: ps[0].Col}, Msg: ps[0].Message}
	s := e.Error()
	if len(ps) > 1 {
		s += fmt.Sprintf(" (and %d more)", len(ps)-1)
	}
	return s
}
