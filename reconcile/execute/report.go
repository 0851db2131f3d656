package execute

import "github.com/fpgaops/fpgaops/plans"

func (x *run) report() *Report {
	rep := &Report{Results: x.results, Converged: map[string]string{}, Compensations: x.compensations, Degraded: x.degraded, Stopped: x.stopped}
	pending := map[string]bool{}
	for i := range x.plan.Changes {
		c := &x.plan.Changes[i]
		r := &x.results[i]
		switch r.Status {
		case plans.StatusApplied:
			rep.Applied++
		case plans.StatusSkipped:
			rep.Skipped++
		case plans.StatusFailed:
			rep.Failed++
		case plans.StatusBlocked:
			rep.Blocked++
		case plans.StatusHeld:
			rep.Held++
		case plans.StatusPendingRestart:
			rep.PendingRestart++
		case plans.StatusNotRun:
			if c.Runnable() {
				rep.NotRun++
			}
		}
		if c.Card == "" {
			continue
		}
		id := plans.CardID(c.Node, c.Card)
		if !r.Status.Done() && c.Action != plans.ActionNoop {
			pending[id] = true
		}
		if c.Digest != "" && c.Backend == "" {
			rep.Converged[id] = c.Digest
		}
	}
	for id := range pending {
		delete(rep.Converged, id)
	}
	return rep
}
