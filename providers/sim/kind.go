package sim

import (
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// Name is the backend's name, as --vms takes it: the VMs are reached at
// the node's endpoint, which the simulated fleet serves.
const Name = "endpoint"

// Kind registers the simulated fleet's VM side. It claims every node, so
// it comes last: a node that names neither a libvirt URI nor a cloud is
// the sim's.
type Kind struct{}

func (Kind) Name() string                          { return Name }
func (Kind) Flags(*pflag.FlagSet)                  {}
func (Kind) Claims(*spec.Node, providers.Env) bool { return true }
func (Kind) Open(env providers.Env) (providers.Backend, error) {
	return NewVMClient(agent.NewClient(env.HTTP)), nil
}

// Name is the backend's name.
func (v *VMClient) Name() string { return Name }
