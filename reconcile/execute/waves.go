package execute

import (
	"context"
	"slices"
	"sort"

	"github.com/fpgaops/fpgaops/plans"
	"golang.org/x/sync/errgroup"
)

// wave runs the wave's changes: independent groups (connected by
// dependencies) in parallel within the concurrency limit, each group in
// dependency order. A group that has not started when ctx ends does not
// start; one that has runs to its end, its steps on a context that ctx's
// end does not cancel.
func (x *run) wave(ctx context.Context, members []int) {
	groups := components(x.plan.Changes, members, x.index)
	steps := context.WithoutCancel(ctx)
	var g errgroup.Group
	g.SetLimit(x.Concurrency)
	for _, grp := range groups {
		g.Go(func() error {
			if ctx.Err() != nil {
				return nil // not started: its changes stay not-run
			}
			x.group(steps, grp)
			return nil
		})
	}
	g.Wait()
}

// components splits members into groups joined by dependency edges, each
// in a dependency order (ties by plan order), groups by their first
// member.
func components(changes []plans.Change, members []int, index map[string]int) [][]int {
	parent := make(map[int]int, len(members))
	in := make(map[int]bool, len(members))
	for _, i := range members {
		parent[i], in[i] = i, true
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for _, i := range members {
		for _, d := range changes[i].DependsOn {
			if j, ok := index[d]; ok && in[j] {
				a, b := find(i), find(j)
				if a != b {
					if a < b {
						parent[b] = a
					} else {
						parent[a] = b
					}
				}
			}
		}
	}
	byRoot := map[int][]int{}
	var roots []int
	for _, i := range members {
		r := find(i)
		if _, ok := byRoot[r]; !ok {
			roots = append(roots, r)
		}
		byRoot[r] = append(byRoot[r], i)
	}
	sort.Ints(roots)
	out := make([][]int, len(roots))
	for k, r := range roots {
		out[k] = topoSort(changes, byRoot[r], index)
	}
	return out
}

// topoSort orders a group so every change follows its dependencies,
// keeping plan order where the graph allows.
func topoSort(changes []plans.Change, group []int, index map[string]int) []int {
	inGroup := make(map[int]bool, len(group))
	for _, i := range group {
		inGroup[i] = true
	}
	placed := make(map[int]bool, len(group))
	out := make([]int, 0, len(group))
	for len(out) < len(group) {
		progress := false
		for _, i := range group {
			if placed[i] {
				continue
			}
			ready := true
			for _, d := range changes[i].DependsOn {
				if j, ok := index[d]; ok && inGroup[j] && !placed[j] {
					ready = false
					break
				}
			}
			if ready {
				placed[i] = true
				out = append(out, i)
				progress = true
				break
			}
		}
		if !progress { // a cycle: the planner never makes one; run the rest in plan order
			for _, i := range group {
				if !placed[i] {
					placed[i] = true
					out = append(out, i)
				}
			}
		}
	}
	return out
}

// windowClosed says why the wave may not start, when it would disrupt a
// VM and the policy's windows no longer allow it; "" when it may.
func (x *run) windowClosed(members []int) string {
	if x.Policy == nil || !slices.ContainsFunc(members, func(i int) bool { return x.plan.Changes[i].Disruptive }) {
		return ""
	}
	if ok, why := x.Policy.DisruptionAllowed(x.Now()); !ok {
		return why
	}
	return ""
}

// holdFrom marks the changes of the waves left as held, with why.
func (x *run) holdFrom(waves [][]int, h plans.Hold) {
	for _, members := range waves {
		for _, i := range members {
			r := &x.results[i]
			r.Status, r.Error = plans.StatusHeld, "held by "+string(h.Gate)+": "+h.Why
		}
	}
}
