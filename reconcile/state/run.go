package state

import (
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
