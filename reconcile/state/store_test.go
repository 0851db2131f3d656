package state_test

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// The store is the engine's Store.
var _ state.Store = (*state.Local)(nil)

func open(t *testing.T, dir string, opts state.Options) *state.Local {
	t.Helper()
	s, err := state.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunsNewestFirstAndBounded(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), state.Options{KeepRuns: 3})
	for i := 1; i <= 5; i++ {
		r := &state.Run{Trigger: "schedule", Revision: fmt.Sprintf("%040d", i), Outcome: state.OutcomeApplied}
		if err := s.AddRun(r); err != nil {
			t.Fatal(err)
		}
		if r.ID != uint64(i) {
			t.Fatalf("run %d got ID %d", i, r.ID)
		}
	}
	runs, err := s.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	for _, r := range runs {
		ids = append(ids, r.ID)
	}
	if want := []uint64{5, 4, 3}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("runs = %v, want %v", ids, want)
	}
	two, err := s.Runs(2)
	if err != nil || len(two) != 2 || two[0].Revision != fmt.Sprintf("%040d", 5) {
		t.Fatalf("Runs(2) = %+v, %v", two, err)
	}
}

func TestStatusSuspendedInventory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := open(t, dir, state.Options{})

	var got map[string]string
	if found, err := s.Status(&got); err != nil || found {
		t.Fatalf("empty store: found=%v err=%v", found, err)
	}
	if err := s.PutStatus(map[string]string{"lastApplied": "abc"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSuspended(true); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordApplied(map[string]string{"node/a/fpga/pac0": "d1", "node/b/fpga/pac0": "d2"}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordApplied(map[string]string{"node/a/fpga/pac0": "d3"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Forget("node/b/fpga/pac0"); err != nil {
		t.Fatal(err)
	}

	// A reader opened afterwards, read-only, sees it all.
	r := open(t, dir, state.Options{ReadOnly: true})
	if found, err := r.Status(&got); err != nil || !found || got["lastApplied"] != "abc" {
		t.Fatalf("status = %v, %v, %v", got, found, err)
	}
	if on, err := r.Suspended(); err != nil || !on {
		t.Fatalf("suspended = %v, %v", on, err)
	}
	inv, err := r.Applied()
	if err != nil || !reflect.DeepEqual(inv, map[string]string{"node/a/fpga/pac0": "d3"}) {
		t.Fatalf("applied = %v, %v", inv, err)
	}
	if err := r.SetSuspended(false); err == nil {
		t.Fatal("a read-only store accepted a write")
	}
}

func TestReadOnlyOpenOfEmptyDir(t *testing.T) {
	t.Parallel()
	_, err := state.Open(t.TempDir(), state.Options{ReadOnly: true})
	if !errors.Is(err, state.ErrNoState) {
		t.Fatalf("got %v, want ErrNoState", err)
	}
}

func TestJournal(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), state.Options{})
	j := s.Journal()
	if err := j.Record("node/a/fpga/pac0:program@d1"); err == nil {
		t.Fatal("Record before Begin was accepted")
	}
	if err := j.Begin("plan-1", false); err != nil {
		t.Fatal(err)
	}
	if err := j.Record("node/a/fpga/pac0:program@d1"); err != nil {
		t.Fatal(err)
	}
	// A new store on the same directory, as after a restart, still knows.
	j2 := open(t, s.Dir(), state.Options{}).Journal()
	for key, want := range map[string]bool{"node/a/fpga/pac0:program@d1": true, "node/a/fpga/pac0:program@d2": false} {
		if got, err := j2.Done(key); err != nil || got != want {
			t.Fatalf("Done(%s) = %v, %v; want %v", key, got, err, want)
		}
	}
	// Resuming the same plan keeps the entries; resuming another plan, or
	// starting afresh, drops them.
	if err := j2.Begin("plan-1", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := j2.Done("node/a/fpga/pac0:program@d1"); !got {
		t.Fatal("resuming the same plan dropped its entries")
	}
	if err := j2.Begin("plan-2", true); err != nil {
		t.Fatal(err)
	}
	if got, _ := j2.Done("node/a/fpga/pac0:program@d1"); got {
		t.Fatal("an entry of another plan survived Begin")
	}
	if err := j2.Record("node/a/fpga/pac0:program@d1"); err != nil {
		t.Fatal(err)
	}
	if err := j2.Begin("plan-2", false); err != nil {
		t.Fatal(err)
	}
	if got, _ := j2.Done("node/a/fpga/pac0:program@d1"); got {
		t.Fatal("a fresh Begin kept an entry")
	}
	if plan, err := j2.Plan(); err != nil || plan != "plan-2" {
		t.Fatalf("Plan = %q, %v", plan, err)
	}
	if err := j2.Record("node/a/fpga/pac0:program@d1"); err != nil {
		t.Fatal(err)
	}
	if err := j2.Finish(); err != nil {
		t.Fatal(err)
	}
	if keys, err := j.Pending(); err != nil || len(keys) != 0 {
		t.Fatalf("after Finish: %v, %v", keys, err)
	}
}

// TestReaderWhileWriting is what status and history do while a controller
// writes: both go on, neither fails.
func TestReaderWhileWriting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, dir, state.Options{})
	r := open(t, dir, state.Options{ReadOnly: true, Timeout: 10 * time.Second})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 30 {
			if err := w.AddRun(&state.Run{Outcome: state.OutcomeApplied}); err != nil {
				errs <- err
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 30 {
			if _, err := r.Runs(5); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if runs, err := r.Runs(0); err != nil || len(runs) != 30 {
		t.Fatalf("runs = %d, %v", len(runs), err)
	}
}

func TestLockIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := state.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = state.Acquire(dir)
	if !errors.Is(err, state.ErrLocked) {
		t.Fatalf("second Acquire: got %v, want ErrLocked", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := state.Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

func BenchmarkJournalRecord(b *testing.B) {
	s, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	j := s.Journal()
	if err := j.Begin("plan", false); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		if err := j.Record(fmt.Sprintf("node/n%d/fpga/pac0:program@d", i)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAddRun(b *testing.B) {
	s, err := state.Open(b.TempDir(), state.Options{KeepRuns: 100})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := s.AddRun(&state.Run{Outcome: state.OutcomeApplied, Nodes: make([]state.NodeSummary, 50)}); err != nil {
			b.Fatal(err)
		}
	}
}
