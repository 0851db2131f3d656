// Package controller is fpgaops' long-running loop: it fetches the fleet
// repository, validates each revision, and hands a valid one to the
// reconcile step, at start, on a schedule (an interval or a cron
// expression, with jitter), after a failure on a shorter interval with
// backoff, and at once when a verified webhook reports a push. It keeps the
// last good revision in force when a newer one fails to fetch, verify or
// validate, records every run in the state store, and reports status,
// conditions and metrics over HTTP. It tells a Notifier what went wrong,
// sets commit statuses on the git host and plans pull requests there
// (without applying them), and, under a policy of manual approval, holds
// disruptive changes until a person approves the run.
//
// The loop never plans or changes the fleet itself: that is the Reconciler
// it is given (Step in production, a fake in tests). On shutdown it starts
// no new run and waits for the one in flight, whose context is cancelled to
// tell it to start no new card chains.
package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/githost"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/robfig/cron/v3"
)

// Source gives the followed revision of the fleet repository.
type Source interface {
	Fetch(ctx context.Context) (source.Revision, error)
	// Retain drops written-out revisions other than these.
	Retain(keep ...string) error
	String() string
}

// Reconciler plans and applies one valid revision. ctx is cancelled on
// shutdown: the reconciler then starts no new card chain but finishes the
// ones in flight, and returns with Result.Interrupted set.
type Reconciler interface {
	Reconcile(ctx context.Context, rev source.Revision, fleet *spec.Fleet) (Result, error)
}

// Result is what a reconcile step reports.
type Result struct {
	// Run holds the plan's and the apply's counts, per node too; the
	// controller adds the trigger, revision and times.
	Run state.Run
	// Interrupted is set when shutdown kept changes from starting.
	Interrupted bool
	// Cards is the health of the cards the run observed; nil when it
	// observed none.
	Cards []engine.CardHealth
	// Rollout is the policy's rollout after the run, and Next when it
	// wants the next run (the end of a step's bake); nil and zero without
	// one.
	Rollout *rollout.State
	Next    time.Time
}

// Loader loads and checks the fleet in a directory: spec.Load.
type Loader func(dir string) (*spec.Fleet, error)

// Options configure a Controller. Source, Load, Reconciler and Store are
// required, and one of Interval and Schedule.
type Options struct {
	Source     Source
	Load       Loader
	Reconciler Reconciler
	Store      state.Store

	// Interval between scheduled runs, or Schedule, a cron expression
	// (five fields, or a descriptor such as @hourly). With neither, the
	// repository policy's schedule is followed, and DefaultInterval until
	// a revision with one has loaded.
	Interval time.Duration
	Schedule string
	// Jitter delays each scheduled run by a random share of at most this
	// much, so that many controllers do not hit one remote together.
	Jitter time.Duration
	// RetryInterval is the first wait after a failed run; it doubles with
	// each further failure up to MaxRetryInterval (default: the interval,
	// or ten minutes with a schedule). A retry never comes later than the
	// next scheduled run.
	RetryInterval    time.Duration
	MaxRetryInterval time.Duration

	// Drift, when set, overrides the repository policy's drift mode.
	Drift spec.DriftMode

	// WebhookSecret verifies /hooks/github (HMAC) and /hooks/gitlab
	// (token); without it the hooks answer 404.
	WebhookSecret []byte
	// AdminToken guards /suspend, /resume and /reconcile (bearer token);
	// without it they answer 403.
	AdminToken []byte

	// Leader, when set, gates every run on leading the controllers that
	// share the fleet (leader.go); followers serve the store's status.
	Leader Leadership

	// Notifier hears each run's events (notify.Notifier); nil tells no
	// one. HeldLongerThan is how long a window may hold a change before
	// it is told (default notify.DefaultHeldLongerThan).
	Notifier       Notifier
	HeldLongerThan time.Duration
	// ExternalURL is the controller's address as people reach it (behind
	// a proxy, say), for links in notifications and commit statuses.
	ExternalURL string

	// GitHost, when set, gets a commit status for each commit a run works
	// on, under StatusContext (default DefaultStatusContext). With Heads,
	// a pull request's push is planned (by Planner, or the Reconciler
	// when it is one) and the plan, as PlanText writes it, put on the
	// pull request. PlanBranch limits
	// that to pull requests into this branch; "" plans all.
	GitHost       githost.Host
	StatusContext string
	Heads         Heads
	Planner       Planner
	PlanText      func(*plans.Plan) string
	PlanBranch    string

	Log      *slog.Logger
	Registry *prometheus.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// DefaultInterval is the wait between runs when neither the options nor
// the repository's policy give a schedule.
const DefaultInterval = 5 * time.Minute

// Controller runs the loop. Create it with New.
type Controller struct {
	opts     Options
	schedule cron.Schedule
	log      *slog.Logger
	metrics  *metrics
	now      func() time.Time
	triggers chan string

	mu       sync.Mutex
	status   Status
	failures int
	lastGood string
	// policySchedule is the policy's schedule in force, when the options
	// give none.
	policySchedule string
	rng            *rand.Rand
	suspended      bool
	// wake is when the rollout wants the next run (a bake's end).
	wake  time.Time
	watch watch
	// trusted is the fleet of the last valid revision a run worked on:
	// pull requests are planned against the fleet its nodes' endpoints
	// reach, never the endpoints a pull request names.
	trusted   *spec.Fleet
	approvals approvals

	reporter *reporter
	pulls    *pulls
}

// New checks the options and restores the suspended flag and the last
// status from the store.
func New(opts Options) (*Controller, error) {
	var errs []error
	if opts.Source == nil || opts.Load == nil || opts.Reconciler == nil || opts.Store == nil {
		errs = append(errs, errors.New("controller: source, loader, reconciler and store are required"))
	}
	var sched cron.Schedule
	switch {
	case opts.Interval > 0 && opts.Schedule != "":
		errs = append(errs, errors.New("give an interval or a schedule, not both"))
	case opts.Schedule != "":
		s, err := cron.ParseStandard(opts.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule %q: %w", opts.Schedule, err))
		}
		sched = s
	case opts.Interval > 0:
		sched = cron.Every(opts.Interval)
	default:
		sched = cron.Every(DefaultInterval)
	}
	if opts.Jitter < 0 || opts.RetryInterval < 0 || opts.MaxRetryInterval < 0 {
		errs = append(errs, errors.New("jitter and retry intervals must not be negative"))
	}
	switch opts.Drift {
	case "", spec.DriftReport, spec.DriftCorrect:
	default:
		errs = append(errs, fmt.Errorf("drift %q: want report or correct", opts.Drift))
	}
	if opts.Planner == nil {
		opts.Planner, _ = opts.Reconciler.(Planner)
	}
	if opts.Heads != nil && (opts.GitHost == nil || opts.Planner == nil || opts.PlanText == nil) {
		errs = append(errs, errors.New("controller: planning pull requests needs a git host, a planner and PlanText"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if opts.StatusContext == "" {
		opts.StatusContext = DefaultStatusContext
	}
	if opts.RetryInterval == 0 {
		opts.RetryInterval = 30 * time.Second
	}
	if opts.MaxRetryInterval == 0 {
		opts.MaxRetryInterval = opts.Interval
		if opts.MaxRetryInterval == 0 {
			opts.MaxRetryInterval = 10 * time.Minute
		}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Registry == nil {
		opts.Registry = prometheus.NewRegistry()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HeldLongerThan <= 0 {
		opts.HeldLongerThan = notify.DefaultHeldLongerThan
	}
	c := &Controller{
		opts:     opts,
		schedule: sched,
		log:      opts.Log,
		now:      opts.Now,
		triggers: make(chan string, 1),
		rng:      rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(os.Getpid()))),
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, err
	}
	c.metrics = m
	if opts.GitHost != nil {
		c.reporter = newReporter(opts.GitHost, c.log.Warn, func(kind, result string) { m.gitHost.WithLabelValues(kind, result).Inc() })
	}
	if opts.Heads != nil {
		c.startPulls()
	}
	if opts.Leader != nil {
		// A follower restores nothing: the leader's state is restored
		// when it takes the lead.
		c.status.setCondition(Ready, "Unknown", ReasonProgressing, "no run yet", c.now())
		c.status.Source = opts.Source.String()
		return c, opts.Registry.Register(newLeaderCollector(opts.Leader))
	}
	if err := c.restore(); err != nil {
		return nil, err
	}
	return c, nil
}

// restore takes up the state the store keeps: the last status, the
// suspended flag, and the run a process left in flight when it ended.
func (c *Controller) restore() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var st Status
	if _, err := c.opts.Store.Status(&st); err != nil {
		return err
	}
	suspended, err := c.opts.Store.Suspended()
	if err != nil {
		return err
	}
	c.status, c.suspended = st, suspended
	c.watch.rollout = markOf(st.Rollout) // told before the restart
	c.lastGood = c.status.LastAppliedRevision
	if err := c.recordInterrupted(); err != nil {
		return err
	}
	if len(c.status.Conditions) == 0 {
		c.status.setCondition(Ready, "Unknown", ReasonProgressing, "no run yet", c.now())
	}
	c.status.Source = c.opts.Source.String()
	c.status.Suspended = suspended
	c.status.Leader = nil
	c.metrics.setSuspended(suspended)
	if c.status.LastAppliedAt != nil {
		c.metrics.lastApplied.Set(float64(c.status.LastAppliedAt.Unix()))
	}
	return nil
}

// Close stops the controller's background work: it waits, until ctx
// ends, for the commit statuses asked for, and stops planning pull
// requests. Call it after Run or RunOnce.
func (c *Controller) Close(ctx context.Context) error {
	var err error
	if c.reporter != nil {
		err = c.reporter.close(ctx)
	}
	if c.pulls != nil {
		c.pulls.stop()
		select {
		case <-c.pulls.done:
		case <-ctx.Done():
			err = errors.Join(err, fmt.Errorf("pull request plans: %w", ctx.Err()))
		}
	}
	return err
}

// Trigger asks for a run as soon as the loop is free. Triggers that arrive
// while one is pending merge into it. It reports false when suspended.
func (c *Controller) Trigger(why string) bool {
	c.mu.Lock()
	suspended := c.suspended
	c.mu.Unlock()
	if suspended {
		c.log.Info("trigger ignored: suspended", "trigger", why)
		return false
	}
	select {
	case c.triggers <- why:
	default:
	}
	return true
}

// SetSuspended suspends or resumes scheduled and triggered runs; a run in
// flight finishes.
func (c *Controller) SetSuspended(on bool) error {
	if err := c.opts.Store.SetSuspended(on); err != nil {
		return err
	}
	c.mu.Lock()
	c.suspended = on
	c.status.Suspended = on
	st := c.status.clone()
	c.mu.Unlock()
	c.metrics.setSuspended(on)
	c.log.Info("suspended", "suspended", on)
	return c.opts.Store.PutStatus(st)
}

// Status is a copy of the current status; a follower's is the leader's.
func (c *Controller) Status() Status {
	c.mu.Lock()
	st := c.status.clone()
	c.mu.Unlock()
	if c.following() {
		st = c.sharedStatus(st)
	}
	return c.withLeader(st)
}

// Run reconciles at once and then on the schedule, on triggers and on
// retries, until ctx ends. Then it waits for the run in flight and returns.
func (c *Controller) Run(ctx context.Context) error {
	why := "start"
	var term context.Context // the leader term runs go on under
	for {
		var ok bool
		if term, why, ok = c.awaitLead(ctx, why, term); !ok {
			return nil
		}
		c.mu.Lock()
		suspended := c.suspended
		c.mu.Unlock()
		if suspended {
			c.log.Info("run skipped: suspended", "trigger", why)
		} else {
			c.reconcile(term, why)
		}
		if ctx.Err() != nil {
			return nil
		}
		next, reason := c.next(c.now())
		c.mu.Lock()
		c.status.NextRunAt = &next
		st := c.status.clone()
		c.mu.Unlock()
		if err := c.opts.Store.PutStatus(st); err != nil {
			c.log.Error("status not recorded", "err", err)
		}
		timer := time.NewTimer(next.Sub(c.now()))
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-term.Done(): // the lead is lost: wait for it again
			timer.Stop()
		case <-timer.C:
			why = reason
		case why = <-c.triggers:
			timer.Stop()
		}
	}
}

// next is when the loop runs again without a trigger, and why.
func (c *Controller) next(now time.Time) (time.Time, string) {
	c.mu.Lock()
	failures := c.failures
	jitter := time.Duration(0)
	if c.opts.Jitter > 0 {
		jitter = time.Duration(c.rng.Int64N(int64(c.opts.Jitter)))
	}
	sched, wake := c.schedule, c.wake
	c.mu.Unlock()
	at, why := nextRun(now, sched, failures, c.opts.RetryInterval, c.opts.MaxRetryInterval, jitter)
	if !wake.IsZero() && wake.Before(at) {
		// The step's bake ends: check its cards and release the next.
		return wake, "rollout"
	}
	return at, why
}

// followPolicy adopts the schedule of a valid revision's policy when the
// options leave the schedule to the repository.
func (c *Controller) followPolicy(p spec.Policy) {
	if c.opts.Interval > 0 || c.opts.Schedule != "" || p.Schedule == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.Schedule == c.policySchedule {
		return
	}
	s, err := cron.ParseStandard(p.Schedule)
	if err != nil {
		c.log.Warn("policy schedule not followed", "policy", p.Name, "schedule", p.Schedule, "err", err)
		return
	}
	c.schedule, c.policySchedule = s, p.Schedule
	c.log.Info("following the policy's schedule", "policy", p.Name, "schedule", p.Schedule)
}

// nextRun is the scheduling rule, apart for testing: the next scheduled
// time plus jitter, or after failures a retry with exponential backoff if
// that comes first.
func nextRun(now time.Time, sched cron.Schedule, failures int, retry, maxRetry, jitter time.Duration) (time.Time, string) {
	scheduled := sched.Next(now).Add(jitter)
	if failures == 0 {
		return scheduled, "schedule"
	}
	backoff := retry
	for i := 1; i < failures && backoff < maxRetry; i++ {
		backoff *= 2
	}
	backoff = min(backoff, maxRetry)
	if at := now.Add(backoff); at.Before(scheduled) {
		return at, "retry"
	}
	return scheduled, "schedule"
}

// recordInterrupted records, as interrupted, the run that a process left
// in flight when it was killed or crashed.
func (c *Controller) recordInterrupted() error {
	run, err := c.opts.Store.Interrupted()
	if err != nil || run == nil {
		return err
	}
	run.Outcome = state.OutcomeInterrupted
	run.Error = "the controller ended in the middle of this run (killed or crashed); the journal lets the next run finish it"
	if err := c.opts.Store.AddRun(run); err != nil {
		return err
	}
	c.log.Warn("the last run was interrupted by the end of its process", "run", run.ID, "trigger", run.Trigger, "started", run.StartedAt)
	c.status.setCondition(Ready, "False", ReasonInterrupted, run.Error, c.now())
	return nil
}
