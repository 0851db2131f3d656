package state

import "time"

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
	// Plan counts the planned changes by action (program, set-vfs, attach,
	// detach, report) plus held and noop.
	Plan map[string]int `json:"plan,omitempty"`
	// Results counts the executed changes by result (applied, skipped,
	// failed, blocked, held).
	Results map[string]int `json:"results,omitempty"`
	// Violations counts the differences between the repository and the
	// fleet left after the run: changes that failed, were blocked or held,
	// and reports.
	Violations int `json:"violations"`
	// Drift counts the objects found changed since the last apply.
	Drift int           `json:"drift"`
	Nodes []NodeSummary `json:"nodes,omitempty"`
	// OpenStack is the cloud's part of the run, when a cloud manages some
	// of the fleet's nodes.
	OpenStack *CloudRun `json:"openstack,omitempty"`
}

// CloudRun is what a run did to a cloud (OpenStack) after the fleet's
// changes.
type CloudRun struct {
	// Plan counts the planned changes by action; Results the changes by
	// outcome (applied, skipped, failed); Applied and Failed the applied
	// and the failed ones by action.
	Plan    map[string]int `json:"plan"`
	Results map[string]int `json:"results"`
	Applied map[string]int `json:"applied,omitempty"`
	Failed  map[string]int `json:"failed,omitempty"`
	// Failures are the failed changes' errors, each naming its object.
	Failures []string `json:"failures,omitempty"`
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
