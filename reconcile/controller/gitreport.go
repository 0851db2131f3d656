package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/githost"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// DefaultStatusContext names the controller's commit status on the git
// host; pull request plans use it with "/plan".
const DefaultStatusContext = "fpgaops"

// reporter sets commit statuses on the git host in the background, in
// the order they are asked for: a run does not wait for the host, and a
// host that is down never fails a run (its errors are logged and
// counted). It says each thing once per commit: pending the first time a
// commit is seen, then how its runs end when that changes, so that a
// commit reconciled every five minutes does not pile up statuses (GitHub
// keeps at most 1000 per commit and context).
type reporter struct {
	host    githost.Host
	log     func(msg string, args ...any)
	counted func(kind, result string)

	mu     sync.Mutex
	last   map[string]githost.State // by commit
	order  []string                 // commits, oldest first, to bound last
	queue  chan githost.Status
	closed bool
	done   chan struct{}
}

// maxReported bounds the commits whose last status is remembered.
const maxReported = 64

func newReporter(host githost.Host, log func(string, ...any), counted func(kind, result string)) *reporter {
	r := &reporter{host: host, log: log, counted: counted, last: map[string]githost.State{},
		queue: make(chan githost.Status, 64), done: make(chan struct{})}
	go r.loop()
	return r
}

func (r *reporter) loop() {
	defer close(r.done)
	for s := range r.queue {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := r.host.SetStatus(ctx, s)
		cancel()
		if err != nil {
			r.counted("status", "failed")
			r.log("commit status not set", "host", r.host.String(), "commit", s.Commit, "state", s.State, "err", err)
			continue
		}
		r.counted("status", "sent")
	}
}

// set queues a status unless it says nothing new; pending only for a
// commit not seen before.
func (r *reporter) set(s githost.Status) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	last, seen := r.last[s.Commit]
	if (s.State == githost.Pending && seen) || (seen && last == s.State) {
		return
	}
	if !seen {
		r.order = append(r.order, s.Commit)
		if len(r.order) > maxReported {
			delete(r.last, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.last[s.Commit] = s.State
	select {
	case r.queue <- s:
	default:
		r.counted("status", "dropped")
		r.log("commit status dropped: the git host is behind", "host", r.host.String(), "commit", s.Commit, "state", s.State)
	}
}

// close stops taking statuses and waits, until ctx ends, for those
// queued.
func (r *reporter) close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.queue)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("commit statuses: %w: some were not set", ctx.Err())
	}
}

// runURL links to a run on the dashboard, or to the dashboard without a
// run; "" without an external URL.
func (c *Controller) runURL(id uint64) string {
	if c.opts.ExternalURL == "" {
		return ""
	}
	base := strings.TrimSuffix(c.opts.ExternalURL, "/")
	if id == 0 {
		return base + "/"
	}
	return fmt.Sprintf("%s/runs/%d", base, id)
}

// reportStarted marks a fetched commit pending.
func (c *Controller) reportStarted(commit string) {
	if c.reporter == nil || commit == "" {
		return
	}
	c.reporter.set(githost.Status{Commit: commit, State: githost.Pending, Context: c.opts.StatusContext,
		Description: "fpgaops is reconciling the fleet to this commit", TargetURL: c.runURL(0)})
}

// reportEnded says how a run on a commit ended.
func (c *Controller) reportEnded(run *state.Run) {
	if c.reporter == nil || run.Revision == "" {
		return
	}
	s := githost.Status{Commit: run.Revision, Context: c.opts.StatusContext, TargetURL: c.runURL(run.ID)}
	r := run.Results
	switch run.Outcome {
	case state.OutcomeApplied:
		s.State = githost.Success
		s.Description = fmt.Sprintf("applied by run %d: %d changed, %d held back, %d violation(s)", run.ID, r.Applied, r.Held, run.Violations)
	case state.OutcomeRejected:
		s.State = githost.Failure
		s.Description = "rejected: " + run.Error
		if len(run.Problems) > 0 {
			p := run.Problems[0]
			s.Description = "rejected: " + spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message}.Error()
		}
	case state.OutcomeInterrupted:
		s.State = githost.Canceled
		s.Description = fmt.Sprintf("run %d was interrupted; the next run goes on", run.ID)
	default:
		s.State = githost.Failure
		s.Description = fmt.Sprintf("run %d failed: %d change(s) failed, %d blocked", run.ID, r.Failed, r.Blocked)
		if r.Failed == 0 {
			s.Description = fmt.Sprintf("run %d failed: %s", run.ID, run.Error)
		}
	}
	c.reporter.set(s)
}
