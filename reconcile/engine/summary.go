package engine

import (
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// summarise counts what the plan asked and how the apply went, overall
// and per node, and records each change that was not a no-op: the
// history's record of a run, without its trigger, revision and times.
func summarise(desired *spec.Fleet, obs *observed.Fleet, p *plans.Plan, rep *execute.Report, times *timings) state.Run {
	run := state.Run{Plan: p.Summary, Results: rep.Counts, Degraded: rep.Degraded, Compensations: rep.Compensations, Stopped: rep.Stopped}
	per := map[string]*state.NodeSummary{}
	for _, n := range desired.Nodes {
		per[n.Name] = &state.NodeSummary{Name: n.Name, State: string(observed.NodeOK), Cards: len(n.FPGAs)}
	}
	for _, n := range obs.Nodes {
		if s, ok := per[n.Name]; ok {
			s.State, s.Reason = string(n.State), n.Reason
			if n.State != observed.NodeOK {
				run.Unknown++
			}
		}
	}
	// What belongs to no node (a cloud's shared objects) counts for the
	// run only.
	none := &state.NodeSummary{}
	drifted := map[string]bool{}
	var changes []state.Change
	for i := range p.Changes {
		c := &p.Changes[i]
		ns := per[c.Node]
		if ns == nil {
			ns = none
		}
		if c.Drift && !drifted[c.Object] {
			drifted[c.Object] = true
			run.Drift++
			ns.Drift++
		}
		if c.Action == plans.ActionNoop {
			continue
		}
		res := rep.Results[i]
		changes = append(changes, record(c, res, times))
		switch st := res.Status; st {
		case plans.StatusApplied:
			run.Applied.Add(c.Action)
			ns.Changes++
		case plans.StatusSkipped:
		case plans.StatusFailed, plans.StatusBlocked:
			if st == plans.StatusFailed {
				run.Failed.Add(c.Action)
			}
			ns.Failed++
			run.Violations++
		default: // held, reported, waiting for a restart, not run
			ns.Pending++
			run.Violations++
		}
	}
	for _, n := range desired.Nodes {
		run.Nodes = append(run.Nodes, *per[n.Name])
	}
	run.Changes, run.ChangesOmitted = state.KeepChanges(changes, state.MaxRunChanges)
	return run
}

// record is how the history keeps one change and its result.
func record(c *plans.Change, r plans.Result, times *timings) state.Change {
	rec := state.Change{
		ID: c.ID, Action: c.Action, Node: c.Node, Card: c.Card, VM: c.VM(),
		Reason: c.Reason, Held: c.Held, Status: r.Status, Error: r.Error, Attempts: r.Attempts,
		Wave: c.Wave, Disruptive: c.Disruptive, Drift: c.Drift,
	}
	if start, d, ok := times.of(c.ID); ok {
		rec.StartedAt, rec.DurationSeconds = &start, d.Seconds()
	}
	return rec
}

// timings hears the executor's progress, passing it on, and times each
// change from its first attempt to its end.
type timings struct {
	next execute.Progress
	now  func() time.Time

	mu      sync.Mutex
	started map[string]time.Time
	took    map[string]time.Duration
}

func newTimings(next execute.Progress, now func() time.Time) *timings {
	if next == nil {
		next = execute.NoProgress{}
	}
	return &timings{next: next, now: now, started: map[string]time.Time{}, took: map[string]time.Duration{}}
}

func (t *timings) Started(c *plans.Change) {
	t.mu.Lock()
	t.started[c.ID] = t.now()
	t.mu.Unlock()
	t.next.Started(c)
}

func (t *timings) Finished(c *plans.Change, r plans.Result) {
	t.mu.Lock()
	if start, ok := t.started[c.ID]; ok {
		t.took[c.ID] = t.now().Sub(start)
	}
	t.mu.Unlock()
	t.next.Finished(c, r)
}

// of is when the change started and how long it took; false when it
// never started (held, blocked, skipped).
func (t *timings) of(id string) (time.Time, time.Duration, bool) {
	if t == nil {
		return time.Time{}, 0, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	start, ok := t.started[id]
	return start.UTC(), t.took[id], ok
}
