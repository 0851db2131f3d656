package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/bitstream"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

const e2eIface = "9d7324a15c0e4f62b6e83a41f07c2d95"

// e2eGBS builds a bitstream for the N3000 interface above.
func e2eGBS(t *testing.T, name, afu string) ([]byte, string) {
	t.Helper()
	md := bitstream.Metadata{Version: 1, PlatformName: "n3000", AFUImage: bitstream.AFUImage{
		MagicNo: bitstream.MagicNo, InterfaceUUID: bitstream.FormatUUID(e2eIface),
		AcceleratorClusters: []bitstream.Cluster{{Name: name, TotalContexts: 1, AcceleratorTypeUUID: bitstream.FormatUUID(afu)}},
	}}
	data, err := bitstream.Build(md, []byte("payload of "+name))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:])
}

// e2eNodes is nodes.yaml; board is on line 10, its value at column 12.
func e2eNodes(endpoint, board string) string {
	return fmt.Sprintf(`apiVersion: fpgaops/v1
kind: Node
name: compute-01
endpoint: %s/nodes/compute-01
fpgas:
  - slot: pac0
    pci: "0000:5e:00.0"
    vfs: 1
    interfaceID: %s
    board: %s
`, endpoint, e2eIface, board)
}

func e2eBinding(bitstream string) string {
	return `apiVersion: fpgaops/v1
kind: Binding
name: vnf-a
node: compute-01
fpga: pac0
function: vf0
vm: vnf-a
bitstream: ` + bitstream + "\n"
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestRunAgainstSim is the controller end to end: a fleet repository in
// git, the simulated fleet serving its node, `fpgaops run` with a GitHub
// webhook. A pushed commit is applied on the webhook with zero
// violations; an invalid commit leaves the previous revision in force and
// the status names the error with file and line.
func TestRunAgainstSim(t *testing.T) {
	// The sim must know the node before the repository can name its
	// address, so the listener comes first.
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simURL := "http://" + simLn.Addr().String()

	remote := gittest.NewRemote(t, "fleet")
	v1, sum1 := e2eGBS(t, "fw-v1", "aa11b2c3d4e5f60718293a4b5c6d7e01")
	v2, sum2 := e2eGBS(t, "fw-v2", "bb22c3d4e5f60718293a4b5c6d7e8f02")
	bitstreams := fwBitstreams(sum1, sum2)
	files := map[string][]byte{
		"fleet/nodes.yaml":           []byte(e2eNodes(simURL, "pac-n3000")),
		"fleet/bitstreams.yaml":      []byte(bitstreams),
		"fleet/bitstreams/fw-v1.gbs": v1,
		"fleet/bitstreams/fw-v2.gbs": v2,
		"fleet/bindings.yaml":        []byte(e2eBinding("fw-v1")),
		"fleet/policy.yaml":          []byte("apiVersion: fpgaops/v1\nkind: Policy\nname: dc1\ndrift: correct\n"),
		"README.md":                  []byte("not part of the fleet\n"),
	}
	c1 := remote.Commit("compute-01: vnf-a on fw-v1", files, nil)

	fleet, err := spec.Load(filepath.Join(remote.Work, "fleet"))
	if err != nil {
		t.Fatal(err)
	}
	fs, err := sim.New(fleet, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	simSrv := &http.Server{Handler: fs.Handler()}
	go simSrv.Serve(simLn)
	t.Cleanup(func() { simSrv.Close() })

	dir := t.TempDir()
	secretFile := filepath.Join(dir, "webhook-secret")
	if err := os.WriteFile(secretFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncbuf.Buffer{}
	done := make(chan int, 1)
	go func() {
		s := streams{in: strings.NewReader(""), out: logs, err: logs}
		root := newRootCommand(s)
		root.SetArgs([]string{"run",
			"--git", remote.FileURL(), "--ref", "main", "--path", "fleet",
			"--interval", "1h", "--listen", listen, "--state-dir", filepath.Join(dir, "state"),
			"--webhook-secret-file", secretFile, "--insecure", "--vms", "endpoint",
		})
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
	base := "http://" + listen

	hook := func() {
		t.Helper()
		body := []byte(`{"ref":"refs/heads/main"}`)
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(body)
		req, _ := http.NewRequest("POST", base+"/hooks/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook: %s", resp.Status)
		}
	}
	ready := func(st controller.Status) controller.Condition {
		c, _ := st.Condition(controller.Ready)
		return c
	}

	// At start: the first revision is applied.
	st := waitStatus(t, base, logs, "c1 applied", func(s controller.Status) bool { return s.LastAppliedRevision == c1 })
	if st.Violations != 0 || ready(st).Status != "True" {
		t.Fatalf("after c1: violations %d, Ready %+v", st.Violations, ready(st))
	}

	// Push a change of bitstream; the webhook applies it at once (the
	// interval is an hour).
	c2 := remote.Commit("vnf-a: fw-v2", map[string][]byte{"fleet/bindings.yaml": []byte(e2eBinding("fw-v2"))}, nil)
	hook()
	st = waitStatus(t, base, logs, "c2 applied", func(s controller.Status) bool { return s.LastAppliedRevision == c2 })
	if st.Violations != 0 || ready(st).Status != "True" || st.LastAttemptedRevision != c2 {
		t.Fatalf("after c2: %+v", st)
	}
	if len(st.Nodes) != 1 || st.Nodes[0].Name != "compute-01" || st.Nodes[0].State != "ok" || st.Nodes[0].Changes == 0 {
		t.Fatalf("nodes after c2: %+v", st.Nodes)
	}
	if st.LastRun == nil || st.LastRun.Trigger != "webhook/github" || st.LastRun.Results.Applied == 0 {
		t.Fatalf("last run: %+v", st.LastRun)
	}

	// An invalid commit is rejected; c2 stays in force.
	c3 := remote.Commit("compute-01: wrong board", map[string][]byte{"fleet/nodes.yaml": []byte(e2eNodes(simURL, "pac-n9"))}, nil)
	hook()
	st = waitStatus(t, base, logs, "c3 attempted", func(s controller.Status) bool { return s.LastAttemptedRevision == c3 })
	r := ready(st)
	if st.LastAppliedRevision != c2 || r.Status != "False" || r.Reason != controller.ReasonValidationFailed {
		t.Fatalf("after c3: applied %s, Ready %+v", st.LastAppliedRevision, r)
	}
	if !strings.Contains(r.Message, "nodes.yaml:10:12: ") || !strings.Contains(r.Message, c2+" stays in force") {
		t.Fatalf("Ready message does not name the error's file and line, or the revision in force: %q", r.Message)
	}

	// While it runs: status and history read the state directory, and a
	// second controller on it is refused.
	cli := func(args ...string) (int, string) {
		var out bytes.Buffer
		root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &out})
		root.SetArgs(args)
		return exitCode(&out, root.Execute()), out.String()
	}
	stateDir := filepath.Join(dir, "state")
	if code, out := cli("status", "--state-dir", stateDir); code != 0 || !strings.Contains(out, "Applied:    "+c2) || !strings.Contains(out, "nodes.yaml:10:12: ") {
		t.Fatalf("status while running: exit %d\n%s", code, out)
	}
	if code, out := cli("status", "--server", base, "-o", "json"); code != 0 || !strings.Contains(out, `"lastAppliedRevision": "`+c2+`"`) {
		t.Fatalf("status --server: exit %d\n%s", code, out)
	}
	if code, out := cli("history", "--state-dir", stateDir, "-o", "json"); code != 0 || strings.Count(out, `"outcome"`) != 3 {
		t.Fatalf("history while running: exit %d\n%s", code, out)
	}
	if code, out := cli("run", "--once", "--git", remote.FileURL(), "--state-dir", stateDir); code != 1 ||
		!strings.Contains(out, "state directory in use by another writer (fpgaops run, pid ") {
		t.Fatalf("a second controller on the same state dir: exit %d\n%s", code, out)
	}

	stats := fs.Stats()
	if stats.Violations != 0 || stats.Programs != 2 {
		t.Fatalf("sim: %+v; want two programs and no violation", stats)
	}

	// SIGTERM's path: the controller stops cleanly.
	if code := stop(); code != 0 {
		t.Fatalf("run exited %d:\n%s", code, logs.String())
	}
	if strings.Contains(logs.String(), "s3cret") {
		t.Fatal("the webhook secret appears in the logs")
	}
}

// Credentials come from the environment (or files) and never show in the
// output or the logs.
func TestRunCredentialsFromEnvironment(t *testing.T) {
	remote := gittest.NewRemote(t, "fleet")
	c := remote.Commit("policy", map[string][]byte{
		"policy.yaml": []byte("apiVersion: fpgaops/v1\nkind: Policy\nname: dc1\ndrift: report\n"),
	}, nil)
	url := gittest.StartHTTPBackend(t, remote.Root, "fleet-bot", "pw-from-env-42") + "fleet.git"
	state := t.TempDir()
	run := func() (int, string) {
		var out bytes.Buffer
		root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &out})
		root.SetArgs([]string{"run", "--once", "--git", url, "--git-username", "fleet-bot", "--state-dir", state, "--log-format", "json"})
		return exitCode(&out, root.Execute()), out.String()
	}

	t.Setenv("FPGAOPS_GIT_PASSWORD", "wrong-pw-7")
	code, out := run()
	if code != 1 || !strings.Contains(out, "fetch-failed") || strings.Contains(out, "wrong-pw-7") {
		t.Fatalf("wrong password: exit %d\n%s", code, out)
	}
	t.Setenv("FPGAOPS_GIT_PASSWORD", "pw-from-env-42")
	code, out = run()
	if code != 0 || !strings.Contains(out, "Applied revision "+c) || strings.Contains(out, "pw-from-env-42") {
		t.Fatalf("password from the environment: exit %d\n%s", code, out)
	}
}

// With every node unreachable, a run observed nothing and applied
// nothing: run --once exits 1, the status is not Ready and counts the
// unknown nodes, and the last applied revision does not move.
func TestRunWithEveryNodeUnreachable(t *testing.T) {
	simLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	simURL := "http://" + simLn.Addr().String()
	remote := gittest.NewRemote(t, "fleet")
	v1, sum1 := e2eGBS(t, "fw-v1", "aa11b2c3d4e5f60718293a4b5c6d7e01")
	remote.Commit("compute-01: vnf-a on fw-v1", map[string][]byte{
		"nodes.yaml":           []byte(e2eNodes(simURL, "pac-n3000")),
		"bitstreams.yaml":      []byte("apiVersion: fpgaops/v1\nkind: Bitstream\nname: fw-v1\nfile: bitstreams/fw-v1.gbs\nsha256: " + sum1 + "\n"),
		"bitstreams/fw-v1.gbs": v1,
		"bindings.yaml":        []byte(e2eBinding("fw-v1")),
	}, nil)
	fleet, err := spec.Load(remote.Work)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := sim.New(fleet, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	for _, n := range fleet.Nodes {
		if err := fs.SetDown(n.Name, true); err != nil {
			t.Fatal(err)
		}
	}
	simSrv := &http.Server{Handler: fs.Handler()}
	go simSrv.Serve(simLn)
	t.Cleanup(func() { simSrv.Close() })

	stateDir := t.TempDir()
	var out, errb bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
	root.SetArgs([]string{"run", "--once", "--git", remote.FileURL(), "--state-dir", stateDir, "--insecure", "--node-timeout", "2s"})
	if code := exitCode(&errb, root.ExecuteContext(context.Background())); code != 1 || !strings.Contains(errb.String(), "no node of the fleet could be observed") {
		t.Fatalf("run --once: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	store, err := state.Open(stateDir, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var st controller.Status
	if _, err := store.Status(&st); err != nil {
		t.Fatal(err)
	}
	ready, _ := st.Condition(controller.Ready)
	observedAll, _ := st.Condition(controller.NodesObserved)
	if ready.Status != "False" || ready.Reason != controller.ReasonNodesUnknown || observedAll.Status != "False" ||
		st.Unknown != len(fleet.Nodes) || st.LastAppliedRevision != "" || st.LastAppliedAt != nil {
		t.Fatalf("status: Ready %+v, NodesObserved %+v, unknown %d, last applied %q", ready, observedAll, st.Unknown, st.LastAppliedRevision)
	}
	if stats := fs.Stats(); stats.Programs+stats.Attaches != 0 {
		t.Fatalf("something changed: %+v", stats)
	}
}

// fwBitstreams declares the images fw-v1 and fw-v2 of e2eGBS, with their
// digests.
func fwBitstreams(sum1, sum2 string) string {
	return fmt.Sprintf(`apiVersion: fpgaops/v1
kind: Bitstream
name: fw-v1
file: bitstreams/fw-v1.gbs
sha256: %s
---
apiVersion: fpgaops/v1
kind: Bitstream
name: fw-v2
file: bitstreams/fw-v2.gbs
sha256: %s
`, sum1, sum2)
}
