package execute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// group runs one group's changes in order; a change whose dependency did
// not complete is blocked. When one fails, what the group took away from
// running VMs is put back where it can be (compensate).
func (x *run) group(ctx context.Context, members []int) {
	for _, i := range members {
		c := &x.plan.Changes[i]
		r := &x.results[i]
		if blocked, pending := x.blockedBy(c); blocked != "" {
			r.Status, r.Error = plans.StatusBlocked, "blocked: "+blocked+" did not complete"
			if pending {
				r.Status, r.Error = plans.StatusPendingRestart, "waits for "+blocked+", which waits for its VM's restart"
			}
			x.Progress.Finished(c, *r)
			continue
		}
		key := Key(c)
		done, err := x.Journal.Done(key)
		if err != nil {
			x.fail(c, r, err)
			continue
		}
		if done {
			r.Status = plans.StatusSkipped
			x.Log.Info("skipped, completed in an earlier run", "change", c.ID)
			x.Progress.Finished(c, *r)
			continue
		}
		x.Progress.Started(c)
		attempts, err := x.attempt(ctx, c)
		r.Attempts = attempts
		if errors.Is(err, providers.ErrNeedsRestart) {
			err = x.restart(ctx, c, r, err)
			if r.Status == plans.StatusPendingRestart {
				continue
			}
		}
		if err != nil {
			x.fail(c, r, err)
			continue
		}
		if err := x.Journal.Record(key); err != nil {
			x.fail(c, r, fmt.Errorf("journal: %w", err))
			continue
		}
		r.Status = plans.StatusApplied
		x.Log.Info("applied", "change", c.ID, "attempts", attempts)
		x.Progress.Finished(c, *r)
	}
	x.compensate(ctx, members)
}

func (x *run) fail(c *plans.Change, r *plans.Result, err error) {
	r.Status, r.Error = plans.StatusFailed, fmt.Errorf("%s: %w", c.ID, err).Error()
	x.Log.Error("failed", "change", c.ID, "err", err)
	x.Progress.Finished(c, *r)
}

// restart handles an attach or detach that changed only the VM's
// definition: when the plan says to restart the VM (the policy allows it,
// within a window), it does, and the change is then in effect; otherwise
// the change is pending restart. It returns the error to fail with, if
// any.
func (x *run) restart(ctx context.Context, c *plans.Change, r *plans.Result, cause error) error {
	pending := func() error {
		r.Status, r.Error = plans.StatusPendingRestart, fmt.Sprintf("%s: %v", c.ID, cause)
		x.Log.Warn("waits for the VM's restart", "change", c.ID, "vm", c.VM())
		x.Progress.Finished(c, *r)
		return nil
	}
	if c.Restart != plans.RestartVM {
		return pending()
	}
	node := x.nodes[c.Node]
	for n := 1; ; n++ {
		r.Attempts++
		rctx, cancel := context.WithTimeout(ctx, x.RestartTimeout)
		err := providers.Restart(rctx, x.Provider, node, c.VM())
		cancel()
		switch {
		case err == nil:
			x.Log.Info("restarted", "change", c.ID, "vm", c.VM())
			return nil
		case errors.Is(err, providers.ErrNoRestart):
			cause = fmt.Errorf("%w (%w)", cause, err)
			return pending()
		case !providers.IsTransient(err) || n >= x.Retry.Attempts || ctx.Err() != nil:
			return fmt.Errorf("restart %s: %w", c.VM(), err)
		}
		x.Log.Warn("retrying restart", "change", c.ID, "attempt", n, "err", err)
		if serr := x.Sleep(ctx, x.Retry.backoff(n)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// blockedBy names a dependency that did not complete, or "", and whether
// that dependency waits for a VM's restart.
func (x *run) blockedBy(c *plans.Change) (string, bool) {
	for _, d := range c.DependsOn {
		j, ok := x.index[d]
		if !ok || !x.results[j].Status.Done() {
			return d, ok && x.results[j].Status == plans.StatusPendingRestart
		}
	}
	return "", false
}

// attempt runs the change, retrying passing faults with backoff.
func (x *run) attempt(ctx context.Context, c *plans.Change) (int, error) {
	for n := 1; ; n++ {
		err := x.step(ctx, c)
		if err == nil {
			return n, nil
		}
		if !providers.IsTransient(err) || n >= x.Retry.Attempts || ctx.Err() != nil {
			return n, err
		}
		x.Log.Warn("retrying", "change", c.ID, "attempt", n, "err", err)
		if serr := x.Sleep(ctx, x.Retry.backoff(n)); serr != nil {
			return n, errors.Join(err, serr)
		}
	}
}

// step makes the provider calls of one change.
func (x *run) step(ctx context.Context, c *plans.Change) error {
	if c.Backend != "" {
		return x.Backends[c.Backend].Apply(ctx, x.desired, c)
	}
	node := x.nodes[c.Node]
	p := x.Provider
	switch c.Action {
	case plans.ActionDetach:
		return p.Detach(ctx, node, c.Before.VM, c.Before.PCI)
	case plans.ActionSetVFs:
		return p.SetVFs(ctx, node, c.CardPCI, *c.After.VFs)
	case plans.ActionProgram:
		return x.program(ctx, node, c)
	case plans.ActionAttach:
		pci := c.After.PCI
		if pci == "" {
			var err error
			if pci, err = x.resolveVF(ctx, node, c); err != nil {
				return err
			}
		}
		return p.Attach(ctx, node, c.After.VM, pci)
	}
	return fmt.Errorf("action %q cannot run", c.Action)
}

// program loads the change's bitstream unless the card runs it already,
// then reads it back. Each attempt reads the card first, so a retry after
// a program that took effect but whose answer was lost, or a resumed run,
// never programs the card again: on hardware each program is an outage.
func (x *run) program(ctx context.Context, node *spec.Node, c *plans.Change) error {
	dev, err := x.card(ctx, node, c.CardPCI)
	if err != nil {
		return fmt.Errorf("read before program: %w", err)
	}
	if dev.AFUID() == c.After.AFUID {
		x.Log.Info("not programmed: the card runs the bitstream already", "change", c.ID)
		return nil
	}
	img, err := x.image(ctx, *x.bitstreams[c.After.Bitstream])
	if err != nil {
		return err
	}
	if err := x.Provider.Program(ctx, node, c.CardPCI, img); err != nil {
		return fmt.Errorf("program: %w", err)
	}
	// The card is programmed now: a run stopped from here on must still
	// verify and journal it, or the next run would program it again.
	vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout)
	defer cancel()
	return x.verify(vctx, node, c)
}

// verifyTimeout bounds the read-back of a card that was just programmed.
const verifyTimeout = time.Minute

// verify reads the card back after programming; a different AFU ID stops
// the card's chain. A read that fails passingly is retried on its own,
// never by programming again.
func (x *run) verify(ctx context.Context, node *spec.Node, c *plans.Change) error {
	for n := 1; ; n++ {
		dev, err := x.card(ctx, node, c.CardPCI)
		if err == nil {
			if got := dev.AFUID(); got != c.After.AFUID {
				return fmt.Errorf("verify: card runs AFU %s after programming, want %s", got, c.After.AFUID)
			}
			return nil
		}
		if !providers.IsTransient(err) || n >= x.Retry.Attempts {
			return fmt.Errorf("verify: %w", err)
		}
		x.Log.Warn("retrying the read-back", "change", c.ID, "attempt", n, "err", err)
		if serr := x.Sleep(ctx, x.Retry.backoff(n)); serr != nil {
			return fmt.Errorf("verify: %w", errors.Join(err, serr))
		}
	}
}

// resolveVF finds a VF's address once VFs are on: SR-IOV numbering is the
// hardware's business, so the card is observed again.
func (x *run) resolveVF(ctx context.Context, node *spec.Node, c *plans.Change) (string, error) {
	fn, err := spec.ParseFunction(c.After.Function)
	if err != nil {
		return "", err
	}
	dev, err := x.card(ctx, node, c.CardPCI)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", fn, err)
	}
	if fn.PF {
		return dev.PCI, nil
	}
	for _, vf := range dev.VFs {
		if vf.Index == fn.VF {
			return vf.PCI, nil
		}
	}
	return "", fmt.Errorf("resolve %s: the card has %d VF(s) on", fn, dev.NumVFs)
}

func (x *run) card(ctx context.Context, node *spec.Node, pci string) (*fpga.Device, error) {
	devs, err := x.Provider.ObserveCards(ctx, node)
	if err != nil {
		return nil, err
	}
	return fpga.Lookup(devs, pci)
}
