package state_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

func TestQuarantine(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, state.Options{})
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	a := state.Quarantine{Card: "node/b/fpga/pac0", Since: t0, Reason: "fme errors/catfatal_errors = 0x1"}
	b := state.Quarantine{Card: "node/a/fpga/pac1", Since: t0, Reason: "temp1 = 101 °C"}
	if err := s.Quarantine(a, b); err != nil {
		t.Fatal(err)
	}
	// A card already quarantined keeps its first record.
	later := a
	later.Since, later.Reason = t0.Add(time.Hour), "something else"
	if err := s.Quarantine(later); err != nil {
		t.Fatal(err)
	}
	got, err := s.Quarantined()
	if want := []state.Quarantine{b, a}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("quarantined %+v, %v; want %+v, by card", got, err, want)
	}
	if want := "since 2026-12-01T03:00:00Z: fme errors/catfatal_errors = 0x1"; a.Why() != want {
		t.Errorf("why %q, want %q", a.Why(), want)
	}

	// A reader sees it; it cannot release.
	r := open(t, dir, state.Options{ReadOnly: true})
	if got, err := r.Quarantined(); err != nil || len(got) != 2 {
		t.Fatalf("a reader sees %+v, %v", got, err)
	}
	if _, err := r.Release(); !errors.Is(err, state.ErrReadOnly) {
		t.Fatalf("a reader released: %v", err)
	}

	released, err := s.Release(a.Card, "node/x/fpga/none")
	if err != nil || !reflect.DeepEqual(released, []state.Quarantine{a}) {
		t.Fatalf("released %+v, %v; want only %s", released, err, a.Card)
	}
	released, err = s.Release()
	if err != nil || !reflect.DeepEqual(released, []state.Quarantine{b}) {
		t.Fatalf("released all: %+v, %v", released, err)
	}
	if got, err := s.Quarantined(); err != nil || len(got) != 0 {
		t.Fatalf("after releasing all: %+v, %v", got, err)
	}
}
