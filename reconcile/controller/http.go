package controller

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxHookBody bounds a webhook's body; push events are far smaller.
const maxHookBody = 4 << 20

// maxDeliveryID bounds a delivery ID; GitHub's and GitLab's are UUIDs.
const maxDeliveryID = 128

// Handler serves the controller's HTTP API, with the webhook bounds of
// the default ServeOptions:
//
//	GET  /status        the Status as JSON
//	GET  /metrics       Prometheus metrics
//	GET  /healthz       200 while the loop runs
//	POST /hooks/github  push webhook, X-Hub-Signature-256
//	POST /hooks/gitlab  push webhook, X-Gitlab-Token
//	POST /reconcile     run now            (admin token)
//	POST /suspend       stop running       (admin token)
//	POST /resume        run again          (admin token)
//	GET  /rollout       the policy's rollout
//	POST /rollout/pause, /rollout/resume, /rollout/abort
//	                    (admin token)
//	GET  /quarantine    the quarantined cards
//	POST /quarantine/release?card=ID&...|all=true
//	                    release cards      (admin token)
//	POST /runs/{id}/approve  let the run's disruptive changes go ahead (admin token)
//	GET  /              the dashboard, with ServeOptions.UI
//
// Each handler remembers the deliveries it took on its own.
func (c *Controller) Handler() http.Handler { return c.handler(ServeOptions{}.withDefaults()) }

func (c *Controller) handler(opts ServeOptions) http.Handler {
	hooks := &hooks{
		c:          c,
		bodies:     make(chan struct{}, opts.MaxHookBodies),
		timeout:    opts.HookBodyTimeout,
		deliveries: newDeliveries(opts.ReplayWindow, opts.MaxDeliveries),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", c.serveStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /hooks/github", hooks.serveGitHub)
	mux.HandleFunc("POST /hooks/gitlab", hooks.serveGitLab)
	mux.HandleFunc("POST /reconcile", c.admin(func(w http.ResponseWriter, r *http.Request) {
		c.answerTrigger(w, c.Trigger("manual"))
	}))
	mux.HandleFunc("POST /suspend", c.admin(func(w http.ResponseWriter, r *http.Request) {
		c.setSuspended(w, true)
	}))
	mux.HandleFunc("POST /resume", c.admin(func(w http.ResponseWriter, r *http.Request) {
		c.setSuspended(w, false)
	}))
	mux.HandleFunc("GET /quarantine", c.serveQuarantine)
	mux.HandleFunc("GET /rollout", c.serveRollout)
	mux.HandleFunc("POST /rollout/pause", c.admin(c.serveRolloutControl(pauseRollout)))
	mux.HandleFunc("POST /rollout/resume", c.admin(c.serveRolloutControl(resumeRollout)))
	mux.HandleFunc("POST /rollout/abort", c.admin(c.serveRolloutControl(abortRollout)))
	mux.HandleFunc("POST /quarantine/release", c.admin(c.serveRelease))
	mux.HandleFunc("POST /runs/{id}/approve", c.admin(c.serveApprove))
	if opts.UI != nil {
		mux.Handle("GET /", opts.UI)
	}
	return mux
}

func (c *Controller) serveStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, c.Status())
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

type hookAnswer struct {
	Triggered bool   `json:"triggered"`
	Message   string `json:"message,omitempty"`
}

func (c *Controller) answerTrigger(w http.ResponseWriter, triggered bool) {
	if !triggered {
		writeJSON(w, http.StatusAccepted, hookAnswer{false, "suspended: no run triggered"})
		return
	}
	writeJSON(w, http.StatusAccepted, hookAnswer{true, "run triggered"})
}

// admin guards an endpoint with the admin bearer token.
func (c *Controller) admin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(c.opts.AdminToken) == 0 {
			http.Error(w, "admin endpoints are off: start the controller with --admin-token-file", http.StatusForbidden)
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(tok), c.opts.AdminToken) != 1 {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h(w, r)
	}
}

func (c *Controller) serveApprove(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil || id == 0 {
		http.Error(w, "run "+strconv.Quote(r.PathValue("id"))+": want a run number", http.StatusBadRequest)
		return
	}
	st, err := c.Approve(id)
	switch {
	case errors.Is(err, ErrNothingToApprove), errors.Is(err, ErrNotAwaiting):
		http.Error(w, err.Error(), http.StatusConflict)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (c *Controller) setSuspended(w http.ResponseWriter, on bool) {
	if err := c.SetSuspended(on); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, c.Status())
}
