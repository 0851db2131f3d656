package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
)

// cloudPlan is the OpenStack part of a plan: nil when no cloud manages
// the fleet's nodes.
type cloudPlan struct {
	*openstack.CloudPlan
}

// planOpenStack observes the cloud and plans its part when one is
// configured (--os-cloud, or OS_CLOUD/OS_* with nodes that have a
// hostname). Server replacements are gated by the maintenance windows at
// now, as the core planner gates its disruptive changes.
func planOpenStack(ctx context.Context, f *planFlags, desired *spec.Fleet, now time.Time) (*cloudPlan, error) {
	o := openstack.Options{Cloud: f.provider.osCloud}
	if !f.provider.openStack() || !openstack.Managed(o, desired) {
		return nil, nil
	}
	cp, err := openstack.PlanGated(ctx, o, desired, now, nil)
	if err != nil {
		return nil, err
	}
	return &cloudPlan{CloudPlan: cp}, nil
}

// hasChanges reports whether the cloud's plan shows anything: a change to
// make, a blocked one, or drift.
func (c *cloudPlan) hasChanges() bool { return c != nil && len(c.Changes) > 0 }

// runnable counts the changes Apply would make.
func (c *cloudPlan) runnable() int {
	if c == nil {
		return 0
	}
	return c.Runnable()
}

// printPlanAndOpenStack prints the plan, with the cloud's part when there
// is one: in text one plan, the OpenStack changes after the fleet's and
// one summary line; in JSON one document, {"plan": ..., "openstack": ...}.
func printPlanAndOpenStack(s streams, format string, p *reconcile.Plan, cloud *cloudPlan) error {
	if cloud == nil {
		return printPlan(s, format, p)
	}
	if format == "json" {
		var core, osPlan bytes.Buffer
		if err := render.JSON(&core, p); err != nil {
			return err
		}
		if err := openstack.RenderJSON(&osPlan, cloud.Changes); err != nil {
			return err
		}
		return encodeJSON(s.out, struct {
			Plan      json.RawMessage `json:"plan"`
			OpenStack json.RawMessage `json:"openstack"`
		}{core.Bytes(), osPlan.Bytes()})
	}
	return render.TextWith(s.out, p, render.StyleFor(s.out, os.Getenv), render.Section{
		Title:   "OpenStack changes",
		Body:    openstack.ChangesText(cloud.Changes),
		Summary: openstack.Summarize(cloud.Changes).Line(),
	})
}

// applyOpenStack makes the cloud's changes after the fleet's. Blocked
// changes and drift are skipped; so are replacements unless the windows
// allowed them when planned.
func applyOpenStack(ctx context.Context, s streams, f *planFlags, desired *spec.Fleet, cloud *cloudPlan) ([]openstack.Result, error) {
	if cloud.runnable() == 0 {
		return nil, nil
	}
	res, err := cloud.ApplyPlan(ctx, desired, f.osBootTimeout)
	if f.output == "text" {
		fmt.Fprintln(s.out)
		for i, r := range res {
			line := fmt.Sprintf("[OpenStack %d/%d] %s: %s", i+1, len(res), r.ID, r.Outcome)
			if r.Outcome == openstack.Skipped && r.Detail != "" {
				line += " (" + r.Detail + ")"
			}
			fmt.Fprintln(s.out, line)
		}
	}
	return res, err
}

// openStackCounts is the OpenStack part of apply's closing line.
func openStackCounts(res []openstack.Result) string {
	n := map[openstack.Outcome]int{}
	for _, r := range res {
		n[r.Outcome]++
	}
	return fmt.Sprintf("OpenStack: %d applied, %d skipped, %d failed.", n[openstack.Applied], n[openstack.Skipped], n[openstack.Failed])
}

func encodeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// failures lists the failed OpenStack changes' errors, one a line.
func failures(res []openstack.Result) string {
	var b strings.Builder
	for _, r := range res {
		if r.Outcome == openstack.Failed {
			b.WriteString("Error: " + r.Detail + "\n")
		}
	}
	return b.String()
}
