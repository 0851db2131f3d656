package controller

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"
)

// Webhook verification errors. The handler answers 401 to each and
// triggers nothing.
var (
	ErrNoSignature  = errors.New("no signature")
	ErrBadSignature = errors.New("signature does not match")
)

// VerifyGitHub checks GitHub's X-Hub-Signature-256 header: "sha256=" and
// the hex HMAC-SHA256 of the raw body under the shared secret, compared in
// constant time.
func VerifyGitHub(secret, body []byte, header string) error {
	want, err := gitHubSignature(header)
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	if !hmac.Equal(want, mac.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

// gitHubSignature reads the HMAC an X-Hub-Signature-256 header claims.
func gitHubSignature(header string) ([]byte, error) {
	if header == "" {
		return nil, ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return nil, ErrBadSignature
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil || len(sig) != sha256.Size {
		return nil, ErrBadSignature
	}
	return sig, nil
}

// VerifyGitLab checks GitLab's X-Gitlab-Token header, which carries the
// secret itself, in constant time.
func VerifyGitLab(secret []byte, header string) error {
	if header == "" {
		return ErrNoSignature
	}
	if subtle.ConstantTimeCompare([]byte(header), secret) != 1 {
		return ErrBadSignature
	}
	return nil
}

// hooks serves the webhook endpoints within their bounds: MaxHookBodies
// bodies read at once, each within HookBodyTimeout and maxHookBody, and
// each delivery ID taken once per ReplayWindow.
type hooks struct {
	c          *Controller
	bodies     chan struct{}
	timeout    time.Duration
	deliveries *deliveries
}

// hookError is a webhook's answer when it is not taken.
type hookError struct {
	status int
	result string // the metric's result label
	msg    string
}

func (h *hooks) serveGitHub(w http.ResponseWriter, r *http.Request) {
	const provider = "github"
	if len(h.c.opts.WebhookSecret) == 0 {
		http.NotFound(w, r)
		return
	}
	want, err := gitHubSignature(r.Header.Get("X-Hub-Signature-256"))
	if err != nil {
		h.unauthorized(w, provider, err)
		return
	}
	id, herr := deliveryID(r, "X-GitHub-Delivery")
	if herr != nil {
		h.refuse(w, provider, herr)
		return
	}
	ev := r.Header.Get("X-GitHub-Event")
	mac := hmac.New(sha256.New, h.c.opts.WebhookSecret)
	// Only a pull request's body is read: it is kept, bounded, until its
	// signature is checked.
	var keep *bytes.Buffer
	dst := io.Writer(mac)
	if ev == "pull_request" {
		keep = &bytes.Buffer{}
		dst = io.MultiWriter(mac, &limitedBuffer{keep, maxPullBody})
	}
	if herr := h.readBody(w, r, dst); herr != nil {
		h.refuse(w, provider, herr)
		return
	}
	if !hmac.Equal(want, mac.Sum(nil)) {
		h.unauthorized(w, provider, ErrBadSignature)
		return
	}
	switch ev {
	case "ping":
		h.c.metrics.webhooks.WithLabelValues(provider, "ping").Inc()
		writeJSON(w, http.StatusOK, hookAnswer{false, "pong"})
		return
	case "pull_request":
		h.pull(w, provider, keep, parseGitHubPull)
		return
	case "push", "":
	default:
		h.c.metrics.webhooks.WithLabelValues(provider, "ignored").Inc()
		writeJSON(w, http.StatusAccepted, hookAnswer{false, "event " + ev + " ignored"})
		return
	}
	h.take(w, provider, id)
}

func (h *hooks) serveGitLab(w http.ResponseWriter, r *http.Request) {
	const provider = "gitlab"
	if len(h.c.opts.WebhookSecret) == 0 {
		http.NotFound(w, r)
		return
	}
	// The token is the whole proof: check it before reading anything.
	if err := VerifyGitLab(h.c.opts.WebhookSecret, r.Header.Get("X-Gitlab-Token")); err != nil {
		h.unauthorized(w, provider, err)
		return
	}
	id, herr := deliveryID(r, "X-Gitlab-Event-UUID")
	if herr != nil {
		h.refuse(w, provider, herr)
		return
	}
	ev := r.Header.Get("X-Gitlab-Event")
	var keep *bytes.Buffer
	dst := io.Writer(io.Discard)
	if ev == "Merge Request Hook" {
		keep = &bytes.Buffer{}
		dst = &limitedBuffer{keep, maxPullBody}
	}
	if herr := h.readBody(w, r, dst); herr != nil {
		h.refuse(w, provider, herr)
		return
	}
	switch ev {
	case "Push Hook", "Tag Push Hook", "":
	case "Merge Request Hook":
		h.pull(w, provider, keep, parseGitLabMerge)
		return
	default:
		h.c.metrics.webhooks.WithLabelValues(provider, "ignored").Inc()
		writeJSON(w, http.StatusAccepted, hookAnswer{false, "event " + ev + " ignored"})
		return
	}
	h.take(w, provider, id)
}

// take triggers a run for a verified push, unless its delivery ID
// already did within the replay window: that is answered 200 with no
// second run, so the sender counts it delivered and does not retry.
func (h *hooks) take(w http.ResponseWriter, provider, id string) {
	if id != "" {
		if first, at := h.deliveries.first(provider, id, h.c.now()); !first {
			h.c.metrics.webhooks.WithLabelValues(provider, "replayed").Inc()
			h.c.log.Info("webhook delivery already taken", "provider", provider, "delivery", id, "first", at)
			writeJSON(w, http.StatusOK, hookAnswer{false, fmt.Sprintf("delivery %s already taken at %s: no run triggered", id, at.UTC().Format(time.RFC3339))})
			return
		}
	}
	h.c.metrics.webhooks.WithLabelValues(provider, "accepted").Inc()
	h.c.answerTrigger(w, h.c.Trigger("webhook/"+provider))
}

// readBody streams a webhook's body into dst within the bounds, keeping
// none of it. A webhook past MaxHookBodies is answered at once, unread.
func (h *hooks) readBody(w http.ResponseWriter, r *http.Request, dst io.Writer) *hookError {
	select {
	case h.bodies <- struct{}{}:
		defer func() { <-h.bodies }()
	default:
		w.Header().Set("Retry-After", "10")
		return &hookError{http.StatusServiceUnavailable, "busy", fmt.Sprintf("%d webhook bodies are being read already; retry later", cap(h.bodies))}
	}
	if r.ContentLength > maxHookBody {
		return &hookError{http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("body of %d bytes is over the limit of %d", r.ContentLength, maxHookBody)}
	}
	// The server's read timeout is for whole requests; a body gets less.
	if err := http.NewResponseController(w).SetReadDeadline(time.Now().Add(h.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return &hookError{http.StatusInternalServerError, "unreadable", "set the body's deadline: " + err.Error()}
	}
	_, err := io.Copy(dst, http.MaxBytesReader(w, r.Body, maxHookBody))
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return &hookError{http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("body is over the limit of %d bytes", maxHookBody)}
	case errors.Is(err, errPullBodyTooLarge):
		return &hookError{http.StatusRequestEntityTooLarge, "too-large", err.Error()}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &hookError{http.StatusRequestTimeout, "timeout", fmt.Sprintf("body did not arrive within %s", h.timeout)}
	}
	return &hookError{http.StatusBadRequest, "unreadable", "read body: " + err.Error()}
}

// deliveryID reads the header that names a delivery; "" when absent.
func deliveryID(r *http.Request, header string) (string, *hookError) {
	id := r.Header.Get(header)
	if len(id) > maxDeliveryID {
		return "", &hookError{http.StatusBadRequest, "bad-request", fmt.Sprintf("%s is over %d bytes", header, maxDeliveryID)}
	}
	return id, nil
}

func (h *hooks) refuse(w http.ResponseWriter, provider string, e *hookError) {
	h.c.metrics.webhooks.WithLabelValues(provider, e.result).Inc()
	h.c.log.Warn("webhook refused", "provider", provider, "status", e.status, "error", e.msg)
	// The body may be left unread: do not wait for it.
	w.Header().Set("Connection", "close")
	http.Error(w, e.msg, e.status)
}

func (h *hooks) unauthorized(w http.ResponseWriter, provider string, err error) {
	h.c.metrics.webhooks.WithLabelValues(provider, "unauthorized").Inc()
	h.c.log.Warn("webhook refused", "provider", provider, "err", err)
	w.Header().Set("Connection", "close")
	http.Error(w, "unauthorized: "+err.Error(), http.StatusUnauthorized)
}

// maxPullBody bounds a pull request event's body, which is kept in memory
// until its signature is checked; GitHub's are tens of KB.
const maxPullBody = 1 << 20

// errPullBodyTooLarge ends the read of a pull request event past
// maxPullBody.
var errPullBodyTooLarge = errors.New("pull request event over 1 MiB")

// limitedBuffer keeps at most max bytes and fails past them.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, errPullBodyTooLarge
	}
	return l.b.Write(p)
}

// pull plans a verified pull request event's head, in the background.
func (h *hooks) pull(w http.ResponseWriter, provider string, body *bytes.Buffer, parse func([]byte) (pullRequest, string, error)) {
	if h.c.pulls == nil {
		h.c.metrics.webhooks.WithLabelValues(provider, "ignored").Inc()
		writeJSON(w, http.StatusAccepted, hookAnswer{false, errNoPlanning.Error()})
		return
	}
	pr, skip, err := parse(body.Bytes())
	switch {
	case err != nil:
		h.c.metrics.webhooks.WithLabelValues(provider, "bad-request").Inc()
		http.Error(w, "pull request event: "+err.Error(), http.StatusBadRequest)
		return
	case skip == "" && !h.c.wantsPlan(pr.base):
		skip = "it merges into " + pr.base + ", not the followed branch " + h.c.opts.PlanBranch
	case skip == "" && h.c.opts.Leader != nil && !h.c.opts.Leader.Leader().Leading:
		// One controller comments: two would plan and comment the
		// same head twice.
		skip = "this controller follows; the leader plans pull requests (send the webhook to it, or to every controller)"
	}
	if skip != "" {
		h.c.metrics.webhooks.WithLabelValues(provider, "ignored").Inc()
		writeJSON(w, http.StatusAccepted, hookAnswer{false, fmt.Sprintf("pull request %d not planned: %s", pr.number, skip)})
		return
	}
	pr.provider = provider
	if !h.c.pulls.queue(pr) {
		h.c.metrics.webhooks.WithLabelValues(provider, "busy").Inc()
		w.Header().Set("Retry-After", "60")
		http.Error(w, fmt.Sprintf("%d pull requests wait for a plan already; retry later", maxQueuedPulls), http.StatusServiceUnavailable)
		return
	}
	h.c.metrics.webhooks.WithLabelValues(provider, "accepted").Inc()
	writeJSON(w, http.StatusAccepted, hookAnswer{false, fmt.Sprintf("plan of pull request %d at %s queued", pr.number, pr.head)})
}

// parseGitHubPull reads a pull_request event: a push to the pull request
// (synchronize) or its opening is planned; other actions are skipped,
// with why.
func parseGitHubPull(body []byte) (pullRequest, string, error) {
	var ev struct {
		Action      string `json:"action"`
		Number      int    `json:"number"`
		PullRequest struct {
			Number int `json:"number"`
			Head   struct {
				SHA string `json:"sha"`
			} `json:"head"`
			Base struct {
				Ref string `json:"ref"`
			} `json:"base"`
		} `json:"pull_request"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return pullRequest{}, "", err
	}
	pr := pullRequest{number: ev.PullRequest.Number, head: ev.PullRequest.Head.SHA, base: ev.PullRequest.Base.Ref}
	if pr.number == 0 {
		pr.number = ev.Number
	}
	switch ev.Action {
	case "opened", "synchronize", "reopened":
	default:
		return pr, "action " + ev.Action, nil
	}
	return pr, "", checkPull(pr)
}

// parseGitLabMerge reads a Merge Request Hook: opening, reopening and
// updates (a push, or an edit; the head says which) are planned.
func parseGitLabMerge(body []byte) (pullRequest, string, error) {
	var ev struct {
		ObjectKind string `json:"object_kind"`
		Attrs      struct {
			IID          int    `json:"iid"`
			Action       string `json:"action"`
			TargetBranch string `json:"target_branch"`
			LastCommit   struct {
				ID string `json:"id"`
			} `json:"last_commit"`
		} `json:"object_attributes"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		return pullRequest{}, "", err
	}
	a := ev.Attrs
	pr := pullRequest{number: a.IID, head: a.LastCommit.ID, base: a.TargetBranch}
	switch a.Action {
	case "open", "reopen", "update":
	default:
		return pr, "action " + a.Action, nil
	}
	return pr, "", checkPull(pr)
}

// checkPull refuses an event without a number or a full head hash.
func checkPull(pr pullRequest) error {
	if pr.number <= 0 {
		return errors.New("no pull request number")
	}
	if len(pr.head) != 40 || strings.Trim(strings.ToLower(pr.head), "0123456789abcdef") != "" {
		return fmt.Errorf("head %q: want a full commit hash", pr.head)
	}
	return nil
}
