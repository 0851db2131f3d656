package reconcile_test

import (
	"encoding/json"
	"testing"

	"github.com/fpgaops/fpgaops/plans"

	"github.com/fpgaops/fpgaops/reconcile"
)

// TestRestartInPlanJSON: a change that takes effect only at a VM's
// restart says so in the plan's JSON ("restart": "wait" or "restart"),
// and what must not run before the restart is held with gate restart.
func TestRestartInPlanJSON(t *testing.T) {
	type want struct {
		restart    string // the change's "restart" field
		gate       string // its held.gate, "" when it runs
		disruptive bool
	}
	const (
		detach  = "node/compute-01/fpga/pac0/vf0/vm/vnf-a:detach"
		vfsOff  = "node/compute-01/fpga/pac0:vfs-off"
		program = "node/compute-01/fpga/pac0:program"
		attach  = "node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach"
	)
	cases := []struct {
		name    string
		changes map[string]want
		waves   int
	}{
		{
			name: "restart-wait-bitstream-change",
			changes: map[string]want{
				detach:  {restart: "wait", gate: "dependency", disruptive: true},
				vfsOff:  {gate: "restart"},
				program: {gate: "dependency"},
				attach:  {restart: "wait", gate: "dependency"},
			},
		},
		{
			name: "restart-vm-bitstream-change",
			changes: map[string]want{
				detach:  {restart: "restart", disruptive: true},
				vfsOff:  {},
				program: {},
				attach:  {restart: "restart", disruptive: true},
			},
			// One VM restarted twice is one disrupted VM: the budget of
			// one fits the whole card in one wave.
			waves: 1,
		},
		{
			name: "restart-vm-window-closed",
			changes: map[string]want{
				detach:  {restart: "wait", gate: "window", disruptive: true},
				program: {gate: "dependency"},
			},
		},
		{
			name:    "restart-wait-attach",
			changes: map[string]want{attach: {restart: "wait"}},
			waves:   1,
		},
		{
			name:    "restart-pending-attach",
			changes: map[string]want{attach: {restart: "wait"}},
			waves:   1,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			desired, obs, now, opts := loadGolden(t, tc.name)
			p, err := reconcile.NewPlan(desired, obs, now, opts)
			if err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var doc struct {
				Waves   int `json:"waves"`
				Changes []struct {
					ID         string `json:"id"`
					Restart    string `json:"restart"`
					Disruptive bool   `json:"disruptive"`
					Held       *struct {
						Gate string `json:"gate"`
					} `json:"held"`
				} `json:"changes"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatal(err)
			}
			if doc.Waves != tc.waves {
				t.Errorf("waves = %d, want %d", doc.Waves, tc.waves)
			}
			seen := map[string]bool{}
			for _, c := range doc.Changes {
				w, ok := tc.changes[c.ID]
				if !ok {
					continue
				}
				seen[c.ID] = true
				gate := ""
				if c.Held != nil {
					gate = c.Held.Gate
				}
				got := want{restart: c.Restart, gate: gate, disruptive: c.Disruptive}
				if got != w {
					t.Errorf("%s: got %+v, want %+v", c.ID, got, w)
				}
			}
			for id := range tc.changes {
				if !seen[id] {
					t.Errorf("no change %s in the plan", id)
				}
			}
		})
	}
}

// TestRestartNeverForProtectedVM: vmRestart on and no window closed, yet a
// VM named by a protected binding is not restarted: its change waits.
func TestRestartNeverForProtectedVM(t *testing.T) {
	const attach = "node/compute-01/fpga/pac0/vf0/vm/vnf-a:attach"
	for _, tc := range []struct {
		name      string
		protected bool
		want      plans.Restart
	}{
		{"unprotected", false, plans.RestartVM},
		{"protected", true, plans.RestartWait},
	} {
		t.Run(tc.name, func(t *testing.T) {
			desired, obs, now, opts := loadGolden(t, "restart-wait-attach")
			desired.Policy.VMRestart = true
			desired.Bindings[0].Protected = tc.protected
			p, err := reconcile.NewPlan(desired, obs, now, opts)
			if err != nil {
				t.Fatal(err)
			}
			c, ok := p.Change(attach)
			if !ok {
				t.Fatalf("no change %s", attach)
			}
			if c.Restart != tc.want || c.Held != nil || c.Disruptive != (tc.want == plans.RestartVM) {
				t.Errorf("restart %q held %+v disruptive %v, want restart %q, not held", c.Restart, c.Held, c.Disruptive, tc.want)
			}
		})
	}
}
