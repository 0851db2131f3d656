// Package dashboard is the controller's web dashboard, served at / on the
// controller's listener: the fleet as a map of nodes by cards coloured by
// state (converged, changing, held, failed, unhealthy, unknown) with each
// card's image, VFs and holder VMs; the revision in force and the
// conditions; the rollout, step by step; what is held and why; what
// awaits approval; drift; and the
// history of runs with each run's changes.
//
// It is read-only: approving a run is the controller's admin API, which
// the page calls with the admin token a person types. It needs nothing
// from the network: html/template pages, a little hand-written script and
// style embedded in the binary. It updates live: the page listens to
// server-sent events and reloads its content when the view changes.
//
// The fleet view is built from the last run's plan (the Watcher that
// controller.Step calls) and kept in memory, a few hundred bytes per
// card; large fleets are shown a page of nodes at a time, with the whole
// fleet drawn as one map.
package dashboard

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Status gives the controller's status: controller.Controller.
type Status interface {
	Status() controller.Status
}

// History gives the runs: state.Store.
type History interface {
	Runs(limit int) ([]state.Run, error)
	Run(id uint64) (*state.Run, error)
}

// Options tune a Dashboard; zero values take the defaults.
type Options struct {
	// PageSize is how many nodes a page lists (default 100).
	PageSize int
	// MaxStreams bounds the pages listening for updates at once
	// (default 64); StreamFor bounds how long one listens before its
	// browser reconnects (default 10 minutes).
	MaxStreams int
	StreamFor  time.Duration
	// Poll is how often a listening page is checked for news (default
	// 500 ms).
	Poll time.Duration
	Log  *slog.Logger
}

// Dashboard serves the pages. It is also the controller.Watcher that
// keeps the fleet view.
type Dashboard struct {
	view
	status  Status
	history History
	opts    Options
	pages   *template.Template
	streams chan struct{}
	mux     *http.ServeMux
}

var _ controller.Watcher = (*Dashboard)(nil)

// New makes a dashboard over the controller's status and history.
func New(status Status, history History, opts Options) (*Dashboard, error) {
	if opts.PageSize <= 0 {
		opts.PageSize = 100
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = 64
	}
	if opts.StreamFor <= 0 {
		opts.StreamFor = 10 * time.Minute
	}
	if opts.Poll <= 0 {
		opts.Poll = 500 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	pages, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	d := &Dashboard{status: status, history: history, opts: opts, pages: pages, streams: make(chan struct{}, opts.MaxStreams)}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	d.mux = http.NewServeMux()
	d.mux.HandleFunc("GET /{$}", d.serveOverview)
	d.mux.HandleFunc("GET /runs", d.serveRuns)
	d.mux.HandleFunc("GET /runs/{id}", d.serveRun)
	d.mux.HandleFunc("GET /events", d.serveEvents)
	d.mux.Handle("GET /ui/", http.StripPrefix("/ui/", http.FileServerFS(static)))
	return d, nil
}

// ServeHTTP serves the dashboard's paths, and 404 for others.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// Everything is the dashboard's own: no inline script, no other
	// origin, no framing.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	d.mux.ServeHTTP(w, r)
}

// page is what every page shows: the controller's state, and its own
// content, rendered apart so that a live update fetches only that.
type page struct {
	Title  string
	Status controller.Status
	Main   template.HTML
}

// render writes a page; a request with X-Fpgaops-Partial gets only its
// content.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, title, main string, data any) {
	var body bytes.Buffer
	if err := d.pages.ExecuteTemplate(&body, main, data); err != nil {
		d.opts.Log.Error("dashboard page", "page", main, "err", err)
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if r.Header.Get("X-Fpgaops-Partial") != "" {
		w.Write(body.Bytes())
		return
	}
	var out bytes.Buffer
	if err := d.pages.ExecuteTemplate(&out, "layout", page{Title: title, Status: d.status.Status(), Main: template.HTML(body.String())}); err != nil {
		http.Error(w, "dashboard: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Write(out.Bytes())
}

func (d *Dashboard) serveRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := d.history.Runs(maxRunsListed)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	d.render(w, r, "Runs", "runs", runs)
}

// maxRunsListed bounds the runs page; older runs are a URL away.
const maxRunsListed = 200

func (d *Dashboard) serveRun(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		http.Error(w, "run "+strconv.Quote(r.PathValue("id"))+": want a run number", http.StatusBadRequest)
		return
	}
	run, err := d.history.Run(id)
	switch {
	case errors.Is(err, state.ErrNoRun):
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	d.render(w, r, fmt.Sprintf("Run %d", id), "run", runPage{Run: run, Status: d.status.Status()})
}

// runPage is a run with the controller's state, to offer its approval.
type runPage struct {
	Run    *state.Run
	Status controller.Status
}

// serveEvents streams "update" events while the page is open: one each
// time the view or the controller's status changes, checked every Poll.
// The stream ends after StreamFor (the browser reconnects), and at most
// MaxStreams are open at once.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	select {
	case d.streams <- struct{}{}:
		defer func() { <-d.streams }()
	default:
		w.Header().Set("Retry-After", "30")
		http.Error(w, "too many pages are listening; reload later", http.StatusServiceUnavailable)
		return
	}
	rc := http.NewResponseController(w)
	// The server's write timeout is for answers, not streams; this one
	// ends on its own.
	if err := rc.SetWriteDeadline(time.Now().Add(d.opts.StreamFor + 10*time.Second)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	end := time.NewTimer(d.opts.StreamFor)
	defer end.Stop()
	tick := time.NewTicker(d.opts.Poll)
	defer tick.Stop()
	last := ""
	for n := 0; ; n++ {
		if v := d.version(); v != last {
			last = v
			fmt.Fprintf(w, "event: update\ndata: %s\n\n", v)
		} else if n%30 == 0 {
			fmt.Fprint(w, ": still here\n\n") // keeps proxies from closing it
		}
		if err := rc.Flush(); err != nil {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-end.C:
			return
		case <-tick.C:
		}
	}
}

// version changes when anything a page shows may have: the fleet view,
// or the controller's last run, activity, suspension, approvals and
// rollout.
func (d *Dashboard) version() string {
	st := d.status.Status()
	var last uint64
	if st.LastRun != nil {
		last = st.LastRun.ID
	}
	busy := false
	if c, ok := st.Condition(controller.Reconciling); ok {
		busy = c.Status == "True"
	}
	approved := st.Approved != nil
	rollout := ""
	if st.Rollout != nil {
		rollout = st.Rollout.Summary()
	}
	return fmt.Sprintf("%d-%d-%t-%t-%t-%t-%s", d.view.version.Load(), last, busy, st.Suspended, st.Awaiting != nil, approved, rollout)
}

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"timep": func(t *time.Time) string {
		if t == nil {
			return "-"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		if s == "" {
			return "-"
		}
		return s
	},
	"seconds": func(s float64) string {
		return time.Duration(s * float64(time.Second)).Round(time.Millisecond).String()
	},
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
}
