package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/providers/all"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/planfile"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
)

// simFleet is a fleet repository in a temporary directory whose nodes are
// served by an in-process simulated fleet over loopback HTTP.
type simFleet struct {
	t     *testing.T
	repo  string
	state string
	sim   *sim.Sim
	addr  string
	bs    map[string]string // bitstream name -> YAML document
}

const testIface = "c8a2b2c3d4e5f60718293a4b5c6d7e8f"

func newSimFleet(t *testing.T) *simFleet {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &simFleet{t: t, repo: t.TempDir(), state: t.TempDir(), addr: ln.Addr().String(), bs: map[string]string{}}
	for name, afu := range map[string]string{"nfv-fw-v1": "aa11b2c3d4e5f60718293a4b5c6d7e01", "nfv-fw-v2": "bb22c3d4e5f60718293a4b5c6d7e8f02"} {
		f.bitstream(name, afu)
	}
	var nodes strings.Builder
	for _, n := range []string{"compute-01", "compute-02"} {
		fmt.Fprintf(&nodes, `---
apiVersion: fpgaops/v1
kind: Node
name: %s
endpoint: http://%s/nodes/%s
fpgas:
  - {slot: pac0, pci: "0000:5e:00.0", board: pac-n3000, vfs: 1, interfaceID: %s}
  - {slot: pac1, pci: "0000:af:00.0", board: pac-n3000, vfs: 1, interfaceID: %s}
`, n, f.addr, n, testIface, testIface)
	}
	f.write("nodes.yaml", nodes.String())
	f.write("policy.yaml", "apiVersion: fpgaops/v1\nkind: Policy\nname: default\nbudget: {maxDisruptedVMs: 2}\n")
	f.bind("nfv-fw-v1")
	fleet, err := spec.Load(f.repo)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.New(fleet, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.sim = s
	srv := &http.Server{Handler: s.Handler()}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return f
}

func (f *simFleet) write(name, text string) {
	f.t.Helper()
	path := filepath.Join(f.repo, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *simFleet) bitstream(name, afu string) {
	f.t.Helper()
	md := bitstream.Metadata{Version: 1, AFUImage: bitstream.AFUImage{MagicNo: bitstream.MagicNo, InterfaceUUID: testIface,
		AcceleratorClusters: []bitstream.Cluster{{Name: name, TotalContexts: 1, AcceleratorTypeUUID: afu}}}}
	data, err := bitstream.Build(md, []byte("payload "+name))
	if err != nil {
		f.t.Fatal(err)
	}
	f.write("bitstreams/"+name+".gbs", string(data))
	sum := sha256.Sum256(data)
	f.write("bitstreams/"+name+".yaml", fmt.Sprintf("apiVersion: fpgaops/v1\nkind: Bitstream\nname: %s\nfile: bitstreams/%s.gbs\nsha256: %s\n",
		name, name, hex.EncodeToString(sum[:])))
}

// bind gives every card of both nodes a VM on its VF, with bs loaded.
func (f *simFleet) bind(bs string) {
	var b strings.Builder
	for _, n := range []string{"compute-01", "compute-02"} {
		for _, slot := range []string{"pac0", "pac1"} {
			vm := "vm-" + n[len(n)-2:] + "-" + slot
			fmt.Fprintf(&b, "---\napiVersion: fpgaops/v1\nkind: Binding\nname: %s\nnode: %s\nfpga: %s\nfunction: vf0\nvm: %s\nbitstream: %s\n", vm, n, slot, vm, bs)
		}
	}
	f.write("bindings.yaml", b.String())
}

// run runs fpgaops with args and input, and returns the exit code and
// what it printed.
func (f *simFleet) run(input string, args ...string) (int, string, string) {
	f.t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(input), out: &out, err: &errb})
	root.SetArgs(args)
	code := exitCode(&errb, root.Execute())
	return code, out.String(), errb.String()
}

func (f *simFleet) flags(args ...string) []string {
	return append(args, "--repo", f.repo, "--insecure", "--state-dir", f.state)
}

// interrupt applies the saved plan through the same provider and journal
// the command uses, and cancels the run once n changes have finished, as a
// killed process would stop.
func (f *simFleet) interrupt(saved string, n int) {
	f.t.Helper()
	file, err := planfile.ReadFile(saved)
	if err != nil {
		f.t.Fatal(err)
	}
	store, err := state.Open(f.state, state.Options{})
	if err != nil {
		f.t.Fatal(err)
	}
	defer store.Close()
	e := &engine.Engine{Kinds: all.Kinds(), Agents: agent.Transport{Insecure: true}, Store: store, Concurrency: 1, NodeTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p, err := e.Saved(ctx, file)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := e.Apply(ctx, p, engine.ApplyOptions{Progress: &cancelAfter{n: n, cancel: cancel}}); err == nil {
		f.t.Fatal("the interrupted run reported success")
	}
}

type cancelAfter struct {
	mu     sync.Mutex
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Started(*plans.Change) {}

func (c *cancelAfter) Finished(_ *plans.Change, r plans.Result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r.Status == plans.StatusApplied {
		if c.n--; c.n == 0 {
			c.cancel()
		}
	}
}

func TestApplyAgainstSimulatedFleet(t *testing.T) {
	f := newSimFleet(t)

	// Asked and refused: nothing changes.
	code, out, _ := f.run("no\n", f.flags("apply")...)
	if code != 1 || !strings.Contains(out, "Do you want to perform these actions?") {
		t.Fatalf("apply answered no: exit %d\n%s", code, out)
	}
	if st := f.sim.Stats(); st.Programs+st.Attaches+st.SetVFs != 0 {
		t.Fatalf("a refused apply changed the fleet: %+v", st)
	}

	// Approved: the fresh fleet converges, safely.
	code, out, errOut := f.run("", f.flags("apply", "--auto-approve")...)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if !strings.Contains(out, "Apply complete: 12 applied, 0 skipped (done before), 0 failed, 0 blocked, 0 held back.") {
		t.Errorf("apply output:\n%s", out)
	}
	if st := f.sim.Stats(); st.Programs != 4 || st.Attaches != 4 || st.Violations != 0 {
		t.Errorf("sim after apply: %+v, want 4 programs, 4 attaches, no violation", st)
	}
	if code, out, _ := f.run("", f.flags("plan", "--detailed-exitcode")...); code != 0 {
		t.Fatalf("plan after apply: exit %d\n%s", code, out)
	}

	// A new bitstream, planned and saved, then applied exactly: every card
	// goes through detach, VFs off, program, VFs on, attach.
	f.bind("nfv-fw-v2")
	saved := filepath.Join(t.TempDir(), "v2.plan")
	if code, out, errOut := f.run("", f.flags("plan", "--detailed-exitcode", "--out", saved)...); code != 2 {
		t.Fatalf("plan v2: exit %d\n%s\n%s", code, out, errOut)
	}
	// The first apply of it is interrupted after six steps, one card at a
	// time: the second card's chain, in flight, finishes (a card is never
	// left half-way), the two others do not start...
	f.interrupt(saved, 6)
	if st := f.sim.Stats(); st.Detaches+st.SetVFs+st.Programs+st.Attaches != 12+10 {
		t.Fatalf("interrupted run: %+v, want 10 steps beyond the first apply's 12", st)
	}
	// ...and applying the same file again resumes it: the fleet differs
	// from the plan's observation only by the journaled steps.
	code, out, errOut = f.run("", "apply", saved, "--insecure", "--state-dir", f.state, "-o", "json")
	if code != 0 {
		t.Fatalf("apply saved plan: exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		Applied   int               `json:"applied"`
		Skipped   int               `json:"skipped"`
		Converged map[string]string `json:"converged"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("apply -o json: %v\n%s", err, out)
	}
	if rep.Applied != 10 || rep.Skipped != 10 || len(rep.Converged) != 4 {
		t.Errorf("resumed apply: %d applied, %d skipped, %d cards converged; want 10, 10 and 4", rep.Applied, rep.Skipped, len(rep.Converged))
	}
	if st := f.sim.Stats(); st.Programs != 8 || st.Detaches != 4 || st.Violations != 0 {
		t.Errorf("sim after the v2 apply: %+v, want 8 programs, 4 detaches, no violation", st)
	}

	// The same saved plan again: the fleet has changed since, so it is refused.
	code, _, errOut = f.run("", "apply", saved, "--insecure", "--state-dir", f.state)
	if code != 1 || !strings.Contains(errOut, "the fleet has changed since the plan was made") {
		t.Errorf("stale saved plan: exit %d, stderr %q", code, errOut)
	}
	if st := f.sim.Stats(); st.Programs != 8 {
		t.Errorf("a refused plan programmed cards: %+v", st)
	}

	// Someone detaches a VM by hand: with the repository unchanged since
	// the last apply, that is drift, which drift mode "report" shows and
	// does not correct.
	f.handDetach("compute-01", "vm-01-pac0", "0000:5e:00.1")
	code, out, _ = f.run("", f.flags("plan", "--detailed-exitcode")...)
	if code != 2 || !strings.Contains(out, "? report   node/compute-01/fpga/pac0:drift (drift)") ||
		!strings.Contains(out, "reason: drift since the last apply: pac0 vm-01-pac0 lacks vf0; drift mode is report, so it is not corrected") {
		t.Fatalf("plan after a hand detach: exit %d\n%s", code, out)
	}
	if code, out, _ = f.run("", f.flags("apply", "--auto-approve")...); code != 0 || !strings.Contains(out, "Nothing to apply.") {
		t.Fatalf("apply in report mode: exit %d\n%s", code, out)
	}
	// In mode "correct" the same drift is fixed.
	f.write("policy.yaml", "apiVersion: fpgaops/v1\nkind: Policy\nname: default\ndrift: correct\nbudget: {maxDisruptedVMs: 2}\n")
	if code, out, errOut := f.run("", f.flags("apply", "--auto-approve")...); code != 0 || !strings.Contains(out, "+ node/compute-01/fpga/pac0/vf0/vm/vm-01-pac0:attach: applied") {
		t.Fatalf("apply in correct mode: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, out, _ := f.run("", f.flags("plan", "--detailed-exitcode")...); code != 0 {
		t.Fatalf("plan after correcting: exit %d\n%s", code, out)
	}
	if st := f.sim.Stats(); st.Violations != 0 {
		t.Errorf("violations: %+v", st)
	}
}

// handDetach takes a function from a VM behind fpgaops' back.
func (f *simFleet) handDetach(node, vm, pci string) {
	f.t.Helper()
	fleet, err := spec.Load(f.repo)
	if err != nil {
		f.t.Fatal(err)
	}
	n, _ := fleet.Node(node)
	if err := sim.NewVMClient(agent.NewClient(nil)).Detach(context.Background(), n, vm, pci); err != nil {
		f.t.Fatal(err)
	}
}
