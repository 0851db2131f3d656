package controller

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
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
	// NodesObserved is False when the last run could not observe some
	// nodes: nothing was planned for them.
	NodesObserved = "NodesObserved"
	// Degraded is True when the last run left VMs without a function they
	// held before it (a failed change fpgaops could not undo).
	Degraded = "Degraded"
	// RolloutHealthy is False when the policy's rollout failed a check
	// (the message names the card and check) or was aborted; the
	// revision's remaining cards wait for a new commit.
	RolloutHealthy = "RolloutHealthy"
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
	ReasonNodesUnknown       = "NodesUnknown"
	ReasonAllObserved        = "AllNodesObserved"
	ReasonVMsDegraded        = "VMsDegraded"
	ReasonNoneDegraded       = "NoVMDegraded"
	ReasonRolloutFailed      = "RolloutFailed"
	ReasonRolloutAborted     = "RolloutAborted"
	ReasonRolloutProgressing = "RolloutProgressing"
	ReasonRolloutComplete    = "RolloutComplete"
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
	Nodes      []state.NodeSummary `json:"nodes,omitempty"`
	Violations int                 `json:"violations"`
	Drift      int                 `json:"drift"`
	// Unknown counts the nodes the last run could not observe; Degraded
	// lists the VMs it left without a function they held before.
	Unknown  int              `json:"unknown"`
	Degraded []plans.Degraded `json:"degraded,omitempty"`
	// Held are the changes the last run that reached the fleet held back,
	// with the gate and why, at most MaxStatusChanges of them; HeldTotal
	// counts them all.
	Held      []state.Change `json:"held,omitempty"`
	HeldTotal int            `json:"heldTotal,omitempty"`
	// LastFailure is the last run that failed, or whose changes did:
	// which changes and why.
	LastFailure *Failure `json:"lastFailure,omitempty"`
	// Awaiting is the run whose disruptive changes wait for a person's
	// approval (the policy's approval: manual); Approved the approval in
	// force.
	Awaiting            *Awaiting  `json:"awaitingApproval,omitempty"`
	Approved            *Approved  `json:"approved,omitempty"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	NextRunAt           *time.Time `json:"nextRunAt,omitempty"`
	LastRun             *state.Run `json:"lastRun,omitempty"`
	// Rollout is the policy's rollout as the last run left it.
	Rollout *rollout.State `json:"rollout,omitempty"`
	// Leader says who leads, when controllers share the fleet (--etcd).
	Leader *LeaderStatus `json:"leader,omitempty"`
}

// Failure is what went wrong in a run.
type Failure struct {
	Run      uint64        `json:"run"`
	At       time.Time     `json:"at"`
	Revision string        `json:"revision,omitempty"`
	Outcome  state.Outcome `json:"outcome"`
	Error    string        `json:"error,omitempty"`
	// Changes are the changes that failed, and those blocked by them, at
	// most MaxStatusChanges; Total counts them all.
	Changes []state.Change `json:"changes,omitempty"`
	Total   int            `json:"total,omitempty"`
}

// MaxStatusChanges bounds the held and failed changes the status lists;
// the run's record in the history has more.
const MaxStatusChanges = 50

// noteHeld keeps the held changes of a run that reached the fleet.
func (s *Status) noteHeld(run *state.Run) {
	s.Held, s.HeldTotal = nil, run.Results.Held
	for _, c := range run.Changes {
		if c.Status == plans.StatusHeld && len(s.Held) < MaxStatusChanges {
			s.Held = append(s.Held, c)
		}
	}
}

// noteFailure keeps a run that failed, or whose changes did, as the last
// failure.
func (s *Status) noteFailure(run *state.Run) {
	switch {
	case run.Outcome == state.OutcomeFailed, run.Outcome == state.OutcomeFetchFailed, run.Results.Failed > 0:
	default:
		return
	}
	f := &Failure{Run: run.ID, At: run.FinishedAt, Revision: run.Revision, Outcome: run.Outcome, Error: run.Error,
		Total: run.Results.Failed + run.Results.Blocked}
	for _, c := range run.Changes {
		if (c.Status == plans.StatusFailed || c.Status == plans.StatusBlocked) && len(f.Changes) < MaxStatusChanges {
			f.Changes = append(f.Changes, c)
		}
	}
	s.LastFailure = f
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
	order := map[string]int{Ready: 0, Reconciling: 1, Stalled: 2, NodesObserved: 3, Degraded: 4, RolloutHealthy: 5}
	slices.SortFunc(s.Conditions, func(a, b Condition) int { return order[a.Type] - order[b.Type] })
}

func (s Status) clone() Status {
	s.Conditions = slices.Clone(s.Conditions)
	s.Nodes = slices.Clone(s.Nodes)
	s.Degraded = slices.Clone(s.Degraded)
	s.Held = slices.Clone(s.Held)
	if s.LastFailure != nil {
		f := *s.LastFailure
		s.LastFailure = &f
	}
	if s.Awaiting != nil {
		a := *s.Awaiting
		s.Awaiting = &a
	}
	if s.Approved != nil {
		a := *s.Approved
		s.Approved = &a
	}
	if s.LastRun != nil {
		r := *s.LastRun
		s.LastRun = &r
	}
	if s.Rollout != nil {
		r := *s.Rollout
		s.Rollout = &r
	}
	if s.Leader != nil {
		l := *s.Leader
		s.Leader = &l
	}
	return s
}

func boolStatus(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func reasonUnknown(n int) string {
	if n > 0 {
		return ReasonNodesUnknown
	}
	return ReasonAllObserved
}

// unknownMessage names the unknown nodes, a few of them, and why.
func unknownMessage(r *state.Run) string {
	if r.Unknown == 0 {
		return ""
	}
	var names []string
	for _, n := range r.Nodes {
		if n.State != "ok" && len(names) < 5 {
			names = append(names, n.Name+" ("+n.Reason+")")
		}
	}
	msg := fmt.Sprintf("%d of %d node(s) could not be observed, nothing was planned for them: %s", r.Unknown, len(r.Nodes), strings.Join(names, ", "))
	if r.Unknown > len(names) {
		msg += fmt.Sprintf(" and %d more", r.Unknown-len(names))
	}
	return msg
}

func reasonDegraded(n int) string {
	if n > 0 {
		return ReasonVMsDegraded
	}
	return ReasonNoneDegraded
}

// degradedMessage names the degraded VMs and why.
func degradedMessage(d []plans.Degraded) string {
	var parts []string
	for _, v := range d {
		parts = append(parts, fmt.Sprintf("%s on %s lacks %s %s: %s", v.VM, v.Node, v.Card, v.Function, v.Reason))
	}
	return strings.Join(parts, "; ")
}
