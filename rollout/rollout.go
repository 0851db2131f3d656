// Package rollout takes a revision's new bitstreams to the fleet in
// steps: the cards a revision reprograms are put in an order that spreads
// them over racks and nodes, each step releases more of them, and a step
// starts only once the cards before it have run healthy for the bake
// time. A check that fails stops the rollout; the engine then reverts the
// step's cards to the last good revision, or halts.
//
// The package is pure: State is what the state store keeps between runs,
// and Evaluate moves it on from what a run read of the cards. The engine
// (reconcile/engine) reads the cards, runs the checks, holds the cards a
// step has not released (plans.GateRollout) and applies the revert.
package rollout

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/spec"
)

// Phase is where a rollout is.
type Phase string

const (
	// Applying: the current step's cards are being changed.
	Applying Phase = "applying"
	// Baking: the current step's cards all run the revision; they must
	// stay healthy until BakeUntil.
	Baking Phase = "baking"
	// Complete: every step baked; the revision is the last good one.
	Complete Phase = "complete"
	// Failed: a check failed; the cards not yet released wait for a new
	// commit.
	Failed Phase = "failed"
	// Aborted: an operator stopped the rollout; as Failed, without a
	// revert.
	Aborted Phase = "aborted"
)

// Step is one step of a rollout.
type Step struct {
	// Label is the policy's step ("10%").
	Label string `json:"label"`
	// Cards is how many cards the rollout has released once the step
	// starts: its own and every earlier step's.
	Cards   int       `json:"cards"`
	Started time.Time `json:"started,omitzero"`
	// Baked is when the step's bake passed.
	Baked time.Time `json:"baked,omitzero"`
}

// Failure is the check that stopped a rollout.
type Failure struct {
	// Card is the card that failed, "" for a fleet-wide check.
	Card   string    `json:"card,omitempty"`
	Check  string    `json:"check"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

func (f *Failure) String() string {
	if f.Card == "" {
		return fmt.Sprintf("check %s: %s", f.Check, f.Reason)
	}
	return fmt.Sprintf("card %s, check %s: %s", f.Card, f.Check, f.Reason)
}

// State is a rollout between runs.
type State struct {
	// Revision is the revision being rolled out.
	Revision string `json:"revision"`
	// LastGood is the revision the cards ran before, which a revert goes
	// back to; "" when none is known.
	LastGood string `json:"lastGood,omitempty"`
	// Cards are the cards the revision reprograms, in rollout order.
	Cards []string `json:"cards"`
	Steps []Step   `json:"steps"`
	// Step indexes Steps: the step in progress.
	Step  int   `json:"step"`
	Phase Phase `json:"phase"`
	// Done lists the released cards that converged to the revision.
	Done      []string  `json:"done,omitempty"`
	BakeUntil time.Time `json:"bakeUntil,omitzero"`
	Failure   *Failure  `json:"failure,omitempty"`
	// Reverted lists the cards a revert gave back their last good
	// images.
	Reverted []string `json:"reverted,omitempty"`
	// Paused is set by an operator: no more cards are released.
	Paused bool `json:"paused,omitempty"`
}

// Card is a card a revision reprograms.
type Card struct {
	ID, Node string
	// Group is the value of the policy's spreadBy label on the card's
	// node.
	Group string
}

// Start begins the rollout of revision over cards. With no card to
// reprogram, the rollout is complete at once.
func Start(p *spec.Rollout, revision, lastGood string, cards []Card, now time.Time) *State {
	s := &State{Revision: revision, LastGood: lastGood, Cards: Order(cards), Phase: Applying}
	if len(cards) == 0 {
		s.Phase = Complete
		return s
	}
	s.Steps = Steps(p.Steps, len(cards))
	s.Steps[0].Started = now
	return s
}

// Order sorts cards for a rollout: the groups of the spreadBy label take
// turns, and within a group its nodes take turns, so that the first steps
// touch as many racks and nodes as they have cards.
func Order(cards []Card) []string {
	groups := map[string]map[string][]string{}
	for _, c := range cards {
		if groups[c.Group] == nil {
			groups[c.Group] = map[string][]string{}
		}
		groups[c.Group][c.Node] = append(groups[c.Group][c.Node], c.ID)
	}
	var lists [][]string
	for _, g := range slices.Sorted(maps.Keys(groups)) {
		nodes := groups[g]
		var byNode [][]string
		for _, n := range slices.Sorted(maps.Keys(nodes)) {
			slices.Sort(nodes[n])
			byNode = append(byNode, nodes[n])
		}
		lists = append(lists, turns(byNode))
	}
	return turns(lists)
}

// turns interleaves lists: the first of each, then the second of each.
func turns(lists [][]string) []string {
	var out []string
	for i := 0; ; i++ {
		took := false
		for _, l := range lists {
			if i < len(l) {
				out = append(out, l[i])
				took = true
			}
		}
		if !took {
			return out
		}
	}
}

// Steps turns the policy's steps into cumulative card counts for n cards:
// a count is at most n, a share is rounded up, every step releases at
// least one more card than the one before, and steps that would release
// none are merged into the next.
func Steps(labels []string, n int) []Step {
	var out []Step
	prev := 0
	for _, l := range labels {
		v, share := spec.ParseStep(l)
		if share {
			v = int(math.Ceil(float64(v) * float64(n) / 100))
		}
		v = min(v, n)
		if v <= prev {
			continue
		}
		out = append(out, Step{Label: l, Cards: v})
		prev = v
	}
	if len(out) == 0 || out[len(out)-1].Cards < n {
		out = append(out, Step{Label: "100%", Cards: n})
	}
	return out
}

// position is the card's index in the rollout order, -1 when the rollout
// does not reprogram it.
func (s *State) position(card string) int { return slices.Index(s.Cards, card) }

// StepOf is the step (from 1) that releases the card; 0 when the
// rollout does not reprogram it.
func (s *State) StepOf(card string) int {
	i := s.position(card)
	if i < 0 {
		return 0
	}
	for k, st := range s.Steps {
		if i < st.Cards {
			return k + 1
		}
	}
	return len(s.Steps)
}

// Released lists the cards the current step lets change.
func (s *State) Released() []string {
	if len(s.Steps) == 0 {
		return nil
	}
	return s.Cards[:s.Steps[s.Step].Cards]
}

// Hold says why the card may not change in this run: the rollout has not
// released it, is paused, failed or was aborted. "" lets it change.
func (s *State) Hold(card string) string {
	k := s.StepOf(card)
	if k == 0 {
		return ""
	}
	switch s.Phase {
	case Complete:
		return ""
	case Failed:
		return fmt.Sprintf("the rollout of revision %s failed (%s); its cards wait for a new commit", short(s.Revision), s.Failure)
	case Aborted:
		return fmt.Sprintf("the rollout of revision %s was aborted; its cards wait for a new commit", short(s.Revision))
	}
	done := slices.Contains(s.Done, card)
	switch {
	case s.Paused && !done:
		return fmt.Sprintf("the rollout of revision %s is paused at step %d of %d", short(s.Revision), s.Step+1, len(s.Steps))
	case k > s.Step+1:
		return fmt.Sprintf("rollout step %d of %d (%s): waits for step %d to bake", k, len(s.Steps), s.Steps[k-1].Label, s.Step+1)
	}
	return ""
}

// Reading is what a run read of one released card.
type Reading struct {
	// Converged: the card runs what the revision asks; nothing is left
	// to change on it.
	Converged bool
	// Failed are the checks it failed, by check name.
	Failed []CheckFailure
}

// CheckFailure is one failed check.
type CheckFailure struct {
	Check, Reason string
}

// Evaluate moves the rollout on from what a run read: the released
// cards (by ID) and the fleet-wide checks that failed. A card that
// converged and fails a check counts as unhealthy; more than maxUnhealthy
// of them, or a fleet-wide failure, fail the rollout. Otherwise a step
// whose cards all converged bakes, and a step baked past BakeUntil
// releases the next. It returns what happened, for logs and
// notifications.
func (s *State) Evaluate(p *spec.Rollout, cards map[string]Reading, fleet []CheckFailure, now time.Time) []string {
	if s.Phase == Complete || s.Phase == Failed || s.Phase == Aborted {
		return nil
	}
	var events []string
	if len(fleet) > 0 {
		s.fail(&Failure{Check: fleet[0].Check, Reason: fleet[0].Reason, At: now})
		return append(events, "failed: "+s.Failure.String()+s.halting(p))
	}
	var unhealthy []string
	for _, id := range s.Released() {
		r := cards[id]
		if r.Converged && !slices.Contains(s.Done, id) {
			s.Done = append(s.Done, id)
		}
		if r.Converged && len(r.Failed) > 0 {
			unhealthy = append(unhealthy, id)
		}
	}
	if len(unhealthy) > p.MaxUnhealthy {
		f := cards[unhealthy[0]].Failed[0]
		s.fail(&Failure{Card: unhealthy[0], Check: f.Check, Reason: f.Reason, At: now})
		return append(events, fmt.Sprintf("failed at step %d of %d: %s (%d unhealthy, %d tolerated)%s", s.Step+1, len(s.Steps), s.Failure, len(unhealthy), p.MaxUnhealthy, s.halting(p)))
	}
	return append(events, s.advance(p, now)...)
}

// Converged records released cards a run converged, and starts the
// step's bake once they all have.
func (s *State) Converged(p *spec.Rollout, cards []string, now time.Time) []string {
	if s.Phase != Applying {
		return nil
	}
	for _, id := range cards {
		if slices.Contains(s.Released(), id) && !slices.Contains(s.Done, id) {
			s.Done = append(s.Done, id)
		}
	}
	return s.advance(p, now)
}

// advance bakes a step whose cards all converged, and releases the next
// step once the bake is over.
func (s *State) advance(p *spec.Rollout, now time.Time) []string {
	var events []string
	for {
		released := s.Released()
		all := !slices.ContainsFunc(released, func(id string) bool { return !slices.Contains(s.Done, id) })
		switch {
		case s.Phase == Applying && all:
			s.Phase, s.BakeUntil = Baking, now.Add(p.BakeTime())
			events = append(events, fmt.Sprintf("step %d of %d (%s): %d card(s) converged, baking until %s",
				s.Step+1, len(s.Steps), s.Steps[s.Step].Label, len(released), s.BakeUntil.UTC().Format(time.RFC3339)))
			return events
		case s.Phase == Baking && !all:
			s.Phase, s.BakeUntil = Applying, time.Time{}
			return events
		case s.Phase == Baking && !now.Before(s.BakeUntil) && !s.Paused:
			s.Steps[s.Step].Baked = now
			events = append(events, fmt.Sprintf("step %d of %d (%s) baked", s.Step+1, len(s.Steps), s.Steps[s.Step].Label))
			if s.Step == len(s.Steps)-1 {
				s.Phase, s.BakeUntil = Complete, time.Time{}
				return append(events, "complete: revision "+short(s.Revision)+" is on every card it changes")
			}
			s.Step++
			s.Phase, s.BakeUntil = Applying, time.Time{}
			s.Steps[s.Step].Started = now
			events = append(events, fmt.Sprintf("step %d of %d (%s) started: %d card(s) released", s.Step+1, len(s.Steps), s.Steps[s.Step].Label, s.Steps[s.Step].Cards))
			// A step whose cards converged already (by hand, say) bakes.
			continue
		}
		return events
	}
}

// halting says why a failed rollout that should revert halts instead.
func (s *State) halting(p *spec.Rollout) string {
	if p.Failure() == spec.RolloutRevert && s.LastGood == "" {
		return "; no earlier revision is known good, so the rollout halts instead of reverting"
	}
	return ""
}

func (s *State) fail(f *Failure) {
	s.Phase, s.Failure, s.BakeUntil = Failed, f, time.Time{}
}

// Abort stops the rollout: no more cards change until a new commit.
func (s *State) Abort() {
	if s.Phase != Complete {
		s.Phase, s.BakeUntil = Aborted, time.Time{}
	}
}

// ToRevert lists the cards a failed rollout gives back their last good
// images: the failing step's released cards and every card that failed a
// check, less those already reverted. Empty unless the policy says revert
// and a last good revision is known.
func (s *State) ToRevert(p *spec.Rollout) []string {
	if s.Phase != Failed || p.Failure() != spec.RolloutRevert || s.LastGood == "" {
		return nil
	}
	from := 0
	if s.Step > 0 {
		from = s.Steps[s.Step-1].Cards
	}
	var out []string
	for _, id := range s.Cards[from:s.Steps[s.Step].Cards] {
		if !slices.Contains(s.Reverted, id) {
			out = append(out, id)
		}
	}
	if s.Failure != nil && s.Failure.Card != "" && !slices.Contains(out, s.Failure.Card) && !slices.Contains(s.Reverted, s.Failure.Card) {
		out = append(out, s.Failure.Card)
	}
	slices.SortFunc(out, cmp.Compare)
	return out
}

// Summary is one line for logs and status.
func (s *State) Summary() string {
	switch s.Phase {
	case Complete:
		return "rollout of " + short(s.Revision) + " complete"
	case Failed, Aborted:
		return fmt.Sprintf("rollout of %s %s at step %d of %d", short(s.Revision), s.Phase, s.Step+1, len(s.Steps))
	}
	line := fmt.Sprintf("rollout of %s: step %d of %d (%s), %s, %d of %d card(s) done", short(s.Revision), s.Step+1, len(s.Steps),
		s.Steps[s.Step].Label, s.Phase, len(s.Done), len(s.Cards))
	if s.Paused {
		line += ", paused"
	}
	return line
}

// StepState is where step i stands: baked, the rollout's phase for the
// step in progress, or pending.
func (s *State) StepState(i int) string {
	switch {
	case !s.Steps[i].Baked.IsZero():
		return "baked"
	case i == s.Step:
		return string(s.Phase)
	}
	return "pending"
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	if rev == "" {
		return "(no revision)"
	}
	return strings.TrimSpace(rev)
}
