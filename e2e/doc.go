// Package e2e holds the end-to-end tests and benchmarks of fpgaops against
// the simulated fleet: the real agent client, sim server, observer,
// planner and executor, over HTTP. It has no code of its own beyond a
// fleet builder for its tests.
package e2e
