package openstack

import (
	"context"
	"strings"
	"testing"
	"time"
)

// A replaced server counts as done only once Nova reports it ACTIVE; ERROR
// and a boot that outlasts the timeout are failures naming the server.
func TestReplaceServerWaitsUntilActive(t *testing.T) {
	tests := []struct {
		name      string
		tag       string
		polls     int
		fault     string
		timeout   time.Duration
		wantErr   []string
		wantReads int // reads of the new server, at least
	}{
		{name: "active after three reads in BUILD", tag: "d", polls: 3, timeout: time.Minute, wantReads: 4},
		{name: "error with a fault", tag: "e", polls: 1, fault: "No valid host was found. There are not enough hosts available.", timeout: time.Minute,
			wantErr: []string{"server/compute-01/vm-a", "vm-a", "went to ERROR", "No valid host was found"}, wantReads: 2},
		{name: "still building at the timeout", tag: "f", polls: 1 << 30, timeout: 30 * time.Millisecond,
			wantErr: []string{"vm-a", "still BUILD after 30ms"}, wantReads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			e := newE2E(t, tc.tag)
			e.cloud.BootPolls, e.cloud.BootFault = tc.polls, tc.fault
			c, err := Connect(ctx, Options{Cloud: "lab", CloudsFile: e.clouds})
			if err != nil {
				t.Fatal(err)
			}
			p := New(c, nil)
			st, err := p.Observe(ctx, e.fleet)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Apply(ctx, st, Plan(e.fleet, st), ApplyOptions{Fleet: e.fleet, AllowDisruptive: true,
				PollInterval: time.Millisecond, BootTimeout: tc.timeout})
			var outcome Outcome
			for _, r := range res {
				if r.Action == ReplaceServer {
					outcome = r.Outcome
				}
			}
			if tc.wantErr == nil {
				if err != nil || outcome != Applied {
					t.Fatalf("apply: %v, replace %s", err, outcome)
				}
			} else {
				if err == nil || outcome != Failed {
					t.Fatalf("apply: %v, replace %s: want a failure", err, outcome)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
			}
			var newID, status string
			for _, s := range e.cloud.Servers() {
				if s.Name == "vm-a" {
					newID, status = s.ID, s.Status
				}
			}
			if newID == "" || newID == e.vmA {
				t.Fatalf("vm-a was not booted again")
			}
			reads := 0
			for _, r := range e.cloud.Requests() {
				if r == "GET /compute/v2.1/servers/"+newID {
					reads++
				}
			}
			if reads < tc.wantReads {
				t.Errorf("the new server was read %d times, want at least %d", reads, tc.wantReads)
			}
			if tc.wantErr == nil && status != "ACTIVE" {
				t.Errorf("vm-a is %s after apply", status)
			}
		})
	}
}
