package libvirt

import (
	"errors"

	"github.com/fpgaops/fpgaops/providers"
)

// Errors that calls wrap, for callers to test with errors.Is.
var (
	// ErrNeedsRestart: the driver cannot change the running domain live,
	// so only its persistent definition changed; the change takes effect
	// when the VM restarts. After a detach the running VM still holds the
	// function: its card must not be reprogrammed until then.
	// It is providers.ErrNeedsRestart, so callers need not import this
	// package to test for it.
	ErrNeedsRestart = providers.ErrNeedsRestart
	// ErrNoDomain: the node has no domain of that name.
	ErrNoDomain = errors.New("no such domain")
	// ErrNoPCIDevice: the node has no PCI device at that address.
	ErrNoPCIDevice = errors.New("no such PCI device on the node")
)
