package controller

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
)

// hookReceiver is a local endpoint for notify's generic webhook.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	r := &hookReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev notify.Event
		body, _ := io.ReadAll(req.Body)
		if err := json.Unmarshal(body, &ev); err != nil || req.Header.Get(notify.HeaderSignature) != notify.Sign([]byte("k"), body) {
			http.Error(w, "bad event", http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) kinds() map[notify.Kind]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := map[notify.Kind]int{}
	for _, ev := range r.events {
		n[ev.Kind]++
	}
	return n
}

// startNotifier is a notifier that sends every event to the receiver.
func startNotifier(t *testing.T, r *hookReceiver) *notify.Notifier {
	t.Helper()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	config := filepath.Join(dir, "notify.yaml")
	os.WriteFile(secret, []byte("k"), 0o600)
	os.WriteFile(config, []byte("targets:\n  - {name: ops, type: webhook, url: "+r.srv.URL+", secretFile: "+secret+"}\n"), 0o600)
	cfg, err := notify.Load(config)
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(cfg, notify.Options{Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Each kind of event reaches a receiver once, however often a run
// repeats it: a failed run with a failed change, a degraded VM, drift
// and a change held by a window; a rejected revision; the recovery.
func TestEachKindOfEventIsToldOnce(t *testing.T) {
	t.Parallel()
	recv := newHookReceiver(t)
	n := startNotifier(t, recv)
	failedRun := heldAndFailed()
	failedRun.Degraded = []plans.Degraded{{Node: "compute-02", VM: "vnf-b", Card: "pac1", Function: "vf0", Reason: "attach: domain busy"}}
	failedRun.Changes = append(failedRun.Changes, state.Change{ID: "node/compute-03/fpga/pac0:report", Action: plans.ActionReport,
		Node: "compute-03", Drift: true, Status: plans.StatusNotRun})
	rec := &scripted{steps: []scriptStep{{run: failedRun, err: errors.New("1 change(s) failed")}}}
	h := newHarness(t, "", func(o *Options) {
		o.Reconciler, o.Notifier, o.HeldLongerThan, o.ExternalURL = rec, n, time.Nanosecond, "https://fpgaops.example/"
	})
	h.remote.Commit("fleet", fleetFile("nodes: [compute-01, compute-02]"), nil)
	first := h.c.RunOnce(context.Background(), "manual")
	h.c.RunOnce(context.Background(), "retry") // the same again: nothing new to tell
	h.remote.Commit("typo", fleetFile("bad"), nil)
	h.c.RunOnce(context.Background(), "webhook/github")
	rec.mu.Lock()
	rec.steps = []scriptStep{{run: state.Run{Nodes: failedRun.Nodes}}}
	rec.mu.Unlock()
	h.remote.Commit("fixed", fleetFile("nodes: [compute-01, compute-02]"), nil)
	if run := h.c.RunOnce(context.Background(), "webhook/github"); run.Outcome != state.OutcomeApplied {
		t.Fatalf("the fix: %s", run.Outcome)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := recv.kinds()
	for _, k := range notify.Kinds {
		if k == notify.RolloutFailed || k == notify.RolloutProgressed {
			continue // TestRolloutEventsTellEachStepOnce
		}
		if got[k] != 1 {
			t.Errorf("%s told %d times, want once (all: %v)", k, got[k], got)
		}
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	i := slices.IndexFunc(recv.events, func(ev notify.Event) bool { return ev.Kind == notify.ChangeFailed })
	if i < 0 {
		return
	}
	ev := recv.events[i]
	if ev.Change != "node/compute-02/fpga/pac1:program" || ev.Run != first.ID || ev.URL != "https://fpgaops.example/runs/1" || ev.Node != "compute-02" {
		t.Errorf("change-failed event: %+v", ev)
	}
}

// A rollout is told as it goes: its start, each step released after a
// bake, its failure with the check that failed. Runs that leave it where
// it was tell nothing, nor does a controller restarted on the same state.
func TestRolloutEventsTellEachStepOnce(t *testing.T) {
	t.Parallel()
	recv := newHookReceiver(t)
	n := startNotifier(t, recv)
	at := func(step int, phase rollout.Phase) *rollout.State {
		r := &rollout.State{Revision: "c0ffee", Cards: []string{"node/a/fpga/pac0", "node/b/fpga/pac0"}, Step: step, Phase: phase,
			Steps: []rollout.Step{{Label: "1 card", Cards: 1}, {Label: "100%", Cards: 2}}}
		if phase == rollout.Failed {
			r.Failure = &rollout.Failure{Card: "node/b/fpga/pac0", Check: "card", Reason: "port 0 reports errors"}
		}
		return r
	}
	ok := state.Run{Nodes: []state.NodeSummary{{Name: "a", State: "ok"}}}
	failed := ok
	failed.RolloutEvents = []string{"reverting 1 card(s) to revision beef: node/b/fpga/pac0"}
	rec := &scripted{steps: []scriptStep{
		{run: ok, rollout: at(0, rollout.Applying)}, // started
		{run: ok, rollout: at(0, rollout.Baking)},   // nothing new
		{run: ok, rollout: at(1, rollout.Applying)}, // the next step
		{run: failed, rollout: at(1, rollout.Failed)},
		{run: ok, rollout: at(1, rollout.Failed)}, // still failed
	}}
	h := newHarness(t, "", func(o *Options) { o.Reconciler, o.Notifier = rec, n })
	h.remote.Commit("fleet", fleetFile("nodes: [a, b]"), nil)
	for range 5 {
		h.c.RunOnce(context.Background(), "schedule")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// A restarted process, its notifier new, takes up what was told.
	opts := h.c.opts
	opts.Registry = nil
	opts.Notifier = startNotifier(t, recv)
	again, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	again.RunOnce(context.Background(), "schedule")
	if err := opts.Notifier.(*notify.Notifier).Close(ctx); err != nil {
		t.Fatal(err)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	var got []string
	for _, ev := range recv.events {
		got = append(got, string(ev.Kind)+": "+ev.Summary)
	}
	want := []string{
		"rollout-progressed: rollout of c0ffee: step 1 of 2 (1 card), applying, 0 of 2 card(s) done",
		"rollout-progressed: rollout of c0ffee: step 2 of 2 (100%), applying, 0 of 2 card(s) done",
		"rollout-failed: rollout of c0ffee failed at step 2 of 2: card node/b/fpga/pac0, check card: port 0 reports errors",
	}
	if !slices.Equal(got, want) {
		t.Errorf("told\n%q\nwant\n%q", got, want)
	}
	for _, ev := range recv.events {
		if ev.Kind == notify.RolloutFailed && (ev.Severity != notify.Critical || !strings.Contains(ev.Detail, "reverting 1 card(s)")) {
			t.Errorf("rollout-failed event: %+v", ev)
		}
	}
}
