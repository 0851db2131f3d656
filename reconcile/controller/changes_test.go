package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
)

// scripted answers each reconcile with the next of its steps, and then
// with the last one again.
type scripted struct {
	mu    sync.Mutex
	steps []scriptStep
	n     int
}

type scriptStep struct {
	run     state.Run
	err     error
	rollout *rollout.State
}

func (s *scripted) Reconcile(context.Context, source.Revision, *spec.Fleet) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	return Result{Run: st.run, Rollout: st.rollout}, st.err
}

// heldAndFailed is a run whose detach a window held and whose program
// failed, blocking the VFs after it.
func heldAndFailed() state.Run {
	return state.Run{
		Results:    plans.Counts{Applied: 1, Failed: 1, Blocked: 1, Held: 1},
		Failed:     plans.ByAction{Program: 1},
		Violations: 3,
		Nodes:      []state.NodeSummary{{Name: "compute-01", State: "ok", Cards: 1, Pending: 1}, {Name: "compute-02", State: "ok", Cards: 1, Failed: 2, Changes: 1}},
		Changes: []state.Change{
			{ID: "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach", Action: plans.ActionDetach, Node: "compute-01", Card: "pac0", VM: "vnf-a",
				Status: plans.StatusHeld, Disruptive: true, Held: &plans.Hold{Gate: plans.GateWindow, Why: "no allow window is open"}},
			{ID: "node/compute-02/fpga/pac1:vfs-off", Action: plans.ActionSetVFs, Node: "compute-02", Card: "pac1", Status: plans.StatusApplied, Attempts: 1},
			{ID: "node/compute-02/fpga/pac1:program", Action: plans.ActionProgram, Node: "compute-02", Card: "pac1",
				Status: plans.StatusFailed, Error: "node/compute-02/fpga/pac1:program: program: PR error: EIO", Attempts: 3},
			{ID: "node/compute-02/fpga/pac1:vfs-on", Action: plans.ActionSetVFs, Node: "compute-02", Card: "pac1",
				Status: plans.StatusBlocked, Error: "blocked: node/compute-02/fpga/pac1:program did not complete"},
		},
	}
}

// jsonLines decodes JSON log lines.
func jsonLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// A run with a held and a failed change: each is logged on a line of its
// own with why, the history keeps both, and the status names them.
func TestHeldAndFailedChangesAreLoggedKeptAndShown(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	rec := &scripted{steps: []scriptStep{{run: heldAndFailed(), err: errors.New("1 change(s) failed")}}}
	h := newHarness(t, "", func(o *Options) {
		o.Reconciler = rec
		o.Log = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	h.remote.Commit("fleet", fleetFile("nodes: [compute-01, compute-02]"), nil)
	run := h.c.RunOnce(context.Background(), "manual")

	var held, failed []map[string]any
	for _, l := range jsonLines(t, []byte(logs.String())) {
		switch l["msg"] {
		case "change held":
			held = append(held, l)
		case "change failed":
			failed = append(failed, l)
		}
	}
	if len(held) != 1 || held[0]["change"] != "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach" || held[0]["gate"] != "window" ||
		held[0]["why"] != "no allow window is open" || held[0]["vm"] != "vnf-a" || held[0]["level"] != "WARN" || held[0]["run"] != float64(run.ID) {
		t.Errorf("held lines: %v", held)
	}
	if len(failed) != 1 || failed[0]["change"] != "node/compute-02/fpga/pac1:program" || !strings.Contains(failed[0]["err"].(string), "PR error: EIO") ||
		failed[0]["attempts"] != float64(3) || failed[0]["level"] != "ERROR" {
		t.Errorf("failed lines: %v", failed)
	}

	stored, err := h.store.Run(run.ID)
	if err != nil || len(stored.Changes) != 4 {
		t.Fatalf("history: %+v, %v", stored, err)
	}
	st := h.c.Status()
	if len(st.Held) != 1 || st.Held[0].Gate() != plans.GateWindow || st.HeldTotal != 1 {
		t.Errorf("status held: %+v (total %d)", st.Held, st.HeldTotal)
	}
	f := st.LastFailure
	if f == nil || f.Run != run.ID || f.Total != 2 || len(f.Changes) != 2 || f.Changes[0].ID != "node/compute-02/fpga/pac1:program" ||
		!strings.Contains(f.Error, "1 change(s) failed") {
		t.Errorf("status last failure: %+v", f)
	}
	if st.LastRun == nil || st.LastRun.Changes != nil {
		t.Errorf("the status's last run carries its changes: %+v", st.LastRun)
	}

	// A later good run clears what is held, and keeps the last failure.
	rec.mu.Lock()
	rec.steps = []scriptStep{{run: state.Run{Nodes: heldAndFailed().Nodes}}}
	rec.mu.Unlock()
	h.c.RunOnce(context.Background(), "manual")
	st = h.c.Status()
	if len(st.Held) != 0 || st.HeldTotal != 0 || st.LastFailure == nil || st.LastFailure.Run != run.ID {
		t.Errorf("after a good run: held %+v, last failure %+v", st.Held, st.LastFailure)
	}
}
