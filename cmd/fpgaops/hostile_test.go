package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// selfBinary is this test binary under the name fpgaops: run so, it is the
// command (testscript.Main dispatches by name), in a process of its own.
func selfBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "fpgaops")
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// A saved plan whose image has since become a symlink to /dev/zero, or
// to a file outside the repository, is refused before any change, naming
// the file, in little memory: the image is read through the repository's
// reader, never followed out of it.
func TestSavedPlanWithAHostileImage(t *testing.T) {
	bin := selfBinary(t)
	for _, target := range []string{"/dev/zero", "/etc/passwd"} {
		t.Run(target, func(t *testing.T) {
			f := newSimFleet(t)
			if code, out, errs := f.run("", f.flags("apply", "--auto-approve")...); code != 0 {
				t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errs)
			}
			f.bind("nfv-fw-v2")
			saved := filepath.Join(t.TempDir(), "v2.plan")
			if code, out, errs := f.run("", f.flags("plan", "--out", saved)...); code != 0 {
				t.Fatalf("plan: exit %d\n%s\n%s", code, out, errs)
			}
			gbs := filepath.Join(f.repo, "bitstreams", "nfv-fw-v2.gbs")
			if err := os.Remove(gbs); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, gbs); err != nil {
				t.Fatal(err)
			}
			before := f.sim.Stats()
			cmd := exec.Command(bin, "apply", saved, "--insecure", "--state-dir", f.state)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("exit: %v, want 1\n%s", err, stderr.String())
			}
			if !strings.Contains(stderr.String(), "plan refused before any change") || !strings.Contains(stderr.String(), "bitstreams/nfv-fw-v2.gbs") {
				t.Errorf("stderr: %s", stderr.String())
			}
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
			t.Logf("peak resident memory %.1f MB", float64(rss)/1e6)
			if rss > 100<<20 {
				t.Errorf("peak resident memory %d bytes, more than 100 MiB", rss)
			}
			if after := f.sim.Stats(); after.Programs != before.Programs || after.Detaches != before.Detaches || after.SetVFs != before.SetVFs {
				t.Errorf("the refused plan changed the fleet: %+v, then %+v", before, after)
			}
		})
	}
}

// Two applies at once on one state directory: one runs, the other is
// refused at once naming the holder; no card is programmed twice and no
// running VM is disrupted unsafely.
func TestConcurrentAppliesOneRefused(t *testing.T) {
	f := newSimFleet(t)
	if code, out, errs := f.run("", f.flags("apply", "--auto-approve")...); code != 0 {
		t.Fatalf("first apply: exit %d\n%s\n%s", code, out, errs)
	}
	f.bind("nfv-fw-v2")
	before := f.sim.Stats()
	var wg sync.WaitGroup
	codes, errs := make([]int, 2), make([]string, 2)
	for i := range 2 {
		wg.Go(func() {
			codes[i], _, errs[i] = f.run("", f.flags("apply", "--auto-approve")...)
		})
	}
	wg.Wait()
	refused := 0
	for i := range 2 {
		switch {
		case codes[i] == 1 && strings.Contains(errs[i], "state directory in use by another writer (fpgaops apply, pid "):
			refused++
		case codes[i] != 0:
			t.Errorf("apply %d: exit %d\n%s", i, codes[i], errs[i])
		}
	}
	// One refused; or, when the first finished before the second began,
	// the second found nothing to do.
	after := f.sim.Stats()
	if programs := after.Programs - before.Programs; programs != 4 {
		t.Errorf("%d programs for 4 cards whose bitstream changed (refused: %d)", programs, refused)
	}
	if after.Violations != 0 {
		t.Errorf("violations: %+v", after)
	}
	t.Logf("refused: %d of 2", refused)
}

// An apply beside a running controller is refused at once, naming it,
// and changes nothing.
func TestApplyBesideAControllerIsRefused(t *testing.T) {
	f := newSimFleet(t)
	ctl, err := state.Open(f.state, state.Options{Holder: "fpgaops run"})
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	start := time.Now()
	code, _, errs := f.run("", f.flags("apply", "--auto-approve")...)
	if code != 1 || !strings.Contains(errs, "state directory in use by another writer (fpgaops run, pid ") {
		t.Fatalf("apply beside a controller: exit %d\n%s", code, errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the refusal took %s", d)
	}
	if st := f.sim.Stats(); st.Programs+st.Attaches+st.Detaches+st.SetVFs != 0 {
		t.Errorf("the refused apply changed the fleet: %+v", st)
	}
	// plan, a reader, goes on meanwhile.
	if code, out, errs := f.run("", f.flags("plan")...); code != 0 {
		t.Errorf("plan beside a controller: exit %d\n%s\n%s", code, out, errs)
	}
}
