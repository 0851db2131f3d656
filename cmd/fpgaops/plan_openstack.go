package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
)

// printPlanAndOpenStack prints the plan; with a cloud (--os-cloud) it adds
// the OpenStack plan for the fleet's nodes with a hostname: Glance images,
// device profiles, flavors, programmed pool cards and replaced servers.
// The cloud is observed before anything is printed, so an error leaves no
// half plan. In JSON both go into one document: {"plan": ...,
// "openstack": ...}. It reports whether the OpenStack plan has changes.
func printPlanAndOpenStack(ctx context.Context, s streams, format, cloud string, desired *spec.Fleet, p *reconcile.Plan) (bool, error) {
	if cloud == "" {
		return false, printPlan(s, format, p)
	}
	var os bytes.Buffer
	changes, err := openstack.RunPlan(ctx, openstack.PlanRequest{
		Options: openstack.Options{Cloud: cloud},
		Fleet:   desired, Output: format, Out: &os,
	})
	if err != nil {
		return false, err
	}
	changed := openstack.Summarize(changes).Actionable()
	if format == "json" {
		var core bytes.Buffer
		if err := render.JSON(&core, p); err != nil {
			return false, err
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return changed, enc.Encode(struct {
			Plan      json.RawMessage `json:"plan"`
			OpenStack json.RawMessage `json:"openstack"`
		}{core.Bytes(), os.Bytes()})
	}
	if err := printPlan(s, format, p); err != nil {
		return false, err
	}
	fmt.Fprintln(s.out)
	_, err = s.out.Write(os.Bytes())
	return changed, err
}
