package execute

import "github.com/fpgaops/fpgaops/reconcile"

// Status is how a change ended in a run.
type Status string

const (
	// StatusApplied: the change ran and succeeded (programs are verified).
	StatusApplied Status = "applied"
	// StatusSkipped: an earlier, interrupted run completed it (journal).
	StatusSkipped Status = "skipped"
	// StatusFailed: the change ran and failed; its dependents are blocked.
	StatusFailed Status = "failed"
	// StatusBlocked: a change it depends on failed or was blocked.
	StatusBlocked Status = "blocked"
	// StatusPendingRestart: the change takes effect only when its VM
	// restarts (providers.ErrNeedsRestart), and fpgaops did not restart
	// it; or a change it depends on is in that state, so it did not run.
	// It is not a failure, but the change is not done: the card has not
	// converged, and nothing that needs the VM to let go of a function
	// runs before the restart.
	StatusPendingRestart Status = "pending-restart"
	// StatusHeld: the plan holds it back; it was not run.
	StatusHeld Status = "held"
	// StatusNotRun: the run stopped (cancelled) before reaching it, or the
	// change is a report or no-op.
	StatusNotRun Status = "not-run"
)

// Done reports whether the change's effect is in place after the run.
func (s Status) Done() bool { return s == StatusApplied || s == StatusSkipped }

// Result is how one change ended.
type Result struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Attempts counts provider calls made for it, retries included.
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
	err      error
}

// Err is the error the change failed with, or nil.
func (r *Result) Err() error { return r.err }

// Progress hears about each change as the executor runs it, so a command
// can draw a counter or log lines while the executor only computes. Calls
// may come from several goroutines at once.
type Progress interface {
	// Started is called before the change's first attempt.
	Started(c *reconcile.Change)
	// Finished is called once per runnable change, with how it ended.
	Finished(c *reconcile.Change, r Result)
}

// NoProgress ignores every event.
type NoProgress struct{}

func (NoProgress) Started(*reconcile.Change)          {}
func (NoProgress) Finished(*reconcile.Change, Result) {}
