package controller

import (
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
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
	// The cards' health, as the last run that observed them read it, and
	// the quarantine.
	cardHealthy     *prometheus.GaugeVec
	cardRegister    *prometheus.GaugeVec
	cardTemperature *prometheus.GaugeVec
	cardPower       *prometheus.GaugeVec
	cardQuarantined *prometheus.GaugeVec
	// The rollout: its current step, and its cards by state.
	rolloutStep  prometheus.Gauge
	rolloutCards *prometheus.GaugeVec
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
		cardHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fpgaops_card_healthy", Help: "1 when the card reports no problem, 0 when it does (fpgaops gives it no work).",
		}, []string{"node", "card"}),
		cardRegister: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fpgaops_card_error_register", Help: "Non-zero error and status registers of a card, by register; absent when zero.",
		}, []string{"node", "card", "register", "severity"}),
		cardTemperature: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fpgaops_card_temperature_celsius", Help: "A card's temperature sensors.",
		}, []string{"node", "card", "sensor"}),
		cardPower: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fpgaops_card_power_watts", Help: "A card's power sensors.",
		}, []string{"node", "card", "sensor"}),
		rolloutStep: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "fpgaops_rollout_step", Help: "The step (from 1) the policy's rollout is at; 0 when it is complete.",
		}),
		rolloutCards: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fpgaops_rollout_cards_total", Help: "The rollout's cards by state: pending, released, done, reverted.",
		}, []string{"state"}),
		cardQuarantined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "fpgaops_card_quarantined", Help: "1 for each quarantined card: held until an operator releases it.",
		}, []string{"node", "card"}),
		gitHost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fpgaops_git_host_reports_total", Help: "Commit statuses and pull request comments sent to the git host, by kind and result (sent, failed, dropped).",
		}, []string{"kind", "result"}),
	}
	for _, c := range []prometheus.Collector{m.runs, m.duration, m.changes, m.failures, m.drift, m.violations, m.lastApplied, m.suspended, m.webhooks, m.failed, m.nodesUnknown, m.vmsDegraded,
		m.cardHealthy, m.cardRegister, m.cardTemperature, m.cardPower, m.cardQuarantined, m.rolloutStep, m.rolloutCards, m.gitHost} {
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

// setCards replaces the cards' health series with what a run observed, so
// that a card gone from the fleet, or a register cleared, leaves no stale
// series.
func (m *metrics) setCards(cards []engine.CardHealth) {
	m.cardHealthy.Reset()
	m.cardRegister.Reset()
	m.cardTemperature.Reset()
	m.cardPower.Reset()
	for _, c := range cards {
		healthy := 0.0
		if c.Health.OK() {
			healthy = 1
		}
		m.cardHealthy.WithLabelValues(c.Node, c.Slot).Set(healthy)
		for _, r := range c.Health.Registers {
			m.cardRegister.WithLabelValues(c.Node, c.Slot, r.Name, string(r.Severity)).Set(float64(r.Value))
		}
		for _, s := range c.Health.Sensors {
			switch s.Kind {
			case fpga.SensorTemperature:
				m.cardTemperature.WithLabelValues(c.Node, c.Slot, s.Name).Set(s.Value)
			case fpga.SensorPower:
				m.cardPower.WithLabelValues(c.Node, c.Slot, s.Name).Set(s.Value)
			}
		}
	}
}

// setQuarantine replaces the quarantine series.
func (m *metrics) setQuarantine(qs []state.Quarantine) {
	m.cardQuarantined.Reset()
	for _, q := range qs {
		if node, slot, ok := spec.ParseCardID(q.Card); ok {
			m.cardQuarantined.WithLabelValues(node, slot).Set(1)
		}
	}
}

// setRollout exports where the rollout is.
func (m *metrics) setRollout(r *rollout.State) {
	step := 0
	if r.Phase != rollout.Complete && len(r.Steps) > 0 {
		step = r.Step + 1
	}
	m.rolloutStep.Set(float64(step))
	released := len(r.Released())
	if r.Phase == rollout.Complete {
		released = len(r.Cards)
	}
	m.rolloutCards.WithLabelValues("pending").Set(float64(len(r.Cards) - released))
	m.rolloutCards.WithLabelValues("released").Set(float64(released))
	m.rolloutCards.WithLabelValues("done").Set(float64(len(r.Done)))
	m.rolloutCards.WithLabelValues("reverted").Set(float64(len(r.Reverted)))
}
