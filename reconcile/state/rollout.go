package state

import "github.com/fpgaops/fpgaops/rollout"

// Files of a rollout: the engine's state of it, and the operator's say.
const (
	RolloutFile        = "rollout.json"
	RolloutControlFile = "rollout-control.json"
)

// RolloutControl is what an operator says about the rollout in progress.
// It is kept apart from the rollout's state, which only the engine
// writes, so that neither overwrites the other.
type RolloutControl struct {
	// Paused releases no more cards until it is cleared.
	Paused bool `json:"paused,omitempty"`
	// Abort names a revision whose rollout is stopped for good: its
	// cards wait for a new commit.
	Abort string `json:"abort,omitempty"`
}

// Rollout is the rollout in progress or last finished; nil when there
// has been none.
func (s *Local) Rollout() (*rollout.State, error) {
	var r rollout.State
	ok, err := s.readJSON(RolloutFile, &r)
	if !ok || err != nil {
		return nil, err
	}
	return &r, nil
}

// PutRollout saves the rollout's state.
func (s *Local) PutRollout(r *rollout.State) error { return s.writeJSON(RolloutFile, r) }

// RolloutControl is the operator's say; the zero value when there is
// none.
func (s *Local) RolloutControl() (RolloutControl, error) {
	var c RolloutControl
	_, err := s.readJSON(RolloutControlFile, &c)
	return c, err
}

// SetRolloutControl saves the operator's say.
func (s *Local) SetRolloutControl(c RolloutControl) error { return s.writeJSON(RolloutControlFile, c) }
