package render

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/fpgaops/fpgaops/plans"
)

// Bar draws an apply's progress on a terminal: one status line,
// rewritten in place, with a bar over the plan's runnable changes and a
// per-card counter. It is an execute.Progress.
type Bar struct {
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

// NewBar returns the bar of the plan's apply.
func NewBar(w io.Writer, p *plans.Plan) *Bar {
	a := &Bar{w: w, cards: map[string]*cardCount{}}
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

// cardKey is what a change counts under: its card, else its object.
func cardKey(c *plans.Change) string {
	if c.Card == "" {
		return c.Object
	}
	return plans.CardID(c.Node, c.Card)
}

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (a *Bar) Started(c *plans.Change) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if cc := a.cards[cardKey(c)]; cc != nil {
		cc.started = true
	}
	a.last = c.ID
	a.draw()
}

func (a *Bar) Finished(c *plans.Change, r plans.Result) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done++
	failed := r.Status == plans.StatusFailed || r.Status == plans.StatusBlocked
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
func (a *Bar) Close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.drawn {
		fmt.Fprintln(a.w)
		a.drawn = false
	}
}

const barWidth = 24

// line is the status line: bar, changes, cards, the last change touched.
func (a *Bar) line() string {
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

func (a *Bar) draw() {
	// \r returns to the line's start, \x1b[K clears what the last draw
	// left beyond the new text.
	fmt.Fprintf(a.w, "\r%s\x1b[K", a.line())
	a.drawn = true
}

// Lines prints one line per finished change with a counter: progress off
// a terminal (logs, CI). It is an execute.Progress.
type Lines struct {
	mu    sync.Mutex
	w     io.Writer
	done  int
	total int
}

// NewLines counts against the plan's runnable changes.
func NewLines(w io.Writer, p *plans.Plan) *Lines {
	return &Lines{w: w, total: p.Summary.ByAction.Total()}
}

func (p *Lines) Started(*plans.Change) {}

func (p *Lines) Finished(c *plans.Change, r plans.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	fmt.Fprintf(p.w, "[%d/%d] %s %s: %s\n", p.done, p.total, Symbol(c.Action), c.ID, r.Status)
}
