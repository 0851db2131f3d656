// Package sim is the simulated fleet: one process that serves every node
// of a fleet repository through the node agent's API, as KWOK does for
// Kubernetes. Each node gets a fake sysfs tree, a fake programmer that
// changes it the way hardware does, and simulated VMs (those the bindings
// name, running, holding nothing at first) with a small VM API for attach
// and detach.
//
// The sim behaves like hardware where it matters for safety: it refuses to
// program a card, or to turn its VFs off, while a function of it is
// attached to a running VM, and counts each such request as a violation.
// It can add latency and inject transient faults (503) from a seed, and it
// keeps its state in a directory across restarts.
//
// It is for the demo, the benchmarks and the fault tests; it never touches
// real hardware.
package sim
