package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
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
	fsys := exampleFS(t)
	delete(fsys, "policy.yaml")
	f, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if f.Policy.Drift != DriftReport || f.Policy.Prune.Enabled || len(f.Policy.Windows) != 0 || f.Policy.VMRestart {
		t.Errorf("default policy %+v", f.Policy)
	}
}

// TestPolicyVMRestart: vmRestart is read from the policy.
func TestPolicyVMRestart(t *testing.T) {
	fsys := exampleFS(t)
	pol := fsys["policy.yaml"]
	pol.Data = append(append([]byte(nil), pol.Data...), "vmRestart: true\n"...)
	fsys["policy.yaml"] = pol
	f, err := LoadFS(fsys)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Policy.VMRestart {
		t.Errorf("vmRestart: true was not read: %+v", f.Policy)
	}
}

// TestSymlinkOutOfRepository: a bitstream file that is a symlink leading
// out of the repository is refused, not read.
func TestSymlinkOutOfRepository(t *testing.T) {
	outside := t.TempDir()
	repo := t.TempDir()
	for name, data := range exampleFS(t) {
		p := filepath.Join(repo, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gbs := filepath.Join(repo, "bitstreams", "dma-afu-a10.gbs")
	if err := os.Rename(gbs, filepath.Join(outside, "dma-afu-a10.gbs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "dma-afu-a10.gbs"), gbs); err != nil {
		t.Fatal(err)
	}
	_, err := Load(repo)
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 1 {
		t.Fatalf("got %v, want one error", err)
	}
	want := "bitstreams/bitstreams.yaml:31:7: bitstream dma-afu: file bitstreams/dma-afu-a10.gbs is outside the repository"
	if list[0].Error() != want {
		t.Errorf("got  %s\nwant %s", list[0], want)
	}
}

// exampleFS is examples/fleet in memory.
func exampleFS(t testing.TB) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	err := filepath.WalkDir(exampleDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(exampleDir, p)
		fsys[filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

// FuzzLoad adds one YAML file to the example fleet: the loader must not
// panic, and must either load the fleet or place every error in a file.
func FuzzLoad(f *testing.F) {
	base := exampleFS(f)
	for name, file := range base {
		if strings.HasSuffix(name, ".yaml") {
			f.Add(file.Data)
		}
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
	f.Fuzz(func(t *testing.T, data []byte) {
		fsys := fstest.MapFS{"extra/fuzz.yaml": &fstest.MapFile{Data: data}}
		for k, v := range base {
			fsys[k] = v
		}
		fleet, err := load(fsys, fsys, opts)
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
