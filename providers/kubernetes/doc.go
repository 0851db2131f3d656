// Package kubernetes is fpgaops's Kubernetes backend (a
// providers.Planner): it runs the FPGA pools of Kubernetes nodes through
// Dynamic Resource Allocation, for the nodes that name their Kubernetes
// node (spec.Node.Kubernetes).
//
// The model: a binding on such a node names a pool, not a VM. Each node's
// functions that pool bindings give out are devices of one ResourceSlice
// of the driver fpga.fpgaops.io (one device per card, or per VF), with
// their pool, bitstream, AFU and interface IDs, board, slot and PCI
// address as attributes, published only while the card is healthy and
// runs its binding's bitstream; each pool has a DeviceClass. The
// scheduler allocates the devices to pods' ResourceClaims; the node
// agent's kubelet plugin (fpga/agent/dra) prepares them.
//
// Reprogramming a card is a chain of the plan's changes, gated by the
// core planner like a VM's: the card's devices leave the ResourceSlice
// (no new allocation), the pods whose claims hold them are evicted
// through the Eviction API (disruptive, one disrupted "VM" namespace/name
// per pod; a PodDisruptionBudget that allows no disruption holds the
// eviction), the card's VFs are changed and it is programmed through its
// agent, and its devices return with their new attributes. Which claims
// hold which device is observed; an allocation fpgaops did not expect (a
// device it does not offer, or one of another pool) is drift, reported.
//
// The work is split as in the rest of fpgaops: ObservePlatform reads the
// API server and the nodes' agents, Plan is a pure function of the
// desired fleet and that observation (State), and Apply carries out one
// change, finding again on the platform what it needs.
package kubernetes
