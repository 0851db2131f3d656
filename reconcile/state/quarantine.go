package state

import (
	"slices"
	"strings"
	"time"
)

// QuarantineFile holds the quarantined cards.
const QuarantineFile = "quarantine.json"

// Quarantine is a card a run found sick: fpgaops gives it no work until
// an operator releases it, even when it reads healthy again, since a
// fatal error that cleared itself says more about the card than the
// reading after it.
type Quarantine struct {
	// Card is the card's ID, "node/N/fpga/SLOT".
	Card  string    `json:"card"`
	Since time.Time `json:"since"`
	// Reason is what the card reported when it was quarantined.
	Reason string `json:"reason"`
}

// Why is the quarantine as the plan shows it.
func (q Quarantine) Why() string {
	return "since " + q.Since.UTC().Format(time.RFC3339) + ": " + q.Reason
}

// Quarantined lists the quarantined cards, by card ID.
func (s *Local) Quarantined() ([]Quarantine, error) {
	var qs []Quarantine
	if _, err := s.readJSON(QuarantineFile, &qs); err != nil {
		return nil, err
	}
	return qs, nil
}

// Quarantine adds cards to the quarantine; a card already in it keeps its
// first record.
func (s *Local) Quarantine(add ...Quarantine) error {
	have, err := s.Quarantined()
	if err != nil {
		return err
	}
	add = slices.DeleteFunc(slices.Clone(add), func(q Quarantine) bool {
		return slices.ContainsFunc(have, func(o Quarantine) bool { return o.Card == q.Card })
	})
	if len(add) == 0 {
		return nil
	}
	_, err = s.updateQuarantine(func(qs []Quarantine) ([]Quarantine, []Quarantine) {
		for _, q := range add {
			if !slices.ContainsFunc(qs, func(o Quarantine) bool { return o.Card == q.Card }) {
				qs = append(qs, q)
			}
		}
		return qs, nil
	})
	return err
}

// Release takes cards out of the quarantine, every card when none is
// named, and returns those it released.
func (s *Local) Release(cards ...string) ([]Quarantine, error) {
	return s.updateQuarantine(func(qs []Quarantine) (kept, released []Quarantine) {
		for _, q := range qs {
			if len(cards) == 0 || slices.Contains(cards, q.Card) {
				released = append(released, q)
			} else {
				kept = append(kept, q)
			}
		}
		return kept, released
	})
}

func (s *Local) updateQuarantine(change func([]Quarantine) (next, out []Quarantine)) ([]Quarantine, error) {
	if err := s.writable(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	qs, err := s.Quarantined()
	if err != nil {
		return nil, err
	}
	next, out := change(qs)
	slices.SortFunc(next, func(a, b Quarantine) int { return strings.Compare(a.Card, b.Card) })
	if next == nil {
		next = []Quarantine{}
	}
	return out, s.writeJSON(QuarantineFile, next)
}
