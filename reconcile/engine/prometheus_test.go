package engine_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/engine"
)

// startPrometheus runs a real Prometheus (Debian's prometheus package)
// scraping target every second, and returns its URL once it has scraped.
func startPrometheus(t *testing.T, target string) string {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus is not installed (scripts/deps.sh installs it): %v", err)
	}
	dir := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: workload\n    static_configs:\n      - targets: [%q]\n", target)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	url := "http://" + addr
	p := &engine.Prometheus{URL: url}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.Holds(context.Background(), `up{job="workload"} == 1`) == nil {
			return url
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("Prometheus did not scrape the workload within 60 s")
	return ""
}

// A rollout's Prometheus check against a real Prometheus: a query that
// returns a series holds, one that returns nothing does not, and the
// error says so; a bad query names Prometheus's own error.
func TestPrometheusCheck(t *testing.T) {
	var errors atomic.Int64
	workload := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE workload_errors gauge\nworkload_errors %d\n", errors.Load())
	}))
	defer workload.Close()
	url := startPrometheus(t, strings.TrimPrefix(workload.URL, "http://"))
	p := &engine.Prometheus{URL: url}
	ctx := context.Background()
	if err := p.Holds(ctx, "workload_errors == 0"); err != nil {
		t.Fatalf("a healthy workload: %v", err)
	}
	if err := p.Holds(ctx, "scalar(workload_errors) + 1"); err != nil {
		t.Fatalf("a scalar other than 0: %v", err)
	}
	errors.Store(3)
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = p.Holds(ctx, "workload_errors == 0"); err != nil {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err == nil || !strings.Contains(err.Error(), `query "workload_errors == 0" returned nothing: the condition does not hold`) {
		t.Fatalf("a failing workload: %v", err)
	}
	if err := p.Holds(ctx, "workload_errors =="); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("a bad query: %v", err)
	}
	if err := (*engine.Prometheus)(nil).Holds(ctx, "up"); err == nil || !strings.Contains(err.Error(), "--prometheus-url") {
		t.Fatalf("no server: %v", err)
	}
}
