package execute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// validate is the dry run: every runnable change must name a node, card,
// VM and bitstream the desired state has, and every image must be
// readable with the digest and IDs the repository declares. All problems
// are reported together, and nothing is touched when there is one.
func (x *run) validate(ctx context.Context) error {
	var errs []error
	if x.plan.FormatVersion != plans.FormatVersion {
		errs = append(errs, fmt.Errorf("plan format %d, this fpgaops reads %d", x.plan.FormatVersion, plans.FormatVersion))
	}
	if d := x.desired.Digest(); d != x.plan.DesiredDigest {
		errs = append(errs, fmt.Errorf("the plan was made for desired state %s, not %s", short(x.plan.DesiredDigest), short(d)))
	}
	for i := range x.plan.Changes {
		c := &x.plan.Changes[i]
		if !c.Runnable() {
			continue
		}
		if err := x.check(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.ID, err))
		}
		for _, d := range c.DependsOn {
			if _, ok := x.index[d]; !ok {
				errs = append(errs, fmt.Errorf("%s: depends on %s, which is not in the plan", c.ID, d))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrValidate, errors.Join(errs...))
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func (x *run) check(ctx context.Context, c *plans.Change) error {
	if c.Backend != "" {
		b, ok := x.Backends[c.Backend]
		if !ok {
			return fmt.Errorf("backend %s is not in use", c.Backend)
		}
		return b.Check(ctx, x.desired, c)
	}
	n, ok := x.nodes[c.Node]
	if !ok {
		return fmt.Errorf("node %s is not in the desired state", c.Node)
	}
	card, ok := n.FPGA(c.Card)
	if !ok || card.PCI != c.CardPCI {
		return fmt.Errorf("node %s has no card %s at %s", c.Node, c.Card, c.CardPCI)
	}
	switch c.Action {
	case plans.ActionDetach:
		if c.Before == nil || c.Before.VM == "" || c.Before.PCI == "" {
			return errors.New("detach names no VM and function")
		}
	case plans.ActionAttach:
		if c.After == nil || c.After.VM == "" {
			return errors.New("attach names no VM")
		}
		if _, err := spec.ParseFunction(c.After.Function); err != nil {
			return err
		}
		// The VM side says now whether it has the VM and the function
		// (a VF's address is known only once VFs are on: then only the
		// VM), so that no card is programmed for an attach that cannot
		// happen.
		if err := providers.CheckAttach(ctx, x.Provider, n, c.After.VM, c.After.PCI); err != nil {
			return err
		}
	case plans.ActionSetVFs:
		if c.After == nil || c.After.VFs == nil {
			return errors.New("set-vfs names no VF count")
		}
	case plans.ActionProgram:
		if c.After == nil {
			return errors.New("program names no bitstream")
		}
		bs, ok := x.bitstreams[c.After.Bitstream]
		if !ok {
			return fmt.Errorf("bitstream %s is not in the desired state", c.After.Bitstream)
		}
		if bs.SHA256 != c.After.SHA256 || bs.AFUID != c.After.AFUID {
			return fmt.Errorf("bitstream %s differs from the one planned", bs.Name)
		}
		if _, err := x.image(ctx, *bs); err != nil {
			return err
		}
	default:
		return fmt.Errorf("action %q cannot run", c.Action)
	}
	return nil
}

// image loads and checks a bitstream once per run.
func (x *run) image(ctx context.Context, bs spec.Bitstream) (providers.Image, error) {
	x.mu.Lock()
	img, ok := x.images[bs.Name]
	x.mu.Unlock()
	if ok {
		return img, nil
	}
	img, err := x.Images.Image(ctx, bs)
	if err != nil {
		return providers.Image{}, err // it names the bitstream
	}
	if img.Data != nil {
		sum := sha256.Sum256(img.Data)
		if got := hex.EncodeToString(sum[:]); got != bs.SHA256 {
			return providers.Image{}, fmt.Errorf("bitstream %s: digest is %s, the repository says %s", bs.Name, got, bs.SHA256)
		}
		f, err := bitstream.Parse(img.Data)
		if err != nil {
			return providers.Image{}, fmt.Errorf("bitstream %s: %w", bs.Name, err)
		}
		if f.InterfaceID() != bs.InterfaceID || f.AFUID() != bs.AFUID {
			return providers.Image{}, fmt.Errorf("bitstream %s: image is for interface %s with AFU %s, the repository says %s and %s",
				bs.Name, f.InterfaceID(), f.AFUID(), bs.InterfaceID, bs.AFUID)
		}
	}
	x.mu.Lock()
	x.images[bs.Name] = img
	x.mu.Unlock()
	return img, nil
}
