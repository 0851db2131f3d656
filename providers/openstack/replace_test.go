package openstack

import (
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
			wantErr: []string{"vm-a", "went to ERROR", "No valid host was found"}, wantReads: 2},
		{name: "still building at the timeout", tag: "f", polls: 1 << 30, timeout: 30 * time.Millisecond,
			wantErr: []string{"vm-a", "still BUILD after 30ms"}, wantReads: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newE2E(t, tc.tag)
			e.cloud.BootPolls, e.cloud.BootFault = tc.polls, tc.fault
			b := e.backend(Options{BootTimeout: tc.timeout})
			res := applyAll(t, b, e.fleet, e.plan(t, b), nil)
			got, ok := res["node/compute-01/vm/vm-a:replace"]
			if !ok || got == "skipped" {
				t.Fatalf("vm-a's replacement did not run: %v", res)
			}
			if tc.wantErr == nil && got != "" {
				t.Fatalf("replace: %s", got)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(got, w) {
					t.Errorf("error %q lacks %q", got, w)
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
