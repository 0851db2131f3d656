package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/cobra"
)

func newQuarantineCommand(s streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "quarantine",
		Short: "List the quarantined cards, or release them",
		Long: `A run that finds a card reporting a problem (a fatal error register, a
temperature at its critical limit, crashed firmware) quarantines it: plans
hold every change that would give it work (gate health) until an operator
releases it, even after the card reads healthy again. Moving VMs off the
card goes ahead.

Without --server the commands read and write the state directory; while a
controller holds it, release through the controller with --server.`,
	}
	cmd.AddCommand(newQuarantineListCommand(s), newQuarantineReleaseCommand(s))
	return cmd
}

// stateOrServer say where to read (or change) what a controller keeps:
// its state directory, or the running controller.
type stateOrServer struct {
	admin    adminFlags
	stateDir string
}

func (f *stateOrServer) register(cmd *cobra.Command) {
	f.admin.register(cmd)
	cmd.Flags().StringVar(&f.stateDir, "state-dir", "", "the state directory (of apply, or of a controller that is not running)")
}

func (f *stateOrServer) check() error {
	if (f.stateDir == "") == (f.admin.server == "") {
		return errors.New("give one of --state-dir or --server")
	}
	return nil
}

func newQuarantineListCommand(s streams) *cobra.Command {
	var (
		f      stateOrServer
		output string
	)
	cmd := &cobra.Command{
		Use:   "list (--state-dir DIR | --server URL) [-o json]",
		Short: "List the quarantined cards, since when and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := errors.Join(checkOutput(output), f.check()); err != nil {
				return err
			}
			var qs []state.Quarantine
			if f.admin.server != "" {
				var err error
				if qs, err = controller.NewClient(f.admin.server, nil).Quarantined(cmd.Context()); err != nil {
					return err
				}
			} else {
				store, err := state.Open(f.stateDir, state.Options{ReadOnly: true})
				if err != nil {
					return err
				}
				if qs, err = store.Quarantined(); err != nil {
					return err
				}
			}
			if output == "json" {
				if qs == nil {
					qs = []state.Quarantine{}
				}
				return writeIndented(s.out, qs)
			}
			render.Quarantine(s.out, qs)
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newQuarantineReleaseCommand(s streams) *cobra.Command {
	var (
		f   stateOrServer
		all bool
	)
	cmd := &cobra.Command{
		Use:   "release (CARD... | --all) (--state-dir DIR | --server URL [--token-file FILE])",
		Short: "Release cards from the quarantine: the next run may give them work",
		Long: `Release takes cards (node/NODE/fpga/SLOT, as the plan names them) out of
the quarantine. A card that still reports a problem stays held, and the
next apply or run quarantines it again. Naming a card that is not
quarantined is an error, and nothing is released.`,
		RunE: func(cmd *cobra.Command, cards []string) error {
			errs := []error{f.check()}
			if all == (len(cards) > 0) {
				errs = append(errs, errors.New("name the cards to release, or give --all"))
			}
			for _, c := range cards {
				if _, _, ok := spec.ParseCardID(c); !ok {
					errs = append(errs, fmt.Errorf("%q is not a card ID (node/NODE/fpga/SLOT)", c))
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			released, err := f.release(cmd, cards)
			if err != nil {
				return err
			}
			for _, q := range released {
				fmt.Fprintf(s.out, "Released %s (quarantined since %s: %s).\n", q.Card, q.Since.UTC().Format("2006-01-02T15:04:05Z"), q.Reason)
			}
			if len(released) == 0 {
				fmt.Fprintln(s.out, "No card is quarantined.")
			}
			return nil
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "release every quarantined card")
	return cmd
}

// release checks that every named card is quarantined, then releases
// them: through the controller, or in the state directory.
func (f *stateOrServer) release(cmd *cobra.Command, cards []string) ([]state.Quarantine, error) {
	type quarantine interface {
		Quarantined() ([]state.Quarantine, error)
		Release(...string) ([]state.Quarantine, error)
	}
	var q quarantine
	if f.admin.server != "" {
		c, err := f.admin.client()
		if err != nil {
			return nil, err
		}
		q = remoteQuarantine{c, cmd.Context()}
	} else {
		store, err := state.Open(f.stateDir, state.Options{Holder: "fpgaops quarantine release"})
		if errors.Is(err, state.ErrLocked) {
			return nil, fmt.Errorf("%w\n(release through the running controller with --server)", err)
		}
		if err != nil {
			return nil, err
		}
		defer store.Close()
		q = store
	}
	have, err := q.Quarantined()
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, c := range cards {
		if !slices.ContainsFunc(have, func(h state.Quarantine) bool { return h.Card == c }) {
			errs = append(errs, fmt.Errorf("card %s is not quarantined", c))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return q.Release(cards...)
}

// remoteQuarantine is a controller's quarantine, as the store's.
type remoteQuarantine struct {
	c   *controller.Client
	ctx context.Context
}

func (r remoteQuarantine) Quarantined() ([]state.Quarantine, error) { return r.c.Quarantined(r.ctx) }

func (r remoteQuarantine) Release(cards ...string) ([]state.Quarantine, error) {
	return r.c.Release(r.ctx, cards...)
}
