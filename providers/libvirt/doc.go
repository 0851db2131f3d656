// Package libvirt is the VM side of fpgaops for KVM hosts managed by
// libvirt without OpenStack: it observes a node's domains, the PCI
// functions each holds as hostdevs (live and in the persistent
// definition) and the node's PCI devices, and it attaches and detaches FPGA
// functions as managed PCI hostdevs.
//
// It speaks libvirt's RPC protocol through github.com/digitalocean/go-libvirt
// (no cgo) and reads and writes XML with libvirt.org/go/libvirtxml. Each
// node has one cached connection, reached by the node's libvirt URI
// (spec.Node.Libvirt) and re-dialled when it is lost.
//
// A change to a running domain is made live and persistent; a change to a
// stopped domain only persistent. Where the driver cannot change a running
// domain live, the persistent definition is changed and the call returns
// an error that wraps ErrNeedsRestart: the change takes effect when the VM
// restarts. The package never stops or starts a VM on its own; Restart is
// there for a caller whose policy allows it.
package libvirt
