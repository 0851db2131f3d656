package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/ha/etcdtest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
)

// The high-availability tests run real processes: the fpgaops binary,
// built once, as `sim serve` and as several `run --etcd` controllers,
// against real etcd members. Waits are bounded far above what they take,
// so that a loaded machine slows them down without failing them; the
// figures (how long a takeover takes) are measured by BenchmarkHATakeover.

// haBound bounds every wait of these tests.
const haBound = 3 * time.Minute

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// fpgaopsBinary builds cmd/fpgaops once for the test binary's run.
func fpgaopsBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fpgaops-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "fpgaops")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/fpgaops/fpgaops/cmd/fpgaops").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a process the test started; its output goes to a file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	log     string
	done    chan struct{}
	stopped bool
}

func (p *proc) output() string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// haWorld is a fleet served by `sim serve`, a git repository of its
// desired state, etcd, and the controllers.
type haWorld struct {
	t     testing.TB
	dir   string
	bin   string
	etcd  *etcdtest.Cluster
	repo  string // the git work tree; the fleet is in its fleet/ folder
	sim   string // the sim's URL
	ttl   string
	ctls  []*ctl
	procs []*proc
}

// ctl is one controller process.
type ctl struct {
	*proc
	url string
}

func newHAWorld(t testing.TB, members, nodes int, ttl string, simArgs ...string) *haWorld {
	t.Helper()
	w := &haWorld{t: t, dir: t.TempDir(), bin: fpgaopsBinary(t), ttl: ttl}
	w.etcd = etcdtest.Start(t, members)
	w.repo = filepath.Join(w.dir, "repo")
	fleet := filepath.Join(w.repo, "fleet")
	w.gen(fleet, nodes, 1, "")
	addr := etcdtest.FreeAddr(t)
	w.start("sim", append([]string{"sim", "serve", "--repo", fleet, "--listen", addr}, simArgs...)...)
	w.sim = "http://" + addr
	w.waitHTTP(w.sim + "/sim/stats")
	w.gen(fleet, nodes, 1, w.sim+"/nodes/{node}")
	w.git("init", "-q", "-b", "main")
	w.commit("fleet")
	t.Cleanup(w.stopAll)
	return w
}

func (w *haWorld) gen(dir string, nodes int, seed int64, endpoint string) {
	w.t.Helper()
	if err := fleetgen.Generate(fleetgen.Options{Dir: dir, Nodes: nodes, FPGAsPerNode: 2, Seed: seed, Endpoint: endpoint}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *haWorld) git(args ...string) {
	w.t.Helper()
	runGit(w.t, w.dir, append([]string{"-C", w.repo}, args...)...)
}

// runGit runs git as the fleet's author, with home as its HOME.
func runGit(t testing.TB, home string, args ...string) {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Fleet", "GIT_AUTHOR_EMAIL=fleet@example.com",
		"GIT_COMMITTER_NAME=Fleet", "GIT_COMMITTER_EMAIL=fleet@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+home)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
}

func (w *haWorld) commit(msg string) {
	w.t.Helper()
	w.git("add", "-A")
	w.git("commit", "-q", "-m", msg)
}

func (w *haWorld) start(name string, args ...string) *proc {
	w.t.Helper()
	p := &proc{name: name, log: filepath.Join(w.dir, name+".log"), done: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		w.t.Fatal(err)
	}
	p.cmd = exec.Command(w.bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), "HOME="+w.dir)
	if err := p.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() {
		p.cmd.Wait()
		f.Close()
		close(p.done)
	}()
	w.procs = append(w.procs, p)
	return p
}

// controller starts one controller of the fleet.
func (w *haWorld) controller(extra ...string) *ctl {
	w.t.Helper()
	return w.controllerVia(strings.Join(w.etcd.Endpoints(), ","), extra...)
}

// controllerVia starts a controller that reaches etcd at endpoints.
func (w *haWorld) controllerVia(endpoints string, extra ...string) *ctl {
	w.t.Helper()
	addr := etcdtest.FreeAddr(w.t)
	name := fmt.Sprintf("ctl%d", len(w.ctls)+1)
	args := []string{"run", "--git", "file://" + w.repo, "--ref", "main", "--path", "fleet",
		"--etcd", endpoints, "--etcd-prefix", "/fpgaops/e2e", "--etcd-lease-ttl", w.ttl,
		"--state-dir", filepath.Join(w.dir, name), "--listen", addr, "--interval", "1h",
		"--insecure", "--vms", "endpoint", "--retry-interval", "2s"}
	c := &ctl{proc: w.start(name, append(args, extra...)...), url: "http://" + addr}
	w.ctls = append(w.ctls, c)
	w.waitHTTP(c.url + "/healthz")
	return c
}

func (w *haWorld) stopAll() {
	for _, p := range slices.Backward(w.procs) {
		select {
		case <-p.done:
			continue
		default:
		}
		p.cmd.Process.Signal(syscall.SIGCONT)
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	if w.t.Failed() {
		for _, p := range w.procs {
			out := p.output()
			if len(out) > 6000 {
				out = out[len(out)-6000:]
			}
			w.t.Logf("--- %s (end of its log):\n%s", p.name, out)
		}
	}
}

// eventually polls ok until it holds, within haBound.
func (w *haWorld) eventually(what string, ok func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(haBound)
	for !ok() {
		if time.Now().After(deadline) {
			w.t.Fatalf("waited %v for %s", haBound, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *haWorld) waitHTTP(url string) {
	w.t.Helper()
	w.eventually(url+" to answer", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func getJSON(url string, v any) error {
	c := &http.Client{Timeout: 20 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (w *haWorld) stats() sim.Stats {
	w.t.Helper()
	var st sim.Stats
	if err := getJSON(w.sim+"/sim/stats", &st); err != nil {
		w.t.Fatal(err)
	}
	return st
}

// leading reports whether the controller says, in its metrics, that it
// leads: no read of the store, which may be down.
func (c *ctl) leading() bool {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(c.url + "/metrics")
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return bytes.Contains(b, []byte("\nfpgaops_leader 1\n"))
}

func (c *ctl) status() (controller.Status, error) {
	var st controller.Status
	err := getJSON(c.url+"/status", &st)
	return st, err
}

// leader waits for exactly one of the live controllers to lead, and
// returns it.
func (w *haWorld) leader(live ...*ctl) *ctl {
	w.t.Helper()
	var l *ctl
	w.eventually("one leader", func() bool {
		l = nil
		n := 0
		for _, c := range live {
			if c.leading() {
				l, n = c, n+1
			}
		}
		if n > 1 {
			w.t.Fatalf("%d controllers lead at once", n)
		}
		return n == 1
	})
	return l
}

// converged waits for the leader's last run to have applied with nothing
// left, and checks the fleet against the repository with a plan.
func (w *haWorld) converged(l *ctl) controller.Status {
	w.t.Helper()
	var st controller.Status
	w.eventually("the fleet to converge", func() bool {
		var err error
		st, err = l.status()
		return err == nil && st.LastRun != nil && st.LastRun.Outcome == state.OutcomeApplied &&
			st.LastRun.Violations == 0 && st.LastRun.Results.Applied+st.LastRun.Results.Skipped >= 0 &&
			st.LastRun.Plan.Total() >= 0 && !reconciling(st)
	})
	out, err := exec.Command(w.bin, "plan", "--repo", filepath.Join(w.repo, "fleet"), "--insecure", "--vms", "endpoint",
		"--state-dir", filepath.Join(w.dir, "plan-state"), "--detailed-exitcode").CombinedOutput()
	if err != nil {
		w.t.Fatalf("the fleet did not converge: plan: %v\n%s", err, out)
	}
	return st
}

func reconciling(st controller.Status) bool {
	for _, c := range st.Conditions {
		if c.Type == controller.Reconciling {
			return c.Status == "True"
		}
	}
	return false
}

// midApply waits until the sim has programmed at least from cards, so
// that the leader is in the middle of its apply.
func (w *haWorld) midApply(from int64) {
	w.t.Helper()
	w.eventually("the apply to be under way", func() bool { return w.stats().Programs >= from })
}

// cli runs one fpgaops command against the shared state.
func (w *haWorld) cli(args ...string) string {
	w.t.Helper()
	args = append(args, "--etcd", strings.Join(w.etcd.Endpoints(), ","), "--etcd-prefix", "/fpgaops/e2e")
	out, err := exec.Command(w.bin, args...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("fpgaops %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// simArgs make every step take modelled time, so that a leader always
// has requests in flight while it applies.
// Programs spread over seconds, so that one can be seen done while others
// are in flight.
var simArgs = []string{"--program-time", "500ms", "--program-jitter", "4s", "--vf-time", "200ms", "--attach-time", "200ms"}

// TestHAKilledLeader: three controllers on one fleet, one leads and alone
// applies; kill -9 of it in the middle of an apply: another leads, records
// the run the dead one left as interrupted, and converges the fleet with
// no violation and every card programmed once.
func TestHAKilledLeader(t *testing.T) {
	w := newHAWorld(t, 1, 8, "3s", simArgs...)
	ctls := []*ctl{w.controller(), w.controller(), w.controller()}
	w.midApply(1)
	first := w.leader(ctls...)
	var rest []*ctl
	for _, c := range ctls {
		if c != first {
			rest = append(rest, c)
		}
	}
	for _, c := range rest {
		st, err := c.status()
		if err != nil {
			t.Fatal(err)
		}
		if st.Leader == nil || st.Leader.Leading || st.Leader.Leader == "" || st.Leader.Leader == st.Leader.Self {
			t.Fatalf("%s's status says %+v about the leader", c.name, st.Leader)
		}
	}
	before := w.stats()
	if before.Programs >= 16 {
		t.Fatalf("the apply finished before the kill (%d programs): nothing was interrupted", before.Programs)
	}
	killed := time.Now()
	first.cmd.Process.Kill()
	<-first.done
	next := w.leader(rest...)
	t.Logf("another controller led %v after the kill -9 (lease TTL %s)", time.Since(killed).Round(time.Millisecond), w.ttl)

	w.converged(next)
	st := w.stats()
	if st.Violations != 0 || st.Programs != 16 {
		t.Fatalf("sim stats %+v; want no violation and each of the 16 cards programmed once", st)
	}
	hist := w.cli("history", "-o", "json")
	var runs []state.Run
	if err := json.Unmarshal([]byte(hist), &runs); err != nil {
		t.Fatalf("history -o json: %v\n%s", err, hist)
	}
	if len(runs) < 2 || runs[len(runs)-1].Outcome != state.OutcomeInterrupted || runs[len(runs)-2].Trigger != controller.TriggerElection {
		t.Fatalf("history (newest first) %s; want the killed leader's run interrupted, then an election run", hist)
	}
	status := w.cli("status")
	if !regexp.MustCompile(`(?m)^Leader:\s+\S+ pid \d+ .* since \S+ \(term \d+\)$`).MatchString(status) || !strings.Contains(status, "ReconciliationSucceeded") {
		t.Fatalf("status --etcd:\n%s", status)
	}
	if !strings.Contains(status, fmt.Sprintf("pid %d ", next.cmd.Process.Pid)) {
		t.Fatalf("status --etcd names another leader than pid %d:\n%s", next.cmd.Process.Pid, status)
	}
}

// TestHAPausedLeaderIsFenced: SIGSTOP of the leader in the middle of an
// apply, past its lease; another leads and converges the fleet; SIGCONT:
// the old leader's requests in flight are refused by the agents (fenced),
// it writes nothing, and follows. No violation, no card programmed twice.
func TestHAPausedLeaderIsFenced(t *testing.T) {
	w := newHAWorld(t, 1, 8, "3s", simArgs...)
	ctls := []*ctl{w.controller(), w.controller()}
	w.midApply(1)
	old := w.leader(ctls...)
	next := ctls[0]
	if next == old {
		next = ctls[1]
	}
	st, err := old.status()
	if err != nil || st.Leader == nil || st.Leader.Term == 0 {
		t.Fatalf("the leader's status: %+v, %v; want its term", st.Leader, err)
	}
	oldTerm := st.Leader.Term
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	w.leader(next)
	w.converged(next)

	// A request of the old term that reaches an agent now, as one the old
	// leader sent just before it stopped would, is refused.
	before := w.stats()
	req, _ := http.NewRequest("PUT", w.sim+"/nodes/"+fleetgen.NodeName(1)+"/v1/cards/0000:3b:00.0/vfs", strings.NewReader(`{"count": 0}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(agentapi.FencingHeader, fmt.Sprint(oldTerm))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !bytes.Contains(body, []byte(`"fenced"`)) {
		t.Fatalf("a request of the old term: %s %s; want 409 fenced", resp.Status, body)
	}
	if changes(w.stats()) != changes(before) {
		t.Fatal("the old term's request changed the fleet")
	}

	if err := old.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// The requests it had pending are refused: by the agents, or, once it
	// knows its term ended, before they leave.
	w.eventually("the old leader's pending requests to be refused", func() bool {
		out := old.output()
		return strings.Contains(out, "a newer controller leads, and this one must stop") || strings.Contains(out, "leader term has ended: request not sent")
	})
	w.eventually("the old leader to follow", func() bool { return !old.leading() })
	w.converged(next)
	if st := w.stats(); st.Violations != 0 || st.Programs != 16 {
		t.Fatalf("sim stats %+v; want no violation and each of the 16 cards programmed once", st)
	}
	if !strings.Contains(old.output(), "lost the lead") {
		t.Fatal("the old leader did not say it lost the lead")
	}
}

// TestHAPartitionedLeader: three etcd members, each controller reaching
// one through a proxy; the leader's proxy is cut in the middle of an
// apply, as a partition would: it loses the lead when its lease cannot be
// renewed, another leads and converges the fleet, and nothing the cut-off
// leader still had in flight does harm.
func TestHAPartitionedLeader(t *testing.T) {
	w := newHAWorld(t, 3, 8, "3s", simArgs...)
	var ctls []*ctl
	proxies := map[*ctl]*etcdtest.Proxy{}
	for _, m := range w.etcd.Members {
		p := etcdtest.NewProxy(t, m.ClientURL)
		c := w.controllerVia(p.URL())
		ctls, proxies[c] = append(ctls, c), p
	}
	w.midApply(1)
	old := w.leader(ctls...)
	if st := w.stats(); st.Programs >= 16 {
		t.Fatalf("the apply finished before the partition (%d programs)", st.Programs)
	}
	proxies[old].Cut()
	var rest []*ctl
	for _, c := range ctls {
		if c != old {
			rest = append(rest, c)
		}
	}
	next := w.leader(rest...)
	w.eventually("the cut-off leader to know it lost the lead", func() bool { return strings.Contains(old.output(), "lost the lead") })
	w.converged(next)
	if st := w.stats(); st.Violations != 0 || st.Programs != 16 {
		t.Fatalf("sim stats %+v; want no violation and each of the 16 cards programmed once", st)
	}
	proxies[old].Heal()
	w.eventually("the old leader to follow", func() bool {
		st, err := old.status()
		return err == nil && st.Leader != nil && !st.Leader.Leading && st.Leader.Leader != "" && st.Leader.Leader != st.Leader.Self
	})
}

// TestHAEtcdRestart: etcd killed in the middle of a run: the leader stops
// applying, and once etcd is back it leads again, records the run it lost
// as interrupted, converges, and the history from before is all there.
func TestHAEtcdRestart(t *testing.T) {
	w := newHAWorld(t, 1, 8, "3s", simArgs...)
	tokenFile := filepath.Join(w.dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := w.controller("--admin-token-file", tokenFile)
	w.converged(w.leader(c))

	// A new revision rebinds the cards; its run is cut short by etcd.
	w.gen(filepath.Join(w.repo, "fleet"), 8, 2, w.sim+"/nodes/{node}")
	w.commit("rebind")
	base := w.stats()
	req, _ := http.NewRequest("POST", c.url+"/reconcile", nil)
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	w.midApply(base.Programs + 1)
	member := w.etcd.Members[0]
	member.Kill()
	w.eventually("the leader to give the lead up", func() bool { return !c.leading() })
	// From here on nothing may change the fleet: bounded by the in-flight
	// steps, which end within their modelled time.
	time.Sleep(3 * time.Second)
	frozen := w.stats()
	time.Sleep(6 * time.Second)
	if now := w.stats(); changes(now) != changes(frozen) {
		t.Fatalf("the fleet changed without etcd: %+v, then %+v", frozen, now)
	}
	w.etcd.Restart(member)
	w.converged(w.leader(c))
	if st := w.stats(); st.Violations != 0 {
		t.Fatalf("sim stats %+v; want no violation", st)
	}
	var runs []state.Run
	if err := json.Unmarshal([]byte(w.cli("history", "-o", "json")), &runs); err != nil {
		t.Fatal(err)
	}
	var outcomes []string
	for _, r := range slices.Backward(runs) {
		outcomes = append(outcomes, r.Trigger+":"+string(r.Outcome))
	}
	if len(runs) < 3 || outcomes[0] != "election:applied" || !slices.Contains(outcomes, "manual:interrupted") || outcomes[len(outcomes)-1] != "election:applied" {
		t.Fatalf("history, oldest first: %v; want the first run, the run etcd cut short as interrupted, and an election run", outcomes)
	}
}

func changes(s sim.Stats) int64 { return s.Programs + s.SetVFs + s.Attaches + s.Detaches }

// BenchmarkHATakeover measures how long the controllers of a fleet are
// without a leader after a kill -9 of the leader, with the default lease
// TTL: from the kill until another controller says it leads. Each
// iteration kills the leader and starts a controller in its place; the
// median and the longest are reported.
//
//	go test -run '^$' -bench HATakeover -benchtime 5x ./e2e
func BenchmarkHATakeover(b *testing.B) {
	w := newHAWorld(b, 1, 4, "10s")
	live := []*ctl{w.controller(), w.controller(), w.controller()}
	w.converged(w.leader(live...))
	var took []time.Duration
	for b.Loop() {
		l := w.leader(live...)
		killed := time.Now()
		l.cmd.Process.Kill()
		<-l.done
		live = slices.DeleteFunc(live, func(c *ctl) bool { return c == l })
		w.leader(live...)
		took = append(took, time.Since(killed))
		live = append(live, w.controller())
	}
	slices.Sort(took)
	b.ReportMetric(took[len(took)/2].Seconds(), "median-takeover-s")
	b.ReportMetric(took[len(took)-1].Seconds(), "max-takeover-s")
}
