// Package all lists the backends fpgaops is built with. Adding a backend
// is its package and one line here; the order is the order in which
// backends claim nodes under --vms auto, so the one that claims every
// node comes last.
package all

import (
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/kubernetes"
	"github.com/fpgaops/fpgaops/providers/libvirt"
	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/providers/sim"
)

// Kinds returns a fresh kind of every backend, in claiming order.
func Kinds() []providers.Kind {
	return []providers.Kind{
		&kubernetes.Kind{},
		libvirt.Kind{},
		&openstack.Kind{},
		sim.Kind{},
	}
}
