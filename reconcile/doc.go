// Package reconcile turns desired state and observed state into a plan.
//
// Placeholder: the full description follows with the planner.
package reconcile
