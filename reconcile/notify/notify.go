// Package notify tells people and their tools what the controller found:
// a run that failed, a change that failed, a VM left degraded, drift, a
// revision rejected, a change held by a window for too long, and the
// controller recovered. It sends each event to the targets a
// configuration file names (a generic JSON webhook signed with HMAC,
// Slack's incoming webhooks, Alertmanager's API v2), deduplicated,
// bounded per run and rate-limited per target.
//
// Sending never holds up or fails a run: events go to a bounded queue
// per target, delivered in the background with a few retries; what
// cannot be sent is logged, without the target's URL or secrets, and
// counted in fpgaops_notifications_total. The controller decides which
// events a run makes; this package only delivers them.
package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Kind is what an event reports. The set is closed.
type Kind string

const (
	// RunFailed: a run failed (a change failed, the fleet could not be
	// observed, the remote could not be fetched).
	RunFailed Kind = "run-failed"
	// ChangeFailed: one change failed.
	ChangeFailed Kind = "change-failed"
	// VMDegraded: a run left a VM without a function it held before.
	VMDegraded Kind = "vm-degraded"
	// DriftFound: objects fpgaops converged have changed since.
	DriftFound Kind = "drift-found"
	// RevisionRejected: a revision did not validate, or its signature did
	// not verify.
	RevisionRejected Kind = "revision-rejected"
	// HeldTooLong: a change has been held by the maintenance windows for
	// longer than the configured time.
	HeldTooLong Kind = "held-too-long"
	// Recovered: a run applied after failed or rejected ones.
	Recovered Kind = "recovered"
	// RolloutFailed: a check of the policy's rollout failed; the
	// rollout stopped, and its cards were reverted or halted.
	RolloutFailed Kind = "rollout-failed"
	// RolloutProgressed: a rollout started, released its next step after
	// a bake, completed, or was aborted by an operator.
	RolloutProgressed Kind = "rollout-progressed"
)

// Kinds lists every kind.
var Kinds = []Kind{RunFailed, ChangeFailed, VMDegraded, DriftFound, RevisionRejected, HeldTooLong, Recovered, RolloutFailed, RolloutProgressed}

// Severity is how urgent an event is.
type Severity string

const (
	Critical Severity = "critical"
	Warning  Severity = "warning"
	Info     Severity = "info"
)

// Severity is the kind's severity.
func (k Kind) Severity() Severity {
	switch k {
	case RunFailed, ChangeFailed, VMDegraded, RolloutFailed:
		return Critical
	case Recovered, RolloutProgressed:
		return Info
	}
	return Warning
}

// Event is one thing to tell. It is the generic webhook's payload.
type Event struct {
	// ID is unique per event; a receiver can drop one it has seen.
	ID       string   `json:"id"`
	Kind     Kind     `json:"kind"`
	Severity Severity `json:"severity"`
	// Key says what the event is about (a change ID, a VM, a revision),
	// for deduplication: the same kind and key are sent once per window.
	Key     string `json:"key"`
	Summary string `json:"summary"`
	Detail  string `json:"detail,omitempty"`
	// Source names the repository the controller follows.
	Source   string `json:"source"`
	Run      uint64 `json:"run,omitempty"`
	Revision string `json:"revision,omitempty"`
	Node     string `json:"node,omitempty"`
	VM       string `json:"vm,omitempty"`
	Change   string `json:"change,omitempty"`
	// URL links to the run on the controller's dashboard, when the
	// controller knows its external URL.
	URL string    `json:"url,omitempty"`
	At  time.Time `json:"at"`
}

// Options are a Notifier's dependencies; all but Config are optional.
type Options struct {
	// HTTP sends the requests; nil means a client with a 10 s timeout.
	HTTP *http.Client
	Log  *slog.Logger
	// Registry gets fpgaops_notifications_total; nil means none.
	Registry prometheus.Registerer
	Now      func() time.Time
	// Backoff is the wait before the second attempt of a delivery; it
	// doubles for the third. 0 means one second.
	Backoff time.Duration
}

// Results of a delivery, the metric's result label.
const (
	resultSent         = "sent"
	resultFailed       = "failed"
	resultDeduplicated = "deduplicated"
	resultRateLimited  = "rate-limited"
	resultQueueFull    = "queue-full"
)

// queueSize bounds the events waiting for one target.
const queueSize = 256

// attempts is how many times a delivery is tried.
const attempts = 3

// maxSeen bounds the events remembered for deduplication.
const maxSeen = 10000

// Notifier delivers events to the configured targets. It is safe for
// concurrent use.
type Notifier struct {
	cfg     Config
	http    *http.Client
	log     *slog.Logger
	now     func() time.Time
	backoff time.Duration
	sent    *prometheus.CounterVec
	targets []*target

	mu   sync.Mutex
	seen map[string]time.Time // kind/key -> when last sent
	wg   sync.WaitGroup
	done bool
}

// target is one configured target with its queue and rate limit.
type target struct {
	Target
	queue  chan Event
	tokens float64
	last   time.Time
}

// New starts a Notifier for the configuration: one sender per target.
// Close stops them.
func New(cfg Config, opts Options) (*Notifier, error) {
	if opts.HTTP == nil {
		opts.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Backoff <= 0 {
		opts.Backoff = time.Second
	}
	n := &Notifier{cfg: cfg.withDefaults(), http: opts.HTTP, log: opts.Log, now: opts.Now, backoff: opts.Backoff, seen: map[string]time.Time{}}
	n.sent = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fpgaops_notifications_total",
		Help: "Notifications by target, kind and result (sent, failed, deduplicated, rate-limited, queue-full).",
	}, []string{"target", "kind", "result"})
	if opts.Registry != nil {
		if err := opts.Registry.Register(n.sent); err != nil {
			return nil, err
		}
	}
	for _, t := range n.cfg.Targets {
		tg := &target{Target: t, queue: make(chan Event, queueSize), tokens: float64(n.cfg.RatePerMinute), last: n.now()}
		n.targets = append(n.targets, tg)
		n.wg.Go(func() { n.deliver(tg) })
	}
	return n, nil
}

// Config is the configuration in force, defaults filled in.
func (n *Notifier) Config() Config { return n.cfg }

// Notify queues the events of one run for every target that wants them,
// and returns at once. Of each kind, at most MaxPerKind events are sent
// one by one; the rest are summed up in one more event. An event whose
// kind and key were sent within the dedup window is dropped.
func (n *Notifier) Notify(events ...Event) {
	if n == nil || len(events) == 0 {
		return
	}
	now := n.now()
	events = n.bound(events)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done {
		return
	}
	n.forget(now)
	for _, ev := range events {
		if ev.ID == "" {
			ev.ID = newID()
		}
		if ev.At.IsZero() {
			ev.At = now
		}
		ev.Severity = ev.Kind.Severity()
		key := string(ev.Kind) + "/" + ev.Key
		if at, ok := n.seen[key]; ok && now.Sub(at) < n.cfg.DedupWindow {
			for _, t := range n.targets {
				if t.wants(ev.Kind) {
					n.sent.WithLabelValues(t.Name, string(ev.Kind), resultDeduplicated).Inc()
				}
			}
			continue
		}
		n.seen[key] = now
		for _, t := range n.targets {
			if t.wants(ev.Kind) {
				n.enqueue(t, ev, now)
			}
		}
	}
}

// bound keeps MaxPerKind events of each kind, and sums up the rest in
// one event of that kind.
func (n *Notifier) bound(events []Event) []Event {
	count := map[Kind]int{}
	var out []Event
	last := map[Kind]Event{}
	for _, ev := range events {
		count[ev.Kind]++
		if count[ev.Kind] <= n.cfg.MaxPerKind {
			out = append(out, ev)
		}
		last[ev.Kind] = ev
	}
	for _, k := range Kinds {
		more := count[k] - n.cfg.MaxPerKind
		if more <= 0 {
			continue
		}
		ev := last[k]
		out = append(out, Event{
			Kind: k, Key: fmt.Sprintf("run/%d/more", ev.Run), Source: ev.Source, Run: ev.Run, Revision: ev.Revision, URL: ev.URL, At: ev.At,
			Summary: fmt.Sprintf("%d more %s events in run %d", more, k, ev.Run),
			Detail:  "each is in the run's record: fpgaops history show " + fmt.Sprint(ev.Run),
		})
	}
	return out
}

// forget drops what is older than the dedup window, and the oldest past
// maxSeen.
func (n *Notifier) forget(now time.Time) {
	for k, at := range n.seen {
		if now.Sub(at) >= n.cfg.DedupWindow {
			delete(n.seen, k)
		}
	}
	for len(n.seen) >= maxSeen {
		var oldest string
		var at time.Time
		for k, t := range n.seen {
			if oldest == "" || t.Before(at) {
				oldest, at = k, t
			}
		}
		delete(n.seen, oldest)
	}
}

// enqueue takes a token from the target's bucket (RatePerMinute, refilled
// continuously) and queues the event; without a token or room in the
// queue the event is dropped and counted.
func (n *Notifier) enqueue(t *target, ev Event, now time.Time) {
	rate := float64(n.cfg.RatePerMinute)
	t.tokens = min(rate, t.tokens+now.Sub(t.last).Minutes()*rate)
	t.last = now
	if t.tokens < 1 {
		n.sent.WithLabelValues(t.Name, string(ev.Kind), resultRateLimited).Inc()
		n.log.Warn("notification dropped: rate limit", "target", t.Name, "kind", ev.Kind, "key", ev.Key)
		return
	}
	select {
	case t.queue <- ev:
		t.tokens--
	default:
		n.sent.WithLabelValues(t.Name, string(ev.Kind), resultQueueFull).Inc()
		n.log.Warn("notification dropped: queue full", "target", t.Name, "kind", ev.Kind, "key", ev.Key)
	}
}

// deliver sends the target's events one after the other until Close.
func (n *Notifier) deliver(t *target) {
	for ev := range t.queue {
		err := n.send(t, ev)
		if err != nil {
			n.sent.WithLabelValues(t.Name, string(ev.Kind), resultFailed).Inc()
			n.log.Warn("notification not sent", "target", t.Name, "type", t.Type, "kind", ev.Kind, "key", ev.Key, "err", err)
			continue
		}
		n.sent.WithLabelValues(t.Name, string(ev.Kind), resultSent).Inc()
	}
}

// send makes up to three attempts; a refusal (4xx) is not retried.
func (n *Notifier) send(t *target, ev Event) error {
	wait := n.backoff
	var err error
	for i := 1; ; i++ {
		var retry bool
		retry, err = n.post(t, ev)
		if err == nil || !retry || i == attempts {
			return err
		}
		time.Sleep(wait)
		wait *= 2
	}
}

// post sends one request; it reports whether a failure is worth a retry.
func (n *Notifier) post(t *target, ev Event) (bool, error) {
	req, err := t.request(ev)
	if err != nil {
		return false, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := n.http.Do(req.WithContext(ctx))
	if err != nil {
		// url.Error names the URL, which for Slack is the secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return true, fmt.Errorf("%s: %w", req.Method, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("%s: %s", req.Method, resp.Status)
	}
	return false, fmt.Errorf("%s: %s", req.Method, resp.Status)
}

// Close stops taking events and waits, until ctx ends, for those queued
// to be delivered.
func (n *Notifier) Close(ctx context.Context) error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if !n.done {
		n.done = true
		for _, t := range n.targets {
			close(t.queue)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notifications: %w: some were not delivered", ctx.Err())
	}
}

func newID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
