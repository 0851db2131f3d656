package render_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/reconcile/render"
)

func intp(n int) *int { return &n }

func samplePlan() *plans.Plan {
	return &plans.Plan{
		FormatVersion: plans.FormatVersion,
		Waves:         2,
		Budget:        plans.Budget{MaxCardsInFlight: 10, MaxDisruptedVMs: 1},
		Changes: []plans.Change{
			{ID: "node/c1/fpga/pac0:vfs-off", Action: plans.ActionSetVFs, Node: "c1", Card: "pac0", CardPCI: "0000:5e:00.0",
				Before: &plans.Value{VFs: intp(1)}, After: &plans.Value{VFs: intp(0)}, Wave: 1},
			{ID: "node/c1/fpga/pac1/vf0/vm/a:detach", Action: plans.ActionDetach, Node: "c1", Card: "pac1", Disruptive: true,
				Before: &plans.Value{VM: "a", Running: true, Function: "vf0", PCI: "0000:af:00.1"},
				Held:   &plans.Hold{Gate: plans.GatePrune, Why: "prune is off in the policy"}},
			{ID: "node/c2/fpga/pac0:noop", Action: plans.ActionNoop, Node: "c2", Card: "pac0"},
		},
		Summary: plans.Summary{ByAction: plans.ByAction{SetVFs: 1}, Held: 1, Noop: 1},
	}
}

func TestTextPlainAndColour(t *testing.T) {
	var plain bytes.Buffer
	if err := render.Text(&plain, samplePlan(), render.Style{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"node c1\n",
		"  ~ set-vfs  node/c1/fpga/pac0:vfs-off (wave 1)\n      0000:5e:00.0: VFs 1 -> 0\n",
		"  - detach   node/c1/fpga/pac1/vf0/vm/a:detach (disruptive, held)\n",
		"      held by prune: prune is off in the policy\n",
		"Plan: 0 to program, 0 to attach, 0 to detach, 1 to set VFs, 0 to report, 1 held back. Rolls out in 2 waves",
	} {
		if !strings.Contains(plain.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, plain.String())
		}
	}
	if strings.Contains(plain.String(), "\x1b[") || strings.Contains(plain.String(), "node c2") {
		t.Errorf("plain text has colour codes or a no-op node:\n%s", plain.String())
	}
	var colour bytes.Buffer
	if err := render.Text(&colour, samplePlan(), render.Style{Color: true}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(colour.String(), "\x1b[33m~\x1b[0m set-vfs") {
		t.Errorf("coloured text lacks a yellow ~:\n%q", colour.String())
	}
}

func TestStyleFor(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "NO_COLOR" {
				return v
			}
			return ""
		}
	}
	tests := []struct {
		name string
		w    io.Writer
		env  string
		want bool
	}{
		{"buffer", &bytes.Buffer{}, "", false},
		{"regular file", mustTemp(t), "", false},
		{"NO_COLOR set", mustTemp(t), "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := render.StyleFor(tt.w, env(tt.env)).Color; got != tt.want {
				t.Errorf("colour = %v, want %v", got, tt.want)
			}
		})
	}
}

func mustTemp(t *testing.T) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestNoChangesAndJSON(t *testing.T) {
	p := &plans.Plan{FormatVersion: 1, Changes: []plans.Change{{ID: "node/c/fpga/p:noop", Action: plans.ActionNoop}}}
	var text bytes.Buffer
	if err := render.Text(&text, p, render.Style{}); err != nil {
		t.Fatal(err)
	}
	if text.String() != "No changes. The fleet matches the desired state.\n" {
		t.Errorf("text = %q", text.String())
	}
	var js bytes.Buffer
	if err := render.JSON(&js, samplePlan()); err != nil {
		t.Fatal(err)
	}
	var back plans.Plan
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON output does not parse: %v", err)
	}
	if len(back.Changes) != 3 || back.Changes[1].Held.Gate != plans.GatePrune {
		t.Errorf("JSON lost changes: %+v", back.Changes)
	}
}

// A backend's objects render like every other change: one plan, the
// shared objects first, their attributes listed, the counts of created,
// replaced and updated objects in the one summary line.
func TestTextWithBackendObjects(t *testing.T) {
	withObjects := samplePlan()
	withObjects.Changes = append([]plans.Change{
		{ID: "image/gzip:create", Object: "image/gzip", Action: plans.ActionCreate, Step: plans.StepCreate, Backend: "openstack", Wave: 1,
			After: &plans.Value{Bitstream: "gzip", Attrs: map[string]string{"name": "fpgaops-gzip", "file": "bitstreams/gzip.gbs"}}},
	}, withObjects.Changes...)
	withObjects.Changes = append(withObjects.Changes, plans.Change{
		ID: "node/c2/vm/db:replace", Object: "node/c2/vm/db", Action: plans.ActionReplace, Step: plans.StepReplace, Backend: "openstack",
		Node: "c2", Card: "pac0", Disruptive: true, Wave: 2, DependsOn: []string{"image/gzip:create"},
		Before: &plans.Value{VM: "db", Running: true, Attrs: map[string]string{"flavor": "m1.medium", "host": "cmp-02"}},
		After:  &plans.Value{VM: "db", Running: true, Attrs: map[string]string{"flavor": "fpgaops-2c", "host": "cmp-02"}},
	})
	withObjects.Summary = plans.Summarize(withObjects.Changes)
	withObjects.Owned = map[string][]string{"openstack": {"c2"}}
	empty := &plans.Plan{FormatVersion: plans.FormatVersion, Owned: map[string][]string{"openstack": {"c3"}}}
	tests := []struct {
		name string
		plan *plans.Plan
		want []string
		not  []string
	}{
		{"nothing to do", empty,
			[]string{"No changes.", "Backend openstack attaches and programs the cards of 1 node(s) (c3) itself"}, []string{"Plan:"}},
		{"objects and card chains", withObjects, []string{
			"± replace",
			"\nshared objects\n  + create   image/gzip:create (wave 1)\n      file: bitstreams/gzip.gbs\n      name: fpgaops-gzip\n",
			"  ± replace  node/c2/vm/db:replace (wave 2, disruptive)\n      db (running) is deleted and booted again\n      flavor: m1.medium -> fpgaops-2c\n      host: cmp-02\n",
			"      after: image/gzip:create\n",
			"Plan: 0 to program, 0 to attach, 0 to detach, 1 to set VFs, 1 to create, 1 to replace, 0 to update, 0 to report, 1 held back.",
		}, []string{"No changes."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.Text(&b, tc.plan, render.Style{}); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.not {
				if strings.Contains(b.String(), w) {
					t.Errorf("has %q:\n%s", w, b.String())
				}
			}
			if n := strings.Count(b.String(), "Plan:"); n > 1 {
				t.Errorf("%d summary lines, want at most one", n)
			}
		})
	}
}
