package controller

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// maxHookBody bounds a webhook's body; push events are far smaller.
const maxHookBody = 4 << 20

// Handler serves the controller's HTTP API:
//
//	GET  /status        the Status as JSON
//	GET  /metrics       Prometheus metrics
//	GET  /healthz       200 while the loop runs
//	POST /hooks/github  push webhook, X-Hub-Signature-256
//	POST /hooks/gitlab  push webhook, X-Gitlab-Token
//	POST /reconcile     run now            (admin token)
//	POST /suspend       stop running       (admin token)
//	POST /resume        run again          (admin token)
func (c *Controller) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", c.serveStatus)
	mux.Handle("GET /metrics", promhttp.HandlerFor(c.opts.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /hooks/github", c.serveGitHub)
	mux.HandleFunc("POST /hooks/gitlab", c.serveGitLab)
	mux.HandleFunc("POST /reconcile", c.admin(func(w http.ResponseWriter, r *http.Request) {
		c.answerTrigger(w, c.Trigger("manual"))
	}))
	mux.HandleFunc("POST /suspend", c.admin(func(w http.ResponseWriter, r *http.Request) {
		c.setSuspended(w, true)
	}))
	mux.HandleFunc("POST /resume", c.admin(func(w http.ResponseWriter, r *http.Request) {
		c.setSuspended(w, false)
	}))
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

// hookBody reads a webhook's raw body, which the signature covers.
func hookBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxHookBody))
	if err != nil {
		http.Error(w, "body too large or unreadable", http.StatusRequestEntityTooLarge)
		return nil, false
	}
	return body, true
}

func (c *Controller) serveGitHub(w http.ResponseWriter, r *http.Request) {
	if len(c.opts.WebhookSecret) == 0 {
		http.NotFound(w, r)
		return
	}
	body, ok := hookBody(w, r)
	if !ok {
		return
	}
	if err := VerifyGitHub(c.opts.WebhookSecret, body, r.Header.Get("X-Hub-Signature-256")); err != nil {
		c.unauthorized(w, "github", err)
		return
	}
	switch ev := r.Header.Get("X-GitHub-Event"); ev {
	case "ping":
		c.metrics.webhooks.WithLabelValues("github", "ping").Inc()
		writeJSON(w, http.StatusOK, hookAnswer{false, "pong"})
		return
	case "push", "":
	default:
		c.metrics.webhooks.WithLabelValues("github", "ignored").Inc()
		writeJSON(w, http.StatusAccepted, hookAnswer{false, "event " + ev + " ignored"})
		return
	}
	c.metrics.webhooks.WithLabelValues("github", "accepted").Inc()
	c.answerTrigger(w, c.Trigger("webhook/github"))
}

func (c *Controller) serveGitLab(w http.ResponseWriter, r *http.Request) {
	if len(c.opts.WebhookSecret) == 0 {
		http.NotFound(w, r)
		return
	}
	if _, ok := hookBody(w, r); !ok {
		return
	}
	if err := VerifyGitLab(c.opts.WebhookSecret, r.Header.Get("X-Gitlab-Token")); err != nil {
		c.unauthorized(w, "gitlab", err)
		return
	}
	switch ev := r.Header.Get("X-Gitlab-Event"); ev {
	case "Push Hook", "Tag Push Hook", "":
	default:
		c.metrics.webhooks.WithLabelValues("gitlab", "ignored").Inc()
		writeJSON(w, http.StatusAccepted, hookAnswer{false, "event " + ev + " ignored"})
		return
	}
	c.metrics.webhooks.WithLabelValues("gitlab", "accepted").Inc()
	c.answerTrigger(w, c.Trigger("webhook/gitlab"))
}

func (c *Controller) unauthorized(w http.ResponseWriter, provider string, err error) {
	c.metrics.webhooks.WithLabelValues(provider, "unauthorized").Inc()
	c.log.Warn("webhook refused", "provider", provider, "err", err)
	http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
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

func (c *Controller) setSuspended(w http.ResponseWriter, on bool) {
	if err := c.SetSuspended(on); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, c.Status())
}
