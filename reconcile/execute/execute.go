package execute

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/policy"
	"github.com/fpgaops/fpgaops/reconcile/state"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
	"golang.org/x/sync/errgroup"
)

// ImageSource gives the image to program for a bitstream.
type ImageSource interface {
	Image(ctx context.Context, bs spec.Bitstream) (providers.Image, error)
}

// RepoImages reads bitstreams that live in the repository from its
// directory; a bitstream with a URL is passed on without data, for the
// node to fetch and check.
type RepoImages struct {
	Root string
}

func (r RepoImages) Image(_ context.Context, bs spec.Bitstream) (providers.Image, error) {
	if bs.File == "" {
		return providers.Image{Bitstream: bs}, nil
	}
	data, err := os.ReadFile(filepath.Join(r.Root, filepath.FromSlash(bs.File)))
	if err != nil {
		return providers.Image{}, err
	}
	return providers.Image{Bitstream: bs, Data: data}, nil
}

// Retry says how passing faults are retried: up to Attempts calls in all,
// waiting Base, 2*Base, 4*Base ... at most Max between them.
type Retry struct {
	Attempts  int
	Base, Max time.Duration
}

// DefaultRetry is used when Executor.Retry is zero.
var DefaultRetry = Retry{Attempts: 4, Base: 500 * time.Millisecond, Max: 10 * time.Second}

func (r Retry) backoff(attempt int) time.Duration {
	d := r.Base << (attempt - 1)
	if d > r.Max || d <= 0 {
		d = r.Max
	}
	return d
}

// DefaultRestartTimeout is used when Executor.RestartTimeout is zero.
const DefaultRestartTimeout = 5 * time.Minute

// Executor carries out plans. Provider and Images are required; the rest
// have defaults.
type Executor struct {
	// Provider reaches the cards and the VMs of the card chains.
	Provider providers.Provider
	// Backends carry out the changes they planned (plans.Change.Backend),
	// by name.
	Backends map[string]providers.Planner
	Images   ImageSource
	// Journal defaults to one that lasts a single run.
	Journal state.Journal
	// Resume continues the journal's interrupted run of the same plan,
	// skipping the steps it completed. Only a caller that knows the plan
	// is that run's (the same saved plan, applied again after a kill)
	// sets it; a run of a fresh plan never needs it.
	Resume   bool
	Progress Progress
	// Concurrency bounds how many independent cards change at once within
	// a wave; 0 means the plan's budget of cards in flight.
	Concurrency int
	Retry       Retry
	// RestartTimeout bounds one restart of a VM (a guest may ignore the
	// shutdown request); 0 means DefaultRestartTimeout.
	RestartTimeout time.Duration
	// Sleep waits between retries; tests replace it.
	Sleep func(ctx context.Context, d time.Duration) error
	Log   *slog.Logger
}

// Report is how a run went: one result per change, in plan order, the
// counts of how they ended, and the cards that converged with the
// desired digest they converged to (what the planner's Options.Applied
// wants next time).
type Report struct {
	Results   []plans.Result    `json:"results"`
	Converged map[string]string `json:"converged"`
	plans.Counts
}

func (r *Report) failed() int { return r.Failed + r.Blocked }

// ErrValidate marks a plan refused before anything was touched.
var ErrValidate = errors.New("plan refused before any change")

// Apply validates every change of the plan and then runs it, wave after
// wave. A failed change stops the changes that depend on it; independent
// cards go on. It returns the report with an error when any change
// failed, was blocked, or the context ended.
func (e *Executor) Apply(ctx context.Context, desired *spec.Fleet, p *plans.Plan) (*Report, error) {
	x := &run{
		Executor: e,
		desired:  desired,
		plan:     p,
		results:  make([]plans.Result, len(p.Changes)),
		index:    make(map[string]int, len(p.Changes)),
		images:   map[string]providers.Image{},
	}
	x.defaults()
	x.indexDesired()
	for i := range p.Changes {
		x.index[p.Changes[i].ID] = i
		x.results[i] = plans.Result{ID: p.Changes[i].ID, Status: plans.StatusNotRun}
		if p.Changes[i].Held != nil {
			x.results[i].Status = plans.StatusHeld
		}
	}
	if err := x.validate(ctx); err != nil {
		return nil, err
	}
	if err := x.Journal.Begin(PlanKey(p), x.Resume); err != nil {
		return nil, err
	}
	waves := make([][]int, p.Waves+1)
	for i := range p.Changes {
		if c := &p.Changes[i]; c.Runnable() && c.Wave >= 1 && c.Wave <= p.Waves {
			waves[c.Wave] = append(waves[c.Wave], i)
		}
	}
	for w := 1; w <= p.Waves && ctx.Err() == nil; w++ {
		x.wave(ctx, waves[w])
	}
	rep := x.report()
	if err := ctx.Err(); err != nil && rep.NotRun > 0 {
		return rep, fmt.Errorf("stopped before %d change(s): %w", rep.NotRun, err)
	}
	if rep.failed() > 0 {
		return rep, fmt.Errorf("%d change(s) failed and %d were blocked by them", rep.Failed, rep.Blocked)
	}
	if err := x.Journal.Finish(); err != nil {
		return rep, err
	}
	return rep, nil
}

type run struct {
	*Executor
	desired *spec.Fleet
	// nodes and bitstreams index the desired state by name.
	nodes      map[string]*spec.Node
	bitstreams map[string]*spec.Bitstream
	plan       *plans.Plan
	results    []plans.Result
	index      map[string]int
	mu         sync.Mutex // guards images
	images     map[string]providers.Image
}

func (x *run) indexDesired() {
	x.nodes = make(map[string]*spec.Node, len(x.desired.Nodes))
	for i := range x.desired.Nodes {
		x.nodes[x.desired.Nodes[i].Name] = &x.desired.Nodes[i]
	}
	x.bitstreams = make(map[string]*spec.Bitstream, len(x.desired.Bitstreams))
	for i := range x.desired.Bitstreams {
		x.bitstreams[x.desired.Bitstreams[i].Name] = &x.desired.Bitstreams[i]
	}
}

func (x *run) defaults() {
	c := *x.Executor
	if c.Journal == nil {
		c.Journal = &memJournal{done: map[string]bool{}}
	}
	if c.Progress == nil {
		c.Progress = NoProgress{}
	}
	if c.Concurrency <= 0 {
		c.Concurrency = x.plan.Budget.MaxCardsInFlight
		if c.Concurrency <= 0 {
			c.Concurrency = policy.DefaultMaxCardsInFlight
		}
	}
	if c.Retry.Attempts <= 0 {
		c.Retry = DefaultRetry
	}
	if c.Sleep == nil {
		c.Sleep = sleep
	}
	if c.RestartTimeout <= 0 {
		c.RestartTimeout = DefaultRestartTimeout
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	x.Executor = &c
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// validate is the dry run: every runnable change must name a node, card,
// VM and bitstream the desired state has, and every image must be
// readable with the digest and IDs the repository declares. All problems
// are reported together, and nothing is touched when there is one.
func (x *run) validate(ctx context.Context) error {
	var errs []error
	if x.plan.FormatVersion != plans.FormatVersion {
		errs = append(errs, fmt.Errorf("plan format %d, this fpgaops reads %d", x.plan.FormatVersion, plans.FormatVersion))
	}
	if d := x.desired.Digest(); d != x.plan.DesiredDigest {
		errs = append(errs, fmt.Errorf("the plan was made for desired state %s, not %s", short(x.plan.DesiredDigest), short(d)))
	}
	for i := range x.plan.Changes {
		c := &x.plan.Changes[i]
		if !c.Runnable() {
			continue
		}
		if err := x.check(ctx, c); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.ID, err))
		}
		for _, d := range c.DependsOn {
			if _, ok := x.index[d]; !ok {
				errs = append(errs, fmt.Errorf("%s: depends on %s, which is not in the plan", c.ID, d))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrValidate, errors.Join(errs...))
	}
	return nil
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func (x *run) check(ctx context.Context, c *plans.Change) error {
	if c.Backend != "" {
		b, ok := x.Backends[c.Backend]
		if !ok {
			return fmt.Errorf("backend %s is not in use", c.Backend)
		}
		return b.Check(ctx, x.desired, c)
	}
	n, ok := x.nodes[c.Node]
	if !ok {
		return fmt.Errorf("node %s is not in the desired state", c.Node)
	}
	card, ok := n.FPGA(c.Card)
	if !ok || card.PCI != c.CardPCI {
		return fmt.Errorf("node %s has no card %s at %s", c.Node, c.Card, c.CardPCI)
	}
	switch c.Action {
	case plans.ActionDetach:
		if c.Before == nil || c.Before.VM == "" || c.Before.PCI == "" {
			return errors.New("detach names no VM and function")
		}
	case plans.ActionAttach:
		if c.After == nil || c.After.VM == "" {
			return errors.New("attach names no VM")
		}
		if _, err := spec.ParseFunction(c.After.Function); err != nil {
			return err
		}
		// The VM side says now whether it has the VM and the function
		// (a VF's address is known only once VFs are on: then only the
		// VM), so that no card is programmed for an attach that cannot
		// happen.
		if err := providers.CheckAttach(ctx, x.Provider, n, c.After.VM, c.After.PCI); err != nil {
			return err
		}
	case plans.ActionSetVFs:
		if c.After == nil || c.After.VFs == nil {
			return errors.New("set-vfs names no VF count")
		}
	case plans.ActionProgram:
		if c.After == nil {
			return errors.New("program names no bitstream")
		}
		bs, ok := x.bitstreams[c.After.Bitstream]
		if !ok {
			return fmt.Errorf("bitstream %s is not in the desired state", c.After.Bitstream)
		}
		if bs.SHA256 != c.After.SHA256 || bs.AFUID != c.After.AFUID {
			return fmt.Errorf("bitstream %s differs from the one planned", bs.Name)
		}
		if _, err := x.image(ctx, *bs); err != nil {
			return err
		}
	default:
		return fmt.Errorf("action %q cannot run", c.Action)
	}
	return nil
}

// image loads and checks a bitstream once per run.
func (x *run) image(ctx context.Context, bs spec.Bitstream) (providers.Image, error) {
	x.mu.Lock()
	img, ok := x.images[bs.Name]
	x.mu.Unlock()
	if ok {
		return img, nil
	}
	img, err := x.Images.Image(ctx, bs)
	if err != nil {
		return providers.Image{}, fmt.Errorf("bitstream %s: %w", bs.Name, err)
	}
	if img.Data != nil {
		sum := sha256.Sum256(img.Data)
		if got := hex.EncodeToString(sum[:]); got != bs.SHA256 {
			return providers.Image{}, fmt.Errorf("bitstream %s: digest is %s, the repository says %s", bs.Name, got, bs.SHA256)
		}
		f, err := bitstream.Parse(img.Data)
		if err != nil {
			return providers.Image{}, fmt.Errorf("bitstream %s: %w", bs.Name, err)
		}
		if f.InterfaceID() != bs.InterfaceID || f.AFUID() != bs.AFUID {
			return providers.Image{}, fmt.Errorf("bitstream %s: image is for interface %s with AFU %s, the repository says %s and %s",
				bs.Name, f.InterfaceID(), f.AFUID(), bs.InterfaceID, bs.AFUID)
		}
	}
	x.mu.Lock()
	x.images[bs.Name] = img
	x.mu.Unlock()
	return img, nil
}

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

// group runs one group's changes in order; a change whose dependency did
// not complete is blocked.
func (x *run) group(ctx context.Context, members []int) {
	for _, i := range members {
		c := &x.plan.Changes[i]
		r := &x.results[i]
		if blocked, pending := x.blockedBy(c); blocked != "" {
			r.Status, r.Error = plans.StatusBlocked, "blocked: "+blocked+" did not complete"
			if pending {
				r.Status, r.Error = plans.StatusPendingRestart, "waits for "+blocked+", which waits for its VM's restart"
			}
			x.Progress.Finished(c, *r)
			continue
		}
		key := Key(c)
		done, err := x.Journal.Done(key)
		if err != nil {
			x.fail(c, r, err)
			continue
		}
		if done {
			r.Status = plans.StatusSkipped
			x.Log.Info("skipped, completed in an earlier run", "change", c.ID)
			x.Progress.Finished(c, *r)
			continue
		}
		x.Progress.Started(c)
		attempts, err := x.attempt(ctx, c)
		r.Attempts = attempts
		if errors.Is(err, providers.ErrNeedsRestart) {
			err = x.restart(ctx, c, r, err)
			if r.Status == plans.StatusPendingRestart {
				continue
			}
		}
		if err != nil {
			x.fail(c, r, err)
			continue
		}
		if err := x.Journal.Record(key); err != nil {
			x.fail(c, r, fmt.Errorf("journal: %w", err))
			continue
		}
		r.Status = plans.StatusApplied
		x.Log.Info("applied", "change", c.ID, "attempts", attempts)
		x.Progress.Finished(c, *r)
	}
}

func (x *run) fail(c *plans.Change, r *plans.Result, err error) {
	r.Status, r.Error = plans.StatusFailed, fmt.Errorf("%s: %w", c.ID, err).Error()
	x.Log.Error("failed", "change", c.ID, "err", err)
	x.Progress.Finished(c, *r)
}

// restart handles an attach or detach that changed only the VM's
// definition: when the plan says to restart the VM (the policy allows it,
// within a window), it does, and the change is then in effect; otherwise
// the change is pending restart. It returns the error to fail with, if
// any.
func (x *run) restart(ctx context.Context, c *plans.Change, r *plans.Result, cause error) error {
	pending := func() error {
		r.Status, r.Error = plans.StatusPendingRestart, fmt.Sprintf("%s: %v", c.ID, cause)
		x.Log.Warn("waits for the VM's restart", "change", c.ID, "vm", c.VM())
		x.Progress.Finished(c, *r)
		return nil
	}
	if c.Restart != plans.RestartVM {
		return pending()
	}
	node := x.nodes[c.Node]
	for n := 1; ; n++ {
		r.Attempts++
		rctx, cancel := context.WithTimeout(ctx, x.RestartTimeout)
		err := providers.Restart(rctx, x.Provider, node, c.VM())
		cancel()
		switch {
		case err == nil:
			x.Log.Info("restarted", "change", c.ID, "vm", c.VM())
			return nil
		case errors.Is(err, providers.ErrNoRestart):
			cause = fmt.Errorf("%w (%w)", cause, err)
			return pending()
		case !providers.IsTransient(err) || n >= x.Retry.Attempts || ctx.Err() != nil:
			return fmt.Errorf("restart %s: %w", c.VM(), err)
		}
		x.Log.Warn("retrying restart", "change", c.ID, "attempt", n, "err", err)
		if serr := x.Sleep(ctx, x.Retry.backoff(n)); serr != nil {
			return errors.Join(err, serr)
		}
	}
}

// blockedBy names a dependency that did not complete, or "", and whether
// that dependency waits for a VM's restart.
func (x *run) blockedBy(c *plans.Change) (string, bool) {
	for _, d := range c.DependsOn {
		j, ok := x.index[d]
		if !ok || !x.results[j].Status.Done() {
			return d, ok && x.results[j].Status == plans.StatusPendingRestart
		}
	}
	return "", false
}

// attempt runs the change, retrying passing faults with backoff.
func (x *run) attempt(ctx context.Context, c *plans.Change) (int, error) {
	for n := 1; ; n++ {
		err := x.step(ctx, c)
		if err == nil {
			return n, nil
		}
		if !providers.IsTransient(err) || n >= x.Retry.Attempts || ctx.Err() != nil {
			return n, err
		}
		x.Log.Warn("retrying", "change", c.ID, "attempt", n, "err", err)
		if serr := x.Sleep(ctx, x.Retry.backoff(n)); serr != nil {
			return n, errors.Join(err, serr)
		}
	}
}

// step makes the provider calls of one change.
func (x *run) step(ctx context.Context, c *plans.Change) error {
	if c.Backend != "" {
		return x.Backends[c.Backend].Apply(ctx, x.desired, c)
	}
	node := x.nodes[c.Node]
	p := x.Provider
	switch c.Action {
	case plans.ActionDetach:
		return p.Detach(ctx, node, c.Before.VM, c.Before.PCI)
	case plans.ActionSetVFs:
		return p.SetVFs(ctx, node, c.CardPCI, *c.After.VFs)
	case plans.ActionProgram:
		bs := x.bitstreams[c.After.Bitstream]
		img, err := x.image(ctx, *bs)
		if err != nil {
			return err
		}
		if err := p.Program(ctx, node, c.CardPCI, img); err != nil {
			return fmt.Errorf("program: %w", err)
		}
		// The card is programmed now: a run cancelled from here on must
		// still verify and journal it, or the next run would program it
		// again.
		vctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), verifyTimeout)
		defer cancel()
		return x.verify(vctx, node, c)
	case plans.ActionAttach:
		pci := c.After.PCI
		if pci == "" {
			var err error
			if pci, err = x.resolveVF(ctx, node, c); err != nil {
				return err
			}
		}
		return p.Attach(ctx, node, c.After.VM, pci)
	}
	return fmt.Errorf("action %q cannot run", c.Action)
}

// verifyTimeout bounds the read-back of a card that was just programmed,
// which outlives the run's cancellation.
const verifyTimeout = time.Minute

// verify reads the card back after programming; a different AFU ID stops
// the card's chain. A read that fails passingly is retried with the step.
func (x *run) verify(ctx context.Context, node *spec.Node, c *plans.Change) error {
	dev, err := x.card(ctx, node, c.CardPCI)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if got := dev.AFUID(); got != c.After.AFUID {
		return fmt.Errorf("verify: card runs AFU %s after programming, want %s", got, c.After.AFUID)
	}
	return nil
}

// resolveVF finds a VF's address once VFs are on: SR-IOV numbering is the
// hardware's business, so the card is observed again.
func (x *run) resolveVF(ctx context.Context, node *spec.Node, c *plans.Change) (string, error) {
	fn, err := spec.ParseFunction(c.After.Function)
	if err != nil {
		return "", err
	}
	dev, err := x.card(ctx, node, c.CardPCI)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", fn, err)
	}
	if fn.PF {
		return dev.PCI, nil
	}
	for _, vf := range dev.VFs {
		if vf.Index == fn.VF {
			return vf.PCI, nil
		}
	}
	return "", fmt.Errorf("resolve %s: the card has %d VF(s) on", fn, dev.NumVFs)
}

func (x *run) card(ctx context.Context, node *spec.Node, pci string) (*fpga.Device, error) {
	devs, err := x.Provider.ObserveCards(ctx, node)
	if err != nil {
		return nil, err
	}
	for i := range devs {
		if devs[i].PCI == pci {
			return &devs[i], nil
		}
	}
	return nil, fmt.Errorf("no card at %s", pci)
}

func (x *run) report() *Report {
	rep := &Report{Results: x.results, Converged: map[string]string{}}
	pending := map[string]bool{}
	for i := range x.plan.Changes {
		c := &x.plan.Changes[i]
		r := &x.results[i]
		switch r.Status {
		case plans.StatusApplied:
			rep.Applied++
		case plans.StatusSkipped:
			rep.Skipped++
		case plans.StatusFailed:
			rep.Failed++
		case plans.StatusBlocked:
			rep.Blocked++
		case plans.StatusHeld:
			rep.Held++
		case plans.StatusPendingRestart:
			rep.PendingRestart++
		case plans.StatusNotRun:
			if c.Runnable() {
				rep.NotRun++
			}
		}
		if c.Card == "" {
			continue
		}
		id := plans.CardID(c.Node, c.Card)
		if !r.Status.Done() && c.Action != plans.ActionNoop {
			pending[id] = true
		}
		if c.Digest != "" && c.Backend == "" {
			rep.Converged[id] = c.Digest
		}
	}
	for id := range pending {
		delete(rep.Converged, id)
	}
	return rep
}
