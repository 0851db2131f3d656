package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
)

// rolloutRun is a run's part of the policy's rollout: the state as this
// run's reading of the cards left it, what happened, and the cards the
// plan reverts (a failed step's, back to the last good revision).
type rolloutRun struct {
	policy *spec.Rollout
	state  *rollout.State
	events []string
	revert []string
}

// CardCheck is the check every rollout runs on its cards: the card's own
// health, and no error logged by the port since it was programmed.
const CardCheck = "card"

// planRollout plans under the policy's rollout: it reads the released
// cards (their health, the repository's checks), moves the rollout on,
// and plans either the revert of a failed step or the revision with the
// cards not yet released held. base is the plan without the rollout,
// which says what the revision reprograms and which cards converged.
func (e *Engine) planRollout(ctx context.Context, t *target, obs *observed.Fleet, opts reconcile.Options, base *plans.Plan, offline bool) (*Planned, *rolloutRun, error) {
	desired := t.desired
	ro := &rolloutRun{policy: desired.Policy.Rollout}
	var ctl state.RolloutControl
	if e.Store != nil {
		var err error
		if ro.state, err = e.Store.Rollout(); err != nil {
			return nil, nil, err
		}
		if ctl, err = e.Store.RolloutControl(); err != nil {
			return nil, nil, err
		}
	}
	now := e.now()
	key := rolloutKey(desired)
	if ro.state == nil || ro.state.Revision != key {
		lastGood := ""
		if prev := ro.state; prev != nil {
			lastGood = prev.LastGood
			if prev.Phase == rollout.Complete {
				lastGood = prev.Revision
			}
		}
		ro.state = rollout.Start(ro.policy, key, lastGood, reprogrammed(desired, base, ro.policy.SpreadBy), now)
		if ro.state.Phase == rollout.Applying {
			ro.events = append(ro.events, fmt.Sprintf("started: %d card(s) in %d step(s)", len(ro.state.Cards), len(ro.state.Steps)))
		}
	}
	ro.state.Paused = ctl.Paused
	if ctl.Abort != "" && ctl.Abort == ro.state.Revision && ro.state.Phase != rollout.Aborted {
		ro.state.Abort()
		ro.events = append(ro.events, "aborted by an operator")
	}
	if p := ro.state.Phase; p == rollout.Applying || p == rollout.Baking {
		cards := e.readCards(ctx, t, obs, base, ro.state.Released(), offline)
		fleet := e.fleetChecks(ctx, ro.policy.Checks, offline)
		ro.events = append(ro.events, ro.state.Evaluate(ro.policy, cards, fleet, now)...)
	}

	if revert := ro.state.ToRevert(ro.policy); len(revert) > 0 {
		p, err := e.planRevert(ctx, t, obs, opts, ro, revert)
		if err == nil {
			return p, ro, nil
		}
		ro.events = append(ro.events, "revert not possible, halted instead: "+err.Error())
	}
	opts.Rollout = func(card string) (int, string) { return ro.state.StepOf(card), ro.state.Hold(card) }
	p, err := reconcile.NewPlan(desired, obs, now, opts)
	if err != nil {
		return nil, nil, err
	}
	p.Rollout = ro.state
	return &Planned{Desired: desired, Observed: obs, Plan: p}, ro, nil
}

// planRevert plans the failed step's cards back to the last good
// revision: its images and its VMs. A repair: windows do not hold it, the
// budget and the safety chain do.
func (e *Engine) planRevert(ctx context.Context, t *target, obs *observed.Fleet, opts reconcile.Options, ro *rolloutRun, cards []string) (*Planned, error) {
	if e.LastGood == nil {
		return nil, errors.New("this command cannot load an earlier revision: the controller reverts from its git history")
	}
	good, err := e.LastGood(ctx, ro.state.LastGood)
	if err != nil {
		return nil, fmt.Errorf("revision %s: %w", ro.state.LastGood, err)
	}
	opts.Only = map[string]bool{}
	for _, c := range cards {
		opts.Only[c] = true
	}
	opts.Repair, opts.Backend, opts.Rollout = true, nil, nil
	p, err := reconcile.NewPlan(good, obs, e.now(), opts)
	if err != nil {
		return nil, err
	}
	p.Rollout = ro.state
	ro.revert = cards
	ro.events = append(ro.events, fmt.Sprintf("reverting %d card(s) to revision %s: %s", len(cards), ro.state.LastGood, someOf(cards, 5)))
	return &Planned{Desired: good, Observed: obs, Plan: p}, nil
}

// rolloutKey names what a rollout rolls out: the revision, or for a
// repository outside git, its digest.
func rolloutKey(f *spec.Fleet) string {
	if f.Revision != "" {
		return f.Revision
	}
	return "sha256:" + f.Digest()
}

// reprogrammed lists the cards the plan programs, as a rollout orders
// them.
func reprogrammed(desired *spec.Fleet, p *plans.Plan, spreadBy string) []rollout.Card {
	seen := map[string]bool{}
	var out []rollout.Card
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Action != plans.ActionProgram || c.Card == "" {
			continue
		}
		id := plans.CardID(c.Node, c.Card)
		if seen[id] {
			continue
		}
		seen[id] = true
		card := rollout.Card{ID: id, Node: c.Node}
		if n, ok := desired.Node(c.Node); ok && spreadBy != "" {
			card.Group = n.Labels[spreadBy]
		}
		out = append(out, card)
	}
	return out
}

// readCards reads the released cards: converged when the plan has nothing
// left to do on them and their node answered; then their own health and
// the repository's HTTP checks, made by their nodes' agents.
func (e *Engine) readCards(ctx context.Context, t *target, obs *observed.Fleet, p *plans.Plan, released []string, offline bool) map[string]rollout.Reading {
	pending := map[string]bool{}
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Card != "" && c.Action != plans.ActionNoop && c.Action != plans.ActionReport {
			pending[plans.CardID(c.Node, c.Card)] = true
		}
	}
	out := make(map[string]rollout.Reading, len(released))
	var mu sync.Mutex
	sem := make(chan struct{}, e.concurrency())
	var wg sync.WaitGroup
	for _, id := range released {
		node, slot, _ := spec.ParseCardID(id)
		sn, ok := t.desired.Node(node)
		on, seen := obs.Node(node)
		if !ok || !seen || on.State != observed.NodeOK || pending[id] {
			out[id] = rollout.Reading{}
			continue
		}
		card, ok := sn.FPGA(slot)
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := rollout.Reading{Converged: true, Failed: cardCheck(on, card.PCI)}
			if !offline {
				r.Failed = append(r.Failed, e.probe(ctx, t, sn, card)...)
			}
			mu.Lock()
			out[id] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// cardCheck is the card's own health: no problem, and no error logged by
// a port (programming clears them, so one logged since is the AFU's).
func cardCheck(n *observed.Node, pci string) []rollout.CheckFailure {
	var d *fpga.Device
	for i := range n.FPGAs {
		if n.FPGAs[i].PCI == pci {
			d = &n.FPGAs[i]
		}
	}
	switch {
	case d == nil:
		return []rollout.CheckFailure{{Check: CardCheck, Reason: "no card at " + pci}}
	case !d.Health.OK():
		return []rollout.CheckFailure{{Check: CardCheck, Reason: strings.Join(d.Health.Problems, "; ")}}
	}
	for _, r := range d.Health.Registers {
		if strings.HasPrefix(r.Name, "port ") && strings.Contains(r.Name, "errors") && r.Value != 0 {
			return []rollout.CheckFailure{{Check: CardCheck, Reason: fmt.Sprintf("%s = %s since it was programmed", r.Name, r.Value)}}
		}
	}
	return nil
}

// probe makes the repository's HTTP checks of one card through its
// node's agent.
func (e *Engine) probe(ctx context.Context, t *target, n *spec.Node, card *spec.FPGA) []rollout.CheckFailure {
	var out []rollout.CheckFailure
	for _, c := range t.desired.Policy.Rollout.Checks {
		if c.HTTP == nil {
			continue
		}
		url := strings.NewReplacer("{slot}", card.Slot, "{pci}", card.PCI).Replace(c.HTTP.URL)
		want, timeout := c.HTTP.Status, time.Duration(c.HTTP.Timeout)
		if want == 0 {
			want = http.StatusOK
		}
		if timeout == 0 {
			timeout = 2 * time.Second
		}
		prober, ok := t.cards.(providers.Prober)
		if !ok {
			out = append(out, rollout.CheckFailure{Check: c.Name, Reason: "the card side cannot make HTTP checks"})
			continue
		}
		status, err := prober.Probe(ctx, n, url, timeout)
		switch {
		case err != nil:
			out = append(out, rollout.CheckFailure{Check: c.Name, Reason: fmt.Sprintf("GET %s: %v", url, err)})
		case status != want:
			out = append(out, rollout.CheckFailure{Check: c.Name, Reason: fmt.Sprintf("GET %s: %d, want %d", url, status, want)})
		}
	}
	return out
}

// fleetChecks runs the repository's Prometheus checks.
func (e *Engine) fleetChecks(ctx context.Context, checks []spec.Check, offline bool) []rollout.CheckFailure {
	var out []rollout.CheckFailure
	for _, c := range checks {
		if c.Prometheus == nil || offline {
			continue
		}
		if err := e.Prometheus.Holds(ctx, c.Prometheus.Query); err != nil {
			out = append(out, rollout.CheckFailure{Check: c.Name, Reason: err.Error()})
		}
	}
	return out
}

// recordRollout saves the rollout's state once its plan has been
// applied: the released cards that converged, or the cards a revert gave
// back.
func (e *Engine) recordRollout(ro *rolloutRun, converged map[string]string) {
	now := e.now()
	if ro.revert != nil {
		for _, id := range ro.revert {
			if _, ok := converged[id]; ok && !slices.Contains(ro.state.Reverted, id) {
				ro.state.Reverted = append(ro.state.Reverted, id)
			}
		}
		ro.events = append(ro.events, fmt.Sprintf("%d of %d card(s) back on revision %s", len(ro.state.Reverted), len(ro.revert), ro.state.LastGood))
	} else {
		ro.events = append(ro.events, ro.state.Converged(ro.policy, slices.Sorted(maps.Keys(converged)), now)...)
	}
	for _, ev := range ro.events {
		e.log().Info("rollout", "revision", ro.state.Revision, "event", ev)
	}
}

// someOf lists the first n items and how many more there are.
func someOf(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:n], ", "), len(items)-n)
}
