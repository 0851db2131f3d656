package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/plans"
)

// The example snapshots belong to the example fleet: planning against the
// fresh one finds work, against the converged one none.
func TestPlanExamples(t *testing.T) {
	const repo = "../../examples/fleet"
	tests := []struct {
		name     string
		observed string
		code     int
		want     string
	}{
		{"fresh", "../../examples/observed/fresh.json", 2, "Plan: 5 to program, 4 to attach, 0 to detach, 4 to set VFs, 0 to report, 0 held back."},
		{"converged", "../../examples/observed/converged.json", 0, "No changes. The fleet matches the desired state."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "plan", "--repo", repo, "--observed", tt.observed, "--detailed-exitcode")
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.code, out, errOut)
			}
			code, out, errOut = runCLI(t, "plan", "--repo", repo, "--observed", tt.observed, "-o", "json")
			if code != 0 {
				t.Fatalf("-o json: exit %d: %s", code, errOut)
			}
			if !json.Valid([]byte(out)) {
				t.Fatalf("-o json is not valid JSON:\n%s", out)
			}
			var p plans.Plan
			dec := json.NewDecoder(strings.NewReader(out))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&p); err != nil {
				t.Fatalf("-o json does not decode as a plan: %v", err)
			}
			if p.FormatVersion != plans.FormatVersion || p.HasChanges() != (tt.code == 2) {
				t.Errorf("JSON plan: format %d, changes %v", p.FormatVersion, p.HasChanges())
			}
		})
	}
}

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCommand(streams{in: strings.NewReader(""), out: &out, err: &errb})
	root.SetArgs(args)
	return exitCode(&errb, root.Execute()), out.String(), errb.String()
}
