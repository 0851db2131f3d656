package controller

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/providers/openstack"
	"github.com/fpgaops/fpgaops/reconcile/reconciletest"
	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/spec"
	"github.com/fpgaops/fpgaops/spec/source"
	"github.com/prometheus/client_golang/prometheus"
)

func TestSummariseCloud(t *testing.T) {
	t.Parallel()
	img := openstack.Change{Action: openstack.CreateImage, ID: "image/gzip"}
	srv := openstack.Change{Action: openstack.ReplaceServer, ID: "server/compute-01/vnf-a", Disruptive: true}
	held := srv
	held.Blocked = "outside the maintenance windows: deny window"
	drift := openstack.Change{Action: openstack.Drift, ID: "server/compute-01/vnf-c"}
	tests := []struct {
		name    string
		changes []openstack.Change
		results []openstack.Result
		want    *state.CloudRun
	}{
		{
			name: "nothing planned",
			want: &state.CloudRun{Plan: map[string]int{}, Results: map[string]int{}, Applied: map[string]int{}, Failed: map[string]int{}},
		},
		{
			name:    "nothing runnable: held and drift count as skipped",
			changes: []openstack.Change{held, drift},
			want: &state.CloudRun{
				Plan:    map[string]int{"replace-server": 1, "blocked": 1, "drift": 1},
				Results: map[string]int{"skipped": 2}, Applied: map[string]int{}, Failed: map[string]int{},
			},
		},
		{
			name:    "one applied, one failed naming its object",
			changes: []openstack.Change{img, srv},
			results: []openstack.Result{
				{ID: img.ID, Action: img.Action, Outcome: openstack.Applied},
				{ID: srv.ID, Action: srv.Action, Outcome: openstack.Failed, Detail: "server/compute-01/vnf-a: replace-server: no valid host"},
			},
			want: &state.CloudRun{
				Plan:     map[string]int{"create-image": 1, "replace-server": 1},
				Results:  map[string]int{"applied": 1, "failed": 1},
				Applied:  map[string]int{"create-image": 1},
				Failed:   map[string]int{"replace-server": 1},
				Failures: []string{"server/compute-01/vnf-a: replace-server: no valid host"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := summariseCloud(tt.changes, tt.results); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("summariseCloud = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// fakeCloud is a CloudStep that reports what it is given. It notes the
// fleet's calls when it runs, to show it runs after the fleet's changes.
type fakeCloud struct {
	fleet    *reconciletest.Fleet
	run      *state.CloudRun
	err      error
	sawCalls []string
	sawNow   time.Time
}

func (f *fakeCloud) ApplyCloud(_ context.Context, _ *spec.Fleet, now time.Time) (*state.CloudRun, error) {
	f.sawCalls, f.sawNow = f.fleet.Calls(), now
	return f.run, f.err
}

// The controller runs the cloud step after the fleet's changes and
// records its results in the history, the status and the metrics; a
// failed cloud change fails the run, naming the object.
func TestControllerRecordsCloud(t *testing.T) {
	desired, obs := poolFleet(t)
	fleet := reconciletest.New(obs)
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	failure := "server/compute-01/vnf-a: replace-server: no valid host"
	cloud := &fakeCloud{fleet: fleet, err: errors.New(failure), run: &state.CloudRun{
		Plan:     map[string]int{"create-image": 1, "replace-server": 1, "drift": 1},
		Results:  map[string]int{"applied": 1, "failed": 1, "skipped": 1},
		Applied:  map[string]int{"create-image": 1},
		Failed:   map[string]int{"replace-server": 1},
		Failures: []string{failure},
	}}
	clock := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	step := &Step{Provider: fleet, Store: store, Concurrency: 2, NodeTimeout: 5 * time.Second, Cloud: cloud, Now: func() time.Time { return clock }}
	reg := prometheus.NewRegistry()
	h := newHarness(t, "", func(o *Options) {
		o.Reconciler, o.Store, o.Registry = step, store, reg
		o.Load = func(string) (*spec.Fleet, error) { return desired, nil }
	})
	h.remote.Commit("pool cards", fleetFile("nodes: []"), nil)

	run := h.c.RunOnce(context.Background(), "manual")
	if run.Outcome != state.OutcomeFailed || !strings.Contains(run.Error, failure) {
		t.Fatalf("run: outcome %s, error %q; want failed naming %s", run.Outcome, run.Error, failure)
	}
	if !slices.ContainsFunc(cloud.sawCalls, func(c string) bool { return strings.HasPrefix(c, "program") }) {
		t.Errorf("the cloud step ran before the fleet's changes: calls %v", cloud.sawCalls)
	}
	if !cloud.sawNow.Equal(clock) {
		t.Errorf("the cloud step's clock = %v, want the step's %v", cloud.sawNow, clock)
	}
	// The fleet's own changes all applied; the cloud's failed and skipped
	// ones are what the run leaves undone, the drift its drift.
	if run.Violations != 2 || run.Drift != 1 {
		t.Errorf("run: %d violations, %d drift; want 2 and 1", run.Violations, run.Drift)
	}
	runs, err := store.Runs(0)
	if err != nil || len(runs) != 1 || !reflect.DeepEqual(runs[0].OpenStack, cloud.run) {
		t.Fatalf("history: %+v, %v; want the cloud's part %+v", runs, err, cloud.run)
	}
	st := h.c.Status()
	if st.LastRun == nil || !reflect.DeepEqual(st.LastRun.OpenStack, cloud.run) {
		t.Errorf("status: last run %+v", st.LastRun)
	}
	for _, m := range []struct {
		name, label, value string
		want               float64
	}{
		{"fpgaops_changes_total", "action", "create-image", 1},
		{"fpgaops_changes_total", "action", "program", 2},
		{"fpgaops_openstack_change_failures_total", "action", "replace-server", 1},
		{"fpgaops_failures_total", "stage", "reconcile", 1},
	} {
		if got := counter(t, reg, m.name, m.label, m.value); got != m.want {
			t.Errorf("%s{%s=%q} = %v, want %v", m.name, m.label, m.value, got, m.want)
		}
	}
}

// counter reads one series of a counter from the registry.
func counter(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// Shutdown before the cloud step: it does not run, and the run is
// interrupted, so the cloud's changes wait for the next run.
func TestStepSkipsCloudOnShutdown(t *testing.T) {
	t.Parallel()
	desired, obs := poolFleet(t)
	fleet := reconciletest.New(obs)
	store, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fleet.KillAfter(1, cancel)
	cloud := &fakeCloud{fleet: fleet, run: &state.CloudRun{}}
	step := &Step{Provider: fleet, Store: store, Concurrency: 1, NodeTimeout: 5 * time.Second, Cloud: cloud}
	res, _ := step.Reconcile(ctx, source.Revision{Commit: "c1"}, desired)
	if !res.Interrupted || res.OpenStack != nil || cloud.sawCalls != nil {
		t.Fatalf("result %+v; the cloud step saw %v", res, cloud.sawCalls)
	}
}
