package state_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
)

var _ state.Store = (*state.Local)(nil)

func open(t *testing.T, dir string, opts state.Options) *state.Local {
	t.Helper()
	s, err := state.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
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
	// The next process goes on numbering.
	dir := s.Dir()
	s.Close()
	r := &state.Run{Outcome: state.OutcomeApplied}
	if err := open(t, dir, state.Options{KeepRuns: 3}).AddRun(r); err != nil || r.ID != 6 {
		t.Fatalf("after reopening: ID %d, %v", r.ID, err)
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

	// A reader, while the writer holds the directory, sees it all.
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
	if err := r.SetSuspended(false); !errors.Is(err, state.ErrReadOnly) {
		t.Fatalf("a read-only store accepted a write: %v", err)
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
	// A reader sees the unfinished run's plan meanwhile.
	if plan, err := open(t, s.Dir(), state.Options{ReadOnly: true}).Journal().Plan(); err != nil || plan != "plan-1" {
		t.Fatalf("a reader sees plan %q, %v", plan, err)
	}
	// The next process on the same directory still knows.
	s.Close()
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
	if keys, err := j2.Pending(); err != nil || len(keys) != 0 {
		t.Fatalf("after Finish: %v, %v", keys, err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), state.JournalFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a finished journal is left on disk: %v", err)
	}
}

// TestReadersNeverHoldUpAWriter is what status, history and plan do
// while a controller writes: they go on, and no write waits for them or
// fails, even while a reader keeps every file open.
func TestReadersNeverHoldUpAWriter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := open(t, dir, state.Options{})
	if err := w.PutStatus("first"); err != nil {
		t.Fatal(err)
	}
	// A reader that holds the files open (and a shared flock on them, as
	// `flock -s` would) changes nothing for the writer.
	for _, name := range []string{state.StatusFile, state.LockFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if name == state.StatusFile {
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := open(t, dir, state.Options{ReadOnly: true})
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() {
		defer wg.Done()
		j := w.Journal()
		if err := j.Begin("plan", false); err != nil {
			errs <- err
			return
		}
		for i := range 30 {
			start := time.Now()
			if err := w.AddRun(&state.Run{Outcome: state.OutcomeApplied}); err != nil {
				errs <- err
				return
			}
			if err := j.Record(fmt.Sprintf("step-%d", i)); err != nil {
				errs <- err
				return
			}
			if err := w.PutStatus(i); err != nil {
				errs <- err
				return
			}
			if d := time.Since(start); d > 5*time.Second {
				errs <- fmt.Errorf("a write took %s", d)
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
			var v any
			if _, err := r.Status(&v); err != nil {
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

// A second writer is refused at once, naming the holder; once the holder
// closes, or dies, the next one takes the directory.
func TestLockIsExclusive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := state.Open(dir, state.Options{Holder: "fpgaops apply"})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	start := time.Now()
	_, err = state.Open(dir, state.Options{})
	if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("fpgaops apply, pid %d on %s since ", os.Getpid(), host)) {
		t.Fatalf("second writer: got %v, want ErrLocked naming the holder", err)
	}
	if time.Since(start) > time.Second {
		t.Fatal("the second writer waited")
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	l2.Close()
}

// A holder killed with SIGKILL leaves its lock free: the kernel drops it
// with the process. The holder file still names the dead process until
// the next writer takes over.
func TestLockOfADeadProcessIsTakenOver(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// This test binary, run again, holds the directory until killed.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHoldLock$")
	cmd.Env = append(os.Environ(), "FPGAOPS_HOLD_LOCK="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "holding\n" {
		cmd.Process.Kill()
		t.Fatalf("the holder did not take the lock: %q, %v", line, err)
	}
	if _, err := state.Open(dir, state.Options{}); !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", cmd.Process.Pid)) {
		t.Fatalf("while the holder lives: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if h, err := state.LockHolder(dir); err != nil || h.PID != cmd.Process.Pid {
		t.Fatalf("the lock file names %+v (%v), want the dead holder", h, err)
	}
	s, err := state.Open(dir, state.Options{Holder: "next"})
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	defer s.Close()
	if h, err := state.LockHolder(dir); err != nil || h.PID != os.Getpid() || h.What != "next" {
		t.Fatalf("holder = %+v, %v", h, err)
	}
}

// TestHoldLock is the holder TestLockOfADeadProcessIsTakenOver runs in a
// process of its own; run directly, it does nothing.
func TestHoldLock(t *testing.T) {
	dir := os.Getenv("FPGAOPS_HOLD_LOCK")
	if dir == "" {
		return
	}
	if _, err := state.Open(dir, state.Options{Holder: "holder"}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("holding")
	select {}
}

// A run a process was in when it died is found by the next one.
func TestInterruptedRun(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), state.Options{})
	if r, err := s.Interrupted(); err != nil || r != nil {
		t.Fatalf("fresh store: %+v, %v", r, err)
	}
	if err := s.Running(&state.Run{Trigger: "schedule", Revision: "abc"}); err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	s.Close()
	s = open(t, dir, state.Options{})
	r, err := s.Interrupted()
	if err != nil || r == nil || r.Trigger != "schedule" || r.Revision != "abc" {
		t.Fatalf("interrupted = %+v, %v", r, err)
	}
	if r, err := s.Interrupted(); err != nil || r != nil {
		t.Fatalf("interrupted twice: %+v, %v", r, err)
	}
	// A run that finishes clears its marker.
	if err := s.Running(&state.Run{Trigger: "manual"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRun(&state.Run{Trigger: "manual"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Interrupted(); err != nil || r != nil {
		t.Fatalf("after AddRun: %+v, %v", r, err)
	}
}

func BenchmarkJournalRecord(b *testing.B) {
	s, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	j := s.Journal()
	if err := j.Begin("plan", false); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
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
	defer s.Close()
	for b.Loop() {
		if err := s.AddRun(&state.Run{Outcome: state.OutcomeApplied, Nodes: make([]state.NodeSummary, 50)}); err != nil {
			b.Fatal(err)
		}
	}
}

// heldChange is a change as a fleet-wide bitstream change outside the
// windows leaves thousands of: realistic IDs and reasons.
func heldChange(node, card int) state.Change {
	id := fmt.Sprintf("node/compute-%05d/fpga/pac%d", node, card)
	return state.Change{
		ID: id + "/pf/vm/vnf-" + fmt.Sprint(node) + ":detach", Action: plans.ActionDetach,
		Node: fmt.Sprintf("compute-%05d", node), Card: fmt.Sprintf("pac%d", card), VM: fmt.Sprintf("vnf-%d", node),
		Reason:     "pac" + fmt.Sprint(card) + " is reprogrammed to fw-v2 (runs fw-v1): vnf-" + fmt.Sprint(node) + " gives up 0000:5e:00.0 first",
		Held:       &plans.Hold{Gate: plans.GateWindow, Why: "no allow window is open; the next opens at 2026-12-05T02:00:00Z"},
		Status:     plans.StatusHeld,
		Disruptive: true,
	}
}

func TestRunChangesAreKeptApartFromTheList(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), state.Options{KeepRuns: 2})
	started := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	failed := state.Change{ID: "node/c1/fpga/pac0:program", Action: plans.ActionProgram, Node: "c1", Card: "pac0",
		Status: plans.StatusFailed, Error: "node c1 fpga pac0: program: AFU ID reads back wrong", Attempts: 3,
		StartedAt: &started, DurationSeconds: 1.5, Wave: 1}
	first := &state.Run{Outcome: state.OutcomeFailed, Changes: []state.Change{heldChange(1, 0), failed}}
	if err := s.AddRun(first); err != nil {
		t.Fatal(err)
	}
	if first.Changes == nil {
		t.Fatal("AddRun dropped the caller's changes")
	}
	runs, err := s.Runs(0)
	if err != nil || len(runs) != 1 || runs[0].Changes != nil {
		t.Fatalf("Runs = %+v, %v; want one run without its changes", runs, err)
	}
	got, err := s.Run(first.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Changes, first.Changes) {
		t.Fatalf("Run(%d).Changes = %+v\nwant %+v", first.ID, got.Changes, first.Changes)
	}
	// A run without changes has none, and old runs go with their changes.
	for range 2 {
		if err := s.AddRun(&state.Run{Outcome: state.OutcomeApplied}); err != nil {
			t.Fatal(err)
		}
	}
	if r, err := s.Run(2); err != nil || len(r.Changes) != 0 {
		t.Fatalf("Run(2) = %+v, %v", r, err)
	}
	if _, err := s.Run(first.ID); !errors.Is(err, state.ErrNoRun) {
		t.Fatalf("Run of a dropped run: %v, want ErrNoRun", err)
	}
	if left, _ := filepath.Glob(filepath.Join(s.Dir(), state.RunsDir, "*.changes.json.gz")); len(left) != 0 {
		t.Fatalf("changes of dropped runs left behind: %v", left)
	}
	// A reader sees the same.
	r := open(t, s.Dir(), state.Options{ReadOnly: true})
	if _, err := r.Run(3); err != nil {
		t.Fatal(err)
	}
}

func TestKeepChanges(t *testing.T) {
	t.Parallel()
	ch := func(id string, st plans.Status, held bool) state.Change {
		c := state.Change{ID: id, Action: plans.ActionProgram, Status: st}
		if held {
			c.Held = &plans.Hold{Gate: plans.GateWindow, Why: "closed"}
		}
		return c
	}
	all := []state.Change{
		ch("a", plans.StatusApplied, false),
		ch("b", plans.StatusHeld, true),
		ch("c", plans.StatusFailed, false),
		ch("d", plans.StatusBlocked, false),
		ch("e", plans.StatusApplied, false),
		ch("f", plans.StatusPendingRestart, false),
	}
	ids := func(cs []state.Change) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.ID)
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		name    string
		max     int
		want    string
		omitted int
	}{
		{"all fit", 6, "a,b,c,d,e,f", 0},
		{"failures first, in plan order", 2, "c,d", 4},
		{"then what was held or waits", 4, "b,c,d,f", 2},
		{"applied last", 5, "a,b,c,d,f", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept, omitted := state.KeepChanges(all, tc.max)
			if ids(kept) != tc.want || omitted != tc.omitted {
				t.Fatalf("KeepChanges(%d) = %s, %d omitted; want %s, %d", tc.max, ids(kept), omitted, tc.want, tc.omitted)
			}
		})
	}
}

// The changes of one run stay small on disk whatever the fleet's size:
// a fleet-wide change held on 10,000 nodes keeps MaxRunChanges of them.
func TestChangesOfARunAreBounded(t *testing.T) {
	t.Parallel()
	s := open(t, t.TempDir(), state.Options{})
	var changes []state.Change
	for n := range 10000 {
		changes = append(changes, heldChange(n, 0), heldChange(n, 1))
	}
	r := &state.Run{Outcome: state.OutcomeApplied, Changes: changes}
	if err := s.AddRun(r); err != nil {
		t.Fatal(err)
	}
	if len(r.Changes) != state.MaxRunChanges || r.ChangesOmitted != 20000-state.MaxRunChanges {
		t.Fatalf("kept %d, omitted %d", len(r.Changes), r.ChangesOmitted)
	}
	fi, err := os.Stat(filepath.Join(s.Dir(), state.RunsDir, fmt.Sprintf("%012d.changes.json.gz", r.ID)))
	if err != nil {
		t.Fatal(err)
	}
	// docs/controller.md sizes the history by this figure.
	const perRun = 60 << 10
	t.Logf("%d changes: %d bytes gzipped", len(r.Changes), fi.Size())
	if fi.Size() > perRun {
		t.Fatalf("the changes of one run take %d bytes, over %d", fi.Size(), perRun)
	}
}
