package main

import (
	"context"
	"fmt"
	"os"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// planFlags are what plan and apply share: where the desired state is,
// how the fleet is reached, where run state lives, the output format.
type planFlags struct {
	engine   *engineFlags
	repo     string
	observed string
	output   string
}

func newPlanFlags() *planFlags { return &planFlags{engine: newEngineFlags()} }

func (f *planFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.repo, "repo", "", "fleet repository directory (the desired state)")
	fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	f.engine.register(fs, "where runs keep their journal, history and what they applied\n"+defaultStateHelp)
}

// plan loads the desired state and plans against the fleet (or the saved
// observation), with the state directory's history; writer, when set,
// takes the directory for writing in its name.
func (f *planFlags) plan(ctx context.Context, s streams, writer string) (*engine.Engine, *engine.Planned, error) {
	if err := checkOutput(f.output); err != nil {
		return nil, nil, err
	}
	if f.repo == "" {
		return nil, nil, fmt.Errorf("--repo is required")
	}
	desired, err := spec.Load(f.repo)
	if err != nil {
		return nil, nil, err
	}
	var opts engine.PlanOptions
	if f.observed != "" {
		if opts.Observed, err = readObserved(f.observed); err != nil {
			return nil, nil, err
		}
	}
	st, err := f.engine.openState(writer)
	if err != nil {
		return nil, nil, err
	}
	e := f.engine.engine(st, warnings(s))
	done := func() {}
	if opts.Observed == nil {
		done = observing(s, e, len(desired.Nodes))
	}
	p, err := e.Plan(ctx, desired, opts)
	done()
	return e, p, err
}

func readObserved(path string) (*observed.Fleet, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	obs, err := observed.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("observation %s: %w", path, err)
	}
	return obs, nil
}

func newPlanCommand(s streams) *cobra.Command {
	f := newPlanFlags()
	var (
		out      string
		detailed bool
	)
	cmd := &cobra.Command{
		Use:   "plan --repo DIR [--observed FILE] [--detailed-exitcode] [--out PLANFILE] [-o json]",
		Short: "Show what apply would change, in order, and what policy holds back",
		Long: `Plan loads the desired state from the repository, observes the fleet (or
reads a saved observation with --observed), and prints every change an apply
would make, grouped by node, in the order it would run, with what policy
holds back and why. Nothing is changed.

Each node is served by a backend (--vms): libvirt, the simulated fleet, or a
cloud. On OpenStack (--os-cloud, or OS_CLOUD or the OS_* variables, for nodes
with a hostname) Nova and Cyborg attach and program the cards, so the plan
holds the cloud's changes for them (Glance images, device profiles, flavors,
programmed pool cards, replaced servers), gated like every other change.

With --out the plan is saved, with the options that shaped it (--vms,
--insecure, --state-dir, --concurrency, --node-timeout and the paths of the
agent certificates); 'fpgaops apply PLANFILE' applies exactly it with them,
and refuses it when the fleet has changed since.

Exit codes: 0 no changes, 1 error, and with --detailed-exitcode 2 when there
are changes: anything the plan shows, whether it would run, is held back by
policy, or is only reported (drift, an unknown node, an unhealthy card).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer f.engine.closeState()
			_, p, err := f.plan(cmd.Context(), s, "")
			if err != nil {
				return err
			}
			if out != "" {
				opts, err := f.engine.options()
				if err != nil {
					return err
				}
				if err := planfile.WriteFile(out, p.Plan, p.Desired, opts); err != nil {
					return err
				}
			}
			if err := printPlan(s, f.output, p); err != nil {
				return err
			}
			if out != "" && f.output == "text" {
				fmt.Fprintf(s.out, "\nSaved the plan to %s. To apply exactly this plan, run: fpgaops apply %s\n", out, out)
			}
			if detailed && p.Plan.HasChanges() {
				return errChanges
			}
			return nil
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&f.observed, "observed", "", "plan against this saved observation (JSON) instead of observing the fleet")
	cmd.Flags().StringVar(&out, "out", "", "save the plan to this file for 'fpgaops apply PLANFILE'")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	return cmd
}

func printPlan(s streams, format string, p *engine.Planned) error {
	if format == "json" {
		return render.JSON(s.out, p.Plan)
	}
	return render.Text(s.out, p.Plan, render.StyleFor(s.out, os.Getenv))
}
