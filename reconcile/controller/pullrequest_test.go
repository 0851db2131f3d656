package controller

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/githost"
	"github.com/fpgaops/fpgaops/reconcile/githost/githosttest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

// observing is a reconciler that records the revisions it applies, and
// the Planner of pull requests, which records what it plans.
type observing struct {
	mu      sync.Mutex
	applied []string
	planned []string
}

func (o *observing) Reconcile(_ context.Context, rev source.Revision, _ *spec.Fleet) (Result, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.applied = append(o.applied, rev.Commit)
	return Result{Run: state.Run{Results: plans.Counts{Applied: 1}, Nodes: []state.NodeSummary{{Name: "compute-01", State: "ok"}}}}, nil
}

func (o *observing) Plan(_ context.Context, head, trusted *spec.Fleet) (*plans.Plan, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.planned = append(o.planned, head.Revision)
	if trusted.Revision != o.applied[len(o.applied)-1] {
		return nil, fmt.Errorf("planned through the nodes of %s, not the revision applied", trusted.Revision)
	}
	return &plans.Plan{Revision: head.Revision, Summary: plans.Summary{ByAction: plans.ByAction{Program: 2}, Held: 1}}, nil
}

func (o *observing) applies() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.applied...)
}

// planText is what a comment holds of a plan here: a line that names
// its revision, with backticks that must not close the comment's fence.
func planText(p *plans.Plan) string { return "```\nplan of " + p.Revision + "\n" }

// forge is a fake git host with the webhook that reports a pull request
// push to it.
type forge struct {
	name     string
	host     githost.Host
	open     func(n int)
	comments func(n int) []githosttest.Comment
	statuses func(commit string) []githosttest.Status
	hook     func(h *harness, n int, head, base string) (int, string)
}

func forges(t *testing.T) []forge {
	gh := githosttest.NewGitHub(t, "dc1/fleet")
	ghc, err := githost.NewGitHub(gh.URL(), gh.Repo, gh.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	gl := githosttest.NewGitLab(t, "dc1/fleet")
	glc, err := githost.NewGitLab(gl.URL(), gl.Project, gl.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	return []forge{
		{"github", ghc, gh.OpenPull, gh.Comments, gh.Statuses, func(h *harness, n int, head, base string) (int, string) {
			body := fmt.Sprintf(`{"action":"synchronize","number":%d,"pull_request":{"number":%d,"head":{"sha":%q,"ref":"feature"},"base":{"ref":%q}},"repository":{"full_name":"dc1/fleet"}}`, n, n, head, base)
			return h.post("/hooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": githubSig(body)}, body)
		}},
		{"gitlab", glc, gl.OpenMergeRequest, gl.Notes, gl.Statuses, func(h *harness, n int, head, base string) (int, string) {
			body := fmt.Sprintf(`{"object_kind":"merge_request","project":{"path_with_namespace":"dc1/fleet"},"object_attributes":{"iid":%d,"action":"update","target_branch":%q,"source_branch":"feature","last_commit":{"id":%q}}}`, n, base, head)
			return h.post("/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Merge Request Hook", "X-Gitlab-Token": secret}, body)
		}},
	}
}

// A push gets commit statuses, pending then how the run ended; a pull
// request's push gets one plan comment, edited on each push, and its
// own commit status, and nothing is applied for it.
func TestCommitStatusesAndPullRequestPlans(t *testing.T) {
	t.Parallel()
	for _, f := range forges(t) {
		t.Run(f.name, func(t *testing.T) {
			t.Parallel()
			rec := &observing{}
			var remote string
			h := newHarness(t, "", func(o *Options) {
				o.Reconciler, o.GitHost, o.PlanText, o.PlanBranch = rec, f.host, planText, "main"
				o.ExternalURL = "https://fpgaops.example"
				o.Heads = &HeadSource{Config: source.Config{URL: remote, CacheDir: t.TempDir()}}
			}, func(r *gittest.Remote) { remote = r.FileURL() })
			t.Cleanup(func() { h.c.Close(context.Background()) })
			good := h.remote.Commit("fleet", fleetFile("nodes: [compute-01]"), nil)
			h.start()
			h.waitFor("the first run", func(st Status) bool { return st.LastAppliedRevision == good })
			f.open(7)

			// Two pushes to the pull request: one comment, edited.
			var heads []string
			for i, content := range []string{"nodes: [compute-01, compute-02]", "nodes: [compute-01, compute-03]"} {
				head := githosttest.PushHead(t, h.remote, "feature", map[string][]byte{"fleet.yaml": []byte(content)})
				heads = append(heads, head)
				if code, body := f.hook(h, 7, head, "main"); code != http.StatusAccepted || !strings.Contains(body, "queued") {
					t.Fatalf("push %d to the pull request: %d %s", i+1, code, body)
				}
				waitUntil(t, fmt.Sprintf("the plan of push %d", i+1), func() bool {
					cs := f.comments(7)
					return len(cs) == 1 && strings.Contains(cs[0].Body, "plan of "+head) && len(f.statuses(head)) == 2
				})
				st := f.statuses(head)
				if len(st) != 2 || st[0].State != "pending" || st[1].State != "success" || st[1].Context != "fpgaops/plan" ||
					st[1].Description != "2 to change, 1 held back, 0 to report" {
					t.Errorf("statuses of head %d: %+v", i+1, st)
				}
			}
			c := f.comments(7)[0]
			if c.Edits != 1 || !strings.Contains(c.Body, "<!-- fpgaops plan: ") || !strings.Contains(c.Body, "````text\n```\nplan of "+heads[1]+"\n````") ||
				!strings.Contains(c.Body, "nothing was applied") {
				t.Errorf("the comment: %+v", c)
			}
			if a := rec.applies(); len(a) != 1 || a[0] != good {
				t.Errorf("applied %v: a pull request's head was applied", a)
			}

			// A pull request into another branch is not planned.
			if code, body := f.hook(h, 7, heads[1], "release"); code != http.StatusAccepted || !strings.Contains(body, "not planned") {
				t.Errorf("into another branch: %d %s", code, body)
			}

			// The first push's statuses, and those of a rejected one.
			waitUntil(t, "the applied commit's statuses", func() bool { return len(f.statuses(good)) == 2 })
			st := f.statuses(good)
			if len(st) != 2 || st[0].State != "pending" || st[1].State != "success" || st[1].Context != "fpgaops" ||
				!strings.HasPrefix(st[1].Description, "applied by run 1:") || st[1].TargetURL != "https://fpgaops.example/runs/1" {
				t.Errorf("statuses of the applied commit: %+v", st)
			}
			bad := h.remote.Commit("typo", fleetFile("bad"), nil)
			h.c.Trigger("webhook/" + f.name)
			waitUntil(t, "the rejected commit's statuses", func() bool { return len(f.statuses(bad)) == 2 })
			if st := f.statuses(bad); st[0].State != "pending" || !strings.Contains(st[1].Description, "rejected: fleet.yaml:3:5: ") {
				t.Errorf("statuses of the rejected commit: %+v", st)
			}
			if st := f.statuses(bad); st[1].State != map[string]string{"github": "failure", "gitlab": "failed"}[f.name] {
				t.Errorf("a rejected commit's status is %s", st[1].State)
			}
		})
	}
}

// waitUntil polls ok; the bound only keeps a broken test from hanging.
func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An invalid head gets its mistakes, with positions, as the comment.
func TestPullRequestWithMistakes(t *testing.T) {
	t.Parallel()
	f := forges(t)[0]
	rec := &observing{}
	var remote string
	h := newHarness(t, "", func(o *Options) {
		o.Reconciler, o.GitHost, o.PlanText = rec, f.host, planText
		o.Heads = &HeadSource{Config: source.Config{URL: remote, CacheDir: t.TempDir()}}
	}, func(r *gittest.Remote) { remote = r.FileURL() })
	t.Cleanup(func() { h.c.Close(context.Background()) })
	h.remote.Commit("fleet", fleetFile("nodes: [compute-01]"), nil)
	h.start()
	h.waitRuns(1)
	f.open(8)
	head := githosttest.PushHead(t, h.remote, "typo", map[string][]byte{"fleet.yaml": []byte("bad")})
	if code, body := f.hook(h, 8, head, "main"); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	waitUntil(t, "the comment", func() bool { return len(f.comments(8)) == 1 && len(f.statuses(head)) == 2 })
	if c := f.comments(8)[0]; !strings.Contains(c.Body, "invalid: 1 mistake(s); the controller would reject it") ||
		!strings.Contains(c.Body, "fleet.yaml:3:5: node compute-01: unknown field") {
		t.Errorf("comment: %s", c.Body)
	}
	if st := f.statuses(head); st[1].State != "failure" {
		t.Errorf("status: %+v", st)
	}
}

func TestFenced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, text string
		max        int
		want       string
	}{
		{"plain", "a\nb\n", 100, "```text\na\nb\n```\n"},
		{"a fence inside", "x ``` y", 100, "````text\nx ``` y\n````\n"},
		{"cut at a line", "line 1\nline 2\nline 3\n", 10, "```text\nline 1\n… 3 more line(s): run fpgaops plan for the whole plan\n```\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fenced(tc.text, tc.max); got != tc.want {
				t.Errorf("fenced = %q, want %q", got, tc.want)
			}
		})
	}
}

// Pull request events are verified like pushes, bounded, and checked
// before anything is planned.
func TestPullRequestWebhookRefusals(t *testing.T) {
	t.Parallel()
	f := forges(t)[0]
	h := newHarness(t, "", func(o *Options) {
		o.Reconciler, o.GitHost, o.PlanText = &observing{}, f.host, planText
		o.Heads = &HeadSource{}
	})
	// Closing twice is closing.
	t.Cleanup(func() { h.c.Close(context.Background()); h.c.Close(context.Background()) })
	head := strings.Repeat("ab", 20)
	pull := func(action, head string) string {
		return fmt.Sprintf(`{"action":%q,"pull_request":{"number":3,"head":{"sha":%q},"base":{"ref":"main"}}}`, action, head)
	}
	huge := `{"padding":"` + strings.Repeat("x", 1<<20) + `"}`
	for _, tc := range []struct {
		name, body, sig string
		code            int
		want            string
	}{
		{"unsigned", pull("opened", head), "sha256=" + strings.Repeat("0", 64), http.StatusUnauthorized, "unauthorized"},
		{"not JSON", "{", "", http.StatusBadRequest, "pull request event: "},
		{"short head", pull("opened", "abc"), "", http.StatusBadRequest, `head "abc": want a full commit hash`},
		{"closed", pull("closed", head), "", http.StatusAccepted, "pull request 3 not planned: action closed"},
		{"over 1 MiB", huge, "", http.StatusRequestEntityTooLarge, "pull request event over 1 MiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig := tc.sig
			if sig == "" {
				sig = githubSig(tc.body)
			}
			code, body := h.post("/hooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": sig}, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d %q", code, body, tc.code, tc.want)
			}
		})
	}
	// Without a git host, pull requests are not planned.
	plain := newHarness(t, "", nil)
	body := pull("opened", head)
	if code, answer := plain.post("/hooks/github", map[string]string{"X-GitHub-Event": "pull_request", "X-Hub-Signature-256": githubSig(body)}, body); code != http.StatusAccepted ||
		!strings.Contains(answer, "pull requests are not planned: start the controller with --git-host") {
		t.Errorf("without a git host: %d %s", code, answer)
	}
}

// Of controllers that share a fleet, the leader alone plans a pull
// request: a follower answers that it leaves it to the leader, and
// comments nothing.
func TestFollowerLeavesPullRequestsToTheLeader(t *testing.T) {
	t.Parallel()
	f := forges(t)[0]
	fl := newFakeLeader()
	var remote string
	h := newHarness(t, "", func(o *Options) {
		o.Reconciler, o.GitHost, o.PlanText, o.Leader = &observing{}, f.host, planText, fl
		o.Heads = &HeadSource{Config: source.Config{URL: remote, CacheDir: t.TempDir()}}
	}, func(r *gittest.Remote) { remote = r.FileURL() })
	t.Cleanup(func() { h.c.Close(context.Background()) })
	h.remote.Commit("fleet", fleetFile("nodes: [compute-01]"), nil)
	f.open(9)
	head := githosttest.PushHead(t, h.remote, "feature", fleetFile("nodes: [compute-01, compute-02]"))
	code, body := f.hook(h, 9, head, "main")
	if code != http.StatusAccepted || !strings.Contains(body, "pull request 9 not planned: this controller follows") {
		t.Fatalf("a follower's answer: %d %s", code, body)
	}
	time.Sleep(200 * time.Millisecond) // time enough for a plan that was not refused
	if n := len(f.comments(9)); n != 0 {
		t.Fatalf("a follower commented %d time(s)", n)
	}
}
