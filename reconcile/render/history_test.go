package render_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/reconcile/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or with -update writes it.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it); got:\n%s", path, got)
	}
}

var started = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

// heldAndFailed is a run with a change held by a window and a program
// that failed after three attempts, which blocked the VFs after it.
func heldAndFailed() *state.Run {
	at := started.Add(2 * time.Second)
	return &state.Run{
		ID: 42, Trigger: "webhook/github", Revision: "8d1f5c2e9b7a4e0c3f6a1d2b5c8e9f0a1b2c3d4e", Subject: "vnf-a: fw-v2",
		StartedAt: started, FinishedAt: started.Add(12 * time.Second), DurationSeconds: 12.3456,
		Outcome: state.OutcomeFailed, Error: "revision 8d1f5c2e9b7a4e0c3f6a1d2b5c8e9f0a1b2c3d4e: 1 change(s) failed",
		Results:    plans.Counts{Applied: 1, Failed: 1, Blocked: 1, Held: 1},
		Violations: 3,
		Changes: []state.Change{
			{ID: "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach", Action: plans.ActionDetach, Node: "compute-01", Card: "pac0", VM: "vnf-a",
				Reason: "pac0 is reprogrammed", Status: plans.StatusHeld, Disruptive: true,
				Held: &plans.Hold{Gate: plans.GateWindow, Why: "no allow window is open; the next opens at 2026-12-05T02:00:00Z"}},
			{ID: "node/compute-02/fpga/pac1:vfs-off", Action: plans.ActionSetVFs, Node: "compute-02", Card: "pac1",
				Reason: "VFs off to program", Status: plans.StatusApplied, Attempts: 1, StartedAt: &started, DurationSeconds: 0.25, Wave: 1},
			{ID: "node/compute-02/fpga/pac1:program", Action: plans.ActionProgram, Node: "compute-02", Card: "pac1",
				Status: plans.StatusFailed, Error: "node/compute-02/fpga/pac1:program: program: PR error: EIO", Attempts: 3,
				StartedAt: &at, DurationSeconds: 7.5, Wave: 1},
			{ID: "node/compute-02/fpga/pac1:vfs-on", Action: plans.ActionSetVFs, Node: "compute-02", Card: "pac1",
				Status: plans.StatusBlocked, Error: "blocked: node/compute-02/fpga/pac1:program did not complete", Wave: 1},
		},
		ChangesOmitted: 2,
		Degraded:       []plans.Degraded{{Node: "compute-02", VM: "vnf-b", Card: "pac1", Function: "vf0", Reason: "attach: domain busy"}},
		Rollout:        "rollout of 8d1f5c2e9b7a failed at step 2 of 3",
		RolloutEvents: []string{"step 2 (50%) failed: card node/compute-02/fpga/pac1, check card: port 0 reports errors",
			"reverting 1 card(s) to revision 1a2b3c4d5e6f: node/compute-02/fpga/pac1"},
	}
}

func TestRunChangeByChange(t *testing.T) {
	var b bytes.Buffer
	render.Run(&b, heldAndFailed())
	golden(t, "history-show.txt", b.Bytes())
}

func TestHistoryList(t *testing.T) {
	var b bytes.Buffer
	r := heldAndFailed()
	r.Changes = nil
	render.History(&b, []state.Run{*r})
	golden(t, "history.txt", b.Bytes())
}

func TestStatusNamesHeldAndFailed(t *testing.T) {
	r := heldAndFailed()
	st := controller.Status{
		Source: "file:///fleet branch:main", LastAppliedRevision: "c04e7d9a1f3b5e2c8a6d4f0b9e7c5a3d1f2e4b6a", LastAppliedAt: &started,
		LastAttemptedRevision: r.Revision, LastAttemptedAt: &r.FinishedAt, Violations: 3,
		Conditions: []controller.Condition{{Type: controller.Ready, Status: "False", Reason: controller.ReasonReconcileFailed, Message: r.Error}},
		Held:       r.Changes[:1], HeldTotal: 1,
		LastFailure: &controller.Failure{Run: 42, At: r.FinishedAt, Revision: r.Revision, Outcome: r.Outcome, Error: r.Error,
			Changes: r.Changes[2:], Total: 2},
		Degraded: r.Degraded,
		Awaiting: &controller.Awaiting{Run: 42, Revision: r.Revision, Since: started, Changes: []string{r.Changes[0].ID}, Total: 1},
	}
	var b bytes.Buffer
	render.Status(&b, st)
	golden(t, "status.txt", b.Bytes())
}
