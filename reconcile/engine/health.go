package engine

import (
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// CardHealth is what one declared card said about itself in an
// observation: what the controller exports as metrics.
type CardHealth struct {
	Node, Slot string
	Health     fpga.Health
}

// Health lists the health of the declared cards the observation found.
func Health(desired *spec.Fleet, obs *observed.Fleet) []CardHealth {
	var out []CardHealth
	found(desired, obs, func(node string, card *spec.FPGA, d *fpga.Device) {
		out = append(out, CardHealth{Node: node, Slot: card.Slot, Health: d.Health})
	})
	return out
}

// sick lists the declared cards that report problems, to be quarantined.
func sick(desired *spec.Fleet, obs *observed.Fleet, now time.Time) []state.Quarantine {
	var out []state.Quarantine
	found(desired, obs, func(node string, card *spec.FPGA, d *fpga.Device) {
		if !d.Health.OK() {
			out = append(out, state.Quarantine{Card: plans.CardID(node, card.Slot), Since: now.UTC(), Reason: strings.Join(d.Health.Problems, "; ")})
		}
	})
	return out
}

// found calls f for each declared card the observation found.
func found(desired *spec.Fleet, obs *observed.Fleet, f func(node string, card *spec.FPGA, d *fpga.Device)) {
	for i := range obs.Nodes {
		n := &obs.Nodes[i]
		dn, ok := desired.Node(n.Name)
		if !ok {
			continue
		}
		for j := range dn.FPGAs {
			for k := range n.FPGAs {
				if n.FPGAs[k].PCI == dn.FPGAs[j].PCI {
					f(n.Name, &dn.FPGAs[j], &n.FPGAs[k])
				}
			}
		}
	}
}
