package agent

import (
	"context"
	"log/slog"
	"slices"

	"github.com/fpgaops/fpgaops/fpga"
)

// RecallAFU fills in the AFU ID of ports the host cannot read with the
// last ID it read from them (port 0, the region fpgaops programs), and
// records the IDs it can read. A port becomes unreadable when its
// function goes to a VM (vfio-pci). While the host keeps the PF, and with
// it the FME through which every PR goes, nothing else can change what
// the port runs, so the last ID read is still what it runs; when a VM
// holds the whole PF, it is what the card ran when the VM took it.
// Without this, every card serving a VM would look unknown and be planned
// for reprogramming on every run. It reports whether seen changed.
func RecallAFU(devs []fpga.Device, seen map[string]string) (changed bool) {
	for i := range devs {
		d := &devs[i]
		j := slices.IndexFunc(d.Ports, func(p fpga.Port) bool { return p.ID == 0 })
		if j < 0 {
			// A PF in a VM shows no FPGA features at all.
			if afu, ok := seen[d.PCI]; ok {
				d.Ports = append([]fpga.Port{{ID: 0, AFUID: afu}}, d.Ports...)
			}
			continue
		}
		p := &d.Ports[j]
		if p.AFUID == "" {
			p.AFUID = seen[d.PCI]
		} else if seen[d.PCI] != p.AFUID {
			seen[d.PCI] = p.AFUID
			changed = true
		}
	}
	return changed
}

// RecallInterface fills in the PR interface ID of a card whose PF a VM
// holds with the last one read, and records the IDs it can read. A PF
// bound to vfio-pci shows the host no FME, and the FME is where the
// interface ID is read; the ID is the FPGA interface manager's, which a
// partial reconfiguration cannot change. A card that shows no FME for
// any other reason (no driver, a fault) is left without one: that is
// for the operator to see, not to paper over. It reports whether seen
// changed.
func RecallInterface(devs []fpga.Device, seen map[string]string) (changed bool) {
	for i := range devs {
		d := &devs[i]
		switch {
		case d.InterfaceID != "":
			if seen[d.PCI] != d.InterfaceID {
				seen[d.PCI] = d.InterfaceID
				changed = true
			}
		case d.Driver == driverVFIO:
			d.InterfaceID = seen[d.PCI]
		}
	}
	return changed
}

// driverVFIO is the driver that hands a PCI function to a VM.
const driverVFIO = "vfio-pci"

// Recalling wraps a host so that its discovery recalls what the host
// cannot read while a VM holds a card (see RecallAFU and
// RecallInterface), from mem. A memory that cannot be saved is logged to
// log and kept in the process; the answer stays right.
func Recalling(h fpga.Host, mem *Memory, log *slog.Logger) fpga.Host {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &recalling{Host: h, mem: mem, log: log}
}

type recalling struct {
	fpga.Host
	mem *Memory
	log *slog.Logger
}

func (r *recalling) Discover(ctx context.Context) ([]fpga.Device, error) {
	devs, err := r.Host.Discover(ctx)
	if err != nil {
		return nil, err
	}
	if err := r.mem.Recall(devs); err != nil {
		r.log.Warn("card memory not saved; it is kept in memory and saved with the next change", "error", err)
	}
	return devs, nil
}
