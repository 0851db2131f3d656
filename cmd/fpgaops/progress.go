package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
)

// applyProgress draws an apply's progress on a terminal: one status line,
// rewritten in place, with a bar over the plan's runnable changes and a
// per-card counter. Off a terminal it draws nothing: logs and the final
// report say what happened.
type applyProgress struct {
	mu      sync.Mutex
	w       io.Writer
	total   int
	done    int
	failed  int
	cards   map[string]*cardCount
	cardsOK int
	cardsKO int
	last    string
	drawn   bool
}

// cardCount is how far one card's chain has come.
type cardCount struct {
	total, finished int
	failed, started bool
}

// newApplyProgress returns a progress drawer for the plan, or
// execute.NoProgress when w is not a terminal.
func newApplyProgress(w io.Writer, p *reconcile.Plan) execute.Progress {
	if !isTerminal(w) {
		return execute.NoProgress{}
	}
	return newProgressDrawer(w, p)
}

func newProgressDrawer(w io.Writer, p *reconcile.Plan) *applyProgress {
	a := &applyProgress{w: w, cards: map[string]*cardCount{}}
	for i := range p.Changes {
		c := &p.Changes[i]
		if !c.Runnable() {
			continue
		}
		a.total++
		k := cardKey(c)
		if a.cards[k] == nil {
			a.cards[k] = &cardCount{}
		}
		a.cards[k].total++
	}
	return a
}

func cardKey(c *reconcile.Change) string {
	if c.Card == "" {
		return "node/" + c.Node
	}
	return reconcile.CardID(c.Node, c.Card)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (a *applyProgress) Started(c *reconcile.Change) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cc := a.cards[cardKey(c)]; cc != nil {
		cc.started = true
	}
	a.last = c.ID
	a.draw()
}

func (a *applyProgress) Finished(c *reconcile.Change, r execute.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done++
	failed := r.Status == execute.StatusFailed || r.Status == execute.StatusBlocked
	if failed {
		a.failed++
	}
	if cc := a.cards[cardKey(c)]; cc != nil {
		cc.finished++
		if failed && !cc.failed {
			cc.failed = true
			a.cardsKO++
		}
		if cc.finished == cc.total && !cc.failed {
			a.cardsOK++
		}
	}
	a.last = c.ID
	a.draw()
}

// Close ends the status line so that what follows starts on its own line.
func (a *applyProgress) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.drawn {
		fmt.Fprintln(a.w)
		a.drawn = false
	}
}

const barWidth = 24

// line is the status line: bar, changes, cards, the last change touched.
func (a *applyProgress) line() string {
	filled := 0
	if a.total > 0 {
		filled = a.done * barWidth / a.total
	}
	inFlight := 0
	for _, cc := range a.cards {
		if cc.started && cc.finished < cc.total && !cc.failed {
			inFlight++
		}
	}
	s := fmt.Sprintf("[%s%s] %d/%d changes | cards: %d/%d done, %d in progress, %d failed",
		strings.Repeat("#", filled), strings.Repeat(".", barWidth-filled),
		a.done, a.total, a.cardsOK, len(a.cards), inFlight, a.cardsKO)
	if a.last != "" {
		s += " | " + a.last
	}
	return s
}

func (a *applyProgress) draw() {
	// \r returns to the line's start, \x1b[K clears what the last draw
	// left beyond the new text.
	fmt.Fprintf(a.w, "\r%s\x1b[K", a.line())
	a.drawn = true
}
