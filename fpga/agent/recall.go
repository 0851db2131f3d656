package agent

import (
	"context"
	"slices"
	"sync"

	"github.com/fpgaops/fpgaops/fpga"
)

// RecallAFU fills in the AFU ID of ports the host cannot read with the
// last ID it read from them (port 0, the region fpgaops programs), and records the IDs it can read. A port
// becomes unreadable when its function goes to a VM (vfio-pci). While the
// host keeps the PF, and with it the FME through which every PR goes,
// nothing else can change what the port runs, so the last ID read is
// still what it runs; when a VM holds the whole PF, it is what the card
// ran when the VM took it. Without this, every card serving a VM would
// look unknown and be planned for reprogramming on every run. It reports
// whether seen changed.
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

// Recalling wraps a host so that its discovery recalls the AFU IDs of
// ports a VM holds (see RecallAFU). The memory lasts as long as the
// process.
func Recalling(h fpga.Host) fpga.Host {
	return &recalling{Host: h, seen: map[string]string{}}
}

type recalling struct {
	fpga.Host
	mu   sync.Mutex
	seen map[string]string
}

func (r *recalling) Discover(ctx context.Context) ([]fpga.Device, error) {
	devs, err := r.Host.Discover(ctx)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	RecallAFU(devs, r.seen)
	r.mu.Unlock()
	return devs, nil
}
