package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/providers/sim"
	"github.com/fpgaops/fpgaops/reconcile/controller"
	"github.com/fpgaops/fpgaops/reconcile/engine"
	"github.com/fpgaops/fpgaops/reconcile/execute"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/fleetgen"
	"github.com/fpgaops/fpgaops/spec/source"
)

// BenchmarkCommitToFirstProgram10k is the controller on a simulated fleet
// of 10,000 nodes of 4 cards, converged, with its repository behind a
// git remote: each op pushes a commit that moves one binding (a VM's VF
// to its board's other image), posts the signed push webhook, and times
// until the sim programs that card. The controller scopes the run to the
// commit's node (Step.ScopeFor) and loads the repository through its
// FileCache; its scheduled runs still observe the whole fleet. median-s
// is the median of the ops, full-s a run of the same fleet observed
// whole (the start's second run: no change) for the ratio.
func BenchmarkCommitToFirstProgram10k(b *testing.B) {
	benchCommitToFirstProgram(b, 10_000)
}

func benchCommitToFirstProgram(b *testing.B, nodes int) {
	dir := b.TempDir()
	work, bare := filepath.Join(dir, "work"), filepath.Join(dir, "fleet.git")
	git := func(args ...string) {
		b.Helper()
		runGit(b, dir, args...)
	}

	// The sim serves the fleet the repository declares; endpoints name
	// its address, so the sim starts first, on the generated fleet.
	ln := httptest.NewUnstartedServer(nil)
	endpoint := "http://" + ln.Listener.Addr().String() + "/nodes/{node}"
	if err := fleetgen.Generate(fleetgen.Options{Dir: filepath.Join(work, "fleet"), Nodes: nodes, FPGAsPerNode: 4, Endpoint: endpoint}); err != nil {
		b.Fatal(err)
	}
	fleet, err := spec.Load(filepath.Join(work, "fleet"))
	if err != nil {
		b.Fatal(err)
	}
	s, err := sim.New(fleet, sim.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ln.Config.Handler = s.Handler()
	ln.Start()
	b.Cleanup(func() { ln.Close(); s.Close() })

	git("init", "-q", "-b", "main", work)
	git("-C", work, "add", "-A")
	git("-C", work, "commit", "-q", "-m", "the fleet")
	git("clone", "-q", "--bare", work, bare)
	git("-C", work, "remote", "add", "origin", bare)

	src, err := source.New(source.Config{URL: "file://" + bare, Ref: source.Ref{Kind: source.RefBranch, Name: "main"}, Path: "fleet", CacheDir: filepath.Join(dir, "cache")})
	if err != nil {
		b.Fatal(err)
	}
	store, err := state.Open(filepath.Join(dir, "state"), state.Options{Holder: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	e := &engine.Engine{
		Kinds: []providers.Kind{sim.Kind{}}, VMs: sim.Name, Store: store,
		Agents:      agent.Transport{Insecure: true, Concurrency: 64},
		Concurrency: 64, NodeTimeout: 30 * time.Second,
		Retry: execute.Retry{Attempts: 3, Base: time.Millisecond, Max: 20 * time.Millisecond},
		Log:   slog.New(slog.DiscardHandler),
	}
	cache := spec.NewFileCache()
	const secret = "bench-secret"
	c, err := controller.New(controller.Options{
		Source: src, Store: store, Reconciler: &controller.Step{Engine: e, ScopeFor: time.Hour},
		Load:     func(dir string) (*spec.Fleet, error) { return spec.LoadWith(dir, spec.Options{Cache: cache}) },
		Interval: time.Hour, WebhookSecret: []byte(secret),
	})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	b.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })

	// The start's run converges the fleet (40,000 programs); a second
	// run, triggered by hand, finds nothing to do and is the full run
	// this benchmark compares with.
	waitRuns := func(n int) state.Run {
		b.Helper()
		deadline := time.Now().Add(10 * time.Minute)
		for time.Now().Before(deadline) {
			if runs, err := store.Runs(1); err == nil && len(runs) == 1 && runs[0].ID >= uint64(n) {
				return runs[0]
			}
			time.Sleep(20 * time.Millisecond)
		}
		b.Fatalf("run %d did not end", n)
		return state.Run{}
	}
	if r := waitRuns(1); r.Outcome != state.OutcomeApplied {
		b.Fatalf("the start's run: %s %s", r.Outcome, r.Error)
	}
	c.Trigger("manual")
	full := waitRuns(2)
	if full.Outcome != state.OutcomeApplied || full.Results.Applied != 0 || full.Scope != 0 {
		b.Fatalf("the second run: %s, %d applied, scope %d; want the whole fleet converged", full.Outcome, full.Results.Applied, full.Scope)
	}
	runs := 2

	images, err := fleetgen.Images()
	if err != nil {
		b.Fatal(err)
	}
	node := fleetgen.NodeName(1)
	file := filepath.Join(work, "fleet", "nodes", node+".yaml")
	var took []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		data, err := os.ReadFile(file)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(file, moveBinding(b, data, node+"-pac0", images), 0o644); err != nil {
			b.Fatal(err)
		}
		git("-C", work, "commit", "-q", "-am", fmt.Sprintf("move %s-pac0 (%d)", node, i))
		git("-C", work, "push", "-q", "origin", "main")
		programs := s.Stats().Programs
		body := []byte(`{"ref":"refs/heads/main"}`)
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/github", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("bench-%d", i))
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		b.StartTimer()
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusAccepted {
			b.Fatalf("webhook: %v %v", resp, err)
		}
		resp.Body.Close()
		for s.Stats().Programs == programs {
			time.Sleep(2 * time.Millisecond)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		runs++
		r := waitRuns(runs)
		if r.Outcome != state.OutcomeApplied || r.Scope != 1 || r.Results.Failed != 0 {
			b.Fatalf("run %d: %s, scope %d, %d failed: %s", r.ID, r.Outcome, r.Scope, r.Results.Failed, r.Error)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if st := s.Stats(); st.Violations != 0 {
		b.Fatalf("%d violations", st.Violations)
	}
	slices.Sort(took)
	median := took[len(took)/2]
	b.ReportMetric(median.Seconds(), "median-s")
	b.ReportMetric(full.DurationSeconds, "full-s")
	b.ReportMetric(median.Seconds()/full.DurationSeconds, "x-full")
}

// moveBinding rebinds the named binding of a generated node file to the
// other image of its board.
func moveBinding(b *testing.B, data []byte, binding string, images []fleetgen.Image) []byte {
	b.Helper()
	text := string(data)
	at := strings.Index(text, "name: "+binding+"\n")
	if at < 0 {
		b.Fatalf("no binding %s", binding)
	}
	line := strings.Index(text[at:], "bitstream: ")
	if line < 0 {
		b.Fatalf("binding %s names no bitstream", binding)
	}
	start := at + line + len("bitstream: ")
	end := start + strings.IndexByte(text[start:], '\n')
	current := text[start:end]
	for _, img := range images {
		if img.Name == current {
			for _, other := range images {
				if other.Board == img.Board && other.Name != current {
					return []byte(text[:start] + other.Name + text[end:])
				}
			}
		}
	}
	b.Fatalf("no other image than %s", current)
	return nil
}

// BenchmarkCommitToFirstProgram1k is the same on 1,000 nodes: with the
// 10,000-node figure, how the latency grows with the fleet.
func BenchmarkCommitToFirstProgram1k(b *testing.B) {
	benchCommitToFirstProgram(b, 1_000)
}
