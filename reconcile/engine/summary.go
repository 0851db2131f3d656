package engine

import (
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// summarise counts what the plan asked and how the apply went, overall
// and per node: the history's record of a run, without its trigger,
// revision and times.
func summarise(desired *spec.Fleet, obs *observed.Fleet, p *plans.Plan, rep *execute.Report) state.Run {
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
		switch st := rep.Results[i].Status; st {
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
	return run
}
