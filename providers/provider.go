// Package providers defines how fpgaops observes and changes the fleet:
// the card side (the OPAE layer, reached through a node's agent, the local
// sysfs or the sim) and the backends that run the nodes' VMs (libvirt,
// OpenStack, the sim), one per node, chosen by Select. The engine and the
// executor work only through these interfaces; the implementations live
// in the sub-packages and are registered in providers/all.
package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/spec"
)

// Image is a bitstream to program. Data holds the whole GBS file when the
// bitstream is in the repository; it is nil for a bitstream with a URL,
// which the node fetches and checks against Bitstream.SHA256 itself.
type Image struct {
	Bitstream spec.Bitstream
	Data      []byte
}

// Cards observes and changes the FPGA cards of a node. pci is the card's
// PF address.
type Cards interface {
	ObserveCards(ctx context.Context, node *spec.Node) ([]fpga.Device, error)
	// SetVFs turns SR-IOV off (n = 0) or on with n VFs.
	SetVFs(ctx context.Context, node *spec.Node, pci string, n int) error
	// Program loads the image into the card's PR region and verifies the
	// AFU ID read back. It refuses when a VF is on or the port is busy.
	Program(ctx context.Context, node *spec.Node, pci string, img Image) error
}

// Prober makes a rollout's HTTP check from the node itself (its agent):
// a GET of a workload's health endpoint on the node's loopback. It
// returns the HTTP status.
type Prober interface {
	Probe(ctx context.Context, node *spec.Node, url string, timeout time.Duration) (int, error)
}

// VMs observes and changes which VM holds which PCI function on a node.
type VMs interface {
	ObserveVMs(ctx context.Context, node *spec.Node) ([]observed.VM, error)
	Attach(ctx context.Context, node *spec.Node, vm, pci string) error
	Detach(ctx context.Context, node *spec.Node, vm, pci string) error
}

// Provider is both sides.
type Provider interface {
	Cards
	VMs
}

// Compose joins a card side and a VM side into one Provider.
func Compose(c Cards, v VMs) Provider {
	return composed{c, v}
}

type composed struct {
	Cards
	VMs
}

// transient marks an error worth retrying.
type transient struct{ err error }

func (t transient) Error() string { return t.err.Error() }
func (t transient) Unwrap() error { return t.err }

// Transient marks err as a passing fault (a timeout, a dropped
// connection): the executor retries the step with backoff.
func Transient(err error) error {
	if err == nil {
		return nil
	}
	return transient{err}
}

// IsTransient reports whether err, or an error it wraps, is transient.
func IsTransient(err error) bool {
	var t transient
	return errors.As(err, &t)
}

// ErrNeedsRestart is wrapped by an Attach or Detach that could change only
// the VM's persistent definition because its platform cannot change a
// running VM live: the change takes effect when the VM restarts. After
// such a Detach the running VM still holds the function, so its card must
// not be reprogrammed before then.
var ErrNeedsRestart = errors.New("waits for the VM's restart: the platform cannot change a running VM live")

// Restarter is a VM side that can stop and start a VM, so that a change
// made only to its definition (ErrNeedsRestart) takes effect. The executor
// calls it only where the policy allows restarting VMs.
type Restarter interface {
	Restart(ctx context.Context, node *spec.Node, vm string) error
}

// AttachChecker is a VM side that can tell, before anything changes,
// whether Attach would find the VM and the PCI function on the node. The
// executor's dry run calls it, so that a binding the VM side cannot
// honour stops the run before a card is programmed for it.
type AttachChecker interface {
	CheckAttach(ctx context.Context, node *spec.Node, vm, pci string) error
}

// ErrNoRestart is returned by Restart when the VM side cannot restart VMs.
var ErrNoRestart = errors.New("this VM side cannot restart VMs")

// Restart restarts the VM through v when v is a Restarter, and returns
// an error wrapping ErrNoRestart otherwise.
func Restart(ctx context.Context, v VMs, node *spec.Node, vm string) error {
	r, ok := v.(Restarter)
	if !ok {
		return fmt.Errorf("node %s vm %s: %w", node.Name, vm, ErrNoRestart)
	}
	return r.Restart(ctx, node, vm)
}

// CheckAttach asks v whether an attach can succeed when v is an
// AttachChecker; a VM side that cannot tell passes.
func CheckAttach(ctx context.Context, v VMs, node *spec.Node, vm, pci string) error {
	if c, ok := v.(AttachChecker); ok {
		return c.CheckAttach(ctx, node, vm, pci)
	}
	return nil
}

// Restart and CheckAttach pass on to the VM side, so that the optional
// interfaces survive Compose.
func (c composed) Restart(ctx context.Context, node *spec.Node, vm string) error {
	return Restart(ctx, c.VMs, node, vm)
}

func (c composed) CheckAttach(ctx context.Context, node *spec.Node, vm, pci string) error {
	return CheckAttach(ctx, c.VMs, node, vm, pci)
}
