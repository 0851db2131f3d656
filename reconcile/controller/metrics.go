package controller

import (
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the controller's Prometheus series, on the registry it is
// given (never the global one).
type metrics struct {
	runs        *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	changes     *prometheus.CounterVec
	failures    *prometheus.CounterVec
	drift       prometheus.Gauge
	violations  prometheus.Gauge
	lastApplied prometheus.Gauge
	suspended   prometheus.Gauge
	webhooks    *prometheus.CounterVec
	failed      *prometheus.CounterVec
	// nodesUnknown and vmsDegraded are the last run's.
	nodesUnknown prometheus.Gauge
	vmsDegraded  prometheus.Gauge
	// gitHost counts what is sent to the git host: commit statuses and
	// pull request comments, sent, failed or dropped.
	gitHost *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_runs_total", Help: "Controller runs by trigger and outcome.",
		}, []string{"trigger", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "fpgaops_run_duration_seconds", Help: "Duration of controller runs by outcome.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 14),
		}, []string{"outcome"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_changes_total", Help: "Changes applied to the fleet by action.",
		}, []string{"action"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_failures_total", Help: "Failed runs by the stage that failed: fetch, verify, validate, reconcile.",
		}, []string{"stage"}),
		drift: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_drift_objects", Help: "Objects found changed since the last apply, in the last run.",
		}),
		violations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_violations", Help: "Differences between the repository and the fleet left after the last run.",
		}),
		lastApplied: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_last_applied_timestamp_seconds", Help: "When a revision was last applied (Unix time).",
		}),
		suspended: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_suspended", Help: "1 while the controller is suspended.",
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_webhook_requests_total", Help: "Webhook requests by provider and result.",
		}, []string{"provider", "result"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_change_failures_total", Help: "Changes that failed, by action.",
		}, []string{"action"}),
		nodesUnknown: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_nodes_unknown", Help: "Nodes the last run could not observe.",
		}),
		vmsDegraded: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_vms_degraded", Help: "VMs the last run left without a function they held before it.",
		}),
		gitHost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_git_host_reports_total", Help: "Commit statuses and pull request comments sent to the git host, by kind and result (sent, failed, dropped).",
		}, []string{"kind", "result"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.changes, m.failures, m.drift, m.violations, m.lastApplied, m.suspended, m.webhooks, m.failed, m.nodesUnknown, m.vmsDegraded, m.gitHost} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(run *state.Run, failedStage string) {
	m.runs.WithLabelValues(run.Trigger, string(run.Outcome)).Inc()
	m.duration.WithLabelValues(string(run.Outcome)).Observe(run.DurationSeconds)
	switch run.Outcome {
	case state.OutcomeApplied, state.OutcomeInterrupted:
	default:
		m.failures.WithLabelValues(failedStage).Inc()
	}
	if run.Nodes != nil {
		m.drift.Set(float64(run.Drift))
		m.violations.Set(float64(run.Violations))
	}
}

// countChanges adds a run's applied and failed changes, by action.
func (m *metrics) countChanges(applied, failed plans.ByAction) {
	applied.Each(func(a plans.Action, n int) {
		if n > 0 {
			m.changes.WithLabelValues(string(a)).Add(float64(n))
		}
	})
	failed.Each(func(a plans.Action, n int) {
		if n > 0 {
			m.failed.WithLabelValues(string(a)).Add(float64(n))
		}
	})
}

func (m *metrics) setSuspended(on bool) {
	if on {
		m.suspended.Set(1)
	} else {
		m.suspended.Set(0)
	}
}
