package controller

import (
	"context"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/fpgaops/fpgaops/spec/source/gittest"
)

// BenchmarkRunUpToDate is the controller's own cost of a scheduled run
// that finds nothing new: an up-to-date fetch over file://, the load, and
// the history and status writes; the reconcile step is a fake.
func BenchmarkRunUpToDate(b *testing.B) {
	r := gittest.NewRemote(b, "fleet")
	r.Commit("first", fleetFile("nodes: []"), nil)
	src, err := source.New(source.Config{URL: r.FileURL(), CacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	store, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(Options{Source: src, Load: loadFake, Reconciler: &fakeReconciler{}, Store: store, Interval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if run := c.RunOnce(context.Background(), "schedule"); run.Outcome != state.OutcomeApplied {
			b.Fatalf("run %s: %s", run.Outcome, run.Error)
		}
	}
}
