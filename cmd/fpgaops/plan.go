package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// planFlags are what plan and apply share: where the desired state is,
// how the fleet is observed, where run state lives, and the output format.
type planFlags struct {
	repo     string
	observed string
	stateDir string
	output   string
	provider providerFlags
	// osBootTimeout bounds the wait for a replaced server (apply).
	osBootTimeout time.Duration
}

func (f *planFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&f.repo, "repo", "", "fleet repository directory (the desired state)")
	fs.StringVar(&f.stateDir, "state-dir", "", "where runs keep their journal and what they applied\n(default: $XDG_STATE_HOME/fpgaops or ~/.local/state/fpgaops)")
	fs.StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	f.provider.register(fs)
	fs.StringVar(&f.provider.osCloud, "os-cloud", "", "the OpenStack cloud (clouds.yaml entry) that manages the VMs of nodes with\na hostname: its changes (images, device profiles, flavors, servers) join the\nplan (default: OS_CLOUD or the OS_* variables, if set)")
}

func (f *planFlags) check() error {
	switch f.output {
	case "text", "json":
		return nil
	}
	return fmt.Errorf("-o %q: want text or json", f.output)
}

// state is the state directory, by flag or default.
func (f *planFlags) state() (string, error) {
	if f.stateDir != "" {
		return f.stateDir, nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "fpgaops"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --state-dir and no home directory: %w", err)
	}
	return filepath.Join(home, ".local", "state", "fpgaops"), nil
}

func newPlanCommand(s streams) *cobra.Command {
	var (
		f        planFlags
		out      string
		detailed bool
	)
	cmd := &cobra.Command{
		Use:   "plan --repo DIR [--observed FILE] [--os-cloud NAME] [--detailed-exitcode] [--out PLANFILE] [-o json]",
		Short: "Show what apply would change, in order, and what policy holds back",
		Long: `Plan loads the desired state from the repository, observes the fleet (or
reads a saved observation with --observed), and prints every change an apply
would make, grouped by node, in the order it would run, with what policy
holds back and why. Nothing is changed.

With an OpenStack cloud (--os-cloud, or OS_CLOUD or the OS_* variables), the
cards of nodes with a hostname are OpenStack's: Nova and Cyborg attach and
program them, so the plan shows the cloud's changes for them (Glance images,
device profiles, flavors, programmed pool cards, replaced servers) after the
fleet's, with one summary line.

With --out the plan is saved; 'fpgaops apply PLANFILE' applies exactly it,
and refuses it when the fleet has changed since.

Exit codes: 0 no changes, 1 error, and with --detailed-exitcode 2 when there
are changes: anything the plan shows, whether it would run, is held back by
policy, or is only reported (drift, an unknown node, an unhealthy card).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			now := time.Now()
			desired, p, err := makePlan(cmd.Context(), &f, now)
			if err != nil {
				return err
			}
			cloud, err := planOpenStack(cmd.Context(), &f, desired, now)
			if err != nil {
				return err
			}
			if out != "" {
				if err := savePlan(out, p, desired); err != nil {
					return err
				}
			}
			if err := printPlanAndOpenStack(s, f.output, p, cloud); err != nil {
				return err
			}
			if out != "" && f.output == "text" {
				fmt.Fprintf(s.out, "\nSaved the plan to %s. To apply exactly this plan, run: fpgaops apply %s\n", out, out)
				if cloud != nil {
					fmt.Fprintln(s.out, "The saved plan holds the fleet's changes only; apply the OpenStack changes with --repo and --os-cloud.")
				}
			}
			if detailed && (p.HasChanges() || cloud.hasChanges()) {
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

// makePlan loads the desired state, observes the fleet (or reads the
// observation) and plans.
func makePlan(ctx context.Context, f *planFlags, now time.Time) (*spec.Fleet, *reconcile.Plan, error) {
	if f.repo == "" {
		return nil, nil, fmt.Errorf("--repo is required")
	}
	desired, err := spec.Load(f.repo)
	if err != nil {
		return nil, nil, err
	}
	var obs *observed.Fleet
	if f.observed != "" {
		if obs, err = readObserved(f.observed); err != nil {
			return nil, nil, err
		}
	} else if obs, err = observeFleet(ctx, desired, &f.provider); err != nil {
		return nil, nil, err
	}
	// Nodes with a hostname are OpenStack's when a cloud is configured:
	// their cards are planned by the OpenStack side, not here.
	opts := reconcile.Options{OpenStack: f.provider.openStack()}
	// What earlier applies converged to tells drift from a changed
	// repository; without a state directory there is no history.
	if dir, err := f.state(); err == nil {
		if opts.Applied, err = execute.ReadApplied(dir); err != nil {
			return nil, nil, err
		}
	}
	p, err := reconcile.NewPlan(desired, obs, now, opts)
	if err != nil {
		return nil, nil, err
	}
	return desired, p, nil
}

// observeFleet observes every node of the fleet through its provider.
func observeFleet(ctx context.Context, desired *spec.Fleet, pf *providerFlags) (*observed.Fleet, error) {
	prov, err := newProvider(desired, pf)
	if err != nil {
		return nil, err
	}
	return reconcile.Observe(ctx, desired, prov, pf.Concurrency, pf.NodeTimeout)
}

func readObserved(path string) (*observed.Fleet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var obs observed.Fleet
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obs); err != nil {
		return nil, fmt.Errorf("observation %s: %w", path, err)
	}
	if obs.Version != observed.Version {
		return nil, fmt.Errorf("observation %s: version %d, want %d", path, obs.Version, observed.Version)
	}
	obs.Sort()
	return &obs, nil
}

func savePlan(path string, p *reconcile.Plan, desired *spec.Fleet) error {
	if abs, err := filepath.Abs(desired.Root); err == nil {
		d := *desired
		d.Root = abs
		desired = &d
	}
	var buf bytes.Buffer
	if err := planfile.Write(&buf, p, desired); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

func printPlan(s streams, format string, p *reconcile.Plan) error {
	if format == "json" {
		return render.JSON(s.out, p)
	}
	return render.Text(s.out, p, render.StyleFor(s.out, os.Getenv))
}
