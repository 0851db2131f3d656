package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
)

// Notifier hears the events of each run (notify.Notifier). Notify must
// not block.
type Notifier interface {
	Notify(events ...notify.Event)
}

// watch is what the controller remembers between runs to tell events
// apart from repeats: since when each change has been held by a window,
// and what has drifted.
type watch struct {
	heldSince map[string]time.Time
	told      map[string]bool // held too long, already told
	drifted   map[string]bool
	rollout   rolloutMark
}

// rolloutMark is where the rollout stood when the controller last told
// of it.
type rolloutMark struct {
	revision string
	step     int
	phase    rollout.Phase
}

func markOf(r *rollout.State) rolloutMark {
	if r == nil {
		return rolloutMark{}
	}
	return rolloutMark{r.Revision, r.Step, r.Phase}
}

// events are what a run tells the notifier. wasFailing says whether the
// controller was failing before the run (Ready False for a failure).
func (c *Controller) events(run *state.Run, stage string, wasFailing bool) []notify.Event {
	base := notify.Event{Source: c.status.Source, Run: run.ID, Revision: run.Revision, At: run.FinishedAt}
	if c.opts.ExternalURL != "" {
		base.URL = fmt.Sprintf("%s/runs/%d", strings.TrimSuffix(c.opts.ExternalURL, "/"), run.ID)
	}
	event := func(k notify.Kind, key, summary, detail string) notify.Event {
		ev := base
		ev.Kind, ev.Key, ev.Summary, ev.Detail = k, key, summary, detail
		return ev
	}
	var out []notify.Event
	switch run.Outcome {
	case state.OutcomeRejected:
		detail := run.Error
		if len(run.Problems) > 0 {
			var lines []string
			for _, p := range run.Problems[:min(len(run.Problems), 10)] {
				lines = append(lines, spec.Error{Pos: spec.Pos{File: p.File, Line: p.Line, Col: p.Col}, Msg: p.Message}.Error())
			}
			detail = strings.Join(lines, "\n")
		}
		out = append(out, event(notify.RevisionRejected, "revision/"+run.Revision, run.Error, detail))
	case state.OutcomeFailed, state.OutcomeFetchFailed:
		out = append(out, event(notify.RunFailed, "stage/"+stage, fmt.Sprintf("run %d failed", run.ID), run.Error))
	case state.OutcomeApplied:
		if wasFailing {
			out = append(out, event(notify.Recovered, "revision/"+run.Revision, fmt.Sprintf("revision %s applied after failures", run.Revision), ""))
		}
	}
	for _, ch := range run.Changes {
		if ch.Status == plans.StatusFailed {
			ev := event(notify.ChangeFailed, ch.ID, ch.ID+" failed", ch.Error)
			ev.Node, ev.VM, ev.Change = ch.Node, ch.VM, ch.ID
			out = append(out, ev)
		}
	}
	for _, d := range run.Degraded {
		ev := event(notify.VMDegraded, d.Node+"/"+d.VM+"/"+d.Card+"/"+d.Function,
			fmt.Sprintf("%s on %s lacks %s %s", d.VM, d.Node, d.Card, d.Function), d.Reason)
		ev.Node, ev.VM = d.Node, d.VM
		out = append(out, ev)
	}
	if run.Nodes != nil { // the run reached the fleet
		out = append(out, c.driftEvents(run, event)...)
		out = append(out, c.heldEvents(run, event)...)
	}
	return append(out, c.rolloutEvents(run, event)...)
}

// rolloutEvents tell where the policy's rollout went since the controller
// last told of it: it failed; or it started, released its next step,
// completed or was aborted.
func (c *Controller) rolloutEvents(run *state.Run, event func(notify.Kind, string, string, string) notify.Event) []notify.Event {
	r := c.status.Rollout
	now, before := markOf(r), c.watch.rollout
	c.watch.rollout = now
	if r == nil || now == before {
		return nil
	}
	key := fmt.Sprintf("rollout/%s/%d/%s", r.Revision, r.Step, r.Phase)
	detail := strings.Join(run.RolloutEvents, "\n")
	switch {
	case r.Phase == rollout.Failed:
		summary := r.Summary()
		if r.Failure != nil {
			summary += ": " + r.Failure.String()
		}
		return []notify.Event{event(notify.RolloutFailed, key, summary, detail)}
	case r.Phase == rollout.Complete, r.Phase == rollout.Aborted,
		before.revision != r.Revision, before.step != r.Step:
		return []notify.Event{event(notify.RolloutProgressed, key, r.Summary(), detail)}
	}
	return nil // the same step, from applying to baking
}

// driftEvents tell of objects newly found drifted, in one event.
func (c *Controller) driftEvents(run *state.Run, event func(notify.Kind, string, string, string) notify.Event) []notify.Event {
	now := map[string]bool{}
	var fresh []string
	for _, ch := range run.Changes {
		if !ch.Drift {
			continue
		}
		obj, _, _ := strings.Cut(ch.ID, ":")
		if !now[obj] && !c.watch.drifted[obj] {
			fresh = append(fresh, obj)
		}
		now[obj] = true
	}
	c.watch.drifted = now
	if len(fresh) == 0 {
		return nil
	}
	slices.Sort(fresh)
	sum := sha256.Sum256([]byte(strings.Join(fresh, "\n")))
	named := strings.Join(fresh[:min(len(fresh), 10)], ", ")
	if len(fresh) > 10 {
		named += fmt.Sprintf(" and %d more", len(fresh)-10)
	}
	return []notify.Event{event(notify.DriftFound, "drift/"+hex.EncodeToString(sum[:8]),
		fmt.Sprintf("%d object(s) changed since fpgaops converged them", len(fresh)), named)}
}

// heldEvents tell of changes a window has held for longer than
// HeldLongerThan, once per stretch of holding.
func (c *Controller) heldEvents(run *state.Run, event func(notify.Kind, string, string, string) notify.Event) []notify.Event {
	since, told := map[string]time.Time{}, map[string]bool{}
	var out []notify.Event
	for _, ch := range run.Changes {
		why, ok := heldByWindow(&ch)
		if !ok {
			continue
		}
		first, seen := c.watch.heldSince[ch.ID]
		if !seen {
			first = run.StartedAt
		}
		since[ch.ID], told[ch.ID] = first, c.watch.told[ch.ID]
		if told[ch.ID] || run.FinishedAt.Sub(first) < c.opts.HeldLongerThan {
			continue
		}
		told[ch.ID] = true
		ev := event(notify.HeldTooLong, ch.ID, fmt.Sprintf("%s held by the maintenance windows since %s", ch.ID, first.UTC().Format(time.RFC3339)), why)
		ev.Node, ev.VM, ev.Change = ch.Node, ch.VM, ch.ID
		out = append(out, ev)
	}
	c.watch.heldSince, c.watch.told = since, told
	return out
}

// heldByWindow says whether a window held the change, and why.
func heldByWindow(ch *state.Change) (string, bool) {
	switch {
	case ch.Held != nil:
		return ch.Held.Why, ch.Held.Gate == plans.GateWindow
	case ch.Status == plans.StatusHeld: // a window closed during the run
		return ch.Error, true
	}
	return "", false
}

// failing says whether a Ready condition is False for a failure, one a
// successful run recovers from.
func failing(ready Condition) bool {
	if ready.Status != "False" {
		return false
	}
	switch ready.Reason {
	case ReasonFetchFailed, ReasonVerificationFailed, ReasonValidationFailed, ReasonReconcileFailed, ReasonNodesUnknown:
		return true
	}
	return false
}
