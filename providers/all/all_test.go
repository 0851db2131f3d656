package all_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/all"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/spf13/pflag"
)

// Each node goes to the first backend that claims it, or to the one --vms
// names; the nodes OpenStack serves are the ones it owns.
func TestSelect(t *testing.T) {
	nodes := []spec.Node{
		{Name: "kvm", Libvirt: "qemu+tls://kvm/system", Hostname: "kvm"},
		{Name: "cloud", Hostname: "cmp-01"},
		{Name: "sim"},
	}
	tests := []struct {
		name  string
		args  []string
		env   map[string]string
		want  string // backends of kvm, cloud, sim
		owned string // nodes OpenStack owns
	}{
		{"no cloud", nil, nil, "libvirt endpoint endpoint", ""},
		{"OS_CLOUD", nil, map[string]string{"OS_CLOUD": "prod"}, "libvirt openstack endpoint", "cloud"},
		{"OS_AUTH_URL", nil, map[string]string{"OS_AUTH_URL": "https://keystone.example/v3", "OS_USERNAME": "u", "OS_PASSWORD": "p",
			"OS_PROJECT_NAME": "x", "OS_DOMAIN_NAME": "d"}, "libvirt openstack endpoint", "cloud"},
		{"--os-cloud", []string{"--os-cloud", "lab"}, nil, "libvirt openstack endpoint", "cloud"},
		{"--vms endpoint with a cloud", []string{"--vms", "endpoint", "--os-cloud", "lab"}, nil, "endpoint endpoint endpoint", ""},
		{"--vms openstack", []string{"--vms", "openstack", "--os-cloud", "lab"}, nil, "openstack openstack openstack", "kvm cloud sim"},
	}
	// The clouds --os-cloud and OS_CLOUD name must be configured: opening
	// the backend checks, without calling them.
	clouds := filepath.Join(t.TempDir(), "clouds.yaml")
	cloud := "    auth: {auth_url: \"https://keystone.example/v3\", username: u, password: p, project_name: x, user_domain_name: d, project_domain_name: d}\n"
	if err := os.WriteFile(clouds, []byte("clouds:\n  lab:\n"+cloud+"  prod:\n"+cloud), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OS_CLIENT_CONFIG_FILE", clouds)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"OS_CLOUD", "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME", "OS_DOMAIN_NAME"} {
				t.Setenv(k, tt.env[k])
			}
			kinds := all.Kinds()
			fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
			vms := fs.String("vms", providers.Auto, "")
			for _, k := range kinds {
				k.Flags(fs)
			}
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			env := providers.Env{Getenv: os.Getenv}
			sel, err := providers.Select(kinds, *vms, nodes, env)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, n := range nodes {
				got = append(got, sel.ByNode[n.Name].Name())
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("backends %v, want %s", got, tt.want)
			}
			var owned []string
			for _, n := range nodes {
				if sel.Owned()[n.Name] == "openstack" {
					owned = append(owned, n.Name)
				}
			}
			if strings.Join(owned, " ") != tt.owned {
				t.Errorf("owned by openstack: %v, want %q", owned, tt.owned)
			}
		})
	}
}

func TestSelectRefusesAnUnknownBackend(t *testing.T) {
	_, err := providers.Select(all.Kinds(), "proxmox", []spec.Node{{Name: "a"}}, providers.Env{})
	if err == nil || !strings.Contains(err.Error(), `--vms "proxmox": want auto or kubernetes, libvirt, openstack, endpoint`) {
		t.Fatalf("err = %v", err)
	}
}

// A cloud that is not configured fails the selection, naming it: it is a
// mistake of the command line, not a node that cannot be observed.
func TestSelectRefusesAnUnconfiguredCloud(t *testing.T) {
	t.Setenv("OS_CLIENT_CONFIG_FILE", filepath.Join(t.TempDir(), "none.yaml"))
	kinds := all.Kinds()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	for _, k := range kinds {
		k.Flags(fs)
	}
	if err := fs.Parse([]string{"--os-cloud", "nosuchcloud"}); err != nil {
		t.Fatal(err)
	}
	_, err := providers.Select(kinds, providers.Auto, []spec.Node{{Name: "a", Hostname: "cmp-a"}}, providers.Env{Getenv: os.Getenv})
	if err == nil || !strings.Contains(err.Error(), "nosuchcloud") {
		t.Fatalf("err = %v", err)
	}
}
