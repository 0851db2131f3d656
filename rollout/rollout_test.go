package rollout

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/spec"
)

func TestOrderSpreadsOverGroupsThenNodes(t *testing.T) {
	var cards []Card
	for _, c := range []struct{ node, rack string }{
		{"n1", "r1"}, {"n1", "r1"}, {"n2", "r1"}, {"n3", "r2"}, {"n3", "r2"}, {"n4", "r3"},
	} {
		cards = append(cards, Card{ID: c.node + "/" + string(rune('a'+len(cards))), Node: c.node, Group: c.rack})
	}
	got := Order(cards)
	// r1 takes n1's first card, r2 n3's, r3 n4's; then r1 n2's, r2 n3's
	// second; then r1 n1's second.
	want := []string{"n1/a", "n3/d", "n4/f", "n2/c", "n3/e", "n1/b"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

func TestSteps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []string
		n     int
		want  []int
	}{
		{"canary then shares", []string{"1", "10%", "50%", "100%"}, 800, []int{1, 80, 400, 800}},
		{"shares rounded up", []string{"10%", "100%"}, 5, []int{1, 5}},
		{"empty steps merged", []string{"1", "10%", "100%"}, 5, []int{1, 5}},
		{"a count beyond the cards", []string{"50", "100%"}, 8, []int{8}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []int
			for _, s := range Steps(tc.steps, tc.n) {
				got = append(got, s.Cards)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("steps %v of %d cards: %v, want %v", tc.steps, tc.n, got, tc.want)
			}
		})
	}
}

var t0 = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func fourCards(p *spec.Rollout) *State {
	var cards []Card
	for _, n := range []string{"a", "b", "c", "d"} {
		cards = append(cards, Card{ID: "node/" + n + "/fpga/pac0", Node: n})
	}
	return Start(p, "rev2", "rev1", cards, t0)
}

func converged(ids ...string) map[string]Reading {
	m := map[string]Reading{}
	for _, id := range ids {
		m[id] = Reading{Converged: true}
	}
	return m
}

// A rollout goes step by step: a step's cards converge, bake, and the
// next step is released; the cards beyond are held with their step.
func TestStepsBakeInTurn(t *testing.T) {
	p := &spec.Rollout{Steps: []string{"1", "50%", "100%"}, Bake: spec.Duration(time.Minute)}
	s := fourCards(p)
	a, b, c, d := s.Cards[0], s.Cards[1], s.Cards[2], s.Cards[3]
	if h := s.Hold(b); !strings.Contains(h, "rollout step 2 of 3 (50%): waits for step 1 to bake") {
		t.Fatalf("hold of %s: %q", b, h)
	}
	if h := s.Hold(a); h != "" {
		t.Fatalf("the first card is held: %q", h)
	}
	s.Converged(p, []string{a}, t0)
	if s.Phase != Baking || !s.BakeUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("after the canary converged: %s until %s", s.Phase, s.BakeUntil)
	}
	s.Evaluate(p, converged(a), nil, t0.Add(30*time.Second))
	if s.Phase != Baking || s.Step != 0 {
		t.Fatalf("half-way through the bake: step %d %s", s.Step, s.Phase)
	}
	s.Evaluate(p, converged(a), nil, t0.Add(time.Minute))
	if s.Step != 1 || s.Phase != Applying || s.Hold(b) != "" || s.Hold(c) == "" {
		t.Fatalf("after the bake: step %d %s; holds %q %q", s.Step, s.Phase, s.Hold(b), s.Hold(c))
	}
	s.Converged(p, []string{b}, t0.Add(2*time.Minute))
	s.Evaluate(p, converged(a, b), nil, t0.Add(3*time.Minute))
	s.Converged(p, []string{c, d}, t0.Add(4*time.Minute))
	s.Evaluate(p, converged(a, b, c, d), nil, t0.Add(5*time.Minute))
	if s.Phase != Complete || s.Hold(d) != "" {
		t.Fatalf("at the end: %s, %s", s.Phase, s.Summary())
	}
	for i, st := range s.Steps {
		if st.Started.IsZero() || st.Baked.IsZero() {
			t.Errorf("step %d: %+v", i+1, st)
		}
	}
}

// A converged card that fails a check fails the rollout, unless the
// policy tolerates it; a failed rollout holds every card and reverts the
// failing step's cards.
func TestFailureAndRevert(t *testing.T) {
	for _, tc := range []struct {
		name         string
		maxUnhealthy int
		wantPhase    Phase
	}{{"none tolerated", 0, Failed}, {"one tolerated", 1, Baking}} {
		t.Run(tc.name, func(t *testing.T) {
			p := &spec.Rollout{Steps: []string{"1", "50%", "100%"}, Bake: spec.Duration(time.Minute), MaxUnhealthy: tc.maxUnhealthy}
			s := fourCards(p)
			a, b, c := s.Cards[0], s.Cards[1], s.Cards[2]
			s.Converged(p, []string{a}, t0)
			s.Evaluate(p, converged(a), nil, t0.Add(time.Minute))
			r := converged(a)
			r[b] = Reading{Converged: true, Failed: []CheckFailure{{Check: "card", Reason: "port 0 errors/errors = 0x1"}}}
			s.Evaluate(p, r, nil, t0.Add(90*time.Second))
			if s.Phase != tc.wantPhase {
				t.Fatalf("phase %s, want %s", s.Phase, tc.wantPhase)
			}
			if tc.wantPhase != Failed {
				return
			}
			if s.Failure.Card != b || s.Failure.Check != "card" {
				t.Fatalf("failure %+v", s.Failure)
			}
			if h := s.Hold(c); !strings.Contains(h, "failed (card "+b+", check card: port 0 errors/errors = 0x1)") {
				t.Fatalf("hold %q", h)
			}
			if got := s.ToRevert(p); !reflect.DeepEqual(got, []string{b}) {
				t.Fatalf("to revert %v, want the failing step's card %s", got, b)
			}
			s.Reverted = append(s.Reverted, b)
			if got := s.ToRevert(p); len(got) != 0 {
				t.Fatalf("reverted twice: %v", got)
			}
			halt := *p
			halt.OnFailure = spec.RolloutHalt
			s.Reverted = nil
			if got := s.ToRevert(&halt); len(got) != 0 {
				t.Fatalf("halt reverts %v", got)
			}
		})
	}
}

// A fleet-wide check fails the rollout at once; a paused rollout releases
// nothing more.
func TestFleetCheckAndPause(t *testing.T) {
	p := &spec.Rollout{Steps: []string{"1", "100%"}, Bake: spec.Duration(time.Minute)}
	s := fourCards(p)
	s.Paused = true
	s.Converged(p, []string{s.Cards[0]}, t0)
	s.Evaluate(p, converged(s.Cards[0]), nil, t0.Add(time.Hour))
	if s.Step != 0 || s.Phase != Baking {
		t.Fatalf("a paused rollout moved on: step %d %s", s.Step, s.Phase)
	}
	if h := s.Hold(s.Cards[1]); !strings.Contains(h, "paused") {
		t.Fatalf("hold %q", h)
	}
	s.Paused = false
	s.Evaluate(p, converged(s.Cards[0]), []CheckFailure{{Check: "errors", Reason: "no result"}}, t0.Add(2*time.Hour))
	if s.Phase != Failed || s.Failure.Card != "" || s.Failure.Check != "errors" {
		t.Fatalf("%s %+v", s.Phase, s.Failure)
	}
}
