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

// RunPlan connects to the cloud, observes it, plans against the fleet and
// writes the plan. It returns the plan's changes, so the command can pick
// its exit code (0 none, 2 changes).
func RunPlan(ctx context.Context, r PlanRequest) ([]Change, error) {
	if r.Output != "" && r.Output != "text" && r.Output != "json" {
		return nil, fmt.Errorf("output %q: want text or json", r.Output)
	}
	clients, err := Connect(ctx, r.Options)
	if err != nil {
		return nil, err
	}
	p := New(clients, r.Log)
	st, err := p.Observe(ctx, r.Fleet)
	if err != nil {
		return nil, fmt.Errorf("openstack: observe: %w", err)
	}
	changes := Plan(r.Fleet, st)
	if r.Output == "json" {
		return changes, RenderJSON(r.Out, changes)
	}
	return changes, RenderText(r.Out, changes)
}
