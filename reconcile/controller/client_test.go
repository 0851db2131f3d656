package controller

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// The client's errors name the server, the request and the HTTP status,
// and never the token.
func TestClientErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	ctx := context.Background()
	cases := []struct {
		name  string
		token string
		call  func(*Client) error
		want  string
	}{
		{"wrong token", "not-the-token-5", func(c *Client) error { _, err := c.Suspend(ctx); return err },
			"controller " + h.srv.URL + ": POST /suspend: 401 Unauthorized: unauthorized"},
		{"no token", "", func(c *Client) error { return c.Reconcile(ctx) },
			"controller " + h.srv.URL + ": POST /reconcile: no admin token"},
		{"no such path", adminToken, func(c *Client) error { c.Server += "/nope"; _, err := c.Status(ctx); return err },
			"controller " + h.srv.URL + "/nope: GET /status: 404 Not Found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(NewClient(h.srv.URL+"/", []byte(tc.token)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Fatalf("the token shows in %v", err)
			}
		})
	}
	if h.c.Status().Suspended {
		t.Fatal("suspended by a refused request")
	}
}

// Suspend and resume answer with the status; a suspended controller
// takes no run.
func TestClientSuspendResume(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	c := NewClient(h.srv.URL, []byte(adminToken))
	ctx := context.Background()
	st, err := c.Suspend(ctx)
	if err != nil || !st.Suspended || !h.c.Status().Suspended {
		t.Fatalf("suspend: %v, %+v", err, st)
	}
	if err := c.Reconcile(ctx); !errors.Is(err, ErrNotTriggered) || !strings.Contains(err.Error(), "suspended") {
		t.Fatalf("reconcile while suspended: %v", err)
	}
	st, err = c.Resume(ctx)
	if err != nil || st.Suspended || h.c.Status().Suspended {
		t.Fatalf("resume: %v, %+v", err, st)
	}
}

// A trigger while a run is in flight asks for the run after it: WaitRun
// returns that one, with the newer revision, not the one in flight.
func TestClientWaitsForTheTriggeredRun(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	h.remote.Commit("first", fleetFile("nodes: []"), nil)
	h.start()
	h.waitRuns(1)

	gate, entered := make(chan struct{}), make(chan struct{})
	h.rec.mu.Lock()
	h.rec.gate, h.rec.entered = gate, entered
	h.rec.mu.Unlock()
	second := h.remote.Commit("second", fleetFile("nodes: [a]"), nil)
	h.c.Trigger("schedule")
	<-entered
	h.rec.mu.Lock()
	h.rec.entered = nil
	h.rec.mu.Unlock()
	third := h.remote.Commit("third", fleetFile("nodes: [a, b]"), nil)

	c := NewClient(h.srv.URL, []byte(adminToken))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := RunsToWaitFor(before); n != 2 {
		t.Fatalf("runs to wait for with a run in flight: %d, want 2", n)
	}
	if err := c.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	close(gate)
	run, err := c.WaitRun(ctx, before.LastRun.ID, RunsToWaitFor(before), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if run.Revision != third || run.Trigger != "manual" || run.ID != before.LastRun.ID+2 {
		t.Fatalf("waited for run %d %s on %s; want run %d manual on %s (not %s)",
			run.ID, run.Trigger, run.Revision, before.LastRun.ID+2, third, second)
	}
	if n := RunsToWaitFor(h.c.Status()); n != 1 {
		t.Fatalf("runs to wait for when idle: %d, want 1", n)
	}
}

// The quarantine is read by anyone and released with the admin token:
// the named cards, or all of them.
func TestClientQuarantine(t *testing.T) {
	t.Parallel()
	h := newHarness(t, "", nil)
	t0 := time.Date(2026, 12, 1, 3, 0, 0, 0, time.UTC)
	qs := []state.Quarantine{
		{Card: "node/a/fpga/pac0", Since: t0, Reason: "fme errors/catfatal_errors = 0x1"},
		{Card: "node/a/fpga/pac1", Since: t0, Reason: "temp1 = 101 °C"},
		{Card: "node/b/fpga/pac0", Since: t0, Reason: "bitstream_id is all ones: firmware crashed"},
	}
	if err := h.c.opts.Store.Quarantine(qs...); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, err := NewClient(h.srv.URL, nil).Quarantined(ctx)
	if err != nil || !reflect.DeepEqual(got, qs) {
		t.Fatalf("quarantined %+v, %v", got, err)
	}
	if _, err := NewClient(h.srv.URL, []byte("not-the-token")).Release(ctx, qs[0].Card); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("release with a wrong token: %v", err)
	}
	c := NewClient(h.srv.URL, []byte(adminToken))
	if got, err := c.Release(ctx, qs[0].Card); err != nil || !reflect.DeepEqual(got, qs[:1]) {
		t.Fatalf("release %s: %+v, %v", qs[0].Card, got, err)
	}
	if got, err := c.Release(ctx); err != nil || !reflect.DeepEqual(got, qs[1:]) {
		t.Fatalf("release all: %+v, %v", got, err)
	}
	if got, err := c.Quarantined(ctx); err != nil || len(got) != 0 {
		t.Fatalf("after releasing all: %+v, %v", got, err)
	}
}
