package kubernetes

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// The kind claims the nodes that name their Kubernetes node, and finds
// the cluster in --kubeconfig, then KUBECONFIG; without either (and out
// of a cluster) opening it is an error that says what to set.
func TestKind(t *testing.T) {
	dir := t.TempDir()
	conf := func(name, server string) string {
		p := filepath.Join(dir, name)
		kc := "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: " + server + "}}]\n" +
			"users: [{name: u, user: {token: secret-token}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n"
		if err := os.WriteFile(p, []byte(kc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flagFile, envFile := conf("flag.kubeconfig", "https://flag.example:6443"), conf("env.kubeconfig", "https://env.example:6443")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		wantServer string
		wantErr    string
	}{
		{"flag", []string{"--kubeconfig", flagFile}, map[string]string{"KUBECONFIG": envFile}, "https://flag.example:6443", ""},
		{"KUBECONFIG", nil, map[string]string{"KUBECONFIG": envFile}, "https://env.example:6443", ""},
		{"nothing", nil, nil, "", "neither --kubeconfig, KUBECONFIG nor an in-cluster service account"},
		{"missing file", []string{"--kubeconfig", filepath.Join(dir, "none")}, nil, "", "kubernetes: kubeconfig:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := &Kind{}
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			k.Flags(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			env := providers.Env{Getenv: func(v string) string { return tt.env[v] }}
			if !k.Claims(&spec.Node{Name: "a", Kubernetes: "a"}, env) || k.Claims(&spec.Node{Name: "b", Hostname: "b"}, env) {
				t.Error("claims a node without kubernetes, or not one with it")
			}
			b, err := k.Open(env)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := b.(*Backend).opts.Config.Host; got != tt.wantServer {
				t.Errorf("server %s, want %s", got, tt.wantServer)
			}
		})
	}
}
