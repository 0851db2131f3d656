package dashboard_test

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/dashboard"
)

// cardOf is the first card's state and text on the front page.
func cardOf(t *testing.T, f *fixture) string {
	t.Helper()
	_, _, body := f.get(t, "/?q=compute-00000")
	m := regexp.MustCompile(`(?s)<div class="card s-(\w+)" title="0000:3b:00.0">(.*?)</div>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no card pac0 on the page:\n%s", body)
	}
	return m[1] + ": " + strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[2], " ")), " ")
}

// The view follows a run: planned changes show the card changing, and
// what each change did shows once it took effect.
func TestViewFollowsARun(t *testing.T) {
	t.Parallel()
	f := newFixture(t, dashboard.Options{})
	desired, obs := mixedFleet(1)
	desired.Nodes[0].FPGAs = desired.Nodes[0].FPGAs[:1]
	desired.Bindings = desired.Bindings[:1]
	// pac0 runs fw-v1 under its stopped VM, VFs off: program, VFs on.
	dev := &obs.Nodes[0].FPGAs[0]
	dev.Ports[0].AFUID, dev.NumVFs, dev.VFs = afu(0), 0, nil
	obs.Nodes[0].VMs[0].Running = false
	p, err := reconcile.NewPlan(desired, obs, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f.d.Planned(desired, obs, p)
	if got := cardOf(t, f); got != "changing: pac0 changing fw-v1 VFs 0/1" {
		t.Fatalf("planned: %q", got)
	}
	results := make([]plans.Result, len(p.Changes))
	for i := range p.Changes {
		c := &p.Changes[i]
		if !c.Runnable() {
			continue
		}
		f.d.Started(c)
		results[i] = plans.Result{ID: c.ID, Status: plans.StatusApplied}
		f.d.Finished(c, results[i])
		if c.Action == plans.ActionProgram {
			if got := cardOf(t, f); got != "changing: pac0 changing fw-v2 VFs 0/1" {
				t.Errorf("programmed: %q", got)
			}
		}
	}
	f.d.Applied(p, results)
	if got := cardOf(t, f); got != "converged: pac0 converged fw-v2 VFs 1/1 vnf-00000-0 (vf0)" {
		t.Errorf("after the run: %q", got)
	}

	// An apply refused before any change leaves the card's changes not
	// started, and says so.
	f.d.Planned(desired, obs, p)
	f.d.Applied(p, nil)
	if got := cardOf(t, f); got != "held: pac0 held fw-v1 VFs 0/1 not started: the run stopped first" {
		t.Errorf("after a refused apply: %q", got)
	}
}
