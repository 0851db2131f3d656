package openstack

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/fpgaops/fpgaops/spec"
)

// PlanRequest is what `fpgaops plan --os-cloud NAME` needs.
type PlanRequest struct {
	Options Options
	Fleet   *spec.Fleet
	// Output is "text" (the default) or "json".
	Output string
	Out    io.Writer
	Log    *slog.Logger
}

// CloudPlan is a cloud's part of a plan: the provider connected to it,
// what it observed, and the changes planned against the fleet.
type CloudPlan struct {
	Provider *Provider
	State    *State
	Changes  []Change
	// AllowDisruptive is whether the policy's windows allowed disruption
	// when PlanGated planned; ApplyPlan replaces servers only then.
	AllowDisruptive bool
}

// PlanCloud connects to the cloud, observes it and plans against the
// fleet. Nothing is printed or changed.
func PlanCloud(ctx context.Context, o Options, fleet *spec.Fleet, log *slog.Logger) (*CloudPlan, error) {
	clients, err := Connect(ctx, o)
	if err != nil {
		return nil, err
	}
	p := New(clients, log)
	st, err := p.Observe(ctx, fleet)
	if err != nil {
		return nil, fmt.Errorf("openstack: observe: %w", err)
	}
	return &CloudPlan{Provider: p, State: st, Changes: Plan(fleet, st)}, nil
}

// RunPlan connects to the cloud, observes it, plans against the fleet and
// writes the plan. It returns the plan's changes, so the command can pick
// its exit code (0 none, 2 changes).
func RunPlan(ctx context.Context, r PlanRequest) ([]Change, error) {
	if r.Output != "" && r.Output != "text" && r.Output != "json" {
		return nil, fmt.Errorf("output %q: want text or json", r.Output)
	}
	cp, err := PlanCloud(ctx, r.Options, r.Fleet, r.Log)
	if err != nil {
		return nil, err
	}
	changes := cp.Changes
	if r.Output == "json" {
		return changes, RenderJSON(r.Out, changes)
	}
	return changes, RenderText(r.Out, changes)
}
