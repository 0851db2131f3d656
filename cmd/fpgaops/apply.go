package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

func newApplyCommand(s streams) *cobra.Command {
	var (
		f           planFlags
		autoApprove bool
	)
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE] [--repo DIR] [--os-cloud NAME] [--auto-approve]",
		Short: "Change the fleet to match the repository, in a safe order",
		Long: `With --repo, apply plans like 'fpgaops plan', shows the plan, and asks
before changing anything (unless --auto-approve). With PLANFILE, a plan saved
by 'fpgaops plan --out', it applies exactly that plan after observing the
fleet again, and refuses it when the fleet has changed since it was made.

Changes run card by card in the safety order (detach, VFs off, program and
verify, VFs on, attach), in waves within the policy's disruption budget. A
failure stops only its own card's changes. A run that is interrupted leaves a
journal in the state directory; the next run finishes it without repeating
completed steps.

With an OpenStack cloud (--os-cloud, or OS_CLOUD or the OS_* variables and
nodes with a hostname), the plan shown and applied includes the cloud's
changes for those nodes: Glance images, device profiles, flavors,
programmed pool cards, and servers replaced (disruptive: only within the
policy's windows and budget, never a protected binding's) and waited for
until ACTIVE (--os-boot-timeout). They run after the fleet's changes; a
saved plan holds none, so apply them with --repo.

Exit codes: 0 applied (or nothing to do), 1 error or a change failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.check(); err != nil {
				return err
			}
			if len(args) == 0 && f.output == "json" && !autoApprove {
				return errors.New("-o json cannot ask for approval: add --auto-approve")
			}
			ctx := cmd.Context()
			var (
				desired *spec.Fleet
				p       *reconcile.Plan
				cloud   *cloudPlan
				prov    providers.Provider
				resume  bool
				err     error
			)
			if len(args) == 1 {
				if f.repo != "" {
					return errors.New("give a PLANFILE or --repo, not both")
				}
				if f.provider.osCloud != "" {
					return errors.New("a saved plan holds no OpenStack changes: apply them with --repo and --os-cloud")
				}
				if desired, p, prov, resume, err = loadSavedPlan(ctx, args[0], &f); err != nil {
					return err
				}
				if resume && f.output == "text" {
					fmt.Fprintf(s.out, "Resuming the interrupted apply of %s: steps it completed are skipped.\n", args[0])
				}
			} else {
				now := time.Now()
				if desired, p, err = makePlan(ctx, &f, now); err != nil {
					return err
				}
				if cloud, err = planOpenStack(ctx, &f, desired, now); err != nil {
					return err
				}
				if prov, err = newProvider(desired, &f.provider); err != nil {
					return err
				}
				if f.output == "text" {
					if err := printPlanAndOpenStack(s, f.output, p, cloud); err != nil {
						return err
					}
				}
			}
			if runnable(p) == 0 && cloud.runnable() == 0 {
				if f.output == "text" {
					fmt.Fprintln(s.out, "\nNothing to apply.")
				}
				return nil
			}
			if len(args) == 0 && !autoApprove {
				ok, err := confirm(s)
				if err != nil {
					return err
				}
				if !ok {
					return &exitError{code: 1, err: errors.New("apply cancelled")}
				}
			}
			return applyPlan(ctx, s, &f, desired, p, prov, resume, cloud)
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().DurationVar(&f.osBootTimeout, "os-boot-timeout", openstack.DefaultBootTimeout, "how long a replaced OpenStack server may take to go and to be ACTIVE again")
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "apply without asking")
	return cmd
}

// loadSavedPlan reads a saved plan and observes the fleet again. The plan
// runs when the fleet is still the one it was made against, or resumes
// when the state directory's journal holds an interrupted run of exactly
// this plan (whose steps are why the fleet differs); otherwise it is
// refused.
func loadSavedPlan(ctx context.Context, path string, f *planFlags) (*spec.Fleet, *reconcile.Plan, providers.Provider, bool, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, false, err
	}
	defer r.Close()
	file, err := planfile.Read(r)
	if err != nil {
		return nil, nil, nil, false, fmt.Errorf("%s: %w", path, err)
	}
	prov, err := newProvider(file.Desired, &f.provider)
	if err != nil {
		return nil, nil, nil, false, err
	}
	obs, err := reconcile.Observe(ctx, file.Desired, prov, f.provider.Concurrency, f.provider.NodeTimeout)
	if err != nil {
		return nil, nil, nil, false, err
	}
	resume := false
	if fp := obs.Fingerprint(); fp != file.ObservedFingerprint {
		if resume, err = interrupted(f, file.Plan); err != nil {
			return nil, nil, nil, false, err
		}
		if !resume {
			return nil, nil, nil, false, fmt.Errorf("%s: the fleet has changed since the plan was made (observed %.12s, planned against %.12s); plan again", path, fp, file.ObservedFingerprint)
		}
	}
	if err := file.WindowsStillOpen(obs, time.Now()); err != nil {
		return nil, nil, nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return file.Desired, file.Plan, prov, resume, nil
}

// interrupted reports whether the state directory's journal holds an
// unfinished run of the plan.
func interrupted(f *planFlags, p *reconcile.Plan) (bool, error) {
	dir, err := f.state()
	if err != nil {
		return false, err
	}
	j, err := execute.OpenFileJournal(dir)
	if err != nil {
		return false, err
	}
	defer j.Close()
	return j.Plan() == execute.PlanKey(p), nil
}

func runnable(p *reconcile.Plan) int {
	n := 0
	for i := range p.Changes {
		if p.Changes[i].Runnable() {
			n++
		}
	}
	return n
}

// confirm asks on the command's input, terraform-style: only "yes" goes.
func confirm(s streams) (bool, error) {
	fmt.Fprint(s.out, "\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: ")
	line, err := bufio.NewReader(s.in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	fmt.Fprintln(s.out)
	return strings.TrimSpace(line) == "yes", nil
}

// applyPlan runs the fleet's changes, then the cloud's (if any), and
// reports both: one closing line, or one JSON document.
func applyPlan(ctx context.Context, s streams, f *planFlags, desired *spec.Fleet, p *reconcile.Plan, prov providers.Provider, resume bool, cloud *cloudPlan) error {
	var (
		rep    *execute.Report
		runErr error
	)
	if cloud == nil || runnable(p) > 0 || resume {
		var err error
		if rep, runErr, err = applyFleet(ctx, s, f, desired, p, prov, resume); err != nil {
			return err
		}
	}
	var (
		osRes []openstack.Result
		osErr error
	)
	if cloud != nil {
		osRes, osErr = applyOpenStack(ctx, s, f, desired, cloud)
	}
	if rep != nil || cloud != nil {
		if f.output == "json" {
			var err error
			if cloud == nil {
				err = encodeJSON(s.out, rep)
			} else {
				if osRes == nil {
					osRes = []openstack.Result{}
				}
				err = encodeJSON(s.out, struct {
					Apply     *execute.Report    `json:"apply"`
					OpenStack []openstack.Result `json:"openstack"`
				}{rep, osRes})
			}
			if err != nil {
				return err
			}
		} else {
			r := rep
			if r == nil {
				r = &execute.Report{}
			}
			line := fmt.Sprintf("\nApply %s: %d applied, %d skipped (done before), %d failed, %d blocked, %d held back.",
				map[bool]string{true: "complete", false: "incomplete"}[runErr == nil && osErr == nil], r.Applied, r.Skipped, r.Failed, r.Blocked, r.Held)
			if cloud != nil {
				line += " " + openStackCounts(osRes)
			}
			fmt.Fprintln(s.out, line)
			writePendingRestart(s.out, r)
		}
	}
	if runErr != nil && rep != nil {
		for _, r := range rep.Results {
			if r.Status == execute.StatusFailed {
				fmt.Fprintln(s.err, "Error:", r.Error)
			}
		}
	}
	fmt.Fprint(s.err, failures(osRes))
	return errors.Join(runErr, osErr)
}

// applyFleet runs the fleet's changes with the state directory's journal
// and records the cards that converged. runErr is the run's; err is an
// error that prevented or followed it.
func applyFleet(ctx context.Context, s streams, f *planFlags, desired *spec.Fleet, p *reconcile.Plan, prov providers.Provider, resume bool) (rep *execute.Report, runErr, err error) {
	dir, err := f.state()
	if err != nil {
		return nil, nil, err
	}
	journal, err := execute.OpenFileJournal(dir)
	if err != nil {
		return nil, nil, err
	}
	defer journal.Close()
	ex := &execute.Executor{
		Provider:    prov,
		Images:      execute.RepoImages{Root: desired.Root},
		Journal:     journal,
		Resume:      resume,
		Concurrency: f.provider.Concurrency,
		Log:         slog.New(slog.NewTextHandler(s.err, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if f.output == "text" {
		// A bar on a terminal, a line per change elsewhere (logs, CI).
		if isTerminal(s.out) {
			ex.Progress = newApplyProgress(s.out, p)
		} else {
			ex.Progress = &progressLines{w: s.out, total: runnable(p)}
		}
	}
	rep, runErr = ex.Apply(ctx, desired, p)
	if rep != nil {
		if err := execute.RecordApplied(dir, rep.Converged); err != nil {
			return rep, runErr, errors.Join(runErr, err)
		}
	}
	return rep, runErr, nil
}

// progressLines prints one line per finished change with a counter.
type progressLines struct {
	mu    sync.Mutex
	w     io.Writer
	done  int
	total int
}

func (p *progressLines) Started(*reconcile.Change) {}

func (p *progressLines) Finished(c *reconcile.Change, r execute.Result) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	fmt.Fprintf(p.w, "[%d/%d] %s %s: %s\n", p.done, p.total, render.Symbol(c.Action), c.ID, r.Status)
}

// writePendingRestart lists the changes that wait for a VM's restart: not
// failures, since the VMs' definitions are changed, but not done either;
// the next plan shows them again.
func writePendingRestart(w io.Writer, r *execute.Report) {
	if r.PendingRestart == 0 {
		return
	}
	fmt.Fprintf(w, "%d change(s) wait for a VM's restart:\n", r.PendingRestart)
	for _, res := range r.Results {
		if res.Status == execute.StatusPendingRestart {
			fmt.Fprintln(w, "  "+res.Error)
		}
	}
}
