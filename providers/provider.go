// Package providers defines how fpgaops observes and changes the fleet:
// the card side (the OPAE layer, reached through a node's agent, the local
// sysfs or the sim) and the VM side (libvirt, OpenStack or the sim). The
// executor in reconcile works only through these interfaces; the
// implementations live in the sub-packages.
package providers

import (
	"context"
	"errors"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/reconcile/observed"
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
