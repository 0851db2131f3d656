package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/dashboard/browsertest"
)

// The dashboard of `fpgaops run` on a simulated fleet, in chromium: it
// shows the node and its cards, the change held for approval and why; a
// person approves the run with the admin token on the page, and the page
// follows the run that makes the changes, live.
func TestDashboardAgainstSim(t *testing.T) {
	f := startGitSimFleet(t)
	f.remote.Commit("approval: manual", map[string][]byte{"fleet/policy.yaml": []byte("apiVersion: fpgaops/v1\nkind: Policy\nname: dc1\napproval: manual\n")}, nil)
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	os.WriteFile(token, []byte("adm-tok-58\n"), 0o600)
	p := startController(t, "--git", f.remote.FileURL(), "--ref", "main", "--path", "fleet", "--interval", "1h",
		"--state-dir", filepath.Join(dir, "state"), "--admin-token-file", token, "--insecure", "--vms", "endpoint")
	p.waitStatus("the first run", func(st controller.Status) bool { return st.LastRun != nil && st.LastRun.Outcome == "applied" })
	f.remote.Commit("fw-v2 everywhere", map[string][]byte{"fleet/bindings.yaml": twoCards(f.url, "fw-v2")["fleet/bindings.yaml"]}, nil)
	if code, out := combinedCLI("reconcile", "--server", p.base, "--token-file", token, "--wait"); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s", code, out)
	}
	st := p.waitStatus("a run that awaits approval", func(st controller.Status) bool { return st.Awaiting != nil })

	b := browsertest.Start(t, 1280, 1000)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	b.Load(ctx, p.base+"/")
	text := b.Text()
	for _, want := range []string{
		"compute-01", "pac0", "pac1", "vnf-a (vf0)",
		"Run " + itoa(st.Awaiting.Run) + " awaits approval",
		"held by approval: the policy asks a person to approve disruptive changes",
		"held by dependency",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the dashboard shows no %q:\n%s", want, text)
		}
	}
	b.Screenshot(filepath.Join(t.TempDir(), "dashboard.png"), true)

	// Approve on the page; the page follows the run by itself.
	b.MustEval(`(function () { var f = document.querySelector("form.approve"); f.elements.token.value = "adm-tok-58"; f.requestSubmit(); return true; })()`, nil)
	deadline := time.Now().Add(time.Minute)
	for {
		text = b.Text()
		if !strings.Contains(text, "awaits approval") && strings.Count(text, "converged fw-v2") == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not follow the approved run:\n%s\nlogs:\n%s", text, p.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stats := f.sim.Stats(); stats.Detaches != 1 || stats.Violations != 0 {
		t.Errorf("sim after the approval: %+v", stats)
	}
	if strings.Contains(p.logs.String(), "adm-tok-58") {
		t.Error("the admin token is in the logs")
	}
}
