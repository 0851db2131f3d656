package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

const adminPolicy = "apiVersion: fpgaops/v1\nkind: Policy\nname: dc1\ndrift: report\n"

// TestAdminCommands drives a running controller (`fpgaops run` in
// process, scheduled every second) with suspend, resume and reconcile: a
// wrong or missing token is refused with exit 1 and changes nothing;
// suspend shows in status and makes scheduled runs skip; resume brings
// them back; reconcile --wait returns after the run with its revision,
// and exits 1 when that revision is rejected.
func TestAdminCommands(t *testing.T) {
	remote := gittest.NewRemote(t, "fleet")
	c1 := remote.Commit("policy", map[string][]byte{"fleet/policy.yaml": []byte(adminPolicy)}, nil)

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte("adm-tok-93\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wrongFile := filepath.Join(dir, "wrong-token")
	if err := os.WriteFile(wrongFile, []byte("wrong-tok-17\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FPGAOPS_ADMIN_TOKEN", "")

	listen := freeAddr(t)
	base := "http://" + listen
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		root := newRootCommand(streams{in: strings.NewReader(""), out: logs, err: logs})
		root.SetArgs([]string{"run", "--git", remote.FileURL(), "--path", "fleet",
			"--interval", "1s", "--listen", listen, "--state-dir", filepath.Join(dir, "state"),
			"--admin-token-file", tokenFile})
		done <- exitCode(logs, root.ExecuteContext(ctx))
	}()
	stopped := false
	stop := func() int {
		cancel()
		stopped = true
		return <-done
	}
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})

	client := controller.NewClient(base, nil)
	waitFor := func(what string, ok func(controller.Status) bool) controller.Status {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			st, err := client.Status(context.Background())
			if err == nil && ok(st) {
				return st
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: %+v, %v\nlogs:\n%s", what, st, err, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	skipped := func() int { return strings.Count(logs.String(), `msg="run skipped: suspended" trigger=schedule`) }
	waitSkips := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for skipped() < n {
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %d skipped scheduled run(s)\nlogs:\n%s", n, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	lastRun := func(st controller.Status) uint64 {
		if st.LastRun == nil {
			return 0
		}
		return st.LastRun.ID
	}

	waitFor("c1 applied", func(s controller.Status) bool { return s.LastAppliedRevision == c1 })

	// A wrong or missing token: exit 1, the server and the HTTP status
	// named, nothing changed.
	tokenErrors := []struct {
		name string
		args []string
		want string
	}{
		{"wrong token", []string{"suspend", "--server", base, "--token-file", wrongFile},
			"Error: controller " + base + ": POST /suspend: 401 Unauthorized: unauthorized"},
		{"wrong token reconcile", []string{"reconcile", "--server", base, "--token-file", wrongFile, "--wait"},
			"Error: controller " + base + ": POST /reconcile: 401 Unauthorized"},
		{"no token", []string{"resume", "--server", base}, "no admin token: give --admin-token-file or set FPGAOPS_ADMIN_TOKEN"},
		{"no token file", []string{"suspend", "--server", base, "--token-file", filepath.Join(dir, "nosuch")}, "--admin-token-file: open "},
		{"no server", []string{"suspend", "--token-file", tokenFile}, "--server is required"},
	}
	for _, tc := range tokenErrors {
		code, out := combinedCLI(tc.args...)
		if code != 1 || !strings.Contains(out, tc.want) || strings.Contains(out, "wrong-tok-17") || strings.Contains(out, "adm-tok-93") {
			t.Errorf("%s: exit %d, want 1 and %q:\n%s", tc.name, code, tc.want, out)
		}
	}
	if st := waitFor("status", func(controller.Status) bool { return true }); st.Suspended {
		t.Fatal("suspended by a refused request")
	}

	// Suspend: status shows it, and scheduled runs skip.
	if code, out := combinedCLI("suspend", "--server", base, "--token-file", tokenFile); code != 0 || !strings.Contains(out, "Suspended "+remote.FileURL()) {
		t.Fatalf("suspend: exit %d\n%s", code, out)
	}
	if code, out := combinedCLI("status", "--server", base); code != 0 || !strings.Contains(out, "Suspended:  yes") {
		t.Fatalf("status after suspend: exit %d\n%s", code, out)
	}
	// After one skip the loop has passed any run that was in flight; a
	// second skip is a scheduled run that did not happen.
	waitSkips(1)
	held := lastRun(waitFor("status", func(controller.Status) bool { return true }))
	waitSkips(skipped() + 1)
	if st := waitFor("status", func(controller.Status) bool { return true }); lastRun(st) != held || !st.Suspended {
		t.Fatalf("a scheduled run while suspended: last run %d, want %d", lastRun(st), held)
	}
	if code, out := combinedCLI("reconcile", "--server", base, "--token-file", tokenFile); code != 1 || !strings.Contains(out, "no run triggered: suspended") {
		t.Fatalf("reconcile while suspended: exit %d\n%s", code, out)
	}

	// Resume, with the token from the environment: scheduled runs again.
	t.Setenv("FPGAOPS_ADMIN_TOKEN", "adm-tok-93")
	if code, out := combinedCLI("resume", "--server", base); code != 0 || !strings.Contains(out, "Resumed ") {
		t.Fatalf("resume: exit %d\n%s", code, out)
	}
	if code, out := combinedCLI("status", "--server", base); code != 0 || strings.Contains(out, "Suspended") {
		t.Fatalf("status after resume: exit %d\n%s", code, out)
	}
	waitFor("a scheduled run after resume", func(s controller.Status) bool {
		return lastRun(s) > held && s.LastRun.Trigger == "schedule"
	})

	// reconcile --wait returns after the run, with the revision it applied.
	c2 := remote.Commit("policy: correct drift", map[string][]byte{
		"fleet/policy.yaml": []byte(strings.Replace(adminPolicy, "report", "correct", 1))}, nil)
	code, out := combinedCLI("reconcile", "--server", base, "--wait")
	if code != 0 || !regexp.MustCompile(`^Run \d+ applied revision `+c2+`: 0 change\(s\), 0 violation\(s\)\.\n$`).MatchString(out) {
		t.Fatalf("reconcile --wait: exit %d\n%s", code, out)
	}

	// A revision that does not validate: reconcile --wait says so, exit 1.
	c3 := remote.Commit("compute-01 with a wrong board", map[string][]byte{"fleet/nodes.yaml": []byte(
		"apiVersion: fpgaops/v1\nkind: Node\nname: compute-01\nfpgas:\n  - slot: pac0\n    pci: \"0000:5e:00.0\"\n    board: pac-n9\n")}, nil)
	code, out = combinedCLI("reconcile", "--server", base, "--wait")
	if code != 1 || !strings.Contains(out, "on revision "+c3+": rejected.") || !strings.Contains(out, "nodes.yaml:7:12: ") {
		t.Fatalf("reconcile --wait on a rejected revision: exit %d\n%s", code, out)
	}

	if code := stop(); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, logs.String())
	}
	if strings.Contains(logs.String(), "adm-tok-93") || strings.Contains(logs.String(), "wrong-tok-17") {
		t.Fatal("an admin token appears in the controller's logs")
	}
}
