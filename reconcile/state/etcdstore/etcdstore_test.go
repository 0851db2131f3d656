package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/ha/etcdtest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/reconcile/state/etcdstore"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// stores returns a fresh store of each kind: the local directory and
// etcd, so that every test shows the two behave alike.
func stores(t *testing.T, keep int) map[string]state.Store {
	t.Helper()
	local, err := state.Open(t.TempDir(), state.Options{KeepRuns: keep})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	c := etcdtest.Client(t, etcdtest.Start(t, 1).Endpoints()...)
	e, err := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/test", KeepRuns: keep})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]state.Store{"local": local, "etcd": e}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// TestBehavesAsTheLocalStore runs one script against both stores.
func TestBehavesAsTheLocalStore(t *testing.T) {
	for name, s := range stores(t, 3) {
		t.Run(name, func(t *testing.T) {
			// History: numbered, newest first, the oldest past KeepRuns gone.
			for i := 1; i <= 5; i++ {
				r := &state.Run{Trigger: "schedule", Revision: fmt.Sprintf("%040d", i), Outcome: state.OutcomeApplied,
					Changes: []state.Change{{ID: fmt.Sprintf("node/n%d/fpga/pac0:program", i), Action: plans.ActionProgram, Status: plans.StatusApplied}}}
				must(t, s.AddRun(r))
				if r.ID != uint64(i) {
					t.Fatalf("run %d got ID %d", i, r.ID)
				}
			}
			runs, err := s.Runs(0)
			must(t, err)
			if got := ids(runs); !reflect.DeepEqual(got, []uint64{5, 4, 3}) {
				t.Fatalf("runs %v; want [5 4 3]", got)
			}
			if two, _ := s.Runs(2); !reflect.DeepEqual(ids(two), []uint64{5, 4}) {
				t.Fatalf("Runs(2) = %v; want [5 4]", ids(two))
			}
			// A run's changes: Run reads them, Runs does not; a pruned
			// run is gone with them.
			if runs[0].Changes != nil {
				t.Errorf("Runs gave run 5's changes: %+v", runs[0].Changes)
			}
			five, err := s.Run(5)
			must(t, err)
			if len(five.Changes) != 1 || five.Changes[0].ID != "node/n5/fpga/pac0:program" || five.Changes[0].Status != plans.StatusApplied {
				t.Errorf("Run(5) changes %+v", five.Changes)
			}
			if _, err := s.Run(1); !errors.Is(err, state.ErrNoRun) {
				t.Errorf("Run(1), pruned: %v; want ErrNoRun", err)
			}

			// The run in flight: AddRun clears it, Interrupted returns it once.
			must(t, s.Running(&state.Run{Trigger: "webhook/github"}))
			r, err := s.Interrupted()
			must(t, err)
			if r == nil || r.Trigger != "webhook/github" {
				t.Fatalf("Interrupted = %+v; want the run in flight", r)
			}
			if r, _ := s.Interrupted(); r != nil {
				t.Fatalf("Interrupted a second time = %+v; want nil", r)
			}
			must(t, s.Running(&state.Run{Trigger: "manual"}))
			must(t, s.AddRun(&state.Run{Trigger: "manual"}))
			if r, _ := s.Interrupted(); r != nil {
				t.Fatalf("Interrupted after AddRun = %+v; want nil", r)
			}

			// Status and the suspended flag.
			var st map[string]string
			if found, err := s.Status(&st); found || err != nil {
				t.Fatalf("Status before any = %v, %v", found, err)
			}
			must(t, s.PutStatus(map[string]string{"source": "git"}))
			if found, err := s.Status(&st); !found || err != nil || st["source"] != "git" {
				t.Fatalf("Status = %v, %v, %v", st, found, err)
			}
			for _, on := range []bool{true, false, true} {
				must(t, s.SetSuspended(on))
				if got, err := s.Suspended(); got != on || err != nil {
					t.Fatalf("Suspended = %v, %v; want %v", got, err, on)
				}
			}

			// The inventory.
			if m, err := s.Applied(); m != nil || err != nil {
				t.Fatalf("Applied before any = %v, %v; want nil", m, err)
			}
			must(t, s.RecordApplied(map[string]string{"node/a/fpga/0": "d1", "node/b/fpga/0": "d2"}))
			must(t, s.RecordApplied(map[string]string{"node/a/fpga/0": "d3"}))
			must(t, s.Forget("node/b/fpga/0", "node/c/fpga/9"))
			if m, _ := s.Applied(); !reflect.DeepEqual(m, map[string]string{"node/a/fpga/0": "d3"}) {
				t.Fatalf("Applied = %v", m)
			}

			// The quarantine keeps a card's first record.
			t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			must(t, s.Quarantine(state.Quarantine{Card: "node/b/fpga/1", Since: t0, Reason: "fatal"},
				state.Quarantine{Card: "node/a/fpga/0", Since: t0, Reason: "hot"}))
			must(t, s.Quarantine(state.Quarantine{Card: "node/a/fpga/0", Since: t0.Add(time.Hour), Reason: "later"}))
			qs, err := s.Quarantined()
			must(t, err)
			if len(qs) != 2 || qs[0].Card != "node/a/fpga/0" || qs[0].Reason != "hot" || !qs[0].Since.Equal(t0) {
				t.Fatalf("Quarantined = %+v", qs)
			}
			rel, err := s.Release("node/a/fpga/0")
			must(t, err)
			if len(rel) != 1 || rel[0].Card != "node/a/fpga/0" {
				t.Fatalf("Release = %+v", rel)
			}
			rel, _ = s.Release()
			if qs, _ := s.Quarantined(); len(rel) != 1 || len(qs) != 0 {
				t.Fatalf("Release() = %+v, left %+v; want the last card released", rel, qs)
			}

			// The journal: a fresh Begin drops the steps, a resume of the
			// same plan keeps them, Finish forgets them.
			j := s.Journal()
			must(t, j.Begin("plan-1", false))
			must(t, j.Record("node/a/fpga/0:program@d"))
			must(t, j.Begin("plan-1", true))
			if done, _ := j.Done("node/a/fpga/0:program@d"); !done {
				t.Fatal("a resumed journal forgot a completed step")
			}
			if p, _ := j.Plan(); p != "plan-1" {
				t.Fatalf("Plan = %q", p)
			}
			must(t, j.Begin("plan-2", true))
			if done, _ := j.Done("node/a/fpga/0:program@d"); done {
				t.Fatal("another plan's journal kept an old step")
			}
			must(t, j.Finish())
			if p, _ := j.Plan(); p != "" {
				t.Fatalf("Plan after Finish = %q; want none", p)
			}
		})
	}
}

func ids(runs []state.Run) []uint64 {
	var out []uint64
	for _, r := range runs {
		out = append(out, r.ID)
	}
	return out
}

// TestJournalSurvivesTheWriter shows a new leader (a new Store on the same
// prefix) resumes what the old one journaled.
func TestJournalSurvivesTheWriter(t *testing.T) {
	c := etcdtest.Client(t, etcdtest.Start(t, 1).Endpoints()...)
	old, _ := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/j"})
	must(t, old.Journal().Begin("plan-9", false))
	for i := range 1200 { // more than one page of the read
		must(t, old.Journal().Record(fmt.Sprintf("node/n%04d/fpga/0:program@d", i)))
	}
	next, _ := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/j"})
	must(t, next.Journal().Begin("plan-9", true))
	pending, err := next.Journal().Pending()
	must(t, err)
	if len(pending) != 1200 {
		t.Fatalf("the new writer resumed %d steps; want 1200", len(pending))
	}
}

// TestWritesNeedTheLead shows that once the leader's lease is gone, every
// write fails with ErrNotLeader and leaves the state as it was, and that a
// writer that knows it lost the lead does not even try.
func TestWritesNeedTheLead(t *testing.T) {
	c := etcdtest.Client(t, etcdtest.Start(t, 1).Endpoints()...)
	sess, err := concurrency.NewSession(c, concurrency.WithTTL(5))
	must(t, err)
	el := concurrency.NewElection(sess, "/fpgaops/g"+etcdstore.KeyElection)
	must(t, el.Campaign(context.Background(), "me"))
	key, rev := el.Key(), el.Rev()
	s, _ := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/g", Guard: func() (clientv3.Cmp, error) {
		return clientv3.Compare(clientv3.CreateRevision(key), "=", rev), nil
	}})
	must(t, s.AddRun(&state.Run{Trigger: "start"}))
	must(t, s.RecordApplied(map[string]string{"node/a/fpga/0": "d1"}))
	must(t, s.Journal().Begin("p", false))

	must(t, sess.Close()) // revokes the lease: the election key goes
	writes := map[string]func() error{
		"AddRun":        func() error { return s.AddRun(&state.Run{Trigger: "late"}) },
		"PutStatus":     func() error { return s.PutStatus("late") },
		"SetSuspended":  func() error { return s.SetSuspended(true) },
		"Running":       func() error { return s.Running(&state.Run{}) },
		"RecordApplied": func() error { return s.RecordApplied(map[string]string{"node/a/fpga/0": "d2"}) },
		"Forget":        func() error { return s.Forget("node/a/fpga/0") },
		"Quarantine":    func() error { return s.Quarantine(state.Quarantine{Card: "node/a/fpga/0"}) },
		"Record":        func() error { return s.Journal().Record("node/a/fpga/0:program@d") },
		"Finish":        func() error { return s.Journal().Finish() },
	}
	for name, w := range writes {
		if err := w(); !errors.Is(err, etcdstore.ErrNotLeader) {
			t.Errorf("%s after the lease went: %v; want ErrNotLeader", name, err)
		}
	}
	runs, _ := s.Runs(0)
	applied, _ := s.Applied()
	suspended, _ := s.Suspended()
	if len(runs) != 1 || applied["node/a/fpga/0"] != "d1" || suspended {
		t.Fatalf("a write without the lead changed the state: runs %v, inventory %v, suspended %v", ids(runs), applied, suspended)
	}

	lost := fmt.Errorf("lease expired: %w", etcdstore.ErrNotLeader)
	known, _ := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/g", Guard: func() (clientv3.Cmp, error) { return clientv3.Cmp{}, lost }})
	if _, err := known.Journal().Done("x"); !errors.Is(err, etcdstore.ErrNotLeader) {
		t.Fatalf("Done of a writer that lost the lead: %v; want ErrNotLeader, so that no step is taken", err)
	}
	if err := known.PutStatus("x"); !errors.Is(err, etcdstore.ErrNotLeader) || !strings.Contains(err.Error(), "lease expired") {
		t.Fatalf("PutStatus: %v", err)
	}
}

func TestReadOnly(t *testing.T) {
	c := etcdtest.Client(t, etcdtest.Start(t, 1).Endpoints()...)
	s, _ := etcdstore.New(c, etcdstore.Options{Prefix: "/fpgaops/r", ReadOnly: true})
	if err := s.PutStatus("x"); !errors.Is(err, state.ErrReadOnly) {
		t.Fatalf("PutStatus of a read-only store: %v", err)
	}
	if _, err := etcdstore.New(c, etcdstore.Options{Prefix: "fpgaops"}); err == nil {
		t.Fatal("a relative prefix was taken")
	}
}
