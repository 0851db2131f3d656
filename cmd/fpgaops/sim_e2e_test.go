package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// fpgaops runs one command line in-process and returns its output and
// exit code.
func fpgaops(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	s := streams{in: strings.NewReader(""), out: &out, err: &errb}
	root := newRootCommand(s)
	root.SetArgs(args)
	code = exitCode(&errb, root.ExecuteContext(context.Background()))
	return out.String(), errb.String(), code
}

// simServe starts `fpgaops sim serve` in-process and returns its URL and
// a function that stops it.
func simServe(t *testing.T, args ...string) (url string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		root := newRootCommand(streams{in: strings.NewReader(""), out: pw, err: &errb})
		root.SetArgs(append([]string{"sim", "serve", "--listen", "127.0.0.1:0"}, args...))
		code := exitCode(&errb, root.ExecuteContext(ctx))
		pw.Close()
		if code != 0 {
			t.Errorf("sim serve exited %d: %s", code, errb.String())
		}
		done <- code
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("sim serve printed no address: %v", err)
	}
	go io.Copy(io.Discard, pr)
	m := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+) `).FindStringSubmatch(line)
	if m == nil {
		cancel()
		t.Fatalf("sim serve said %q; want its address", line)
	}
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			<-done
		}
	}
	t.Cleanup(stop)
	return m[1], stop
}

func simStats(t *testing.T, url string) sim.Stats {
	t.Helper()
	resp, err := http.Get(url + "/sim/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st sim.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func simPost(t *testing.T, url string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", url, resp.Status)
	}
}

// TestSimEndToEnd drives the commands an operator runs against a
// simulated fleet: sim serve, sim gen --endpoint, plan, apply, a saved
// plan gone stale, a node that vanishes, and a restart of the sim.
func TestSimEndToEnd(t *testing.T) {
	dir := t.TempDir()
	repo, state := filepath.Join(dir, "fleet"), filepath.Join(dir, "sim-state")
	gen := func(seed int64, endpoint string) {
		t.Helper()
		if err := fleetgen.Generate(fleetgen.Options{Dir: repo, Nodes: 4, FPGAsPerNode: 4, Seed: seed, Endpoint: endpoint}); err != nil {
			t.Fatal(err)
		}
	}
	gen(1, "")
	url, stop := simServe(t, "--repo", repo, "--state-dir", state)
	endpoint := url + "/nodes/{node}"
	gen(1, endpoint)
	ctl := []string{"--repo", repo, "--insecure", "--vms", "endpoint", "--state-dir", filepath.Join(dir, "controller")}
	plan := func(extra ...string) (string, string, int) {
		t.Helper()
		return fpgaops(t, append(append([]string{"plan", "--detailed-exitcode"}, ctl...), extra...)...)
	}
	apply := func() {
		t.Helper()
		out, errs, code := fpgaops(t, append([]string{"apply", "--auto-approve"}, ctl...)...)
		if code != 0 {
			t.Fatalf("apply exited %d:\n%s\n%s", code, out, errs)
		}
	}

	out, errs, code := plan()
	if code != 2 || !strings.Contains(out, "Plan:") {
		t.Fatalf("first plan exited %d; want 2 with a plan:\n%s\n%s", code, out, errs)
	}
	apply()
	if out, errs, code := plan(); code != 0 {
		t.Fatalf("second plan exited %d; want 0, no changes:\n%s\n%s", code, out, errs)
	}
	st := simStats(t, url)
	if st.Programs != 16 || st.Violations != 0 {
		t.Fatalf("sim stats %+v; want 16 programs and no violation", st)
	}

	// A commit rebinds every card; the saved plan goes stale when a node
	// vanishes before it is applied.
	gen(2, endpoint)
	planFile := filepath.Join(dir, "rebind.json")
	out, errs, code = plan("--out", planFile)
	if code != 2 || !strings.Contains(out, "detach") || !strings.Contains(out, "program") || !strings.Contains(out, "attach") {
		t.Fatalf("rebinding plan exited %d; want 2 with detach, program, attach:\n%s\n%s", code, out, errs)
	}
	simPost(t, url+"/sim/nodes/node-00002/down")
	_, errs, code = fpgaops(t, "apply", planFile, "--insecure", "--vms", "endpoint", "--state-dir", filepath.Join(dir, "controller"))
	if code != 1 || !strings.Contains(errs, "changed since the plan was made") {
		t.Fatalf("stale plan: exit %d, stderr %q; want it refused", code, errs)
	}
	if got := simStats(t, url); got.Programs != st.Programs || got.Detaches != st.Detaches {
		t.Fatalf("a refused plan changed the fleet: %+v", got)
	}

	// With the node gone, the plan says it is unknown and plans nothing
	// for it; the others converge.
	out, _, _ = plan()
	if !strings.Contains(out, "node-00002") || !strings.Contains(out, "unknown") {
		t.Fatalf("plan does not report node-00002 unknown:\n%s", out)
	}
	apply()
	simPost(t, url+"/sim/nodes/node-00002/up")
	apply()
	if out, errs, code := plan(); code != 0 {
		t.Fatalf("plan after rebinding exited %d; want 0:\n%s\n%s", code, out, errs)
	}
	st = simStats(t, url)
	if st.Violations != 0 || st.Programs != 32 {
		t.Fatalf("sim stats %+v; want 32 programs and no violation", st)
	}

	// The sim keeps its state across a restart.
	stop()
	url2, _ := simServe(t, "--repo", repo, "--state-dir", state)
	gen(2, url2+"/nodes/{node}")
	if out, errs, code := plan(); code != 0 {
		t.Fatalf("plan after the sim restarted exited %d; want 0:\n%s\n%s", code, out, errs)
	}
	if st := simStats(t, url2); st.Programs != 32 {
		t.Fatalf("after restart the sim counts %d programs; want the 32 from before", st.Programs)
	}
}
