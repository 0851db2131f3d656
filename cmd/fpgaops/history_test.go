package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

// notifyReceiver keeps the kinds of the signed events it is sent.
type notifyReceiver struct {
	mu    sync.Mutex
	kinds []string
}

func (r *notifyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	var ev notify.Event
	if json.Unmarshal(body, &ev) != nil || req.Header.Get("X-Fpgaops-Signature-256") != notify.Sign([]byte("hook-key"), body) {
		http.Error(w, "bad event", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	r.kinds = append(r.kinds, string(ev.Kind))
	r.mu.Unlock()
}

// twoCards is a node with pac0 held by vnf-a and pac1 a pool card, and a
// policy whose only maintenance window is on 29 February.
func twoCards(endpoint, bitstream string) map[string][]byte {
	return map[string][]byte{
		"fleet/nodes.yaml": []byte(fmt.Sprintf(`apiVersion: fpgaops/v1
kind: Node
name: compute-01
endpoint: %s/nodes/compute-01
fpgas:
  - {slot: pac0, pci: "0000:5e:00.0", vfs: 1, interfaceID: %s, board: pac-n3000}
  - {slot: pac1, pci: "0000:af:00.0", vfs: 1, interfaceID: %[2]s, board: pac-n3000}
`, endpoint, e2eIface)),
		"fleet/bindings.yaml": []byte(e2eBinding(bitstream) + `---
apiVersion: fpgaops/v1
kind: Binding
name: pool-1
node: compute-01
fpga: pac1
function: vf0
bitstream: ` + bitstream + "\n"),
		"fleet/policy.yaml": []byte(`apiVersion: fpgaops/v1
kind: Policy
name: dc1
windows:
  - {kind: allow, schedule: "0 0 29 2 *", duration: 1h}
`),
	}
}

// gitSimFleet is a git repository of twoCards with the fw-v1 and fw-v2
// bitstreams, and the simulated fleet serving its node.
type gitSimFleet struct {
	remote *gittest.Remote
	url    string // the sim's
	sim    *sim.Sim
	first  string // the first commit
}

// breakPR makes the next programs of pac1 fail, as a card with a broken
// PR region does.
func (f *gitSimFleet) breakPR(t *testing.T) {
	t.Helper()
	if err := f.sim.InjectFault("compute-01", sim.Fault{Op: sim.FaultProgram, PCI: "0000:af:00.0", Count: 10, Message: "PR error: EIO"}); err != nil {
		t.Fatal(err)
	}
}

func startGitSimFleet(t *testing.T) *gitSimFleet {
	t.Helper()
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &gitSimFleet{remote: gittest.NewRemote(t, "fleet"), url: "http://" + simLn.Addr().String()}
	v1, sum1 := e2eGBS(t, "fw-v1", "aa11b2c3d4e5f60718293a4b5c6d7e01")
	v2, sum2 := e2eGBS(t, "fw-v2", "bb22c3d4e5f60718293a4b5c6d7e8f02")
	files := twoCards(f.url, "fw-v1")
	files["fleet/bitstreams.yaml"] = []byte(fwBitstreams(sum1, sum2))
	files["fleet/bitstreams/fw-v1.gbs"], files["fleet/bitstreams/fw-v2.gbs"] = v1, v2
	f.first = f.remote.Commit("compute-01", files, nil)

	fleet, err := spec.Load(filepath.Join(f.remote.Work, "fleet"))
	if err != nil {
		t.Fatal(err)
	}
	f.sim, err = sim.New(fleet, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sim.Close() })
	srv := &http.Server{Handler: f.sim.Handler()}
	go srv.Serve(simLn)
	t.Cleanup(func() { srv.Close() })
	return f
}

// combinedCLI runs fpgaops with args and returns its exit code and its
// output and errors, interleaved.
func combinedCLI(args ...string) (int, string) {
	var out bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &out})
	root.SetArgs(args)
	return exitCode(&out, root.Execute()), out.String()
}

// The scenario of an operator who wants causes, not counts: a run holds
// a change (a window) and a change fails (a card's program). history show
// names both, with the gate and why, and the error; status names them;
// one notification of each kind reaches a receiver.
func TestHeldAndFailedChangesAreNamedEverywhere(t *testing.T) {
	f := startGitSimFleet(t)
	remote, simURL := f.remote, f.url
	recv := &notifyReceiver{}
	hooks := httptest.NewServer(recv)
	t.Cleanup(hooks.Close)
	dir := t.TempDir()
	key := filepath.Join(dir, "hook-key")
	config := filepath.Join(dir, "notify.yaml")
	os.WriteFile(key, []byte("hook-key\n"), 0o600)
	os.WriteFile(config, []byte(fmt.Sprintf("heldLongerThan: 1ns\ntargets:\n  - name: ops\n    type: webhook\n    url: %s\n    secretFile: %s\n", hooks.URL, key)), 0o600)
	stateDir := filepath.Join(dir, "state")
	runOnce := func() (int, string) {
		return combinedCLI("run", "--once", "--git", remote.FileURL(), "--ref", "main", "--path", "fleet", "--state-dir", stateDir,
			"--insecure", "--vms", "endpoint", "--notify-config", config, "--external-url", "https://fpgaops.example")
	}

	// Run 1 converges: nothing it does disrupts a VM.
	if code, out := runOnce(); code != 0 {
		t.Fatalf("run 1: exit %d\n%s", code, out)
	}
	// Run 2: both cards are to run fw-v2. vnf-a would lose its VF
	// outside the window; pac1's program breaks.
	remote.Commit("fw-v2 everywhere", map[string][]byte{"fleet/bindings.yaml": twoCards(simURL, "fw-v2")["fleet/bindings.yaml"]}, nil)
	f.breakPR(t)
	code, out := runOnce()
	if code != 1 || !strings.Contains(out, "run failed") {
		t.Fatalf("run 2: exit %d\n%s", code, out)
	}

	detach := "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach"
	program := "node/compute-01/fpga/pac1:program"
	code, out = combinedCLI("history", "show", "2", "--state-dir", stateDir)
	for _, want := range []string{
		"Run 2: failed, triggered by manual",
		detach, "      held by window: no allow window is open",
		program, "      error: " + program + ": ", "PR error: EIO",
	} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("history show lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	code, out = combinedCLI("status", "--state-dir", stateDir)
	for _, want := range []string{"Held back (", detach, "held by window: ", "Last failure: run 2", program, "PR error: EIO"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	recv.mu.Lock()
	kinds := strings.Join(recv.kinds, " ")
	recv.mu.Unlock()
	for _, k := range []notify.Kind{notify.RunFailed, notify.ChangeFailed, notify.HeldTooLong} {
		if n := strings.Count(kinds, string(k)); n != 1 {
			t.Errorf("%s told %d times: %s", k, n, kinds)
		}
	}
}
