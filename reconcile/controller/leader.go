package controller

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Leadership elects one leader among the controllers that share a fleet
// and its state (reconcile/ha, over etcd). Only the leader runs; the
// others serve the shared state and wait to take over.
type Leadership interface {
	// Lead blocks until this controller leads, or ctx ends (then it
	// returns ctx's error). The context it returns ends when the lead is
	// lost, and carries the term's fencing token to the node agents.
	// While the lead lasts, Lead returns that same context at once.
	Lead(ctx context.Context) (context.Context, error)
	// Leader is who leads, as this controller knows it now.
	Leader() LeaderStatus
}

// LeaderStatus says who leads the controllers that share a fleet, as one
// of them knows it.
type LeaderStatus struct {
	// Self is this controller; Leading is whether it leads.
	Self    string `json:"self"`
	Leading bool   `json:"leading"`
	// Leader is the leader's identity, "" when none is known (no leader
	// yet, or the store cannot be reached); Since is when it took the
	// lead; Term is its fencing token (the revision of its election).
	Leader string     `json:"leader,omitempty"`
	Since  *time.Time `json:"since,omitempty"`
	Term   uint64     `json:"term,omitempty"`
	// Elections counts the elections this controller won, Changes the
	// changes of leader it saw.
	Elections int `json:"elections"`
	Changes   int `json:"changes"`
	// Error says why the leader is unknown.
	Error string `json:"error,omitempty"`
}

// TriggerElection is the trigger of the first run of a leader term.
const TriggerElection = "election"

// awaitLead returns the context a run goes on under and its trigger.
// Without Leadership, that is ctx and why; with it, it waits for the
// lead, and the first run of a new term restores what the last leader
// left in the store (status, suspended flag, its interrupted run) and is
// triggered by the election. It reports false when ctx ended first.
func (c *Controller) awaitLead(ctx context.Context, why string, term context.Context) (context.Context, string, bool) {
	if c.opts.Leader == nil {
		return ctx, why, ctx.Err() == nil
	}
	lctx, err := c.opts.Leader.Lead(ctx)
	if err != nil {
		return nil, "", false
	}
	if lctx == term {
		return lctx, why, true
	}
	c.log.Info("leading", "term", c.opts.Leader.Leader().Term)
	if err := c.restore(); err != nil {
		c.log.Error("the last leader's state not restored", "err", err)
	}
	return lctx, TriggerElection, true
}

// following reports whether another controller leads: its status is then
// the one in the store, which the leader keeps.
func (c *Controller) following() bool {
	return c.opts.Leader != nil && !c.opts.Leader.Leader().Leading
}

// sharedStatus is the status a follower serves: the leader's, from the
// store, or this controller's own when the store cannot be read.
func (c *Controller) sharedStatus(own Status) Status {
	var st Status
	if found, err := c.opts.Store.Status(&st); err != nil || !found {
		return own
	}
	return st
}

// withLeader adds who leads to a status.
func (c *Controller) withLeader(st Status) Status {
	if c.opts.Leader != nil {
		l := c.opts.Leader.Leader()
		st.Leader = &l
	}
	return st
}

// leaderCollector serves the leader's metrics from Leadership at each
// scrape.
type leaderCollector struct {
	l                               Leadership
	leader, info, since, elec, chgs *prometheus.Desc
}

func newLeaderCollector(l Leadership) *leaderCollector {
	return &leaderCollector{
		l:      l,
		leader: prometheus.NewDesc("fpgaops_leader", "1 while this controller leads the controllers that share its fleet.", nil, nil),
		info:   prometheus.NewDesc("fpgaops_leader_info", "The leader's identity, as this controller knows it.", []string{"leader"}, nil),
		since:  prometheus.NewDesc("fpgaops_leader_since_timestamp_seconds", "When the leader took the lead (Unix time).", nil, nil),
		elec:   prometheus.NewDesc("fpgaops_leader_elections_total", "Elections this controller won.", nil, nil),
		chgs:   prometheus.NewDesc("fpgaops_leader_changes_total", "Changes of leader this controller saw.", nil, nil),
	}
}

func (lc *leaderCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{lc.leader, lc.info, lc.since, lc.elec, lc.chgs} {
		ch <- d
	}
}

func (lc *leaderCollector) Collect(ch chan<- prometheus.Metric) {
	s := lc.l.Leader()
	leading := 0.0
	if s.Leading {
		leading = 1
	}
	ch <- prometheus.MustNewConstMetric(lc.leader, prometheus.GaugeValue, leading)
	if s.Leader != "" {
		ch <- prometheus.MustNewConstMetric(lc.info, prometheus.GaugeValue, 1, s.Leader)
	}
	if s.Since != nil {
		ch <- prometheus.MustNewConstMetric(lc.since, prometheus.GaugeValue, float64(s.Since.Unix()))
	}
	ch <- prometheus.MustNewConstMetric(lc.elec, prometheus.CounterValue, float64(s.Elections))
	ch <- prometheus.MustNewConstMetric(lc.chgs, prometheus.CounterValue, float64(s.Changes))
}
