package plans

// Status is how a change ended in a run. The set is closed.
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
	// restarts, and fpgaops did not restart it; or a change it depends on
	// is in that state, so it did not run. It is not a failure, but the
	// change is not done: the card has not converged, and nothing that
	// needs the VM to let go of a function runs before the restart.
	StatusPendingRestart Status = "pending-restart"
	// StatusHeld: the plan holds it back; it was not run.
	StatusHeld Status = "held"
	// StatusNotRun: the run stopped (shutdown or cancel) before its card
	// started, or the change is a report or no-op. Nothing of it ran.
	StatusNotRun Status = "not-run"
)

// Done reports whether the change's effect is in place after the run.
func (s Status) Done() bool { return s == StatusApplied || s == StatusSkipped }

// Result is how one change ended.
type Result struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	// Attempts counts the calls made for it, retries included.
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Counts counts a run's changes by how they ended. NotRun counts only
// changes that would have run (not reports and no-ops).
type Counts struct {
	Applied        int `json:"applied"`
	Skipped        int `json:"skipped"`
	Failed         int `json:"failed"`
	Blocked        int `json:"blocked"`
	Held           int `json:"held"`
	PendingRestart int `json:"pendingRestart"`
	NotRun         int `json:"notRun,omitempty"`
}

// Compensation is one thing the executor did to put back what a failed
// card chain took away: VFs turned on again, the previous bitstream
// programmed again, a VM given its function back.
type Compensation struct {
	// Change is the change whose failure it answers.
	Change string `json:"change"`
	// What says what was done ("attach vnf-a vf0 0000:5e:00.1").
	What  string `json:"what"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Degraded is a VM that a run left without a function it held before the
// run: fpgaops took it away for a change that failed, and could not give
// it back. The next run restores it, whatever the drift mode.
type Degraded struct {
	Node     string `json:"node"`
	VM       string `json:"vm"`
	Card     string `json:"card"`
	Function string `json:"function"`
	Reason   string `json:"reason"`
}
