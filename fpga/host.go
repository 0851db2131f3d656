package fpga

import "context"

// Host is one machine's FPGA layer: what the node agent serves and the
// simulated fleet fakes. PCI addresses name a card's PF.
type Host interface {
	Discover(ctx context.Context) ([]Device, error)
	// SetVFs turns SR-IOV off (n = 0) or on with n VFs.
	SetVFs(ctx context.Context, pci string, n int) error
	// Program loads a GBS image into the card's PR region, carefully: see
	// ProgramOptions.
	Program(ctx context.Context, pci string, image []byte, opts ProgramOptions) error
}

// ProgramOptions tune Program.
type ProgramOptions struct {
	// SHA256 is the digest the image must have (lowercase hex); Program
	// refuses the image before anything else when it differs.
	SHA256 string
	// Force programs even when the port is open by another process.
	Force bool
	// SkipUserClock leaves the user clocks as they are instead of setting
	// those the image's metadata asks for (OPAE fpgaconf's --skip-usrclk).
	SkipUserClock bool
}
