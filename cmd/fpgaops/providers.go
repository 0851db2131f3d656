package main

import (
	"fmt"
	"os"
	"time"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	libvirtvms "github.com/fpgaops/fpgaops/providers/libvirt"
	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// VM sides a node can use.
const (
	vmSideAuto      = "auto"
	vmSideEndpoint  = "endpoint"
	vmSideLibvirt   = "libvirt"
	vmSideOpenStack = "openstack"
)

// providerFlags are the flags that say how to reach the fleet; plan, apply
// and run share them.
type providerFlags struct {
	// Concurrency bounds how many nodes are observed (and changed) at once.
	Concurrency int
	// NodeTimeout bounds observing one node; a node that does not answer
	// in time is unknown.
	NodeTimeout time.Duration

	clientCert, clientKey, caFile string
	insecure                      bool
	vms                           string
	// osCloud is the clouds.yaml entry --os-cloud names; "" means the
	// environment's (OS_CLOUD or OS_* credentials).
	osCloud string
	// getenv reads the environment (OS_* for OpenStack); nil means
	// os.Getenv.
	getenv func(string) string
}

// openStackConfigured reports whether --os-cloud or the environment names
// an OpenStack cloud (clouds.yaml entry or credentials).
func (f *providerFlags) openStackConfigured() bool {
	if f.osCloud != "" {
		return true
	}
	get := f.getenv
	if get == nil {
		get = os.Getenv
	}
	return get("OS_CLOUD") != "" || get("OS_AUTH_URL") != ""
}

func (f *providerFlags) register(fs *pflag.FlagSet) {
	fs.IntVar(&f.Concurrency, "concurrency", 64, "nodes observed and changed at once")
	fs.DurationVar(&f.NodeTimeout, "node-timeout", 10*time.Second, "time to observe one node before it counts as unknown")
	fs.StringVar(&f.clientCert, "agent-cert", "", "client certificate (PEM) presented to node agents")
	fs.StringVar(&f.clientKey, "agent-key", "", "key (PEM) of the client certificate presented to node agents")
	fs.StringVar(&f.caFile, "agent-ca", "", "CA (PEM) that signed the node agents' certificates (default: system roots)")
	fs.BoolVar(&f.insecure, "insecure", false, "allow plain-HTTP endpoints on loopback (the simulated fleet)")
	fs.StringVar(&f.vms, "vms", vmSideAuto, "where nodes' VMs are managed: auto, endpoint, libvirt or openstack;\nauto picks libvirt for nodes with a libvirt URI, openstack for nodes with\na hostname when OS_CLOUD or OS_AUTH_URL is set, and the node's endpoint\n(the simulated fleet) otherwise")
}

// newProvider builds the provider that observes and changes the fleet's
// nodes, choosing per node from what the fleet declares: the card side is
// always the node's agent at its endpoint; the VM side is chosen by
// vmSide.
func newProvider(fleet *spec.Fleet, f *providerFlags) (providers.Provider, error) {
	switch f.vms {
	case vmSideAuto, vmSideEndpoint, vmSideLibvirt, vmSideOpenStack:
	default:
		return nil, fmt.Errorf("--vms %q: want auto, endpoint, libvirt or openstack", f.vms)
	}
	tr := agent.Transport{TLS: agent.TLSFiles{Cert: f.clientCert, Key: f.clientKey, CA: f.caFile}, Insecure: f.insecure, Concurrency: f.Concurrency}
	if err := tr.CheckEndpoints(fleet.Nodes); err != nil {
		return nil, err
	}
	hc, err := tr.HTTPClient()
	if err != nil {
		return nil, err
	}
	cards := agent.NewClient(hc)
	byNode := make(map[string]providers.VMs, len(fleet.Nodes))
	sides := map[string]providers.VMs{}
	for i := range fleet.Nodes {
		n := &fleet.Nodes[i]
		kind := f.vmSide(n)
		side, ok := sides[kind]
		if !ok {
			if side, err = newVMSide(kind, fleet, f, cards); err != nil {
				return nil, err
			}
			sides[kind] = side
		}
		byNode[n.Name] = side
	}
	return providers.Compose(cards, providers.VMsByNode(byNode)), nil
}

// openStack reports whether OpenStack manages the VMs of the fleet's
// nodes with a hostname: the planner then leaves their cards to the
// OpenStack plan (reconcile.Options.OpenStack).
func (f *providerFlags) openStack() bool {
	return f.vms == vmSideOpenStack || f.vms == vmSideAuto && f.openStackConfigured()
}

// vmSide says which VM side serves the node.
func (f *providerFlags) vmSide(n *spec.Node) string {
	if f.vms != vmSideAuto {
		return f.vms
	}
	switch {
	case n.Libvirt != "":
		return vmSideLibvirt
	case n.Hostname != "" && f.openStackConfigured():
		return vmSideOpenStack
	}
	return vmSideEndpoint
}

// newVMSide builds one VM side. The libvirt and OpenStack providers plug
// in here.
func newVMSide(kind string, fleet *spec.Fleet, f *providerFlags, c *agent.Client) (providers.VMs, error) {
	switch kind {
	case vmSideEndpoint:
		return sim.NewVMClient(c), nil
	case vmSideLibvirt:
		// One provider for every libvirt node: it keeps a connection per
		// node, dialled by the node's URI.
		return libvirtvms.New(libvirtvms.Options{}), nil
	case vmSideOpenStack:
		// The cloud is --os-cloud's, or else OS_CLOUD's (clouds.yaml) or
		// the OS_* variables'.
		return openstack.NewVMs(openstack.Options{Cloud: f.osCloud}, nil), nil
	}
	return nil, fmt.Errorf("unknown VM side %q", kind)
}
