package main

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"

	"github.com/fpgaops/fpgaops/reconcile/ha/etcdtest"
)

// TestEtcdFlagsRefused shows every mistake with --etcd reported at once,
// before anything is started.
func TestEtcdFlagsRefused(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no cache for the repository", []string{"run", "--git", "file:///nowhere", "--etcd", "http://127.0.0.1:1"},
			[]string{"--etcd keeps the state, not the repository cache: give --cache-dir or --state-dir"}},
		{"once", []string{"run", "--git", "file:///nowhere", "--etcd", "http://127.0.0.1:1", "--cache-dir", "c", "--once", "--etcd-lease-ttl", "10ms"},
			[]string{"--once and --etcd exclude each other", "--etcd-lease-ttl 10ms: want 1s or more"}},
		{"status from two places", []string{"status", "--state-dir", "d", "--etcd", "http://127.0.0.1:1"},
			[]string{"give one of --state-dir, --server and --etcd"}},
		{"history from two places", []string{"history", "--state-dir", "d", "--etcd", "http://127.0.0.1:1"},
			[]string{"give --state-dir or --etcd, not both"}},
		{"half a client certificate", []string{"history", "--etcd", "http://127.0.0.1:1", "--etcd-cert", "c.pem"},
			[]string{"--etcd-cert and --etcd-key go together"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := fpgaops(t, tt.args...)
			if code == 0 {
				t.Fatalf("exit 0; want a refusal")
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("stderr %q; want %q", errs, w)
				}
			}
		})
	}
}

// TestStatusOfAnEmptyPrefix names the prefix that holds no state.
func TestStatusOfAnEmptyPrefix(t *testing.T) {
	url := etcdtest.Start(t, 1).Endpoints()[0]
	_, errs, code := fpgaops(t, "status", "--etcd", url, "--etcd-prefix", "/fpgaops/none")
	if code == 0 || !strings.Contains(errs, "etcd /fpgaops/none: no fpgaops state here") {
		t.Fatalf("status of an empty prefix: exit %d, %q", code, errs)
	}
	out, errs, code := fpgaops(t, "history", "--etcd", url, "--etcd-prefix", "/fpgaops/none", "-o", "json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("history of an empty prefix: exit %d, %q %q", code, out, errs)
	}
}

// TestAgentFencingFlags: --require-fencing-token refuses a request without
// a token, and the token is kept in --state-dir.
func TestAgentFencingFlags(t *testing.T) {
	dir := t.TempDir()
	f := agentFlags{listen: "127.0.0.1:0", insecure: true, stateDir: dir, requireToken: true,
		maxImage: 1 << 20, maxUploads: 1, maxImagesInMemory: 1}
	api, _, _, err := f.check()
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/v1/inventory", nil)
	if _, err := api.Fence.Admit(req, ""); err == nil || !strings.Contains(err.Error(), "requires a fencing token") {
		t.Fatalf("a request without a token: %v; want it refused", err)
	}
	req.Header.Set(agentapi.FencingHeader, "9")
	release, err := api.Fence.Admit(req, "")
	if err != nil {
		t.Fatal(err)
	}
	release()
	if _, err := os.Stat(filepath.Join(dir, agentapi.FenceFile)); err != nil {
		t.Fatalf("the token is not kept in --state-dir: %v", err)
	}
}
