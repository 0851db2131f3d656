package render

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/fpgaops/fpgaops/observed"
)

// ObserveBar draws an observation's progress on a terminal: one status
// line, rewritten in place, with a bar over the fleet's nodes, how many
// answered and how many are unknown. Observed may be called from many
// goroutines at once.
type ObserveBar struct {
	mu      sync.Mutex
	w       io.Writer
	total   int
	done    int
	unknown int
	// drawn is the bar's last width in steps; drawing only when it or the
	// unknown count moves keeps a 10,000-node fleet to a few hundred
	// writes.
	drawnStep, drawnUnknown int
	drawn                   bool
}

// observeSteps is how finely the bar moves: at most this many redraws
// for the nodes that answer.
const observeSteps = 200

// NewObserveBar returns the bar of an observation of total nodes, drawn
// at once so that a slow first node does not leave the terminal blank.
func NewObserveBar(w io.Writer, total int) *ObserveBar {
	b := &ObserveBar{w: w, total: total}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw()
	return b
}

// Observed counts a node whose observation has ended.
func (b *ObserveBar) Observed(n observed.Node) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done++
	if n.State != observed.NodeOK {
		b.unknown++
	}
	if b.step() != b.drawnStep || b.unknown != b.drawnUnknown || b.done == b.total {
		b.draw()
	}
}

// Close ends the status line so that what follows starts on its own line.
func (b *ObserveBar) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drawn {
		fmt.Fprintln(b.w)
		b.drawn = false
	}
}

func (b *ObserveBar) step() int {
	if b.total == 0 {
		return observeSteps
	}
	return b.done * observeSteps / b.total
}

func (b *ObserveBar) draw() {
	filled := barWidth
	if b.total > 0 {
		filled = b.done * barWidth / b.total
	}
	fmt.Fprintf(b.w, "\rObserving [%s%s] %d/%d nodes, %d unknown\x1b[K",
		strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled), b.done, b.total, b.unknown)
	b.drawnStep, b.drawnUnknown, b.drawn = b.step(), b.unknown, true
}

// ObservedSummary is one line about an observation: its nodes, how many
// are unknown, their cards and VMs, and the functions the VMs hold.
func ObservedSummary(obs *observed.Fleet) string {
	var unknown, cards, vms, held int
	for i := range obs.Nodes {
		n := &obs.Nodes[i]
		if n.State != observed.NodeOK {
			unknown++
		}
		cards += len(n.FPGAs)
		vms += len(n.VMs)
		for j := range n.VMs {
			held += len(n.VMs[j].Hostdevs)
		}
	}
	return fmt.Sprintf("%d nodes (%d unknown), %d FPGAs, %d VMs holding %d functions", len(obs.Nodes), unknown, cards, vms, held)
}
