package controller

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/state"
)

// Approver holds back, under the policy's approval: manual, the
// disruptive changes of a plan that nobody has approved (Controller).
type Approver interface {
	HoldUnapproved(revision string, p *plans.Plan)
}

// Awaiting is a run whose disruptive changes wait for a person.
type Awaiting struct {
	Run      uint64    `json:"run"`
	Revision string    `json:"revision"`
	Since    time.Time `json:"since"`
	// Changes are the changes held for approval, at most
	// MaxStatusChanges; Total counts them.
	Changes []string `json:"changes"`
	Total   int      `json:"total"`
}

// Approved is the approval in force: the changes of which run may go
// ahead, and how many of them are still to be made.
type Approved struct {
	Run      uint64    `json:"run"`
	Revision string    `json:"revision"`
	At       time.Time `json:"at"`
	Left     int       `json:"left"`
}

// approvals is what the controller keeps of them, in memory: a restarted
// controller asks again.
type approvals struct {
	// held are the changes the run in flight held for approval.
	held map[string]bool
	// awaiting are all of them, for the status's Awaiting run.
	awaiting map[string]bool
	// granted are the changes approved, of revision, in run, at; nil
	// when none are.
	granted  map[string]bool
	revision string
	run      uint64
	at       time.Time
}

// Approval errors; the admin API answers 409 Conflict to them.
var (
	ErrNothingToApprove = errors.New("no run awaits approval")
	ErrNotAwaiting      = errors.New("not the run that awaits approval")
)

// approvalWhy is what a change held for approval says.
const approvalWhy = "the policy asks a person to approve disruptive changes: approve the run (fpgaops approve RUN, or on the dashboard)"

// HoldUnapproved holds back, with gate approval, each disruptive change
// of p that is not approved for revision; what depends on it is held
// too. Approved changes the plan no longer has are forgotten.
func (c *Controller) HoldUnapproved(revision string, p *plans.Plan) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := &c.approvals
	if a.granted != nil && a.revision != revision {
		a.granted = nil // approved for another revision
	}
	still := map[string]bool{}
	for i := range p.Changes {
		if ch := &p.Changes[i]; ch.Disruptive && a.granted[ch.ID] {
			still[ch.ID] = true
		}
	}
	if a.granted != nil {
		a.granted = still
	}
	a.held = map[string]bool{}
	reconcile.Hold(p, func(ch *plans.Change) *plans.Hold {
		if !ch.Disruptive || still[ch.ID] {
			return nil
		}
		a.held[ch.ID] = true
		return &plans.Hold{Gate: plans.GateApproval, Why: approvalWhy}
	})
}

// noteApprovals updates the approvals after a run: the run awaits
// approval when it held changes for it, and approved changes it made
// are done with. Called with c.mu held.
func (c *Controller) noteApprovals(run *state.Run) {
	a := &c.approvals
	st := &c.status
	prev := st.Awaiting
	if a.granted != nil {
		if a.revision != run.Revision && run.Revision != "" {
			a.granted = nil
		} else {
			for _, ch := range run.Changes {
				if ch.Status.Done() {
					delete(a.granted, ch.ID)
				}
			}
			if len(a.granted) == 0 {
				a.granted = nil
			}
		}
	}
	st.Approved = nil
	if a.granted != nil {
		st.Approved = &Approved{Run: a.run, Revision: a.revision, At: a.at, Left: len(a.granted)}
	}
	if a.held == nil {
		// Not held for approval: the run did not plan (nothing changes),
		// or planned without asking (the policy's approval is auto now).
		if run.Nodes != nil {
			a.awaiting, st.Awaiting = nil, nil
		}
		return
	}
	held := a.held
	a.held = nil
	if len(held) == 0 {
		a.awaiting, st.Awaiting = nil, nil
		return
	}
	ids := slices.Sorted(maps.Keys(held))
	a.awaiting = held
	st.Awaiting = &Awaiting{Run: run.ID, Revision: run.Revision, Since: run.FinishedAt,
		Changes: ids[:min(len(ids), MaxStatusChanges)], Total: len(ids)}
	if prev != nil && prev.Revision == run.Revision {
		st.Awaiting.Since = prev.Since // waiting since the first run that asked
	}
}

// Approve lets the disruptive changes of run id go ahead, and triggers a
// run to make them. Only the run that awaits approval, the last one to
// hold changes for it, can be approved: its plan is what a person saw.
// The approval holds for that run's revision until its changes are made.
func (c *Controller) Approve(id uint64) (Status, error) {
	c.mu.Lock()
	st := &c.status
	switch {
	case st.Awaiting == nil:
		c.mu.Unlock()
		return Status{}, fmt.Errorf("run %d: %w", id, ErrNothingToApprove)
	case st.Awaiting.Run != id:
		awaiting := st.Awaiting.Run
		c.mu.Unlock()
		return Status{}, fmt.Errorf("run %d: %w: run %d is", id, ErrNotAwaiting, awaiting)
	}
	a := &c.approvals
	a.granted, a.revision, a.run, a.at = maps.Clone(a.awaiting), st.Awaiting.Revision, id, c.now()
	st.Approved = &Approved{Run: id, Revision: a.revision, At: a.at, Left: len(a.granted)}
	snapshot := st.clone()
	c.mu.Unlock()
	c.log.Info("run approved", "run", id, "revision", snapshot.Approved.Revision, "changes", snapshot.Approved.Left)
	if err := c.opts.Store.PutStatus(snapshot); err != nil {
		c.log.Error("status not recorded", "err", err)
	}
	c.Trigger(fmt.Sprintf("approved/%d", id))
	return c.Status(), nil
}
