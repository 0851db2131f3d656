package render_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/plans"
	"github.com/fpgaops/fpgaops/reconcile/render"
)

func TestApplyProgress(t *testing.T) {
	p := &plans.Plan{Changes: []plans.Change{
		{ID: "node/a/fpga/pac0:program", Action: plans.ActionProgram, Node: "a", Card: "pac0"},
		{ID: "node/a/fpga/pac0/vf0/vm/x:attach", Action: plans.ActionAttach, Node: "a", Card: "pac0"},
		{ID: "node/b/fpga/pac0:program", Action: plans.ActionProgram, Node: "b", Card: "pac0"},
		{ID: "node/b/fpga/pac1:noop", Action: plans.ActionNoop, Node: "b", Card: "pac1"},
	}}
	var out bytes.Buffer
	a := render.NewBar(&out, p)
	steps := []struct {
		start  bool
		change int
		status plans.Status
		want   string
	}{
		{true, 0, "", "[........................] 0/3 changes | cards: 0/2 done, 1 in progress, 0 failed | node/a/fpga/pac0:program"},
		{false, 0, plans.StatusApplied, "[########................] 1/3 changes | cards: 0/2 done, 1 in progress, 0 failed"},
		{true, 2, "", "cards: 0/2 done, 2 in progress, 0 failed"},
		{false, 2, plans.StatusFailed, "[################........] 2/3 changes | cards: 0/2 done, 1 in progress, 1 failed"},
		{false, 1, plans.StatusApplied, "[########################] 3/3 changes | cards: 1/2 done, 0 in progress, 1 failed"},
	}
	for i, s := range steps {
		out.Reset()
		c := &p.Changes[s.change]
		if s.start {
			a.Started(c)
		} else {
			a.Finished(c, plans.Result{ID: c.ID, Status: s.status})
		}
		got := out.String()
		if !strings.HasPrefix(got, "\r") || !strings.HasSuffix(got, "\x1b[K") || !strings.Contains(got, s.want) {
			t.Fatalf("step %d drew %q; want a rewritten line holding %q", i, got, s.want)
		}
	}
	out.Reset()
	a.Close()
	if out.String() != "\n" {
		t.Fatalf("Close wrote %q; want a newline ending the status line", out.String())
	}
}

func TestProgressLines(t *testing.T) {
	p := &plans.Plan{Summary: plans.Summary{ByAction: plans.ByAction{Program: 2}}}
	var out bytes.Buffer
	l := render.NewLines(&out, p)
	c := &plans.Change{ID: "node/a/fpga/pac0:program", Action: plans.ActionProgram}
	l.Started(c)
	l.Finished(c, plans.Result{ID: c.ID, Status: plans.StatusApplied})
	if got, want := out.String(), "[1/2] ~ node/a/fpga/pac0:program: applied\n"; got != want {
		t.Fatalf("lines = %q, want %q", got, want)
	}
	if render.IsTerminal(&out) {
		t.Fatal("a buffer taken for a terminal")
	}
}
