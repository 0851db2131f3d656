package dashboard_test

import (
	"bufio"
	"context"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/dashboard"
	"github.com/fpgaops/fpgaops/reconcile/dashboard/browsertest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
)

var screenshot = flag.String("screenshot", "", "also save the browser test's screenshot here (docs/dashboard.png)")

// fixture is a dashboard over a real store and a status the test sets,
// served on a local server.
type fixture struct {
	d      *dashboard.Dashboard
	status *fakeStatus
	store  *state.Local
	srv    *httptest.Server
}

func newFixture(t testing.TB, opts dashboard.Options) *fixture {
	t.Helper()
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := &fixture{status: &fakeStatus{}, store: store}
	f.status.set(func(st *controller.Status) {
		st.Source = "https://git.example.com/dc1/fleet.git branch:main path fleet"
		st.LastAppliedRevision = strings.Repeat("8d1f5c2e", 5)
		st.Conditions = []controller.Condition{{Type: controller.Ready, Status: "False", Reason: controller.ReasonReconcileFailed, Message: "revision 8d1f5c2e…: 3 change(s) failed"}}
	})
	f.d, err = dashboard.New(f.status, store, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.d)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", f.srv.URL+path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// addRun records a run with a held and a failed change.
func (f *fixture) addRun(t testing.TB) *state.Run {
	t.Helper()
	run := &state.Run{Trigger: "webhook/github", Revision: strings.Repeat("8d1f5c2e", 5), Outcome: state.OutcomeFailed,
		StartedAt: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Error: "3 change(s) failed",
		Results: plans.Counts{Failed: 1, Held: 1},
		Changes: []state.Change{
			{ID: "node/compute-00000/fpga/pac3/vf0/vm/vnf-00000-3:detach", Action: plans.ActionDetach, Status: plans.StatusHeld,
				Held: &plans.Hold{Gate: plans.GateWindow, Why: "no allow window is open; the next opens at 2026-12-05T02:00:00Z"}},
			{ID: "node/compute-00001/fpga/pac1:program", Action: plans.ActionProgram, Status: plans.StatusFailed, Attempts: 4,
				Error: "node/compute-00001/fpga/pac1:program: program: PR error: EIO"},
		}}
	if err := f.store.AddRun(run); err != nil {
		t.Fatal(err)
	}
	return run
}

func TestPages(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dashboard.Options{PageSize: 10})
	if code, _, body := f.get(t, "/"); code != 200 || !strings.Contains(body, "No run has planned since the controller started") {
		t.Fatalf("before a plan: %d\n%s", code, body)
	}
	planned(t, f.d, 30)
	run := f.addRun(t)
	f.status.set(func(st *controller.Status) {
		st.Held = run.Changes[:1]
		st.HeldTotal = 1
		st.Awaiting = &controller.Awaiting{Run: run.ID, Revision: run.Revision, Changes: []string{run.Changes[0].ID}, Total: 1}
		st.Rollout = &rollout.State{Revision: "9e2d0c1f5a7b3e4d", LastGood: "1a2b3c4d5e6f7a8b", Cards: []string{"node/compute-00001/fpga/pac0", "node/compute-00002/fpga/pac0"},
			Steps: []rollout.Step{{Label: "1 card", Cards: 1, Started: run.StartedAt, Baked: run.StartedAt}, {Label: "100%", Cards: 2, Started: run.StartedAt}},
			Step:  1, Phase: rollout.Failed, Reverted: []string{"node/compute-00002/fpga/pac0"},
			Failure: &rollout.Failure{Card: "node/compute-00002/fpga/pac0", Check: "card", Reason: "port 0 reports errors"}}
	})

	code, hdr, body := f.get(t, "/")
	if code != 200 || hdr.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(hdr.Get("Content-Security-Policy"), "script-src 'self'") {
		t.Fatalf("GET /: %d %v", code, hdr)
	}
	for _, want := range []string{
		`<script src="/ui/app.js" defer></script>`,
		"https://git.example.com/dc1/fleet.git branch:main path fleet",
		`id="node-compute-00000"`, `id="node-compute-00009"`,
		`<span class="image">fw-v2</span>`, `<span class="holder">vnf-00000-0 (vf0)</span>`,
		"held by window: no allow window is open",
		"PR error: EIO",
		"unhealthy: fme errors/catfatal_errors: 0x2 (KTI CDC parity error)",
		"30 of 30 node(s), page 1 of 3",
		`<form class="approve" data-run="1">`,
		`<a href="/runs/1">1</a>`,
		`<p class="banner bad">rollout of 9e2d0c1f5a7b failed at step 2 of 2: card node/compute-00002/fpga/pac0, check card: port 0 reports errors</p>`,
		`<td>2 (100%)</td><td>2</td>`, `<td>failed</td>`, `<td>baked</td>`,
		"1 card(s) reverted to revision <code>1a2b3c4d5e6f</code>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`data-map="([cghfuk|]+)"`).FindStringSubmatch(body); m == nil || strings.Count(m[1], "|") != 29 || len(strings.ReplaceAll(m[1], "|", "")) != 120 {
		t.Errorf("the map's data does not hold 30 nodes of 4 cards: %v", m)
	} else {
		for _, letter := range "cghfuk" {
			if letter != 'g' && !strings.ContainsRune(m[1], letter) {
				t.Errorf("no card in state %c", letter)
			}
		}
	}

	// Filters and pages; the partial content for live updates.
	if _, _, body := f.get(t, "/?state=failed&page=1"); strings.Contains(body, `id="node-compute-00002"`) || !strings.Contains(body, "PR error: EIO") {
		t.Errorf("state=failed lists nodes without a failed card")
	}
	if _, _, body := f.get(t, "/?page=3"); !strings.Contains(body, `id="node-compute-00029"`) || strings.Contains(body, `id="node-compute-00000"`) {
		t.Errorf("page 3 does not list the last nodes")
	}
	if _, _, body := f.get(t, "/?state=unknown"); !strings.Contains(body, `id="node-compute-00012"`) ||
		!strings.Contains(body, "cards: dial tcp 10.0.3.7:9443: connection refused") || !strings.Contains(body, "2 of 30 node(s)") {
		t.Errorf("state=unknown does not list the nodes that did not answer, with why")
	}
	if _, _, body := f.get(t, "/?q=00017"); !strings.Contains(body, "1 of 30 node(s)") {
		t.Errorf("q=00017 does not find one node")
	}
	if code, _, _ := f.get(t, "/?state=purple"); code != http.StatusBadRequest {
		t.Errorf("a bad state: %d", code)
	}
	if _, _, body := f.get(t, "/", "X-Fpgaops-Partial", "1"); strings.Contains(body, "<html") || !strings.Contains(body, `id="fleet-map"`) {
		t.Errorf("the partial page is not the content alone")
	}

	// A run, change by change; the runs; what is not there.
	if code, _, body := f.get(t, "/runs/1"); code != 200 || !strings.Contains(body, "node/compute-00001/fpga/pac1:program") ||
		!strings.Contains(body, `<span class="gate">held by window</span> no allow window is open`) || !strings.Contains(body, `<form class="approve" data-run="1">`) {
		t.Errorf("GET /runs/1: %d\n%s", code, body)
	}
	if code, _, body := f.get(t, "/runs"); code != 200 || !strings.Contains(body, "webhook/github") {
		t.Errorf("GET /runs: %d", code)
	}
	for path, want := range map[string]int{"/runs/2": 404, "/runs/x": 400, "/nowhere": 404, "/ui/app.css": 200} {
		if code, _, _ := f.get(t, path); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
}

// Text from the repository and the fleet is escaped, never markup.
func TestPagesEscape(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dashboard.Options{})
	f.status.set(func(st *controller.Status) {
		st.Conditions = []controller.Condition{{Type: controller.Ready, Status: "False", Reason: "ValidationFailed", Message: `<img src=x onerror=alert(1)>`}}
	})
	if _, _, body := f.get(t, "/"); strings.Contains(body, "<img src=x") || !strings.Contains(body, "&lt;img src=x onerror=alert(1)&gt;") {
		t.Error("a condition's message is not escaped")
	}
}

// The page hears of changes as they happen: an update event when the
// view moves, none when nothing does.
func TestEventsStream(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dashboard.Options{Poll: 10 * time.Millisecond})
	resp, err := http.Get(f.srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	next := func() string {
		t.Helper()
		for lines.Scan() {
			if l := lines.Text(); strings.HasPrefix(l, "event: ") {
				return l
			}
		}
		t.Fatal("the stream ended")
		return ""
	}
	if ev := next(); ev != "event: update" {
		t.Fatalf("first event %q", ev)
	}
	start := time.Now()
	planned(t, f.d, 2)
	if ev := next(); ev != "event: update" {
		t.Fatalf("after a plan: %q", ev)
	}
	t.Logf("update %s after the change", time.Since(start))
}

// The dashboard in a real browser: the page draws the map, lists the
// nodes and says why a change is held; a screenshot is kept.
func TestInBrowser(t *testing.T) {
	f := newFixture(t, dashboard.Options{PageSize: 25})
	planned(t, f.d, 60)
	run := f.addRun(t)
	f.status.set(func(st *controller.Status) {
		st.Held, st.HeldTotal = run.Changes[:1], 1
		st.LastRun = run
		st.Awaiting = &controller.Awaiting{Run: run.ID, Revision: run.Revision, Since: run.StartedAt, Changes: []string{run.Changes[0].ID}, Total: 1}
	})
	b := browsertest.Start(t, 1280, 1100)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	took := b.Load(ctx, f.srv.URL+"/")
	text := b.Text()
	for _, want := range []string{"compute-00000", "compute-00024", "held by window", "no allow window is open", "PR error: EIO",
		"60 of 60 node(s), page 1 of 3", "Run 1 awaits approval"} {
		if !strings.Contains(text, want) {
			t.Errorf("the page shows no %q", want)
		}
	}
	var drawn struct{ Width, Height int }
	b.MustEval(`(function () { var c = document.getElementById("fleet-map"); return {Width: c.width, Height: c.height}; })()`, &drawn)
	if drawn.Width < 100 || drawn.Height < 20 {
		t.Errorf("the map is %dx%d", drawn.Width, drawn.Height)
	}
	path := filepath.Join(t.TempDir(), "dashboard.png")
	b.Screenshot(path, true)
	if *screenshot != "" {
		b.Screenshot(*screenshot, false)
	}
	t.Logf("ready in %s; screenshot %s", took, path)

	// A click on the map's 30th node lists the page it is on.
	b.MustEval(`(function () { var c = document.getElementById("fleet-map"), r = c.getBoundingClientRect();
		c.dispatchEvent(new MouseEvent("click", {clientX: r.left + 29 * 16 + 1, clientY: r.top + 1})); return true; })()`, nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var at string
		if b.Eval(`document.documentElement.getAttribute("data-ready") === "1" && location.search + location.hash + " " + (document.querySelector(".node.highlight") || {}).id`, &at) == nil &&
			at == "?page=2#at-29 node-compute-00029" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a click on the map's 30th node: %q", at)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkPageIn10kNodeFleet loads the front page of a 10,000-node
// fleet (40,000 cards) in chromium and reports the time from the
// navigation's start to the first frame painted after the page drew the
// whole fleet's map, as the page's own clock measures it: the first load
// of a fresh browser (ms/first-load) and the loads after it (ms/load);
// and the page's size.
func BenchmarkPageIn10kNodeFleet(b *testing.B) {
	f := newFixture(b, dashboard.Options{})
	planned(b, f.d, 10000)
	f.addRun(b)
	br := browsertest.Start(b, 1280, 900)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		b.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	first := br.Load(ctx, f.srv.URL+"/")
	var timing map[string]float64
	br.MustEval(`(function () { var n = performance.getEntriesByType("navigation")[0]; return {responseStart: n.responseStart, responseEnd: n.responseEnd, domInteractive: n.domInteractive, dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd}; })()`, &timing)
	b.Logf("first load: %v", timing)
	var total time.Duration
	b.ResetTimer()
	for range b.N {
		total += br.Load(ctx, f.srv.URL+"/")
	}
	b.StopTimer()
	b.ReportMetric(float64(first.Milliseconds()), "ms/first-load")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/load")
	b.ReportMetric(float64(len(page))/1024, "KiB/page")
	var cards int
	br.MustEval(`document.getElementById("fleet-map").getAttribute("data-map").split("|").join("").length`, &cards)
	if cards != 40000 {
		b.Fatalf("the map holds %d cards, want 40000", cards)
	}
}

// BenchmarkServeOverview10k is the controller's side of that page: the
// map of 40,000 cards, the counts and a page of nodes, rendered.
func BenchmarkServeOverview10k(b *testing.B) {
	f := newFixture(b, dashboard.Options{})
	planned(b, f.d, 10000)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		f.d.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
