package controller

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeLeader is a Leadership the test hands out and takes back.
type fakeLeader struct {
	mu        sync.Mutex
	leading   bool
	granted   chan struct{} // closed when the lead is given
	term      context.Context
	end       context.CancelFunc
	elections int
}

func newFakeLeader() *fakeLeader { return &fakeLeader{granted: make(chan struct{})} }

func (f *fakeLeader) Lead(ctx context.Context) (context.Context, error) {
	for {
		f.mu.Lock()
		if f.leading {
			term := f.term
			f.mu.Unlock()
			return term, nil
		}
		granted := f.granted
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-granted:
		}
	}
}

func (f *fakeLeader) Leader() LeaderStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := LeaderStatus{Self: "me", Leading: f.leading, Elections: f.elections, Leader: "other"}
	if f.leading {
		s.Leader = "me"
	}
	return s
}

func (f *fakeLeader) give() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.term, f.end = context.WithCancel(context.Background())
	f.leading = true
	f.elections++
	close(f.granted)
}

func (f *fakeLeader) take() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leading = false
	f.end()
	f.granted = make(chan struct{})
}

// metricValue reads a gauge or counter without labels.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no %s metric", name)
	return 0
}

// TestFollowerWaitsThenTakesOver shows a follower runs nothing and serves
// the leader's status from the store; once it leads, it records the run
// the last leader left in flight as interrupted, and runs.
func TestFollowerWaitsThenTakesOver(t *testing.T) {
	fl := newFakeLeader()
	reg := prometheus.NewRegistry()
	h := newHarness(t, "", func(o *Options) {
		o.Leader, o.Registry = fl, reg
		// What the last leader left: its status and its run in flight.
		must(t, o.Store.PutStatus(Status{Source: "last leader", LastAppliedRevision: "abc"}))
		must(t, o.Store.Running(&state.Run{Trigger: "schedule", StartedAt: time.Now()}))
	})
	h.remote.Commit("first", fleetFile("nodes: []\n"), nil)
	h.start()

	st := h.waitFor("the leader's status", func(s Status) bool { return s.LastAppliedRevision == "abc" })
	if st.Leader == nil || st.Leader.Leading || st.Leader.Leader != "other" {
		t.Fatalf("a follower's status says %+v about the leader", st.Leader)
	}
	time.Sleep(300 * time.Millisecond) // time enough for a run that was not gated
	if revs := h.rec.revisions(); len(revs) != 0 || h.runs() != 0 {
		t.Fatalf("a follower ran: %v, %d runs", revs, h.runs())
	}
	if g := metricValue(t, reg, "fpgaops_leader"); g != 0 {
		t.Fatalf("fpgaops_leader = %v on a follower", g)
	}

	fl.give()
	h.waitRuns(2)
	runs, _ := h.store.Runs(0)
	if runs[0].Trigger != TriggerElection || runs[0].Outcome != state.OutcomeApplied {
		t.Fatalf("the first run of the term: %s %s; want %s applied", runs[0].Trigger, runs[0].Outcome, TriggerElection)
	}
	if runs[1].Trigger != "schedule" || runs[1].Outcome != state.OutcomeInterrupted {
		t.Fatalf("the last leader's run: %s %s; want schedule interrupted", runs[1].Trigger, runs[1].Outcome)
	}
	st = h.waitFor("leading", func(s Status) bool { return s.Leader != nil && s.Leader.Leading && s.LastRun != nil })
	if st.LastAppliedRevision == "abc" || st.Source == "last leader" {
		t.Fatalf("the leader serves the old status: %+v", st)
	}
	if g := metricValue(t, reg, "fpgaops_leader"); g != 1 {
		t.Fatalf("fpgaops_leader = %v on the leader", g)
	}
	if n := metricValue(t, reg, "fpgaops_leader_elections_total"); n != 1 {
		t.Fatalf("elections = %v; want 1", n)
	}
}

// TestLostLeadStopsTheRun shows that losing the lead ends the run's
// context (no new card chain starts) and that no run starts until the
// lead comes back.
func TestLostLeadStopsTheRun(t *testing.T) {
	fl := newFakeLeader()
	h := newHarness(t, "", func(o *Options) { o.Leader = fl })
	h.rec.gate, h.rec.entered = make(chan struct{}), make(chan struct{})
	h.remote.Commit("first", fleetFile("nodes: []\n"), nil)
	h.start()
	fl.give()
	<-h.rec.entered
	fl.take()
	close(h.rec.gate)
	h.waitRuns(1)
	h.rec.mu.Lock()
	sawStop := h.rec.sawStop
	h.rec.gate, h.rec.entered = nil, nil
	h.rec.mu.Unlock()
	if !sawStop {
		t.Fatal("the run went on after the lead was lost")
	}
	if runs, _ := h.store.Runs(1); runs[0].Outcome != state.OutcomeInterrupted {
		t.Fatalf("the run ended %s; want interrupted", runs[0].Outcome)
	}
	h.c.Trigger("manual")
	time.Sleep(300 * time.Millisecond)
	if n := h.runs(); n != 1 {
		t.Fatalf("%d runs without the lead; want 1", n)
	}
	fl.give()
	h.waitRuns(2)
}

// failingRunning is a store that cannot record the run in flight: etcd is
// down.
type failingRunning struct{ *state.Local }

func (failingRunning) Running(*state.Run) error { return errors.New("etcd: context deadline exceeded") }

func TestLeaderDoesNotRunWithoutTheStore(t *testing.T) {
	fl := newFakeLeader()
	h := newHarness(t, "", func(o *Options) {
		o.Leader = fl
		o.Store = failingRunning{o.Store.(*state.Local)}
	})
	h.remote.Commit("first", fleetFile("nodes: []\n"), nil)
	h.start()
	fl.give()
	h.waitRuns(1)
	runs, _ := h.store.Runs(1)
	if len(h.rec.revisions()) != 0 {
		t.Fatal("the reconciler ran though the store could not record the run")
	}
	if runs[0].Outcome != state.OutcomeFailed || !strings.Contains(runs[0].Error, "shared state cannot record it") {
		t.Fatalf("run %s: %q; want failed, naming the store", runs[0].Outcome, runs[0].Error)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
