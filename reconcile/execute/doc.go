// Package execute carries out a plans.Plan: the card chains through a
// providers.Provider (the card side and the node's VM backend), and the
// changes a backend planned for its own objects through that backend
// (providers.Planner). It validates every change before touching
// anything, then walks the plan's waves and dependency graph with bounded
// concurrency, retries passing faults, verifies what it programs, and
// records each completed step in the journal so that an interrupted run
// is finished by the next one without repeating a step. When its context
// ends it starts no new card chain and lets those in flight finish. An
// attach or detach that the VM's platform could make only in its
// definition (providers.ErrNeedsRestart) ends pending restart, with what
// depends on it, unless the plan says to restart the VM
// (plans.RestartVM). It never decides what to change: that is the
// planner's job.
package execute
