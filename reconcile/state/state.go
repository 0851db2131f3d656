package state

import "github.com/fpgaops/fpgaops/rollout"

// Store is what fpgaops keeps between runs: the history of runs, the last
// status, the inventory of what converged, the journal of the run in
// flight, the quarantined cards, the rollout in progress. `plan`, `apply` and the controller all go through it. A Store
// opened for writing is held by one process at a time.
type Store interface {
	// Journal is the executor's journal.
	Journal() Journal
	// Applied is the inventory: for each card fpgaops converged, the
	// desired digest it converged to; nil when there is none.
	Applied() (map[string]string, error)
	// RecordApplied merges the cards a run converged into the inventory.
	RecordApplied(converged map[string]string) error
	// Forget removes cards from the inventory.
	Forget(cards ...string) error
	// AddRun appends a run to the history and gives it its ID.
	AddRun(r *Run) error
	// Runs returns up to limit runs, newest first, without their
	// changes; 0 means all.
	Runs(limit int) ([]Run, error)
	// Run returns one run with its changes, ErrNoRun when the history
	// does not hold it.
	Run(id uint64) (*Run, error)
	// PutStatus saves the controller's status (any JSON value); Status
	// reads it into v and reports whether one was saved.
	PutStatus(v any) error
	Status(v any) (bool, error)
	// SetSuspended and Suspended keep the controller's suspended flag
	// across restarts.
	SetSuspended(on bool) error
	Suspended() (bool, error)
	// Running records the run in flight; AddRun clears it. Interrupted
	// returns (and forgets) the one a process left when it died.
	Running(r *Run) error
	Interrupted() (*Run, error)
	// Quarantine records cards a run found sick (a card already there
	// keeps its first record); Quarantined lists them; Release takes the
	// named cards out, every card when none is named, and returns them.
	Quarantine(q ...Quarantine) error
	Quarantined() ([]Quarantine, error)
	Release(cards ...string) ([]Quarantine, error)
	// Rollout and PutRollout keep the policy's rollout between runs (the
	// engine writes it); RolloutControl and SetRolloutControl keep what
	// an operator said about it (pause, abort).
	Rollout() (*rollout.State, error)
	PutRollout(r *rollout.State) error
	RolloutControl() (RolloutControl, error)
	SetRolloutControl(c RolloutControl) error
}

// Journal remembers which steps of an unfinished run of a plan completed,
// so that resuming that run does not repeat them. Entries belong to one
// plan (its key: the desired digest and the observation it was made
// from) and are used only when a run resumes it: a fresh run, of a new
// plan made from a new observation, starts afresh, since that observation
// already shows what was done, and an old entry must never hide a step the
// fleet needs again. Implementations are safe for concurrent use.
type Journal interface {
	// Begin starts the run of a plan, dropping every entry, or with resume
	// set, continues the journal's unfinished run of the same plan.
	Begin(plan string, resume bool) error
	// Plan is the key of the plan whose unfinished run the journal holds,
	// "" when it holds none.
	Plan() (string, error)
	// Done reports whether the step completed in an earlier, unfinished
	// run.
	Done(key string) (bool, error)
	// Record notes that the step completed; it is durable when it
	// returns.
	Record(key string) error
	// Finish forgets every step: the run converged.
	Finish() error
	// Pending lists the completed steps of the unfinished run.
	Pending() ([]string, error)
}
