package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// The hint `plan --out` prints works as printed: the saved plan carries
// the options it was made with (here --insecure and --state-dir), so
// `apply PLANFILE` reaches the fleet the same way and records into the
// same state directory; a flag given to apply overrides the plan's.
func TestApplySavedPlanWithItsOptions(t *testing.T) {
	f := newSimFleet(t)
	// The default state directory is somewhere else: nothing may land there.
	xdg := t.TempDir()
	t.Setenv("XDG_STATE_HOME", xdg)
	saved := filepath.Join(t.TempDir(), "p.plan")

	code, out, errOut := f.run("", f.flags("plan", "--out", saved, "--node-timeout", "7s")...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	hint := "run: fpgaops apply " + saved + "\n"
	if !strings.HasSuffix(out, hint) {
		t.Fatalf("plan --out does not end with the hint %q:\n%s", hint, out)
	}

	// Overridden on the command line: plain HTTP is refused, nothing runs.
	code, _, errOut = f.run("", "apply", saved, "--insecure=false")
	if code != 1 || !strings.Contains(errOut, "is plain HTTP; pass --insecure") {
		t.Fatalf("apply --insecure=false: exit %d, stderr %q", code, errOut)
	}
	if st := f.sim.Stats(); st.Programs != 0 {
		t.Fatalf("a refused apply programmed cards: %+v", st)
	}

	// Exactly as printed.
	code, out, errOut = f.run("", strings.Fields(strings.TrimPrefix(hint, "run: fpgaops "))...)
	if code != 0 {
		t.Fatalf("apply as hinted: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"with the options it was planned with: --insecure=true --state-dir=" + f.state + " --node-timeout=7s\n",
		"Apply complete: 12 applied",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply output lacks %q:\n%s", want, out)
		}
	}
	store, err := state.Open(f.state, state.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	runs, err := store.Runs(0)
	if err != nil || len(runs) != 1 || runs[0].Trigger != "apply" {
		t.Errorf("runs in the plan's state directory: %+v, %v; want the apply", runs, err)
	}
	if ents, _ := os.ReadDir(xdg); len(ents) != 0 {
		t.Errorf("apply wrote into the default state directory: %v", ents)
	}
}
