package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
	"github.com/fpgaops/fpgaops/providers/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// fails runs fpgaops and checks that it exits 1 saying every one of want
// on stderr.
func fails(t *testing.T, f *simFleet, args []string, want ...string) {
	t.Helper()
	code, _, errOut := f.run("", args...)
	if code != 1 {
		t.Errorf("fpgaops %s: exit %d, want 1", strings.Join(args, " "), code)
	}
	for _, w := range want {
		if !strings.Contains(errOut, w) {
			t.Errorf("fpgaops %s: stderr %q lacks %q", strings.Join(args, " "), errOut, w)
		}
	}
}

// cli runs fpgaops and fails the test unless it exits 0.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	f := &simFleet{t: t}
	code, out, errOut := f.run("", args...)
	if code != 0 {
		t.Fatalf("fpgaops %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// An agent serving with the certificates pki makes, and accepting the
// controller by name, answers the controller's client (providers/agent)
// and refuses a certificate another CA signed, one the CA signed for
// another name, and a server certificate used as a client.
func TestPKIMutualTLS(t *testing.T) {
	dir, other := filepath.Join(t.TempDir(), "pki"), filepath.Join(t.TempDir(), "other")
	out := cli(t, "pki", "init", "--dir", dir)
	if !strings.Contains(out, "Wrote the CA: "+filepath.Join(dir, "ca.pem")) {
		t.Errorf("pki init said %q", out)
	}
	out = cli(t, "pki", "issue", "--dir", dir, "--agent", "compute-01", "--dns", "localhost", "--ip", "127.0.0.1")
	if !strings.Contains(out, "On the node: fpgaops agent --tls-cert "+filepath.Join(dir, "agent-compute-01.pem")) {
		t.Errorf("pki issue --agent said %q", out)
	}
	cli(t, "pki", "issue", "--dir", dir, "--controller", "controller.dc1.example")
	cli(t, "pki", "issue", "--dir", dir, "--controller", "intruder.dc1.example")
	// The controller's name on a server certificate: refused for its usage.
	cli(t, "pki", "issue", "--dir", dir, "--agent", "server-named-controller", "--dns", "controller.dc1.example")
	cli(t, "pki", "init", "--dir", other)
	cli(t, "pki", "issue", "--dir", other, "--controller", "controller.dc1.example")
	for _, key := range []string{"ca-key.pem", "agent-compute-01-key.pem", "controller-controller.dc1.example-key.pem"} {
		if st, err := os.Stat(filepath.Join(dir, key)); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, want mode 0600", key, err)
		}
	}

	conf, err := agentapi.ServerTLS(filepath.Join(dir, "agent-compute-01.pem"), filepath.Join(dir, "agent-compute-01-key.pem"),
		filepath.Join(dir, "ca.pem"), "controller.dc1.example")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(agentapi.NewHandler(agenttest.NewMemHost(), agentapi.Server{}))
	srv.TLS = conf
	srv.StartTLS()
	t.Cleanup(srv.Close)
	node := &spec.Node{Name: "compute-01", Endpoint: srv.URL}

	tests := []struct {
		name           string
		pkiDir, client string
		ca             string
		wantErr        string
	}{
		{"the controller", dir, "controller-controller.dc1.example", dir, ""},
		{"another CA's controller", other, "controller-controller.dc1.example", dir, "remote error: tls: unknown certificate authority"},
		{"another name", dir, "controller-intruder.dc1.example", dir, "remote error: tls: bad certificate"},
		{"a server certificate with the controller's name", dir, "agent-server-named-controller", dir, "remote error: tls: bad certificate"},
		{"an agent another CA vouches for", dir, "controller-controller.dc1.example", other, "certificate signed by unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := agent.Transport{TLS: agent.TLSFiles{
				Cert: filepath.Join(tt.pkiDir, tt.client+".pem"), Key: filepath.Join(tt.pkiDir, tt.client+"-key.pem"), CA: filepath.Join(tt.ca, "ca.pem"),
			}}
			hc, err := tr.HTTPClient()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			devs, err := agent.NewClient(hc).ObserveCards(ctx, node)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr == "" && len(devs) != 1:
				t.Fatalf("inventory: %+v", devs)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestPKIMistakes(t *testing.T) {
	dir := t.TempDir()
	f := &simFleet{t: t}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"init without a dir", []string{"pki", "init"}, []string{"--dir is required"}},
		{"issue neither", []string{"pki", "issue"}, []string{"--dir is required", "give --agent NAME or --controller NAME"}},
		{"issue both", []string{"pki", "issue", "--dir", dir, "--agent", "a", "--controller", "c"}, []string{"give --agent NAME or --controller NAME"}},
		{"agent without names", []string{"pki", "issue", "--dir", dir, "--agent", "compute-01"}, []string{"agent compute-01: give --dns or --ip"}},
		{"no CA", []string{"pki", "issue", "--dir", dir, "--controller", "ctl.example"}, []string{"fpgaops pki init --dir " + dir + " makes one"}},
		{"bad IP", []string{"pki", "issue", "--dir", dir, "--agent", "a", "--ip", "300.1.1.1"}, []string{"300.1.1.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { fails(t, f, tt.args, tt.want...) })
	}
	cli(t, "pki", "init", "--dir", dir)
	if code, _, errOut := f.run("", "pki", "init", "--dir", dir); code != 1 || !strings.Contains(errOut, "ca.pem exists: pass --force to replace it") {
		t.Errorf("init over a CA: exit %d, %q", code, errOut)
	}
}
