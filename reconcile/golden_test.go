package reconcile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/render"
	"github.com/fpgaops/fpgaops/spec"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the expected plans in testdata/plan")

// A golden case is one txtar file in testdata/plan holding the inputs
// (desired.json, observed.json, now, and optionally applied.json, the
// digests of the last apply, and options.json) and the expected plan text (plan.txt).
func TestPlanGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/plan/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 25 {
		t.Fatalf("found %d golden cases, want at least 25", len(files))
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			desired, obs, now, opts := loadCase(t, ar)
			p, err := reconcile.NewPlan(desired, obs, now, opts)
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			checkInvariants(t, p, obs)
			again, err := reconcile.NewPlan(desired, obs, now, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !samePlan(t, p, again) {
				t.Fatal("planning twice gave different plans")
			}
			var got bytes.Buffer
			if err := render.Text(&got, p, render.Style{}); err != nil {
				t.Fatal(err)
			}
			if *update {
				setFile(ar, "plan.txt", got.Bytes())
				if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, ok := fileOf(ar, "plan.txt")
			if !ok {
				t.Fatal("no plan.txt in the case; run with -update")
			}
			if got.String() != string(want) {
				t.Errorf("plan differs from plan.txt (run with -update to accept)\n--- got ---\n%s\n--- want ---\n%s", got.String(), want)
			}
		})
	}
}

func loadCase(t *testing.T, ar *txtar.Archive) (*spec.Fleet, *observed.Fleet, time.Time, reconcile.Options) {
	t.Helper()
	var desired spec.Fleet
	var obs observed.Fleet
	var opts reconcile.Options
	mustJSON(t, ar, "desired.json", &desired, true)
	mustJSON(t, ar, "observed.json", &obs, true)
	mustJSON(t, ar, "applied.json", &opts.Applied, false)
	// options.json sets the other planner options: the nodes a backend
	// owns, the changes it planned and the quarantined cards.
	var more struct {
		Owned       map[string]string `json:"owned"`
		Backend     []plans.Change    `json:"backend"`
		Quarantined map[string]string `json:"quarantined"`
		// Rollout maps cards to their rollout step and hold.
		Rollout map[string]struct {
			Step int    `json:"step"`
			Hold string `json:"hold"`
		} `json:"rollout"`
		Only   []string `json:"only"`
		Repair bool     `json:"repair"`
	}
	mustJSON(t, ar, "options.json", &more, false)
	opts.Owned, opts.Backend, opts.Quarantined, opts.Repair = more.Owned, more.Backend, more.Quarantined, more.Repair
	if more.Rollout != nil {
		opts.Rollout = func(card string) (int, string) { r := more.Rollout[card]; return r.Step, r.Hold }
	}
	for _, c := range more.Only {
		if opts.Only == nil {
			opts.Only = map[string]bool{}
		}
		opts.Only[c] = true
	}
	nowText, ok := fileOf(ar, "now")
	if !ok {
		t.Fatal("case has no now")
	}
	now, err := time.Parse(time.RFC3339, strings.TrimSpace(string(nowText)))
	if err != nil {
		t.Fatalf("now: %v", err)
	}
	return &desired, &obs, now, opts
}

func mustJSON(t *testing.T, ar *txtar.Archive, name string, v any, required bool) {
	t.Helper()
	data, ok := fileOf(ar, name)
	if !ok {
		if required {
			t.Fatalf("case has no %s", name)
		}
		return
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func fileOf(ar *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

func setFile(ar *txtar.Archive, name string, data []byte) {
	for i := range ar.Files {
		if ar.Files[i].Name == name {
			ar.Files[i].Data = data
			return
		}
	}
	ar.Files = append(ar.Files, txtar.File{Name: name, Data: data})
}

func samePlan(t *testing.T, a, b *plans.Plan) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(ja, jb)
}

// checkInvariants holds for every plan whatever its inputs: unique IDs,
// edges to changes that exist and come first in a card's order, nothing
// runnable behind a held change, and no program or VF change runs on a
// card a running VM holds unless a runnable detach comes first.
func checkInvariants(t *testing.T, p *plans.Plan, obs *observed.Fleet) {
	t.Helper()
	ids := map[string]*plans.Change{}
	for i := range p.Changes {
		c := &p.Changes[i]
		if _, dup := ids[c.ID]; dup {
			t.Errorf("duplicate change ID %s", c.ID)
		}
		ids[c.ID] = c
		if c.Runnable() != (c.Wave > 0) {
			t.Errorf("%s: runnable %v but wave %d", c.ID, c.Runnable(), c.Wave)
		}
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		for _, d := range c.DependsOn {
			dep, ok := ids[d]
			if !ok {
				t.Errorf("%s depends on missing %s", c.ID, d)
				continue
			}
			if c.Runnable() && !dep.Runnable() {
				t.Errorf("%s is runnable but depends on %s, which is not", c.ID, d)
			}
			if c.Runnable() && dep.Wave > c.Wave {
				t.Errorf("%s (wave %d) depends on %s in a later wave %d", c.ID, c.Wave, d, dep.Wave)
			}
		}
		if !c.Runnable() || (c.Action != plans.ActionProgram && c.Action != plans.ActionSetVFs) {
			continue
		}
		n, ok := obs.Node(c.Node)
		if !ok {
			t.Errorf("%s: node not observed", c.ID)
			continue
		}
		for _, vm := range n.VMs {
			for _, h := range vm.Hostdevs {
				if !vm.Running || !h.Live || !onCard(n, c.CardPCI, h.PCI) {
					continue
				}
				detach := plans.AttachmentID(c.Node, c.Card, functionOf(n, c.CardPCI, h.PCI).String(), vm.Name) + ":detach"
				if !dependsOn(ids, c, detach) {
					t.Errorf("%s runs while %s holds %s live, without depending on %s", c.ID, vm.Name, h.PCI, detach)
				}
			}
		}
	}
}

func onCard(n *observed.Node, card, pci string) bool {
	for _, d := range n.FPGAs {
		if d.PCI != card {
			continue
		}
		if d.PCI == pci {
			return true
		}
		for _, vf := range d.VFs {
			if vf.PCI == pci {
				return true
			}
		}
	}
	return false
}

func functionOf(n *observed.Node, card, pci string) spec.Function {
	for _, d := range n.FPGAs {
		if d.PCI != card {
			continue
		}
		for _, vf := range d.VFs {
			if vf.PCI == pci {
				return spec.VF(vf.Index)
			}
		}
	}
	return spec.PF
}

// dependsOn follows DependsOn edges transitively.
func dependsOn(ids map[string]*plans.Change, c *plans.Change, target string) bool {
	seen := map[string]bool{}
	var walk func(*plans.Change) bool
	walk = func(c *plans.Change) bool {
		for _, d := range c.DependsOn {
			if d == target {
				return true
			}
			if seen[d] {
				continue
			}
			seen[d] = true
			if dc, ok := ids[d]; ok && walk(dc) {
				return true
			}
		}
		return false
	}
	return walk(c)
}
