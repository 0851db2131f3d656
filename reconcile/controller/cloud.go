package controller

import (
	"context"
	"log/slog"
	"time"

	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// CloudStep applies a cloud's part of a revision after the fleet's
// changes. It returns nil when no cloud manages the fleet's nodes.
type CloudStep interface {
	ApplyCloud(ctx context.Context, fleet *spec.Fleet, now time.Time) (*state.CloudRun, error)
}

// OpenStackStep is the production CloudStep: it plans the OpenStack cloud
// with the policy's gates at now, as `fpgaops apply --os-cloud` does, and
// applies what they allow.
type OpenStackStep struct {
	Options openstack.Options
	// BootTimeout bounds the wait for a replaced server; zero means
	// openstack.DefaultBootTimeout.
	BootTimeout time.Duration
	Log         *slog.Logger
}

func (o *OpenStackStep) ApplyCloud(ctx context.Context, fleet *spec.Fleet, now time.Time) (*state.CloudRun, error) {
	if !openstack.Managed(o.Options, fleet) {
		return nil, nil
	}
	cp, err := openstack.PlanGated(ctx, o.Options, fleet, now, o.Log)
	if err != nil {
		return nil, err
	}
	res, err := cp.ApplyPlan(ctx, fleet, o.BootTimeout)
	return summariseCloud(cp.Changes, res), err
}

// summariseCloud counts the cloud's planned changes by action and how
// each ended; a change Apply did not reach (nothing runnable) counts as
// skipped.
func summariseCloud(changes []openstack.Change, res []openstack.Result) *state.CloudRun {
	run := &state.CloudRun{Plan: map[string]int{}, Results: map[string]int{}, Applied: map[string]int{}, Failed: map[string]int{}}
	outcome := map[string]openstack.Result{}
	for _, r := range res {
		outcome[r.ID] = r
	}
	for _, c := range changes {
		run.Plan[string(c.Action)]++
		if c.Blocked != "" {
			run.Plan["blocked"]++
		}
		r, ok := outcome[c.ID]
		if !ok {
			r.Outcome = openstack.Skipped
		}
		run.Results[string(r.Outcome)]++
		switch r.Outcome {
		case openstack.Applied:
			run.Applied[string(c.Action)]++
		case openstack.Failed:
			run.Failed[string(c.Action)]++
			run.Failures = append(run.Failures, r.Detail)
		}
	}
	return run
}

// addCloud folds the cloud's part into the run's result: its drift, and
// the changes it left undone as violations.
func (r *Result) addCloud(c *state.CloudRun) {
	r.OpenStack = c
	if c == nil {
		return
	}
	r.Drift += c.Plan[string(openstack.Drift)]
	r.Violations += c.Results[string(openstack.Skipped)] + c.Results[string(openstack.Failed)]
}
