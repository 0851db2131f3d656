package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// streams are where a command reads and writes, passed in so that tests
// can capture them.
type streams struct {
	in       io.Reader
	out, err io.Writer
}

func newRootCommand(s streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "fpgaops",
		Short: "Declarative GitOps reconciler for FPGA fleets",
		Long: `fpgaops keeps a fleet of FPGA cards, their bitstreams and the VMs that use
them in the state a git repository declares: validate the repository, plan the
difference against the live fleet, apply it in a safe order, or run as a
controller that does so on a schedule and on every push.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	build := currentBuild()
	var v strings.Builder
	build.write(&v)
	root.Version = build.Version
	root.SetVersionTemplate(v.String())
	root.SetIn(s.in)
	root.SetOut(s.out)
	root.SetErr(s.err)
	root.AddCommand(
		newValidateCommand(s),
		newPlanCommand(s),
		newApplyCommand(s),
		newRunCommand(s),
		newStatusCommand(s),
		newSuspendCommand(s),
		newQuarantineCommand(s),
		newRolloutCommand(s),
		newResumeCommand(s),
		newReconcileCommand(s),
		newApproveCommand(s),
		newHistoryCommand(s),
		newInventoryCommand(s),
		newBitstreamCommand(s),
		newAgentCommand(s),
		newSimCommand(s),
		newObserveCommand(s),
		newImportCommand(s),
		newPKICommand(s),
		newVersionCommand(s),
	)
	completeFlagValues(root)
	return root
}

// completeFlagValues lets shell completion offer the values of the flags
// that take one of a few, wherever a command has them: --vms, and -o,
// whose choices are its default (text or table) and json.
func completeFlagValues(c *cobra.Command) {
	if c.Flags().Lookup("vms") != nil {
		_ = c.RegisterFlagCompletionFunc("vms", cobra.FixedCompletions(vmsChoices(), cobra.ShellCompDirectiveNoFileComp))
	}
	if o := c.Flags().Lookup("output"); o != nil {
		_ = c.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]string{o.DefValue, "json"}, cobra.ShellCompDirectiveNoFileComp))
	}
	for _, sub := range c.Commands() {
		completeFlagValues(sub)
	}
}

// run executes the command line and returns the process exit code.
func run(args []string) int {
	s := streams{in: os.Stdin, out: os.Stdout, err: os.Stderr}
	root := newRootCommand(s)
	root.SetArgs(args)
	err := root.Execute()
	return exitCode(s.err, err)
}

// exitError ends a command with a code other than 1, or with 1 after the
// command has already reported its errors itself.
type exitError struct {
	code int
	// err, if set, is printed; otherwise the command has printed already.
	err error
}

func (e *exitError) Error() string {
	if e.err != nil {
		return e.err.Error()
	}
	return fmt.Sprintf("exit status %d", e.code)
}

// errChanges ends `plan --detailed-exitcode` when there are changes.
var errChanges = &exitError{code: 2}

// errReported ends a command that has printed its errors already.
var errReported = &exitError{code: 1}

func exitCode(w io.Writer, err error) int {
	if err == nil {
		return 0
	}
	var e *exitError
	if errors.As(err, &e) {
		if e.err != nil {
			fmt.Fprintln(w, "Error:", e.err)
		}
		return e.code
	}
	fmt.Fprintln(w, "Error:", err)
	return 1
}
