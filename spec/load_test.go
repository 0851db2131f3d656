package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

const exampleDir = "../examples/fleet"

// TestLoadExample loads examples/fleet and compares the fleet with
// testdata/example.golden.json.
func TestLoadExample(t *testing.T) {
	f, err := Load(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Root != exampleDir {
		t.Errorf("Root %q", f.Root)
	}
	got, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "example.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("fleet differs from %s (run with -update to see)\n%s", golden, got)
	}
}

// TestLoadExampleModel spells out what the loader does beyond the schema:
// defaults, normalised IDs and addresses, IDs read from GBS metadata,
// positions, order.
func TestLoadExampleModel(t *testing.T) {
	f, err := Load(exampleDir)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"nodes sorted", f.Nodes[0].Name + "," + f.Nodes[2].Name, "compute-01,compute-03"},
		{"PCI normalised", f.Nodes[0].FPGAs[1].PCI, "0000:af:00.0"},
		{"card interface normalised", f.Nodes[0].FPGAs[0].InterfaceID, "9d7324a15c0e4f62b6e83a41f07c2d95"},
		{"card without interface", f.Nodes[2].FPGAs[0].InterfaceID, ""},
		{"vfs default", f.Nodes[1].FPGAs[0].VFs, 0},
		{"card position", f.Nodes[0].FPGAs[1].Pos, Pos{File: "nodes/compute-01.yaml", Line: 17, Col: 5}},
		{"node position", f.Nodes[1].Pos, Pos{File: "nodes/compute-02.yaml", Line: 2, Col: 1}},
		{"bitstreams sorted", f.Bitstreams[0].Name, "dma-afu"},
		{"AFU ID from GBS", f.Bitstreams[0].AFUID, "a7f3c2e15d8b4f6091e2b7c4d30a8f15"},
		{"interface from GBS", f.Bitstreams[0].InterfaceID, "3e1c7a90d45b4f28be6a0c5d19f27e84"},
		{"size from GBS", f.Bitstreams[0].Size, int64(2393)},
		{"bindings sorted", f.Bindings[0].Name, "compute-01-pac1-warm"},
		{"preprogrammed", f.Bindings[0].VM, ""},
		{"pf binding", f.Bindings[3].Name + " " + f.Bindings[3].Function.String(), "genomics-01-sw pf"},
		{"protected", f.Bindings[4].Protected, true},
		{"binding position", f.Bindings[4].Pos, Pos{File: "bindings/vran.yaml", Line: 3, Col: 1}},
		{"policy", f.Policy.Name, "dc1"},
		{"window duration", f.Policy.Windows[0].Duration.String(), "4h0m0s"},
		{"window position", f.Policy.Windows[1].Pos, Pos{File: "policy.yaml", Line: 13, Col: 5}},
		{"budget", f.Policy.Budget, Budget{MaxDisruptedVMs: 2, MaxCardsInFlight: 4}},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestPolicyDefaults: without a Policy document, drift is reported and
// nothing is pruned.
func TestPolicyDefaults(t *testing.T) {
	repo := exampleRepo(t)
	if err := os.Remove(filepath.Join(repo, "policy.yaml")); err != nil {
		t.Fatal(err)
	}
	f, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	if f.Policy.Drift != DriftReport || f.Policy.Prune.Enabled || len(f.Policy.Windows) != 0 || f.Policy.VMRestart {
		t.Errorf("default policy %+v", f.Policy)
	}
}

// TestPolicyVMRestart: vmRestart is read from the policy.
func TestPolicyVMRestart(t *testing.T) {
	repo := exampleRepo(t)
	appendFile(t, filepath.Join(repo, "policy.yaml"), "vmRestart: true\n")
	f, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Policy.VMRestart {
		t.Errorf("vmRestart: true was not read: %+v", f.Policy)
	}
}

// TestNodeOpenStackNames: a node's names in Placement and Cyborg are read
// as written; without them they are empty (OpenStack then uses hostname).
func TestNodeOpenStackNames(t *testing.T) {
	repo := exampleRepo(t)
	appendFile(t, filepath.Join(repo, "nodes", "compute-02.yaml"), "resourceProvider: compute-02.dc1.example\ndeviceHostname: compute-02\n")
	f, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	n := f.Nodes[1]
	if n.Name != "compute-02" || n.ResourceProvider != "compute-02.dc1.example" || n.DeviceHostname != "compute-02" {
		t.Errorf("node %s: resourceProvider %q, deviceHostname %q", n.Name, n.ResourceProvider, n.DeviceHostname)
	}
	if n := f.Nodes[0]; n.ResourceProvider != "" || n.DeviceHostname != "" {
		t.Errorf("node %s has names it does not declare: %q, %q", n.Name, n.ResourceProvider, n.DeviceHostname)
	}
}

// TestPolicyApproval: approval is read from the policy, auto when absent.
func TestPolicyApproval(t *testing.T) {
	repo := exampleRepo(t)
	if f, err := Load(repo); err != nil || f.Policy.Approval != "" {
		t.Fatalf("without approval: %+v, %v", f, err)
	}
	appendFile(t, filepath.Join(repo, "policy.yaml"), "approval: manual\n")
	f, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	if f.Policy.Approval != ApprovalManual {
		t.Errorf("approval: manual was not read: %+v", f.Policy)
	}
}

// exampleRepo is a copy of examples/fleet in a new directory.
func exampleRepo(t testing.TB) string {
	t.Helper()
	repo := t.TempDir()
	err := filepath.WalkDir(exampleDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(exampleDir, p)
		dst := filepath.Join(repo, rel)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return repo
}

// appendFile adds text to the end of a file.
func appendFile(t testing.TB, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// FuzzLoad adds one YAML file to the example fleet: the loader must not
// panic, and must either load the fleet or place every error in a file.
func FuzzLoad(f *testing.F) {
	repo := exampleRepo(f)
	seeds, err := filepath.Glob(filepath.Join(exampleDir, "*", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, p := range append(seeds, filepath.Join(exampleDir, "policy.yaml")) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("---\n--- {kind: Node}\n...\n"))
	f.Add([]byte("a: &x [*x]\n"))
	// One compiled schema for every run: compiling it is most of the cost
	// of loading a small repository.
	v, err := newValidator()
	if err != nil {
		f.Fatal(err)
	}
	opts := loadOptions{validators: []*validator{v}}
	extra := filepath.Join(repo, "extra", "fuzz.yaml")
	if err := os.MkdirAll(filepath.Dir(extra), 0o755); err != nil {
		f.Fatal(err)
	}
	r, err := OpenRepo(repo)
	if err != nil {
		f.Fatal(err)
	}
	defer r.Close()
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(extra, data, 0o644); err != nil {
			t.Fatal(err)
		}
		fleet, err := r.load(opts)
		if err == nil {
			if fleet == nil || len(fleet.Nodes) < 3 {
				t.Fatalf("loaded %v without an error", fleet)
			}
			return
		}
		var list ErrorList
		if !errors.As(err, &list) || len(list) == 0 {
			t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
		}
		for _, e := range list {
			if e.Pos.File == "" || e.Pos.Line < 1 || e.Msg == "" {
				t.Fatalf("error without a place: %q", e)
			}
		}
	})
}

// TestOtherYAML: a repository holding other tools' YAML loads once hidden
// files are skipped and .fpgaopsignore lists the rest.
func TestOtherYAML(t *testing.T) {
	cases := []struct {
		name  string
		files map[string]string
		want  string // the errors, or "" when the fleet loads
	}{
		{
			name:  "hidden files are skipped",
			files: map[string]string{".gitlab-ci.yml": "stages: [validate]\n", "nodes/.draft.yaml": "kind: Node\n"},
		},
		{
			name: "ignored files are skipped",
			files: map[string]string{
				IgnoreFile:                 "# docs tooling\n/mkdocs.yml\ncharts/\n",
				"mkdocs.yml":               "site_name: Fleet\n",
				"charts/fleet/values.yaml": "replicas: 2\n",
			},
		},
		{
			name: "a negated pattern keeps a file",
			files: map[string]string{
				IgnoreFile:   "*.yml\n!policy.yml\n",
				"mkdocs.yml": "site_name: Fleet\n",
				"policy.yml": "apiVersion: fpgaops/v1\nkind: Policy\nname: second\n",
			},
			want: "policy.yml:3:7: policy second: a fleet has at most one Policy, and dc1 is declared at policy.yaml:4:7",
		},
		{
			name:  "a file of other YAML is one error",
			files: map[string]string{"mkdocs.yml": "site_name: Fleet\n---\nnav: []\n"},
			want:  "mkdocs.yml:1:1: not a fleet file: none of its documents has apiVersion fpgaops/v1 or kind Node, Bitstream, Binding or Policy; list it in .fpgaopsignore if it is not part of the fleet",
		},
		{
			name:  "an ignore file that is not a regular file",
			files: map[string]string{IgnoreFile + "/x": ""},
			want:  ".fpgaopsignore: a directory, not a regular file",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			repo := exampleRepo(t)
			for name, text := range c.files {
				writeFile(t, filepath.Join(repo, filepath.FromSlash(name)), []byte(text))
			}
			f, err := Load(repo)
			switch {
			case c.want == "" && err != nil:
				t.Fatal(err)
			case c.want == "" && len(f.Nodes) != 3:
				t.Errorf("%d nodes", len(f.Nodes))
			case c.want != "" && (err == nil || err.Error() != c.want):
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
		})
	}
}

// TestKubernetesPool: a Kubernetes node and a pool binding on it are read.
func TestKubernetesPool(t *testing.T) {
	repo := exampleRepo(t)
	writeFile(t, filepath.Join(repo, "nodes", "kube-01.yaml"), []byte(`apiVersion: fpgaops/v1
kind: Node
name: kube-01
endpoint: https://kube-01.dc1.example:9443
kubernetes: kube-01.dc1.example
fpgas:
  - {slot: pac0, pci: "0000:3b:00.0", board: pac-d5005}
---
apiVersion: fpgaops/v1
kind: Binding
name: genomics-kube-01
node: kube-01
fpga: pac0
function: pf
pool: genomics
bitstream: smith-waterman
`))
	f, err := Load(repo)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := f.Node("kube-01")
	var pool string
	for _, b := range f.Bindings {
		if b.Name == "genomics-kube-01" {
			pool = b.Pool
		}
	}
	if n == nil || n.Kubernetes != "kube-01.dc1.example" || pool != "genomics" {
		t.Errorf("kubernetes %+v, pool %q", n, pool)
	}
}
