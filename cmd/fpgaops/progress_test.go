package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/reconcile/execute"
)

func TestApplyProgress(t *testing.T) {
	p := &reconcile.Plan{Changes: []reconcile.Change{
		{ID: "node/a/fpga/pac0:program", Action: reconcile.ActionProgram, Node: "a", Card: "pac0"},
		{ID: "node/a/fpga/pac0/vf0/vm/x:attach", Action: reconcile.ActionAttach, Node: "a", Card: "pac0"},
		{ID: "node/b/fpga/pac0:program", Action: reconcile.ActionProgram, Node: "b", Card: "pac0"},
		{ID: "node/b/fpga/pac1:noop", Action: reconcile.ActionNoop, Node: "b", Card: "pac1"},
	}}
	var out bytes.Buffer
	a := newProgressDrawer(&out, p)
	steps := []struct {
		start  bool
		change int
		status execute.Status
		want   string
	}{
		{true, 0, "", "[........................] 0/3 changes | cards: 0/2 done, 1 in progress, 0 failed | node/a/fpga/pac0:program"},
		{false, 0, execute.StatusApplied, "[########................] 1/3 changes | cards: 0/2 done, 1 in progress, 0 failed"},
		{true, 2, "", "cards: 0/2 done, 2 in progress, 0 failed"},
		{false, 2, execute.StatusFailed, "[################........] 2/3 changes | cards: 0/2 done, 1 in progress, 1 failed"},
		{false, 1, execute.StatusApplied, "[########################] 3/3 changes | cards: 1/2 done, 0 in progress, 1 failed"},
	}
	for i, s := range steps {
		out.Reset()
		c := &p.Changes[s.change]
		if s.start {
			a.Started(c)
		} else {
			a.Finished(c, execute.Result{ID: c.ID, Status: s.status})
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

func TestApplyProgressOffTerminal(t *testing.T) {
	if _, ok := newApplyProgress(&bytes.Buffer{}, &reconcile.Plan{}).(execute.NoProgress); !ok {
		t.Fatal("progress drawn into a buffer; want nothing off a terminal")
	}
}
