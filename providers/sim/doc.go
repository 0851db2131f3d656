// Package sim is the simulated fleet: one process that serves every node
// of a fleet repository through the node agent's API, as KWOK does for
// Kubernetes. Each node holds its cards in memory, changed the way the
// careful programmer and the drivers change hardware and shown the way
// the sysfs host code reads it (a differential test holds the model to
// the fake sysfs trees of fpga/fpgatest), and simulated VMs (those the
// bindings name, running, holding nothing at first) with a small VM API
// for attach and detach. Nodes are built on first touch and cost about a
// kilobyte each, so a fleet of 100,000 fits in one process.
//
// The sim behaves like hardware where it matters for safety: it refuses to
// program a card, or to change its VFs, while a function of it is attached
// to a running VM, and counts each such request as a violation. It models
// the time partial reconfiguration, VF changes and attaches take, per card
// (a card makes one change at a time; cards change in parallel), so that
// schedules can be judged against the physical critical path. It can add
// latency, inject transient faults (503) from a seed, fail the next
// changes of one card on demand, and keep its state in a small file
// across restarts.
//
// It is for the demo, the benchmarks and the fault tests; it never touches
// real hardware.
package sim
