package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/observed"
)

// A snapshot that observe writes is what plan --observed reads: planning
// against it gives the plan the live fleet gives, before and after an
// apply.
func TestObserveThenPlanAgainstTheSnapshot(t *testing.T) {
	f := newSimFleet(t)
	snap := filepath.Join(t.TempDir(), "fleet.json")
	for _, stage := range []string{"fresh", "converged"} {
		t.Run(stage, func(t *testing.T) {
			code, out, errOut := f.run("", "observe", "--repo", f.repo, "--insecure", "--out", snap)
			if code != 0 {
				t.Fatalf("observe: exit %d\n%s\n%s", code, out, errOut)
			}
			want := "Observed 2 nodes (0 unknown), 4 FPGAs, 4 VMs holding "
			if !strings.HasPrefix(out, want) || !strings.Contains(out, "plan against it with: fpgaops plan --repo "+f.repo+" --observed "+snap) {
				t.Errorf("observe said %q, want %q... and how to plan against it", out, want)
			}
			_, live, _ := f.run("", f.flags("plan")...)
			code, offline, errOut := f.run("", "plan", "--repo", f.repo, "--state-dir", f.state, "--observed", snap)
			if code != 0 {
				t.Fatalf("plan --observed: exit %d\n%s", code, errOut)
			}
			if offline != live {
				t.Errorf("plan against the snapshot:\n%s\nplan against the fleet:\n%s", offline, live)
			}
		})
		if stage == "fresh" {
			if code, out, errOut := f.run("", f.flags("apply", "--auto-approve")...); code != 0 {
				t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
			}
		}
	}
	if code, out, _ := f.run("", "plan", "--repo", f.repo, "--observed", snap, "--detailed-exitcode"); code != 0 {
		t.Errorf("plan against the converged snapshot: exit %d\n%s", code, out)
	}

	// To stdout, in the documented format.
	code, out, _ := f.run("", "observe", "--repo", f.repo, "--insecure", "--out", "-")
	if code != 0 {
		t.Fatalf("observe --out -: exit %d", code)
	}
	obs, err := observed.Decode(strings.NewReader(out))
	if err != nil {
		t.Fatalf("the snapshot on stdout does not decode: %v\n%s", err, out)
	}
	if len(obs.Nodes) != 2 || obs.Nodes[0].State != observed.NodeOK || len(obs.Nodes[0].FPGAs) != 2 {
		t.Errorf("snapshot: %+v", obs)
	}
}

func TestObserveMistakes(t *testing.T) {
	f := newSimFleet(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no flags", []string{"observe"}, []string{"--repo is required", "--out is required (- for stdout)"}},
		{"plain HTTP", []string{"observe", "--repo", f.repo, "--out", "x.json"}, []string{"node compute-01: endpoint http://", "node compute-02: endpoint http://", "pass --insecure"}},
		{"bad repo", []string{"observe", "--repo", filepath.Join(f.repo, "nope"), "--out", "x.json"}, []string{"nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			fails(t, f, tt.args, tt.want...)
			if _, err := os.Stat("x.json"); err == nil {
				t.Error("a failed observe wrote its file")
			}
		})
	}
}

// The example in docs/observed.md is a snapshot plan --observed reads.
func TestObservedDocExample(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "observed.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "## Example")
	if !ok {
		t.Fatal("docs/observed.md has no Example section")
	}
	_, block, _ := strings.Cut(after, "```json\n")
	block, _, _ = strings.Cut(block, "```")
	obs, err := observed.Decode(strings.NewReader(block))
	if err != nil {
		t.Fatalf("the example does not decode: %v", err)
	}
	if len(obs.Nodes) != 2 || obs.Nodes[1].State != observed.NodeUnknown || len(obs.Nodes[0].VMs[1].Hostdevs) != 1 {
		t.Errorf("example read as %+v", obs)
	}
}
