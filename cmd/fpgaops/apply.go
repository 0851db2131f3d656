package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/spf13/cobra"
)

func newApplyCommand(s streams) *cobra.Command {
	f := newPlanFlags()
	var autoApprove bool
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE] [--repo DIR] [--auto-approve]",
		Short: "Change the fleet to match the repository, in a safe order",
		Long: `With --repo, apply plans like 'fpgaops plan', shows the plan, and asks
before changing anything (unless --auto-approve). With PLANFILE, a plan saved
by 'fpgaops plan --out', it applies exactly that plan after observing the
fleet again, and refuses it when the fleet has changed since it was made.
It reaches the fleet and keeps its state as the plan was made to (--vms,
--insecure, --state-dir, --concurrency, --node-timeout, the agent
certificates); a flag given here overrides the plan's.

Changes run card by card in the safety order (detach, VFs off, program and
verify, VFs on, attach), in waves within the policy's disruption budget; a
cloud's objects (images, device profiles, flavors) first, and its servers
replaced and waited for until ACTIVE (--os-boot-timeout) within the same
windows and budget. A failure stops only its own card's changes. SIGINT or
SIGTERM starts no new card; the cards in flight finish (a second signal
stops at once). An interrupted run leaves a journal in the state directory;
the next apply of the same plan finishes it without repeating completed
steps. Every apply is recorded in the history.

Exit codes: 0 applied (or nothing to do), 1 error or a change failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && f.output == "json" && !autoApprove {
				return errors.New("-o json cannot ask for approval: add --auto-approve")
			}
			ctx, stop := interruptible(cmd.Context())
			defer stop()
			defer f.engine.closeState()
			e, p, err := f.prepare(ctx, s, args)
			if err != nil {
				return err
			}
			if p.Plan.Summary.ByAction.Total() == 0 {
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
			opts := engine.ApplyOptions{Trigger: "apply", Progress: progress(s, f.output, p)}
			out, runErr := e.Apply(ctx, p, opts)
			if bar, ok := opts.Progress.(*render.Bar); ok {
				bar.Close()
			}
			if out == nil {
				return runErr
			}
			if f.output == "json" {
				return errors.Join(writeIndented(s.out, out.Report), runErr)
			}
			render.Applied(s.out, out.Report, runErr == nil)
			render.Failures(s.err, out.Report.Results)
			return runErr
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().BoolVar(&autoApprove, "auto-approve", false, "apply without asking")
	return cmd
}

// prepare makes the plan to apply: the saved one, checked against the
// fleet, or a new one, shown before it is applied.
func (f *planFlags) prepare(ctx context.Context, s streams, args []string) (*engine.Engine, *engine.Planned, error) {
	if len(args) == 0 {
		e, p, err := f.plan(ctx, s, "fpgaops apply")
		if err == nil && f.output == "text" {
			err = printPlan(s, f.output, p)
		}
		return e, p, err
	}
	if f.repo != "" {
		return nil, nil, errors.New("give a PLANFILE or --repo, not both")
	}
	if err := checkOutput(f.output); err != nil {
		return nil, nil, err
	}
	file, err := planfile.ReadFile(args[0])
	if err != nil {
		return nil, nil, err
	}
	used, err := f.engine.useSaved(file.Options)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", args[0], err)
	}
	if len(used) > 0 && f.output == "text" {
		fmt.Fprintf(s.out, "Applying %s with the options it was planned with: %s\n", args[0], strings.Join(used, " "))
	}
	store, err := f.engine.openState("fpgaops apply " + args[0])
	if err != nil {
		return nil, nil, err
	}
	e := f.engine.engine(store, warnings(s))
	done := observing(s, e, len(file.Desired.Nodes))
	p, err := e.Saved(ctx, file)
	done()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", args[0], err)
	}
	if p.Resume && f.output == "text" {
		fmt.Fprintf(s.out, "Resuming the interrupted apply of %s: steps it completed are skipped.\n", args[0])
	}
	return e, p, nil
}

// progress is a bar on a terminal, a line per change elsewhere (logs,
// CI), nothing for JSON.
func progress(s streams, output string, p *engine.Planned) execute.Progress {
	switch {
	case output != "text":
		return execute.NoProgress{}
	case render.IsTerminal(s.out):
		return render.NewBar(s.out, p.Plan)
	}
	return render.NewLines(s.out, p.Plan)
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

// interruptible ends ctx on the first SIGINT or SIGTERM, so that the
// changes in flight finish and no new one starts; a second signal
// stops the process as usual.
func interruptible(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	return ctx, stop
}
