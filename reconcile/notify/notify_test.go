package notify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"github.com/fpgaops/fpgaops/reconcile/notify"
	"github.com/prometheus/client_golang/prometheus"
)

// receiver is a local HTTP endpoint that keeps what it is sent and
// answers with status.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []received
	status int
}

type received struct {
	path   string
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T, status int) *receiver {
	t.Helper()
	r := &receiver{t: t, status: status}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, received{req.URL.Path, req.Header.Clone(), body})
		status := r.status
		r.mu.Unlock()
		if req.Method != http.MethodPost || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) got() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.reqs...)
}

// write writes a file in dir and returns its path.
func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// start loads the configuration and starts a notifier on it.
func start(t *testing.T, config string, reg prometheus.Registerer, log *slog.Logger) *notify.Notifier {
	t.Helper()
	cfg, err := notify.Load(write(t, t.TempDir(), "notify.yaml", config))
	if err != nil {
		t.Fatal(err)
	}
	n, err := notify.New(cfg, notify.Options{Registry: reg, Log: log, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// flush delivers what is queued.
func flush(t *testing.T, n *notify.Notifier) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

var at = time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)

func changeFailed(id string) notify.Event {
	return notify.Event{Kind: notify.ChangeFailed, Key: id, Change: id, Node: "compute-02", Run: 42, Revision: "8d1f5c2e",
		Source: "https://git.example.com/dc1/fleet.git branch:main", Summary: id + " failed", Detail: "program: PR error: EIO",
		URL: "https://fpgaops.example/runs/42", At: at}
}

func TestEachTargetGetsItsFormat(t *testing.T) {
	t.Parallel()
	hook, slack, am := newReceiver(t, 200), newReceiver(t, 200), newReceiver(t, 200)
	dir := t.TempDir()
	secret := write(t, dir, "hmac", "hmac-s3cret\n")
	slackURL := write(t, dir, "slack-url", slack.srv.URL+"/services/T000/B000/XXXX\n")
	token := write(t, dir, "am-token", "am-t0ken\n")
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	n := start(t, fmt.Sprintf(`targets:
  - name: ops
    type: webhook
    url: %s/fpgaops
    secretFile: %s
  - name: chat
    type: slack
    urlFile: %s
    events: [change-failed, recovered]
  - name: am
    type: alertmanager
    url: %s
    bearerTokenFile: %s
`, hook.srv.URL, secret, slackURL, am.srv.URL, token), reg, slog.New(slog.NewTextHandler(&logs, nil)))
	n.Notify(changeFailed("node/compute-02/fpga/pac1:program"),
		notify.Event{Kind: notify.DriftFound, Key: "x", Summary: "1 object drifted", Source: "fleet"})
	n.Notify(notify.Event{Kind: notify.Recovered, Key: "r", Summary: "revision 9e2 applied", Source: "https://git.example.com/dc1/fleet.git branch:main", At: at})
	n.Notify(notify.Event{Kind: notify.RolloutProgressed, Key: "p", Summary: "rollout of 9e2 complete", Source: "fleet", At: at})
	flush(t, n)

	// The webhook: every event, as JSON, signed.
	h := hook.got()
	if len(h) != 4 {
		t.Fatalf("webhook got %d requests, want 4", len(h))
	}
	var ev notify.Event
	if err := json.Unmarshal(h[0].body, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Kind != notify.ChangeFailed || ev.Severity != notify.Critical || ev.Change != "node/compute-02/fpga/pac1:program" || ev.ID == "" ||
		ev.Run != 42 || ev.Detail != "program: PR error: EIO" || h[0].path != "/fpgaops" {
		t.Errorf("webhook payload: %s", h[0].body)
	}
	mac := hmac.New(sha256.New, []byte("hmac-s3cret"))
	mac.Write(h[0].body)
	if got, want := h[0].header.Get("X-Fpgaops-Signature-256"), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("signature %q, want %q", got, want)
	}
	if h[0].header.Get(notify.HeaderEvent) != "change-failed" || h[0].header.Get(notify.HeaderDelivery) != ev.ID {
		t.Errorf("webhook headers: %v", h[0].header)
	}

	// Slack: the kinds it asked for, as text.
	s := slack.got()
	if len(s) != 2 || s[0].path != "/services/T000/B000/XXXX" {
		t.Fatalf("slack got %d requests: %+v", len(s), s)
	}
	var msg struct{ Text string }
	if err := json.Unmarshal(s[0].body, &msg); err != nil {
		t.Fatal(err)
	}
	if want := ":red_circle: *fpgaops change-failed*: node/compute-02/fpga/pac1:program failed\nprogram: PR error: EIO\n<https://fpgaops.example/runs/42|run 42> · revision `8d1f5c2e` · https://git.example.com/dc1/fleet.git branch:main"; msg.Text != want {
		t.Errorf("slack text:\n%s\nwant:\n%s", msg.Text, want)
	}

	// Alertmanager: API v2 alerts, a recovery resolves the run-failed
	// alert, and progress is no alert.
	a := am.got()
	if len(a) != 3 {
		t.Fatalf("alertmanager got %d requests", len(a))
	}
	for _, r := range a {
		if r.path != "/api/v2/alerts" || r.header.Get("Authorization") != "Bearer am-t0ken" {
			t.Errorf("alertmanager request to %s with %q", r.path, r.header.Get("Authorization"))
		}
	}
	var alerts []struct {
		Labels       map[string]string
		Annotations  map[string]string
		StartsAt     time.Time
		EndsAt       *time.Time
		GeneratorURL string
	}
	if err := json.Unmarshal(a[0].body, &alerts); err != nil || len(alerts) != 1 {
		t.Fatalf("alerts %s: %v", a[0].body, err)
	}
	if l := alerts[0].Labels; l["alertname"] != "FpgaopsChangeFailed" || l["severity"] != "critical" || l["change"] != "node/compute-02/fpga/pac1:program" ||
		l["node"] != "compute-02" || alerts[0].Annotations["description"] != "program: PR error: EIO" || !alerts[0].StartsAt.Equal(at) || alerts[0].EndsAt != nil ||
		alerts[0].GeneratorURL != "https://fpgaops.example/runs/42" {
		t.Errorf("alert: %s", a[0].body)
	}
	if err := json.Unmarshal(a[2].body, &alerts); err != nil {
		t.Fatal(err)
	}
	if l := alerts[0].Labels; l["alertname"] != "FpgaopsRunFailed" || alerts[0].EndsAt == nil || !alerts[0].EndsAt.Equal(at) {
		t.Errorf("recovery: %s", a[2].body)
	}

	if got := count(t, reg, "ops", "change-failed", "sent"); got != 1 {
		t.Errorf("sent to ops: %v", got)
	}
	if strings.Contains(logs.String(), "XXXX") || strings.Contains(logs.String(), "s3cret") || strings.Contains(logs.String(), "t0ken") {
		t.Errorf("secrets in the logs:\n%s", logs.String())
	}
}

// count is fpgaops_notifications_total for the labels.
func count(t *testing.T, reg *prometheus.Registry, target, kind, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["target"] == target && labels["kind"] == kind && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// The same event is sent once per window, a run sends at most maxPerKind
// of a kind one by one, and a target gets at most ratePerMinute.
func TestDedupBoundsAndRateLimit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		config string
		events [][]notify.Event
		want   []string // the summaries delivered, in order
		result string   // the metric result of what was not delivered
		lost   float64
	}{
		{"same kind and key once per window", "", [][]notify.Event{
			{changeFailed("a")}, {changeFailed("a"), changeFailed("b")},
		}, []string{"a failed", "b failed"}, "deduplicated", 1},
		{"the rest of a kind summed up", "maxPerKind: 2\n", [][]notify.Event{
			{changeFailed("a"), changeFailed("b"), changeFailed("c"), changeFailed("d")},
		}, []string{"a failed", "b failed", "2 more change-failed events in run 42"}, "", 0},
		{"rate limited per target", "ratePerMinute: 2\n", [][]notify.Event{
			{changeFailed("a"), changeFailed("b"), changeFailed("c")},
		}, []string{"a failed", "b failed"}, "rate-limited", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			hook := newReceiver(t, 200)
			reg := prometheus.NewRegistry()
			n := start(t, tc.config+"targets:\n  - {name: ops, type: webhook, url: "+hook.srv.URL+"}\n", reg, nil)
			for _, evs := range tc.events {
				n.Notify(evs...)
			}
			flush(t, n)
			var got []string
			for _, r := range hook.got() {
				var ev notify.Event
				if err := json.Unmarshal(r.body, &ev); err != nil {
					t.Fatal(err)
				}
				got = append(got, ev.Summary)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("delivered %q, want %q", got, tc.want)
			}
			if tc.result != "" {
				if lost := count(t, reg, "ops", "change-failed", tc.result); lost != tc.lost {
					t.Errorf("%s: %v, want %v", tc.result, lost, tc.lost)
				}
			}
		})
	}
}

// A target that fails is retried when that may help, logged and counted;
// notifying never waits for it.
func TestFailuresAreCountedAndNeverBlock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status   int
		attempts int
	}{{http.StatusServiceUnavailable, 3}, {http.StatusBadRequest, 1}} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			hook := newReceiver(t, tc.status)
			reg := prometheus.NewRegistry()
			var logs syncbuf.Buffer
			n := start(t, "targets:\n  - {name: ops, type: webhook, url: "+hook.srv.URL+"}\n", reg, slog.New(slog.NewTextHandler(&logs, nil)))
			n.Notify(changeFailed("a"))
			flush(t, n)
			if got := len(hook.got()); got != tc.attempts {
				t.Errorf("%d attempts, want %d", got, tc.attempts)
			}
			if failed := count(t, reg, "ops", "change-failed", "failed"); failed != 1 {
				t.Errorf("failed: %v", failed)
			}
			if !strings.Contains(logs.String(), "notification not sent") || !strings.Contains(logs.String(), "target=ops") {
				t.Errorf("logs:\n%s", logs.String())
			}
		})
	}
	t.Run("a target that hangs", func(t *testing.T) {
		t.Parallel()
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
		t.Cleanup(srv.Close)
		t.Cleanup(func() { close(release) })
		n := start(t, "targets:\n  - {name: ops, type: webhook, url: "+srv.URL+"}\n", nil, nil)
		done := make(chan struct{})
		go func() {
			for i := range 500 { // more than the queue holds
				n.Notify(changeFailed(fmt.Sprint(i)))
			}
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Notify waited for a target that hangs")
		}
	})
}

func TestLoadReportsEveryMistake(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := write(t, dir, "secret", "k\n")
	for _, tc := range []struct {
		name, config string
		want         []string
	}{
		{"json is yaml", `{"heldLongerThan": "4h", "targets": [{"name": "ops", "type": "webhook", "url": "https://hooks.example/x", "secretFile": "` + secret + `"}]}`, nil},
		{"unknown field", "targets:\n  - name: ops\n    type: webhook\n    url: https://x.example\n    colour: red\n", []string{"line 5: field colour not found"}},
		{"every mistake at once", `targets:
  - name: ops
    type: email
    url: https://x.example
  - name: ops
    type: slack
  - name: am
    type: alertmanager
    url: ftp://am.example
    events: [run-failed, coffee]
  - name: hook
    type: webhook
    url: https://x.example
    secretFile: ` + filepath.Join(dir, "nosuch") + "\n",
			[]string{
				`notify.yaml:2:5: target 1 (ops): type "email": want webhook, slack or alertmanager`,
				`notify.yaml:5:5: target 2 (ops): name "ops" is used twice`,
				`notify.yaml:5:5: target 2 (ops): url or urlFile is required`,
				`notify.yaml:7:5: target 3 (am): event "coffee": want one of run-failed, change-failed,`,
				`notify.yaml:7:5: target 3 (am): url: want an http:// or https:// URL`,
				`notify.yaml:11:5: target 4 (hook): secretFile: open `,
			}},
		{"no targets", "ratePerMinute: 5\n", []string{"notify.yaml: no targets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := notify.Load(write(t, t.TempDir(), "notify.yaml", tc.config))
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				if cfg.HeldLongerThan != 4*time.Hour || len(cfg.Targets) != 1 {
					t.Fatalf("config %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}
