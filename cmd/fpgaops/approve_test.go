package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/controller"
)

// Under approval: manual the controller makes what disrupts no VM and
// holds the rest, with gate approval, until `fpgaops approve RUN`; only
// the run that awaits approval can be approved, and the approved run
// makes the changes.
func TestManualApprovalAgainstSim(t *testing.T) {
	f := startGitSimFleet(t)
	f.remote.Commit("approval: manual", map[string][]byte{"fleet/policy.yaml": []byte("apiVersion: fpgaops/v1\nkind: Policy\nname: dc1\napproval: manual\n")}, nil)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("adm-tok-31\n"), 0o600)
	p := startController(t, "--git", f.remote.FileURL(), "--ref", "main", "--path", "fleet", "--interval", "1h",
		"--state-dir", filepath.Join(dir, "state"), "--admin-token-file", token, "--insecure", "--vms", "endpoint")
	p.waitStatus("the first run", func(st controller.Status) bool { return st.LastRun != nil && st.LastRun.Outcome == "applied" })

	// fw-v2 on both cards: pac1's program disrupts nobody and is made;
	// vnf-a's detach from pac0 waits for approval, and pac0 with it.
	c2 := f.remote.Commit("fw-v2 everywhere", map[string][]byte{"fleet/bindings.yaml": twoCards(f.url, "fw-v2")["fleet/bindings.yaml"]}, nil)
	if code, out := combinedCLI("reconcile", "--server", p.base, "--token-file", token, "--wait"); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s", code, out)
	}
	st := p.waitStatus("the run that awaits approval", func(st controller.Status) bool { return st.Awaiting != nil })
	detach := "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach"
	if a := st.Awaiting; a.Revision != c2 || a.Total != 1 || a.Changes[0] != detach || st.LastRun.ID != a.Run {
		t.Fatalf("awaiting: %+v (last run %d)", a, st.LastRun.ID)
	}
	if stats := f.sim.Stats(); stats.Detaches != 0 || stats.Programs != 3 {
		t.Fatalf("before approval: sim %+v; want pac1 programmed again and nothing detached", stats)
	}
	awaiting := st.Awaiting.Run
	if code, out := combinedCLI("status", "--server", p.base); code != 0 || !strings.Contains(out, "approve with: fpgaops approve "+itoa(awaiting)) ||
		!strings.Contains(out, "held by approval: the policy asks a person to approve disruptive changes") {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	// Another run is not the one to approve; a wrong token approves
	// nothing.
	if code, out := combinedCLI("approve", itoa(awaiting-1), "--server", p.base, "--token-file", token); code != 1 ||
		!strings.Contains(out, "409 Conflict: run "+itoa(awaiting-1)+": not the run that awaits approval: run "+itoa(awaiting)+" is") {
		t.Errorf("approving another run: exit %d\n%s", code, out)
	}
	t.Setenv("FPGAOPS_ADMIN_TOKEN", "wrong")
	if code, out := combinedCLI("approve", itoa(awaiting), "--server", p.base); code != 1 || !strings.Contains(out, "401 Unauthorized") {
		t.Errorf("with a wrong token: exit %d\n%s", code, out)
	}
	code, out := combinedCLI("approve", itoa(awaiting), "--server", p.base, "--token-file", token)
	if code != 0 || !strings.Contains(out, "Approved run "+itoa(awaiting)+": 1 disruptive change(s) of revision "+c2+" go ahead.") {
		t.Fatalf("approve: exit %d\n%s", code, out)
	}
	st = p.waitStatus("the approved run", func(st controller.Status) bool {
		return st.LastRun != nil && st.LastRun.ID > awaiting && st.LastRun.Trigger == "approved/"+itoa(awaiting)
	})
	if st.Awaiting != nil || st.Approved != nil || st.LastRun.Results.Held != 0 || st.LastRun.Results.Failed != 0 {
		t.Fatalf("after the approved run: %+v", st)
	}
	if stats := f.sim.Stats(); stats.Detaches != 1 || stats.Programs != 4 || stats.Violations != 0 {
		t.Fatalf("after approval: sim %+v", stats)
	}
	code, out = combinedCLI("history", "show", itoa(awaiting), "--state-dir", filepath.Join(dir, "state"))
	if code != 0 || !strings.Contains(out, detach) || !strings.Contains(out, "held by "+string(plans.GateApproval)+": ") {
		t.Errorf("history show %d: exit %d\n%s", awaiting, code, out)
	}
	if strings.Contains(p.logs.String(), "adm-tok-31") {
		t.Error("the admin token is in the logs")
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

func TestApproveChecksItsArguments(t *testing.T) {
	t.Setenv("FPGAOPS_ADMIN_TOKEN", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"approve"}, "accepts 1 arg(s), received 0"},
		{[]string{"approve", "latest", "--server", "http://127.0.0.1:1"}, `run "latest": want a run number, as 'fpgaops status' names it`},
		{[]string{"approve", "3"}, "--server is required\nno admin token: give --admin-token-file or set FPGAOPS_ADMIN_TOKEN"},
	} {
		if code, out := combinedCLI(tc.args...); code != 1 || !strings.Contains(out, tc.want) {
			t.Errorf("%q: exit %d, want 1 and %q:\n%s", tc.args, code, tc.want, out)
		}
	}
}
