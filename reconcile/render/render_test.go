package render_test

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/render"
)

func intp(n int) *int { return &n }

func samplePlan() *reconcile.Plan {
	return &reconcile.Plan{
		FormatVersion: reconcile.FormatVersion,
		Waves:         2,
		Budget:        reconcile.Budget{MaxCardsInFlight: 10, MaxDisruptedVMs: 1},
		Changes: []reconcile.Change{
			{ID: "node/c1/fpga/pac0:vfs-off", Action: reconcile.ActionSetVFs, Node: "c1", Card: "pac0", CardPCI: "0000:5e:00.0",
				Before: &reconcile.Value{VFs: intp(1)}, After: &reconcile.Value{VFs: intp(0)}, Wave: 1},
			{ID: "node/c1/fpga/pac1/vf0/vm/a:detach", Action: reconcile.ActionDetach, Node: "c1", Card: "pac1", Disruptive: true,
				Before: &reconcile.Value{VM: "a", Running: true, Function: "vf0", PCI: "0000:af:00.1"},
				Held:   &reconcile.Hold{Gate: reconcile.GatePrune, Why: "prune is off in the policy"}},
			{ID: "node/c2/fpga/pac0:noop", Action: reconcile.ActionNoop, Node: "c2", Card: "pac0"},
		},
		Summary: reconcile.Summary{SetVFs: 1, Held: 1, Noop: 1},
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
	p := &reconcile.Plan{FormatVersion: 1, Changes: []reconcile.Change{{ID: "node/c/fpga/p:noop", Action: reconcile.ActionNoop}}}
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
	var back reconcile.Plan
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatalf("JSON output does not parse: %v", err)
	}
	if len(back.Changes) != 3 || back.Changes[1].Held.Gate != reconcile.GatePrune {
		t.Errorf("JSON lost changes: %+v", back.Changes)
	}
}

func TestTextWithSections(t *testing.T) {
	empty := &reconcile.Plan{FormatVersion: reconcile.FormatVersion, CloudManaged: []string{"c3"}}
	section := render.Section{Title: "OpenStack changes", Body: "  + image/gzip\n", Summary: "OpenStack: 1 to create."}
	tests := []struct {
		name     string
		plan     *reconcile.Plan
		sections []render.Section
		want     []string
		not      []string
	}{
		{"nothing anywhere", empty, []render.Section{{Title: "OpenStack changes", Summary: "OpenStack: 0 to create."}},
			[]string{"No changes.", "OpenStack manages the cards of 1 node(s) (c3)"}, []string{"Plan:", "OpenStack changes:"}},
		{"only the section has changes", empty, []render.Section{section},
			[]string{"fpgaops will perform the following actions:", "\nOpenStack changes:\n\n  + image/gzip\n",
				"\nPlan: 0 to program, 0 to attach, 0 to detach, 0 to set VFs, 0 to report, 0 held back. OpenStack: 1 to create.\n"},
			[]string{"No changes."}},
		{"both have changes", samplePlan(), []render.Section{section},
			[]string{"node c1\n", "  + image/gzip\n", "1 held back. Rolls out in 2 waves (budget: 10 card(s) and 1 disrupted VM(s) at once). OpenStack: 1 to create.\n"},
			[]string{"OpenStack manages"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := render.TextWith(&b, tc.plan, render.Style{}, tc.sections...); err != nil {
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
