package reconcile

import (
	"fmt"
	"slices"

	"github.com/fpgaops/fpgaops/plans"
)

// assignWaves groups the runnable changes into waves within the budget and
// returns how many waves there are. Cards joined by a dependency (a VM
// moving between them) form one group and share a wave; a group that
// alone exceeds the budget is held. The objects a backend shares across
// nodes (a cloud's images, device profiles, flavors) are made first, in a
// wave of their own: they disrupt nothing and take no card, and the cards
// that need them follow. changes are in plan order, so a card's changes
// are adjacent.
func assignWaves(changes []plans.Change, idx map[string]int, b plans.Budget) int {
	// Number the cards, then union-find over them.
	card := make([]int, len(changes))
	ncards := 0
	for i := range changes {
		if i > 0 && (changes[i].Node != changes[i-1].Node || changes[i].Card != changes[i-1].Card) {
			ncards++
		}
		card[i] = ncards
	}
	ncards++
	parent := make([]int, ncards)
	for i := range parent {
		parent[i] = i
	}
	find := func(x int) int {
		for parent[x] != x {
			parent[x] = parent[parent[x]]
			x = parent[x]
		}
		return x
	}
	shared := func(c *plans.Change) bool { return c.Node == "" }
	for i := range changes {
		if !changes[i].Runnable() || shared(&changes[i]) {
			continue
		}
		for _, d := range changes[i].DependsOn {
			if j, ok := idx[d]; ok && card[j] != card[i] && !shared(&changes[j]) {
				a, b := find(card[i]), find(card[j])
				if a < b {
					parent[b] = a
				} else if b < a {
					parent[a] = b
				}
			}
		}
	}
	type group struct {
		members  []int
		cards    int
		lastCard int
		vms      []string
	}
	groups := make(map[int]*group)
	var order []int
	wave := 0
	for i := range changes {
		c := &changes[i]
		if !c.Runnable() {
			continue
		}
		if shared(c) {
			c.Wave, wave = 1, 1
			continue
		}
		root := find(card[i])
		g, ok := groups[root]
		if !ok {
			g = &group{lastCard: -1}
			groups[root] = g
			order = append(order, root)
		}
		g.members = append(g.members, i)
		if card[i] != g.lastCard {
			g.cards++
			g.lastCard = card[i]
		}
		if c.Disruptive && !slices.Contains(g.vms, c.VM()) {
			g.vms = append(g.vms, c.VM())
		}
	}
	first := wave + 1
	cards, vms := 0, 0
	for _, root := range order {
		g := groups[root]
		if g.cards > b.MaxCardsInFlight || len(g.vms) > b.MaxDisruptedVMs {
			why := fmt.Sprintf("changing %d card(s) and disrupting %d VM(s) together exceeds the budget of %d card(s) and %d disrupted VM(s) at once",
				g.cards, len(g.vms), b.MaxCardsInFlight, b.MaxDisruptedVMs)
			for _, i := range g.members {
				changes[i].Held = &plans.Hold{Gate: plans.GateBudget, Why: why}
			}
			continue
		}
		if wave < first || cards+g.cards > b.MaxCardsInFlight || vms+len(g.vms) > b.MaxDisruptedVMs {
			wave++
			cards, vms = 0, 0
		}
		cards += g.cards
		vms += len(g.vms)
		for _, i := range g.members {
			changes[i].Wave = wave
		}
	}
	return wave
}
