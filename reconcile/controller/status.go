package controller

import (
	"slices"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// Condition types, as Flux and Kubernetes name them.
const (
	// Ready is True when the last run applied the followed revision.
	Ready = "Ready"
	// Reconciling is True while a run is in flight.
	Reconciling = "Reconciling"
	// Stalled is True when retrying will not help until the repository
	// changes: the revision is invalid or not signed by a trusted key.
	Stalled = "Stalled"
)

// Reasons a condition carries.
const (
	ReasonSucceeded          = "ReconciliationSucceeded"
	ReasonProgressing        = "Progressing"
	ReasonFetchFailed        = "FetchFailed"
	ReasonVerificationFailed = "VerificationFailed"
	ReasonValidationFailed   = "ValidationFailed"
	ReasonReconcileFailed    = "ReconcileFailed"
	ReasonInterrupted        = "Interrupted"
	ReasonIdle               = "Idle"
)

// Condition is one aspect of the controller's state.
type Condition struct {
	Type string `json:"type"`
	// Status is "True", "False" or "Unknown".
	Status             string    `json:"status"`
	Reason             string    `json:"reason"`
	Message            string    `json:"message,omitempty"`
	LastTransitionTime time.Time `json:"lastTransitionTime"`
}

// Status is what GET /status serves and the store keeps.
type Status struct {
	// Source names the repository, ref and path, without credentials.
	Source    string `json:"source"`
	Suspended bool   `json:"suspended"`
	// LastAppliedRevision is the full hash of the revision in force: the
	// last one applied without failure.
	LastAppliedRevision string     `json:"lastAppliedRevision,omitempty"`
	LastAppliedAt       *time.Time `json:"lastAppliedAt,omitempty"`
	// LastAttemptedRevision is the last revision fetched, whether or not
	// it was applied.
	LastAttemptedRevision string      `json:"lastAttemptedRevision,omitempty"`
	LastAttemptedAt       *time.Time  `json:"lastAttemptedAt,omitempty"`
	Conditions            []Condition `json:"conditions"`
	// Nodes, Violations and Drift are from the last run that reached the
	// fleet.
	Nodes               []state.NodeSummary `json:"nodes,omitempty"`
	Violations          int                 `json:"violations"`
	Drift               int                 `json:"drift"`
	ConsecutiveFailures int                 `json:"consecutiveFailures"`
	NextRunAt           *time.Time          `json:"nextRunAt,omitempty"`
	LastRun             *state.Run          `json:"lastRun,omitempty"`
}

// Condition returns the condition of this type.
func (s *Status) Condition(typ string) (Condition, bool) {
	for _, c := range s.Conditions {
		if c.Type == typ {
			return c, true
		}
	}
	return Condition{}, false
}

// setCondition sets a condition; its transition time moves only when its
// status changes.
func (s *Status) setCondition(typ, status, reason, msg string, now time.Time) {
	for i := range s.Conditions {
		c := &s.Conditions[i]
		if c.Type != typ {
			continue
		}
		if c.Status != status {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = status, reason, msg
		return
	}
	s.Conditions = append(s.Conditions, Condition{typ, status, reason, msg, now})
	order := map[string]int{Ready: 0, Reconciling: 1, Stalled: 2}
	slices.SortFunc(s.Conditions, func(a, b Condition) int { return order[a.Type] - order[b.Type] })
}

func (s Status) clone() Status {
	s.Conditions = slices.Clone(s.Conditions)
	s.Nodes = slices.Clone(s.Nodes)
	if s.LastRun != nil {
		r := *s.LastRun
		s.LastRun = &r
	}
	return s
}
