package reconcile_test

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/reconcile"
	"github.com/fpgaops/fpgaops/spec"
	"golang.org/x/tools/txtar"
)

func loadGolden(t *testing.T, name string) (*spec.Fleet, *observed.Fleet, time.Time, reconcile.Options) {
	t.Helper()
	ar, err := txtar.ParseFile(filepath.Join("testdata/plan", name+".txtar"))
	if err != nil {
		t.Fatal(err)
	}
	return loadCase(t, ar)
}

func TestWindowGate(t *testing.T) {
	day := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	allow := spec.Window{Kind: spec.WindowAllow, Schedule: "0 2 * * *", Duration: spec.Duration(4 * time.Hour)}
	deny := spec.Window{Kind: spec.WindowDeny, Schedule: "0 8 * * 1-5", Duration: spec.Duration(10 * time.Hour), TimeZone: "Europe/Berlin"}
	berlin := allow
	berlin.TimeZone = "Europe/Berlin"
	tests := []struct {
		name    string
		windows []spec.Window
		now     string
		held    bool
	}{
		{"no windows", nil, "2026-12-01T12:00:00Z", false},
		{"allow, at opening", []spec.Window{allow}, "2026-12-01T02:00:00Z", false},
		{"allow, last minute", []spec.Window{allow}, "2026-12-01T05:59:00Z", false},
		{"allow, at closing", []spec.Window{allow}, "2026-12-01T06:00:00Z", true},
		{"allow, before opening", []spec.Window{allow}, "2026-12-01T01:59:00Z", true},
		{"allow in Berlin, 01:00 UTC is 02:00 CET", []spec.Window{berlin}, "2026-12-01T01:00:00Z", false},
		{"allow in Berlin, 05:30 UTC is 06:30 CET", []spec.Window{berlin}, "2026-12-01T05:30:00Z", true},
		{"allow in Berlin in summer time, 00:30 UTC is 02:30 CEST", []spec.Window{berlin}, "2026-07-01T00:30:00Z", false},
		{"deny open on a Tuesday", []spec.Window{deny}, "2026-12-01T09:00:00Z", true},
		{"deny closed on a Saturday", []spec.Window{deny}, "2026-12-05T09:00:00Z", false},
		{"deny wins over an open allow", []spec.Window{{Kind: spec.WindowAllow, Schedule: "@daily", Duration: spec.Duration(24 * time.Hour)}, deny}, "2026-12-01T09:00:00Z", true},
	}
	desired, obs, _, opts := loadGolden(t, "window-open")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := *desired
			d.Policy.Windows = tt.windows
			p, err := reconcile.NewPlan(&d, obs, day(tt.now), opts)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := p.Change("node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach")
			if !ok {
				t.Fatal("no detach planned")
			}
			if held := c.Held != nil && c.Held.Gate == plans.GateWindow; held != tt.held {
				t.Errorf("held by window = %v (%+v), want %v", held, c.Held, tt.held)
			}
		})
	}
}

func TestBadWindowsAreReportedTogetherWithPositions(t *testing.T) {
	desired, obs, now, opts := loadGolden(t, "window-open")
	desired.Policy.Windows = []spec.Window{
		{Kind: spec.WindowAllow, Schedule: "0 25 * * *", Duration: spec.Duration(time.Hour), Pos: spec.Pos{File: "policy.yaml", Line: 7, Col: 15}},
		{Kind: spec.WindowDeny, Schedule: "0 2 * * *", Duration: spec.Duration(time.Hour), TimeZone: "Mars/Olympus", Pos: spec.Pos{File: "policy.yaml", Line: 11, Col: 17}},
	}
	_, err := reconcile.NewPlan(desired, obs, now, opts)
	if err == nil {
		t.Fatal("bad windows were accepted")
	}
	for _, want := range []string{"policy.yaml:7:15: window schedule \"0 25 * * *\"", "policy.yaml:11:17: window time zone \"Mars/Olympus\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestPlanIgnoresObservedOrderAndKeepsInputs(t *testing.T) {
	desired, obs, now, opts := loadGolden(t, "unknown-node")
	want, err := reconcile.NewPlan(desired, obs, now, opts)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := json.Marshal(desired)
	shuffled := *obs
	shuffled.Nodes = slices.Clone(obs.Nodes)
	slices.Reverse(shuffled.Nodes)
	orderBefore := slices.Clone(shuffled.Nodes)
	got, err := reconcile.NewPlan(desired, &shuffled, now, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Error("the observed node order changed the plan")
	}
	if !reflect.DeepEqual(shuffled.Nodes, orderBefore) {
		t.Error("the planner reordered its input")
	}
	if after, _ := json.Marshal(desired); string(after) != string(before) {
		t.Error("the planner modified the desired fleet")
	}
}

func TestPlanJSONRoundTrip(t *testing.T) {
	desired, obs, now, opts := loadGolden(t, "window-closed")
	p, err := reconcile.NewPlan(desired, obs, now, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var back plans.Plan
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, p) {
		t.Errorf("plan changed through JSON:\n%s", b)
	}
	if back.FormatVersion != plans.FormatVersion || back.ObservedFingerprint != obs.Fingerprint() || back.DesiredDigest != desired.Digest() {
		t.Errorf("header: %+v", back)
	}
}

func TestAppliedDigestsMakeDrift(t *testing.T) {
	desired, obs, now, _ := loadGolden(t, "drift-report")
	// Without history the same difference is an ordinary change.
	p, err := reconcile.NewPlan(desired, obs, now, reconcile.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c, ok := p.Change("node/compute-01/fpga/pac0:program"); !ok || c.Drift {
		t.Fatalf("without history: program %+v, want a plain change", c)
	}
	// With a digest of an older desired state, it is a change too.
	p, err = reconcile.NewPlan(desired, obs, now, reconcile.Options{Applied: map[string]string{"node/compute-01/fpga/pac0": "0123456789abcdef"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Change("node/compute-01/fpga/pac0:drift"); ok {
		t.Fatal("a changed repository was taken for drift")
	}
	// With the current digest, it is drift, reported only.
	p, err = reconcile.NewPlan(desired, obs, now, reconcile.Options{Applied: reconcile.CardDigests(desired)})
	if err != nil {
		t.Fatal(err)
	}
	c, ok := p.Change("node/compute-01/fpga/pac0:drift")
	if !ok || c.Action != plans.ActionReport || c.Runnable() {
		t.Fatalf("drift: %+v, want a report", c)
	}
}

func TestPlanLeavesOwnedNodesToTheirBackend(t *testing.T) {
	desired, obs, now, opts := loadGolden(t, "owned-node-left-to-its-backend")
	if opts.Owned["compute-01"] != "openstack" {
		t.Fatal("the case does not give compute-01 to a backend")
	}
	p, err := reconcile.NewPlan(desired, obs, now, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.Owned["openstack"], []string{"compute-01"}) {
		t.Errorf("Owned = %v, want openstack: [compute-01]", p.Owned)
	}
	for _, c := range p.Changes {
		if c.Node == "compute-01" {
			t.Errorf("a change for the cloud-managed node: %s", c.ID)
		}
	}
	if p.Summary.Program != 1 || p.Summary.Attach != 1 {
		t.Errorf("the libvirt node's changes: %+v", p.Summary)
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"owned":{"openstack":["compute-01"]}`) {
		t.Errorf("the JSON plan does not name the owned node: %s", data)
	}
}
