package state

import (
	"slices"
	"time"

	"github.com/fpgaops/fpgaops/plans"
)

// Outcome is how a run ended. The set is closed.
type Outcome string

const (
	// OutcomeApplied: the revision was applied; every runnable change
	// succeeded (some may be held by policy or reported).
	OutcomeApplied Outcome = "applied"
	// OutcomeFailed: a change failed or the reconcile step returned an
	// error; the previous revision stays the last applied one.
	OutcomeFailed Outcome = "failed"
	// OutcomeRejected: the revision did not validate, or its signature
	// did not verify; nothing was touched.
	OutcomeRejected Outcome = "rejected"
	// OutcomeFetchFailed: the remote could not be fetched.
	OutcomeFetchFailed Outcome = "fetch-failed"
	// OutcomeInterrupted: shutdown stopped the run before it finished.
	OutcomeInterrupted Outcome = "interrupted"
)

// Run is one entry of the history.
type Run struct {
	ID uint64 `json:"id"`
	// Trigger says what started the run: start, schedule, retry,
	// webhook/github, webhook/gitlab, manual.
	Trigger string `json:"trigger"`
	// Revision is the full commit hash the run worked on, empty when the
	// fetch failed.
	Revision   string    `json:"revision,omitempty"`
	Ref        string    `json:"ref,omitempty"`
	Subject    string    `json:"subject,omitempty"`
	StartedAt  time.Time `json:"startedAt"`
	FinishedAt time.Time `json:"finishedAt"`
	// DurationSeconds is FinishedAt - StartedAt.
	DurationSeconds float64 `json:"durationSeconds"`
	Outcome         Outcome `json:"outcome"`
	Error           string  `json:"error,omitempty"`
	// Problems are the revision's validation errors, with positions.
	Problems []Problem `json:"problems,omitempty"`
	// Plan counts the planned changes: those that run by action, and the
	// held, reported and unchanged ones.
	Plan plans.Summary `json:"plan"`
	// Results counts the changes by how they ended.
	Results plans.Counts `json:"results"`
	// Applied and Failed count the changes that succeeded and failed, by
	// action.
	Applied plans.ByAction `json:"applied"`
	Failed  plans.ByAction `json:"failed"`
	// Violations counts the differences between the repository and the
	// fleet left after the run: changes that failed, were blocked or held,
	// and reports.
	Violations int `json:"violations"`
	// Drift counts the objects found changed since the last apply.
	Drift int           `json:"drift"`
	Nodes []NodeSummary `json:"nodes,omitempty"`
	// Unknown counts the nodes that could not be observed.
	Unknown int `json:"unknown,omitempty"`
	// Degraded are the VMs the run left without a function they held
	// before it, with why; Compensations what it did to avoid that.
	Degraded      []plans.Degraded     `json:"degraded,omitempty"`
	Compensations []plans.Compensation `json:"compensations,omitempty"`
	// Stopped says why the apply stopped before its last wave.
	Stopped string `json:"stopped,omitempty"`
	// Rollout is where the policy's rollout stood after the run, and
	// RolloutEvents what it did in the run (a step baked, a failure, a
	// revert).
	Rollout       string   `json:"rollout,omitempty"`
	RolloutEvents []string `json:"rolloutEvents,omitempty"`
	// Scope counts the nodes a run scoped to a commit's nodes observed
	// and planned (the controller's --scope-for); 0 when the run covered
	// the whole fleet.
	Scope int `json:"scope,omitempty"`

	// Changes are the run's changes, no-ops left out, each with how it
	// ended, at most MaxRunChanges of them (KeepChanges says which);
	// ChangesOmitted counts those left out. The store keeps them in a
	// file of their own: Run reads them, Runs does not.
	Changes        []Change `json:"changes,omitempty"`
	ChangesOmitted int      `json:"changesOmitted,omitempty"`
}

// Change is one change of a run as the history keeps it: what it acts on,
// why, what held it back, and how it ended.
type Change struct {
	// ID is the plan's canonical change ID.
	ID     string       `json:"id"`
	Action plans.Action `json:"action"`
	Node   string       `json:"node,omitempty"`
	Card   string       `json:"card,omitempty"`
	VM     string       `json:"vm,omitempty"`
	// Reason says why the plan has the change; Held, when set, which gate
	// held it back and why.
	Reason string      `json:"reason,omitempty"`
	Held   *plans.Hold `json:"held,omitempty"`
	// Status is how it ended: held and report changes are not run.
	Status plans.Status `json:"status"`
	Error  string       `json:"error,omitempty"`
	// Attempts counts the calls made for it, retries included; StartedAt
	// and DurationSeconds time it from its first attempt to its end.
	Attempts        int        `json:"attempts,omitempty"`
	StartedAt       *time.Time `json:"startedAt,omitempty"`
	DurationSeconds float64    `json:"durationSeconds,omitempty"`
	Wave            int        `json:"wave,omitempty"`
	Disruptive      bool       `json:"disruptive,omitempty"`
	Drift           bool       `json:"drift,omitempty"`
}

// Gate is the gate that held the change, or "".
func (c *Change) Gate() plans.Gate {
	if c.Held == nil {
		return ""
	}
	return c.Held.Gate
}

// MaxRunChanges is how many changes the history keeps of one run. With
// the store's 1000 runs, the changes of the history stay within about
// 60 MB on disk whatever the fleet's size (docs/controller.md).
const MaxRunChanges = 1000

// rank orders changes by how much an operator needs to see them: what
// failed first, what was kept from running next, what went well last.
func rank(c *Change) int {
	switch {
	case c.Status == plans.StatusFailed:
		return 0
	case c.Status == plans.StatusBlocked:
		return 1
	case c.Held != nil || c.Status == plans.StatusHeld:
		return 2
	case c.Status == plans.StatusPendingRestart:
		return 3
	case c.Action == plans.ActionReport:
		return 4
	case c.Status == plans.StatusNotRun:
		return 5
	}
	return 6 // applied, skipped
}

// KeepChanges bounds a run's changes to max: the failed ones first, then
// the blocked, held, waiting for a restart, reported and not run, then
// the applied and skipped, and within each kind in plan order. It
// returns the changes kept, in plan order, and how many it left out.
func KeepChanges(changes []Change, max int) ([]Change, int) {
	if len(changes) <= max {
		return changes, 0
	}
	idx := make([]int, len(changes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return rank(&changes[a]) - rank(&changes[b]) })
	idx = idx[:max]
	slices.Sort(idx)
	kept := make([]Change, len(idx))
	for i, j := range idx {
		kept[i] = changes[j]
	}
	return kept, len(changes) - max
}

// Problem is one validation error of a revision, at its position in the
// repository.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Col     int    `json:"col,omitempty"`
	Message string `json:"message"`
}

// NodeSummary is a run's outcome on one node.
type NodeSummary struct {
	Name string `json:"name"`
	// State is "ok" or "unknown" (the node could not be observed).
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	Cards  int    `json:"cards"`
	// Changes is how many changes ran; Failed how many of them failed or
	// were blocked; Pending how many differences remain (held, reported).
	Changes int `json:"changes"`
	Failed  int `json:"failed"`
	Pending int `json:"pending"`
	Drift   int `json:"drift"`
}
