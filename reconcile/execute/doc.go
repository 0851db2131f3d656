// Package execute carries out a reconcile.Plan through a providers.Provider:
// it validates every change before touching anything, then walks the
// plan's waves and dependency graph with bounded concurrency, retries
// passing faults, verifies what it programs, and records each completed
// step in a journal so that an interrupted run is finished by the next one
// without repeating a step. An attach or detach that the VM's platform
// could make only in its definition (providers.ErrNeedsRestart) ends
// pending restart, with what depends on it, unless the plan says to
// restart the VM (reconcile.RestartVM). It never decides what to change:
// that is the planner's job.
package execute
