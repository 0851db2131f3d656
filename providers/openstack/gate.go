package openstack

import (
	"context"
	"log/slog"
	"time"

	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/spec"
)

// PlanGated plans like PlanCloud and then applies the policy's gates as
// the core planner does: outside the maintenance windows at now, server
// replacements are held. Protected bindings and the disruption budget are
// already honoured by the plan itself.
func PlanGated(ctx context.Context, o Options, fleet *spec.Fleet, now time.Time, log *slog.Logger) (*CloudPlan, error) {
	cp, err := PlanCloud(ctx, o, fleet, log)
	if err != nil {
		return nil, err
	}
	allowed, why, err := reconcile.DisruptionAllowed(fleet.Policy, now)
	if err != nil {
		return nil, err
	}
	if !allowed {
		HoldDisruptive(cp.Changes, why)
	}
	cp.AllowDisruptive = allowed
	return cp, nil
}

// Runnable counts the changes ApplyPlan would make.
func (cp *CloudPlan) Runnable() int {
	if cp == nil {
		return 0
	}
	s := Summarize(cp.Changes)
	return s.Create + s.Replace + s.Update
}

// ApplyPlan makes the plan's changes: blocked changes and drift are
// skipped, and so are replacements unless the windows allowed them when
// it was planned. A plan with nothing to do makes no call.
func (cp *CloudPlan) ApplyPlan(ctx context.Context, fleet *spec.Fleet, bootTimeout time.Duration) ([]Result, error) {
	if cp.Runnable() == 0 {
		return nil, nil
	}
	return cp.Provider.Apply(ctx, cp.State, cp.Changes, ApplyOptions{
		Fleet: fleet, AllowDisruptive: cp.AllowDisruptive, BootTimeout: bootTimeout,
	})
}

// Managed reports whether a cloud manages some of the fleet: one is named,
// or nodes have a hostname for the OS_* variables' cloud.
func Managed(o Options, fleet *spec.Fleet) bool {
	return o.Cloud != "" || len(OpenStackNodes(fleet)) > 0
}
