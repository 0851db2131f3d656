package libvirt

import (
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// Name is the backend's name, as --vms takes it.
const Name = "libvirt"

// Kind registers the libvirt backend: it serves the nodes that name a
// libvirt URI.
type Kind struct{}

func (Kind) Name() string                              { return Name }
func (Kind) Flags(*pflag.FlagSet)                      {}
func (Kind) Claims(n *spec.Node, _ providers.Env) bool { return n.Libvirt != "" }

// Open makes one provider for every libvirt node: it keeps a connection
// per node, dialled by the node's URI.
func (Kind) Open(env providers.Env) (providers.Backend, error) {
	return New(Options{Logger: env.Log}), nil
}

// Name is the backend's name.
func (p *Provider) Name() string { return Name }
