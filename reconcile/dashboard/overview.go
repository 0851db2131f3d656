package dashboard

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
)

// overview is the front page's data.
type overview struct {
	Status controller.Status
	// Planned is false until a run has planned since the controller
	// started.
	Planned bool
	Fleet   fleetSummary
	// Counts are the cards in each state, in the order of States.
	Counts []stateCount
	// Map is every card's state, a letter each, nodes separated by "|",
	// in node order: the whole fleet, drawn by the page's script.
	Map string
	// Filter and the page of nodes it shows.
	State, Query   string
	Nodes          []nodeRow
	Page, Pages    int
	PageSize       int
	Matched, Total int
	Runs           []state.Run
}

type fleetSummary struct {
	Revision   string
	PlannedAt  string
	Drift      []string
	DriftTotal int
}

type stateCount struct {
	State CardState
	Cards int
}

// nodeRow is a node as the table lists it.
type nodeRow struct {
	Node
	Index int
	Cards []cardRow
}

type cardRow struct {
	Card
	State CardState
}

// maxRecentRuns is how many runs the front page lists.
const maxRecentRuns = 10

func (d *Dashboard) serveOverview(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := overview{Status: d.status.Status(), State: q.Get("state"), Query: strings.TrimSpace(q.Get("q")), PageSize: d.opts.PageSize}
	if o.State != "" && !validState(o.State) {
		http.Error(w, "state "+strconv.Quote(o.State)+": want one of converged, changing, held, failed, unhealthy, unknown", http.StatusBadRequest)
		return
	}
	o.Page, _ = strconv.Atoi(q.Get("page"))
	d.fill(&o)
	runs, err := d.history.Runs(maxRecentRuns)
	if err != nil {
		d.opts.Log.Warn("dashboard: history", "err", err)
	}
	o.Runs = runs
	d.render(w, r, "Fleet", "overview", o)
}

func validState(s string) bool {
	for _, st := range States {
		if string(st) == s {
			return true
		}
	}
	return false
}

// fill builds the map, the counts and the page of nodes from the view.
func (d *Dashboard) fill(o *overview) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	f := d.f
	if f == nil {
		return
	}
	o.Planned = true
	o.Fleet = fleetSummary{Revision: f.Revision, PlannedAt: f.PlannedAt.UTC().Format("2006-01-02 15:04:05Z"), Drift: f.Drift, DriftTotal: f.DriftTotal}
	counts := map[CardState]int{}
	var m strings.Builder
	m.Grow(len(f.Nodes) * 5)
	var matched []int
	for i := range f.Nodes {
		n := &f.Nodes[i]
		if i > 0 {
			m.WriteByte('|')
		}
		match := o.Query == "" || strings.Contains(n.Name, o.Query)
		has := o.State == ""
		for j := range n.Cards {
			s := n.Cards[j].State()
			counts[s]++
			m.WriteByte(s.letter())
			if string(s) == o.State {
				has = true
			}
		}
		if match && has {
			matched = append(matched, i)
		}
	}
	o.Map = m.String()
	for _, s := range States {
		o.Counts = append(o.Counts, stateCount{s, counts[s]})
	}
	o.Total, o.Matched = len(f.Nodes), len(matched)
	o.Pages = max(1, (len(matched)+o.PageSize-1)/o.PageSize)
	o.Page = min(max(o.Page, 1), o.Pages)
	from := (o.Page - 1) * o.PageSize
	for _, i := range matched[from:min(from+o.PageSize, len(matched))] {
		n := f.Nodes[i]
		row := nodeRow{Node: n, Index: i}
		for _, c := range n.Cards {
			row.Cards = append(row.Cards, cardRow{c, c.State()})
		}
		o.Nodes = append(o.Nodes, row)
	}
}
