package controller

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga"
	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// loadFake stands in for spec.Load: fleet.yaml starting with "bad" is
// invalid at line 3, column 5.
func loadFake(dir string) (*spec.Fleet, error) {
	b, err := os.ReadFile(filepath.Join(dir, "fleet.yaml"))
	if err != nil {
		return nil, err
	}
	if bytes.HasPrefix(b, []byte("bad")) {
		return nil, spec.ErrorList{{Pos: spec.Pos{File: "fleet.yaml", Line: 3, Col: 5}, Msg: `node compute-01: unknown field "fpga"`}}
	}
	return &spec.Fleet{Root: dir}, nil
}

// fakeReconciler records the revisions it is given. When gate is set, it
// waits for it to close, and reports whether ctx ended meanwhile.
type fakeReconciler struct {
	mu      sync.Mutex
	revs    []string
	drift   []spec.DriftMode
	entered chan struct{}
	gate    chan struct{}
	sawStop bool
	err     error
}

func (f *fakeReconciler) Reconcile(ctx context.Context, rev source.Revision, fleet *spec.Fleet) (Result, error) {
	f.mu.Lock()
	f.revs = append(f.revs, rev.Commit)
	f.drift = append(f.drift, fleet.Policy.Drift)
	gate, entered, err := f.gate, f.entered, f.err
	f.mu.Unlock()
	if entered != nil {
		close(entered)
	}
	res := Result{Run: state.Run{
		Plan:    plans.Summary{ByAction: plans.ByAction{Program: 1}},
		Results: plans.Counts{Applied: 1},
		Applied: plans.ByAction{Program: 1},
		Nodes:   []state.NodeSummary{{Name: "compute-01", State: "ok", Cards: 1, Changes: 1}},
	}}
	if gate != nil {
		<-gate
		if ctx.Err() != nil {
			f.mu.Lock()
			f.sawStop = true
			f.mu.Unlock()
			res.Interrupted = true
		}
	}
	return res, err
}

func (f *fakeReconciler) revisions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.revs...)
}

type harness struct {
	t      *testing.T
	remote *gittest.Remote
	src    *source.Source
	store  *state.Local
	rec    *fakeReconciler
	c      *Controller
	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

const secret = "hook-secret"
const adminToken = "admin-token"

// newHarness builds a controller on a fresh remote; serve, if given, sees
// the remote before the options are mutated.
func newHarness(t *testing.T, keyring string, mutate func(*Options), serve ...func(*gittest.Remote)) *harness {
	t.Helper()
	h := &harness{t: t, remote: gittest.NewRemote(t, "fleet"), rec: &fakeReconciler{}}
	for _, f := range serve {
		f(h.remote)
	}
	var err error
	h.src, err = source.New(source.Config{URL: h.remote.FileURL(), Ref: source.Ref{Kind: source.RefBranch, Name: "main"}, CacheDir: t.TempDir(), Keyring: keyring})
	if err != nil {
		t.Fatal(err)
	}
	h.store, err = state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Source: h.src, Load: loadFake, Reconciler: h.rec, Store: h.store,
		Interval: time.Hour, RetryInterval: 30 * time.Minute,
		WebhookSecret: []byte(secret), AdminToken: []byte(adminToken),
	}
	if mutate != nil {
		mutate(&opts)
	}
	h.c, err = New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.srv = httptest.NewServer(h.c.Handler())
	t.Cleanup(h.srv.Close)
	return h
}

func (h *harness) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		h.c.Run(ctx)
	}()
	h.t.Cleanup(func() { cancel(); <-h.done })
}

// waitFor polls the status until ok holds; the bound only keeps a broken
// controller from hanging the test.
func (h *harness) waitFor(what string, ok func(Status) bool) Status {
	h.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := h.c.Status()
		if ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			b, _ := json.MarshalIndent(st, "", "  ")
			h.t.Fatalf("waiting for %s; status:\n%s", what, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) runs() int {
	runs, err := h.store.Runs(0)
	if err != nil {
		h.t.Fatal(err)
	}
	return len(runs)
}

func (h *harness) waitRuns(n int) {
	h.t.Helper()
	h.waitFor(fmt.Sprintf("%d runs", n), func(Status) bool { return h.runs() >= n })
}

func (h *harness) post(path string, hdr map[string]string, body string) (int, string) {
	h.t.Helper()
	req, _ := http.NewRequest("POST", h.srv.URL+path, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func githubSig(body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func fleetFile(content string) map[string][]byte {
	return map[string][]byte{"fleet.yaml": []byte(content)}
}

func condition(st Status, typ string) Condition {
	c, _ := st.Condition(typ)
	return c
}

func TestAppliesAtStartAndOnPush(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	c1 := h.remote.Commit("first", fleetFile("nodes: []"), nil)
	h.start()
	st := h.waitFor("c1 applied", func(s Status) bool { return s.LastAppliedRevision == c1 })
	if r := condition(st, Ready); r.Status != "True" || r.Reason != ReasonSucceeded || !strings.Contains(r.Message, c1) {
		t.Fatalf("Ready = %+v", r)
	}

	c2 := h.remote.Commit("second", fleetFile("nodes: [a]"), nil)
	body := `{"ref":"refs/heads/main"}`
	code, answer := h.post("/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body), "X-GitHub-Event": "push"}, body)
	if code != http.StatusAccepted || !strings.Contains(answer, `"triggered": true`) {
		t.Fatalf("webhook: %d %s", code, answer)
	}
	st = h.waitFor("c2 applied", func(s Status) bool { return s.LastAppliedRevision == c2 })
	if st.LastAttemptedRevision != c2 || st.Violations != 0 || len(st.Nodes) != 1 {
		t.Fatalf("status after push: %+v", st)
	}
	h.waitRuns(2) // the history is written just after the status changes
	runs, err := h.store.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2 || runs[0].Trigger != "webhook/github" || runs[1].Trigger != "start" ||
		runs[0].Revision != c2 || runs[0].Outcome != state.OutcomeApplied {
		t.Fatalf("history: %+v", runs)
	}
	if got := h.rec.revisions(); len(got) != 2 || got[0] != c1 || got[1] != c2 {
		t.Fatalf("reconciled %v", got)
	}
}

func TestWebhookVerification(t *testing.T) {
	t.Parallel()
	body := `{"ref":"refs/heads/main"}`
	tests := []struct {
		name    string
		path    string
		hdr     map[string]string
		body    string
		code    int
		trigger bool
	}{
		{"github valid", "/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body), "X-GitHub-Event": "push"}, body, 202, true},
		{"github ping", "/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body), "X-GitHub-Event": "ping"}, body, 200, false},
		{"github missing signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push"}, body, 401, false},
		{"github wrong signature", "/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body + " "), "X-GitHub-Event": "push"}, body, 401, false},
		{"github signature of another body", "/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body)}, body + "x", 401, false},
		{"github sha1 only", "/hooks/github", map[string]string{"X-Hub-Signature-256": "sha1=abcd"}, body, 401, false},
		{"gitlab valid", "/hooks/gitlab", map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook"}, body, 202, true},
		{"gitlab wrong token", "/hooks/gitlab", map[string]string{"X-Gitlab-Token": secret + "x", "X-Gitlab-Event": "Push Hook"}, body, 401, false},
		{"gitlab missing token", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook"}, body, 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, "", nil) // no loop running: triggers stay queued
			code, answer := h.post(tt.path, tt.hdr, tt.body)
			if code != tt.code {
				t.Fatalf("code %d (%s), want %d", code, answer, tt.code)
			}
			if got := len(h.c.triggers) == 1; got != tt.trigger {
				t.Fatalf("triggered = %v, want %v", got, tt.trigger)
			}
		})
	}

	t.Run("no secret configured", func(t *testing.T) {
		h := newHarness(t, "", func(o *Options) { o.WebhookSecret = nil })
		if code, _ := h.post("/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body)}, body); code != 404 {
			t.Fatalf("code %d, want 404", code)
		}
		if len(h.c.triggers) != 0 {
			t.Fatal("triggered without a secret")
		}
	})
}

func TestInvalidRevisionKeepsLastGood(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	c1 := h.remote.Commit("good", fleetFile("nodes: []"), nil)
	h.start()
	h.waitFor("c1 applied", func(s Status) bool { return s.LastAppliedRevision == c1 })

	c2 := h.remote.Commit("broken", fleetFile("bad\n"), nil)
	h.c.Trigger("manual")
	st := h.waitFor("c2 attempted", func(s Status) bool { return s.LastAttemptedRevision == c2 })
	if st.LastAppliedRevision != c1 {
		t.Fatalf("last applied = %s, want %s to stay in force", st.LastAppliedRevision, c1)
	}
	r, s := condition(st, Ready), condition(st, Stalled)
	if r.Status != "False" || r.Reason != ReasonValidationFailed || !strings.Contains(r.Message, "fleet.yaml:3:5: node compute-01") || !strings.Contains(r.Message, c1+" stays in force") {
		t.Fatalf("Ready = %+v", r)
	}
	if s.Status != "True" || s.Reason != ReasonValidationFailed {
		t.Fatalf("Stalled = %+v", s)
	}
	if st.LastRun == nil || st.LastRun.Outcome != state.OutcomeRejected || len(st.LastRun.Problems) != 1 || st.LastRun.Problems[0].Line != 3 {
		t.Fatalf("last run = %+v", st.LastRun)
	}
	if got := h.rec.revisions(); len(got) != 1 {
		t.Fatalf("the invalid revision reached the reconciler: %v", got)
	}
	// Rejection is not retried on the short interval: a fix must come.
	if st.ConsecutiveFailures != 0 {
		t.Fatalf("consecutive failures = %d", st.ConsecutiveFailures)
	}
	// Its directory was kept, and so was the last good one's.
	c3 := h.remote.Commit("fixed", fleetFile("nodes: [b]"), nil)
	h.c.Trigger("manual")
	st = h.waitFor("c3 applied", func(s Status) bool { return s.LastAppliedRevision == c3 })
	if s := condition(st, Stalled); s.Status != "False" {
		t.Fatalf("still stalled after a fix: %+v", s)
	}
}

func TestUnreachableRemoteKeepsLastGood(t *testing.T) {
	t.Parallel()
	for _, tt := range gittest.Transports() {
		t.Run(tt.Name, func(t *testing.T) {
			t.Parallel()
			var url string
			var cut func()
			h := newHarness(t, "", func(o *Options) {
				src, err := source.New(source.Config{URL: url, CacheDir: t.TempDir()})
				if err != nil {
					t.Fatal(err)
				}
				o.Source = src
			}, func(r *gittest.Remote) { url, cut = tt.Serve(t, r) })
			c1 := h.remote.Commit("good", fleetFile("nodes: []"), nil)
			h.start()
			h.waitFor("c1 applied", func(s Status) bool { return s.LastAppliedRevision == c1 })
			cut()
			h.c.Trigger("manual")
			st := h.waitFor("fetch failure", func(s Status) bool { return condition(s, Ready).Reason == ReasonFetchFailed })
			r := condition(st, Ready)
			if st.LastAppliedRevision != c1 || !strings.Contains(r.Message, c1+" stays in force") || !strings.Contains(r.Message, url) {
				t.Fatalf("status: applied %s, Ready %+v", st.LastAppliedRevision, r)
			}
			if st.ConsecutiveFailures != 1 || condition(st, Stalled).Status != "False" {
				t.Fatalf("a fetch failure must be retried: %+v", st)
			}
			if next, why := h.c.next(time.Now()); why != "retry" || time.Until(next) > time.Hour {
				t.Fatalf("next run %s (%s), want a retry", next, why)
			}
		})
	}
}

func TestUntrustedCommitRejected(t *testing.T) {
	t.Parallel()
	trusted := gittest.NewKey(t, "Fleet Admin")
	h := newHarness(t, gittest.Keyring(t, trusted), nil)
	c1 := h.remote.Commit("signed", fleetFile("nodes: []"), trusted)
	h.start()
	h.waitFor("c1 applied", func(s Status) bool { return s.LastAppliedRevision == c1 })
	h.remote.Commit("unsigned", fleetFile("nodes: [evil]"), nil)
	h.c.Trigger("manual")
	st := h.waitFor("rejection", func(s Status) bool { return condition(s, Stalled).Reason == ReasonVerificationFailed })
	if st.LastAppliedRevision != c1 || len(h.rec.revisions()) != 1 {
		t.Fatalf("an unsigned commit was applied: %+v", st)
	}
}

func TestSuspendResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	h.remote.Commit("first", fleetFile("nodes: []"), nil)

	if code, _ := h.post("/suspend", nil, ""); code != http.StatusUnauthorized {
		t.Fatalf("suspend without a token: %d", code)
	}
	auth := map[string]string{"Authorization": "Bearer " + adminToken}
	if code, body := h.post("/suspend", auth, ""); code != 200 || !strings.Contains(body, `"suspended": true`) {
		t.Fatalf("suspend: %d %s", code, body)
	}
	body := "{}"
	code, answer := h.post("/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body)}, body)
	if code != 202 || !strings.Contains(answer, `"triggered": false`) || len(h.c.triggers) != 0 {
		t.Fatalf("webhook while suspended: %d %s", code, answer)
	}
	// A restarted controller is still suspended and does not run at start.
	c2, err := New(Options{Source: h.src, Load: loadFake, Reconciler: h.rec, Store: h.store, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Status().Suspended {
		t.Fatal("suspension lost on restart")
	}
	h.start()
	// The loop has passed its start (and waits for the schedule) without
	// running.
	h.waitFor("the loop to wait", func(s Status) bool { return s.NextRunAt != nil })
	if n := h.runs(); n != 0 {
		t.Fatalf("%d run(s) while suspended", n)
	}
	if code, body := h.post("/resume", auth, ""); code != 200 || !strings.Contains(body, `"suspended": false`) {
		t.Fatalf("resume: %d %s", code, body)
	}
	if code, answer := h.post("/reconcile", auth, ""); code != 202 || !strings.Contains(answer, `"triggered": true`) {
		t.Fatalf("reconcile: %d %s", code, answer)
	}
	h.waitRuns(1)
	if got := h.rec.revisions(); len(got) != 1 {
		t.Fatalf("runs while suspended: %v", got)
	}
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	h.rec.gate, h.rec.entered = make(chan struct{}), make(chan struct{})
	h.remote.Commit("first", fleetFile("nodes: []"), nil)
	h.start()
	<-h.rec.entered
	h.cancel()
	select {
	case <-h.done:
		t.Fatal("Run returned while a reconcile was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	h.c.Trigger("manual") // must not start a run after shutdown
	close(h.rec.gate)
	<-h.done
	if !h.rec.sawStop {
		t.Fatal("the reconciler's context was not cancelled on shutdown")
	}
	runs, err := h.store.Runs(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].Outcome != state.OutcomeInterrupted {
		t.Fatalf("history after shutdown: %+v", runs)
	}
	if got := h.rec.revisions(); len(got) != 1 {
		t.Fatalf("a run started after shutdown: %v", got)
	}
}

func TestDriftOverride(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", func(o *Options) { o.Drift = spec.DriftCorrect })
	h.remote.Commit("first", fleetFile("nodes: []"), nil)
	h.start()
	h.waitRuns(1)
	h.rec.mu.Lock()
	defer h.rec.mu.Unlock()
	if h.rec.drift[0] != spec.DriftCorrect {
		t.Fatalf("drift mode %q reached the reconciler", h.rec.drift[0])
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	h.remote.Commit("first", fleetFile("nodes: []"), nil)
	h.start()
	h.waitRuns(1)
	resp, err := http.Get(h.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`fpgaops_runs_total{outcome="applied",trigger="start"} 1`,
		`fpgaops_changes_total{action="program"} 1`,
		`fpgaops_run_duration_seconds_count{outcome="applied"} 1`,
		`fpgaops_violations 0`,
		`fpgaops_last_applied_timestamp_seconds `,
		`fpgaops_suspended 0`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if resp, err := http.Get(h.srv.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	store, _ := state.Open(t.TempDir(), state.Options{})
	base := Options{Source: &source.Source{}, Load: loadFake, Reconciler: &fakeReconciler{}, Store: store}
	tests := []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"both", func(o *Options) { o.Interval, o.Schedule = time.Minute, "@hourly" }, "not both"},
		{"bad cron", func(o *Options) { o.Schedule = "61 * * * *" }, `schedule "61 * * * *"`},
		{"bad drift", func(o *Options) { o.Interval, o.Drift = time.Minute, "fix" }, `drift "fix"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := base
			tt.mutate(&o)
			if _, err := New(o); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

func TestFollowsPolicySchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", func(o *Options) { o.Interval = 0 })
	policy := spec.Policy{Name: "dc1", Schedule: "*/30 * * * *"}
	now := time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)
	if next, _ := h.c.next(now); !next.Equal(now.Add(DefaultInterval)) {
		t.Fatalf("before any revision: next %s, want the default interval", next)
	}
	h.c.followPolicy(policy)
	if next, _ := h.c.next(now); !next.Equal(time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC)) {
		t.Fatalf("with the policy's schedule: next %s", next)
	}
	// An explicit flag wins over the repository.
	h2 := newHarness(t, "", nil)
	h2.c.followPolicy(policy)
	if next, _ := h2.c.next(now); !next.Equal(now.Add(time.Hour)) {
		t.Fatalf("--interval 1h overridden by the policy: next %s", next)
	}
}

// A controller killed in the middle of a run leaves it in flight; the
// next controller on the state directory records it as interrupted and
// is not Ready until a run succeeds.
func TestRunOfAKilledControllerIsRecordedInterrupted(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	if err := h.store.Running(&state.Run{Trigger: "schedule", StartedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The next process.
	c, err := New(Options{Source: h.src, Load: loadFake, Reconciler: h.rec, Store: h.store, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := h.store.Runs(0)
	if err != nil || len(runs) != 1 || runs[0].Outcome != state.OutcomeInterrupted || runs[0].Trigger != "schedule" ||
		!strings.Contains(runs[0].Error, "killed or crashed") {
		t.Fatalf("history = %+v, %v", runs, err)
	}
	st := c.Status()
	if cond, _ := st.Condition(Ready); cond.Status != "False" || cond.Reason != ReasonInterrupted {
		t.Fatalf("Ready = %+v", cond)
	}
}

// unknownReconciler observes none of its nodes, and leaves a VM degraded.
type unknownReconciler struct{ unknown, nodes int }

func (u unknownReconciler) Reconcile(context.Context, source.Revision, *spec.Fleet) (Result, error) {
	r := state.Run{Unknown: u.unknown, Degraded: []plans.Degraded{{Node: "n0", VM: "vm", Card: "pac0", Function: "pf", Reason: "PR error"}}}
	for i := range u.nodes {
		st := "ok"
		if i < u.unknown {
			st = "unknown"
		}
		r.Nodes = append(r.Nodes, state.NodeSummary{Name: fmt.Sprintf("n%d", i), State: st, Reason: "agent unreachable"})
	}
	return Result{Run: r}, nil
}

// The status and the metrics say how many nodes a run could not observe
// and which VMs it left degraded; a run that observed none is a failure.
func TestUnknownNodesAndDegradedVMs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		unknown int
		outcome state.Outcome
		ready   string
	}{{1, state.OutcomeApplied, "True"}, {3, state.OutcomeFailed, "False"}} {
		reg := prometheus.NewRegistry()
		h := newHarness(t, "", func(o *Options) { o.Reconciler = unknownReconciler{unknown: tc.unknown, nodes: 3}; o.Registry = reg })
		h.remote.Commit("three nodes", fleetFile("nodes: [n0, n1, n2]"), nil)
		run := h.c.RunOnce(context.Background(), "manual")
		st := h.c.Status()
		ready, _ := st.Condition(Ready)
		observedAll, _ := st.Condition(NodesObserved)
		degraded, _ := st.Condition(Degraded)
		if run.Outcome != tc.outcome || ready.Status != tc.ready || observedAll.Status != "False" || st.Unknown != tc.unknown ||
			degraded.Status != "True" || !strings.Contains(degraded.Message, "vm on n0 lacks pac0 pf: PR error") {
			t.Errorf("%d unknown: outcome %s, Ready %+v, NodesObserved %+v, Degraded %+v", tc.unknown, run.Outcome, ready, observedAll, degraded)
		}
		if got := testutil.ToFloat64(h.c.metrics.nodesUnknown); got != float64(tc.unknown) {
			t.Errorf("fpgaops_nodes_unknown = %v, want %d", got, tc.unknown)
		}
		if got := testutil.ToFloat64(h.c.metrics.vmsDegraded); got != 1 {
			t.Errorf("fpgaops_vms_degraded = %v, want 1", got)
		}
	}
}

// cardsReconciler reports the health of the cards it is given.
type cardsReconciler struct{ cards *[]engine.CardHealth }

func (c cardsReconciler) Reconcile(context.Context, source.Revision, *spec.Fleet) (Result, error) {
	return Result{Run: state.Run{Nodes: []state.NodeSummary{{Name: "n0", State: "ok"}}}, Cards: *c.cards}, nil
}

// Each run's observation replaces the cards' health series: registers,
// sensors, healthy or not; the quarantine is exported beside them.
func TestCardHealthMetrics(t *testing.T) {
	t.Parallel()
	sick := fpga.Health{
		Problems:  []string{"fme errors/catfatal_errors = 0x1"},
		Registers: []fpga.Register{{Name: "fme errors/catfatal_errors", Value: 0x1, Severity: fpga.SeverityProblem}},
		Sensors: []fpga.Sensor{{Name: "dfl_fme_thermal temp1", Kind: fpga.SensorTemperature, Value: 71.5},
			{Name: "dfl_fme_power power1", Kind: fpga.SensorPower, Value: 41}},
	}
	cards := []engine.CardHealth{{Node: "n0", Slot: "pac0", Health: sick}, {Node: "n0", Slot: "pac1"}}
	h := newHarness(t, "", func(o *Options) { o.Reconciler = cardsReconciler{&cards} })
	h.remote.Commit("one node", fleetFile("nodes: [n0]"), nil)
	if err := h.store.Quarantine(state.Quarantine{Card: "node/n0/fpga/pac0", Reason: "fme errors/catfatal_errors = 0x1"}); err != nil {
		t.Fatal(err)
	}
	h.c.RunOnce(context.Background(), "manual")
	m := h.c.metrics
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"healthy pac0", testutil.ToFloat64(m.cardHealthy.WithLabelValues("n0", "pac0")), 0},
		{"healthy pac1", testutil.ToFloat64(m.cardHealthy.WithLabelValues("n0", "pac1")), 1},
		{"register", testutil.ToFloat64(m.cardRegister.WithLabelValues("n0", "pac0", "fme errors/catfatal_errors", "problem")), 1},
		{"temperature", testutil.ToFloat64(m.cardTemperature.WithLabelValues("n0", "pac0", "dfl_fme_thermal temp1")), 71.5},
		{"power", testutil.ToFloat64(m.cardPower.WithLabelValues("n0", "pac0", "dfl_fme_power power1")), 41},
		{"quarantined", testutil.ToFloat64(m.cardQuarantined.WithLabelValues("n0", "pac0")), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}

	// The card recovers and pac1 leaves the fleet; the release is seen at
	// once.
	cards = []engine.CardHealth{{Node: "n0", Slot: "pac0"}}
	h.c.RunOnce(context.Background(), "manual")
	if _, err := NewClient(h.srv.URL, []byte(adminToken)).Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want int
	}{{"healthy", m.cardHealthy, 1}, {"registers", m.cardRegister, 0}, {"temperatures", m.cardTemperature, 0}, {"quarantined", m.cardQuarantined, 0}} {
		if got := testutil.CollectAndCount(tc.c); got != tc.want {
			t.Errorf("%s: %d series, want %d", tc.name, got, tc.want)
		}
	}
}

// A commit that lacks the repository's --path is rejected, as an invalid
// revision is: no retry with backoff, nothing applied.
func TestCommitWithoutThePathIsRejected(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	src, err := source.New(source.Config{URL: h.remote.FileURL(), Ref: source.Ref{Kind: source.RefBranch, Name: "main"}, CacheDir: t.TempDir(), Path: "fleet"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Source: src, Load: loadFake, Reconciler: h.rec, Store: h.store, Interval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	h.remote.Commit("no fleet/ here", fleetFile("nodes: []"), nil)
	run := c.RunOnce(context.Background(), "manual")
	st := c.Status()
	if run.Outcome != state.OutcomeRejected || condition(st, Stalled).Reason != ReasonValidationFailed || st.ConsecutiveFailures != 0 {
		t.Fatalf("outcome %s, stalled %+v, failures %d; want rejected without a retry", run.Outcome, condition(st, Stalled), st.ConsecutiveFailures)
	}
	if !strings.Contains(run.Error, "path fleet: no such directory") || len(h.rec.revisions()) != 0 {
		t.Fatalf("error %q, %d revisions reconciled", run.Error, len(h.rec.revisions()))
	}
}

// rolloutReconciler leaves the rollout it is given, in the store too.
type rolloutReconciler struct {
	r     *rollout.State
	next  time.Time
	store state.Store
}

func (rr *rolloutReconciler) Reconcile(context.Context, source.Revision, *spec.Fleet) (Result, error) {
	if err := rr.store.PutRollout(rr.r); err != nil {
		return Result{}, err
	}
	return Result{Run: state.Run{Rollout: rr.r.Summary()}, Rollout: rr.r, Next: rr.next}, nil
}

// The controller shows the rollout a run left (status, condition,
// metrics), runs again when its bake ends, and passes an operator's
// pause, resume and abort to the next run through the store.
func TestRolloutInStatusMetricsAndControl(t *testing.T) {
	t.Parallel()
	p := &spec.Rollout{Steps: []string{"1", "100%"}, Bake: spec.Duration(time.Minute)}
	r := rollout.Start(p, "rev-2", "rev-1", []rollout.Card{{ID: "node/a/fpga/pac0", Node: "a"}, {ID: "node/b/fpga/pac0", Node: "b"}}, time.Now())
	r.Converged(p, []string{r.Cards[0]}, time.Now())
	rr := &rolloutReconciler{r: r, next: r.BakeUntil}
	h := newHarness(t, "", func(o *Options) { o.Reconciler = rr })
	rr.store = h.store
	h.remote.Commit("rollout", fleetFile("nodes: [a, b]"), nil)
	h.c.RunOnce(context.Background(), "manual")
	st := h.c.Status()
	if st.Rollout == nil || st.Rollout.Phase != rollout.Baking {
		t.Fatalf("status rollout %+v", st.Rollout)
	}
	if c := condition(st, RolloutHealthy); c.Status != "True" || c.Reason != ReasonRolloutProgressing || !strings.Contains(c.Message, "step 1 of 2 (1), baking") {
		t.Fatalf("condition %+v", c)
	}
	if got := testutil.ToFloat64(h.c.metrics.rolloutStep); got != 1 {
		t.Errorf("fpgaops_rollout_step = %v, want 1", got)
	}
	for state, want := range map[string]float64{"pending": 1, "released": 1, "done": 1, "reverted": 0} {
		if got := testutil.ToFloat64(h.c.metrics.rolloutCards.WithLabelValues(state)); got != want {
			t.Errorf("fpgaops_rollout_cards_total{state=%q} = %v, want %v", state, got, want)
		}
	}
	if at, why := h.c.next(time.Now()); why != "rollout" || !at.Equal(r.BakeUntil) {
		t.Fatalf("next run %s (%s), want the bake's end %s", at, why, r.BakeUntil)
	}

	c := NewClient(h.srv.URL, []byte(adminToken))
	ctx := context.Background()
	if a, err := c.RolloutAction(ctx, "pause"); err != nil || !a.Control.Paused || a.Rollout == nil {
		t.Fatalf("pause: %+v, %v", a, err)
	}
	if ctl, _ := h.store.RolloutControl(); !ctl.Paused {
		t.Fatal("the pause is not in the store")
	}
	if a, err := c.RolloutAction(ctx, "resume"); err != nil || a.Control.Paused {
		t.Fatalf("resume: %+v, %v", a, err)
	}
	if a, err := c.RolloutAction(ctx, "abort"); err != nil || a.Control.Abort != "rev-2" {
		t.Fatalf("abort: %+v, %v", a, err)
	}
	if _, err := NewClient(h.srv.URL, nil).RolloutAction(ctx, "pause"); err == nil {
		t.Fatal("a pause without the admin token was taken")
	}

	r.Evaluate(p, map[string]rollout.Reading{r.Cards[0]: {Converged: true, Failed: []rollout.CheckFailure{{Check: "card", Reason: "port 0 errors/errors = 0x1"}}}}, nil, time.Now())
	rr.next = time.Time{}
	h.c.RunOnce(context.Background(), "manual")
	if c := condition(h.c.Status(), RolloutHealthy); c.Status != "False" || c.Reason != ReasonRolloutFailed ||
		!strings.Contains(c.Message, "card node/a/fpga/pac0, check card: port 0 errors/errors = 0x1") {
		t.Fatalf("condition after the failure %+v", c)
	}
}
