package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/githost/githosttest"
)

// controllerProc is `fpgaops run` in the test's process.
type controllerProc struct {
	t    *testing.T
	base string // http://ADDR
	logs *syncbuf.Buffer
	stop func() int
}

// startController runs `fpgaops run` with args and --listen; it stops
// when the test ends.
func startController(t *testing.T, args ...string) *controllerProc {
	t.Helper()
	listen := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	p := &controllerProc{t: t, base: "http://" + listen, logs: &syncbuf.Buffer{}}
	done := make(chan int, 1)
	go func() {
		root := newRootCommand(streams{in: strings.NewReader(""), out: p.logs, err: p.logs})
		root.SetArgs(append([]string{"run", "--listen", listen}, args...))
		done <- exitCode(p.logs, root.ExecuteContext(ctx))
	}()
	stopped := false
	p.stop = func() int {
		if stopped {
			return 0
		}
		stopped = true
		cancel()
		return <-done
	}
	t.Cleanup(func() { p.stop() })
	return p
}

// waitStatus polls GET /status until ok holds.
func (p *controllerProc) waitStatus(what string, ok func(controller.Status) bool) controller.Status {
	p.t.Helper()
	return waitStatus(p.t, p.base, p.logs, what, ok)
}

// waitStatus polls the controller at base for its status until ok holds;
// past a bound it fails the test, with the status and the logs.
func waitStatus(t *testing.T, base string, logs fmt.Stringer, what string, ok func(controller.Status) bool) controller.Status {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var st controller.Status
	for time.Now().Before(deadline) {
		if resp, err := http.Get(base + "/status"); err == nil {
			st = controller.Status{}
			err = json.NewDecoder(resp.Body).Decode(&st)
			resp.Body.Close()
			if err == nil && ok(st) {
				return st
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := json.MarshalIndent(st, "", "  ")
	t.Fatalf("waiting for %s; status:\n%s\nlogs:\n%s", what, b, logs.String())
	return st
}

// post sends a webhook and returns its status code and answer.
func (p *controllerProc) post(path string, hdr map[string]string, body []byte) (int, string) {
	p.t.Helper()
	req, _ := http.NewRequest("POST", p.base+path, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

// A controller on GitHub or GitLab: the commit it applies gets pending,
// then success; a pull request's push gets one comment with the plan,
// rendered as `fpgaops plan` shows it, and the fleet is not touched.
func TestPullRequestPlanAgainstSim(t *testing.T) {
	type hostCase struct {
		name                  string
		url, repo, token      string
		open                  func(int)
		comments              func(int) []githosttest.Comment
		statuses              func(string) []githosttest.Status
		hook                  func(p *controllerProc, head string) (int, string)
		success, pendingState string
	}
	sign := func(body []byte) string {
		mac := hmac.New(sha256.New, []byte("s3cret"))
		mac.Write(body)
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	gh := githosttest.NewGitHub(t, "dc1/fleet")
	gl := githosttest.NewGitLab(t, "dc1/fleet")
	for _, hc := range []hostCase{
		{"github", gh.URL(), gh.Repo, gh.Token, gh.OpenPull, gh.Comments, gh.Statuses, func(p *controllerProc, head string) (int, string) {
			body := []byte(fmt.Sprintf(`{"action":"opened","number":12,"pull_request":{"number":12,"head":{"sha":%q},"base":{"ref":"main"}}}`, head))
			return p.post("/hooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": sign(body)}, body)
		}, "success", "pending"},
		{"gitlab", gl.URL(), gl.Project, gl.Token, gl.OpenMergeRequest, gl.Notes, gl.Statuses, func(p *controllerProc, head string) (int, string) {
			body := []byte(fmt.Sprintf(`{"object_kind":"merge_request","object_attributes":{"iid":12,"action":"open","target_branch":"main","last_commit":{"id":%q}}}`, head))
			return p.post("/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": "s3cret"}, body)
		}, "success", "pending"},
	} {
		t.Run(hc.name, func(t *testing.T) {
			f := startGitSimFleet(t)
			dir := t.TempDir()
			secret, token := filepath.Join(dir, "secret"), filepath.Join(dir, "token")
			os.WriteFile(secret, []byte("s3cret\n"), 0o600)
			os.WriteFile(token, []byte(hc.token+"\n"), 0o600)
			p := startController(t, "--git", f.remote.FileURL(), "--ref", "main", "--path", "fleet", "--interval", "1h",
				"--state-dir", filepath.Join(dir, "state"), "--webhook-secret-file", secret, "--insecure", "--vms", "endpoint",
				"--git-host", hc.name, "--git-host-url", hc.url, "--git-host-repo", hc.repo, "--git-host-token-file", token,
				"--external-url", "https://fpgaops.example")
			p.waitStatus("the first commit applied", func(st controller.Status) bool { return st.LastAppliedRevision == f.first })
			waitFor(t, "the first commit's statuses", func() bool { return len(hc.statuses(f.first)) == 2 })
			if st := hc.statuses(f.first); st[0].State != hc.pendingState || st[1].State != hc.success || st[1].Context != "fpgaops" ||
				st[1].TargetURL != "https://fpgaops.example/runs/1" {
				t.Errorf("statuses of %s: %+v", f.first, st)
			}

			before := f.sim.Stats()
			hc.open(12)
			head := githosttest.PushHead(t, f.remote, "fw-v2", map[string][]byte{"fleet/bindings.yaml": twoCards(f.url, "fw-v2")["fleet/bindings.yaml"]})
			if code, body := hc.hook(p, head); code != http.StatusAccepted || !strings.Contains(body, "queued") {
				t.Fatalf("pull request webhook: %d %s", code, body)
			}
			waitFor(t, "the plan comment", func() bool { return len(hc.comments(12)) == 1 && len(hc.statuses(head)) == 2 })
			c := hc.comments(12)[0]
			for _, want := range []string{
				"#### fpgaops plan for `" + head[:12] + "`",
				"Planned against the fleet as observed at ", "through the nodes of revision " + f.first,
				"fpgaops will perform the following actions for revision " + head,
				"~ program  node/compute-01/fpga/pac1:program",
				"held by window: no allow window is open",
				"Plan: 1 to program, 0 to attach, 0 to detach, 2 to set VFs, 0 to report, 5 held back.",
			} {
				if !strings.Contains(c.Body, want) {
					t.Errorf("comment lacks %q:\n%s", want, c.Body)
				}
			}
			if st := hc.statuses(head); st[1].State != hc.success || st[1].Context != "fpgaops/plan" {
				t.Errorf("statuses of the head: %+v", st)
			}
			// Observed, not changed.
			after := f.sim.Stats()
			if after.Requests == before.Requests {
				t.Error("the pull request was not planned against the live fleet")
			}
			after.Requests = before.Requests
			if after != before {
				t.Errorf("planning the pull request changed the fleet: sim stats %+v, then %+v", before, after)
			}
			if strings.Contains(p.logs.String(), hc.token) {
				t.Error("the git host's token is in the logs")
			}
		})
	}
}

// waitFor polls ok; the bound only keeps a broken test from hanging.
func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
