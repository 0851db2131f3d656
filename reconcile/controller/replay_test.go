package controller

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock for the controller.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// TestReplayedDeliveries sends deliveries in turn to one controller: a
// delivery ID that already triggered a run answers 200 and triggers
// nothing, within the replay window.
func TestReplayedDeliveries(t *testing.T) {
	body := `{"ref":"refs/heads/main"}`
	github := func(id string) map[string]string {
		return map[string]string{"X-Hub-Signature-256": githubSig(body), "X-GitHub-Event": "push", "X-GitHub-Delivery": id}
	}
	gitlab := func(id string) map[string]string {
		return map[string]string{"X-Gitlab-Token": secret, "X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": id}
	}
	const (
		id1 = "72d3162e-cc78-11e3-81ab-4c9367dc0958"
		id2 = "0b8f2b4e-5d3c-4c1e-9a7f-2e6d8c4b1a90"
	)
	type send struct {
		what    string
		path    string
		hdr     map[string]string
		wait    time.Duration // advance the clock first
		code    int
		trigger bool
	}
	tests := []struct {
		name  string
		sends []send
	}{
		{"GitHub delivery sent twice", []send{
			{"first", "/hooks/github", github(id1), 0, 202, true},
			{"again", "/hooks/github", github(id1), 0, 200, false},
			{"another delivery", "/hooks/github", github(id2), 0, 202, true},
		}},
		{"GitLab delivery sent twice", []send{
			{"first", "/hooks/gitlab", gitlab(id1), 0, 202, true},
			{"again", "/hooks/gitlab", gitlab(id1), 0, 200, false},
		}},
		{"one ID from both providers", []send{
			{"GitHub", "/hooks/github", github(id1), 0, 202, true},
			{"GitLab", "/hooks/gitlab", gitlab(id1), 0, 202, true},
		}},
		{"replayed after the window", []send{
			{"first", "/hooks/github", github(id1), 0, 202, true},
			{"within the window", "/hooks/github", github(id1), DefaultReplayWindow - time.Second, 200, false},
			{"after the window", "/hooks/github", github(id1), time.Second, 202, true},
		}},
		{"a refused delivery does not use up its ID", []send{
			{"bad signature", "/hooks/github", map[string]string{"X-Hub-Signature-256": githubSig(body + "x"), "X-GitHub-Event": "push", "X-GitHub-Delivery": id1}, 0, 401, false},
			{"good one", "/hooks/github", github(id1), 0, 202, true},
		}},
		{"without a delivery ID, each delivery counts", []send{
			{"first", "/hooks/github", github(""), 0, 202, true},
			{"second", "/hooks/github", github(""), 0, 202, true},
		}},
		{"delivery ID too long", []send{
			{"long", "/hooks/github", github(strings.Repeat("a", maxDeliveryID+1)), 0, 400, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{now: time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)}
			h := newHarness(t, "", func(o *Options) { o.Now = clk.Now })
			for _, s := range tt.sends {
				clk.advance(s.wait)
				code, answer := h.post(s.path, s.hdr, body)
				if code != s.code {
					t.Fatalf("%s: %d %s; want %d", s.what, code, answer, s.code)
				}
				triggered := false
				select {
				case <-h.c.triggers:
					triggered = true
				default:
				}
				if triggered != s.trigger {
					t.Fatalf("%s: triggered = %v; want %v (answer %s)", s.what, triggered, s.trigger, answer)
				}
				if code == http.StatusOK && !strings.Contains(answer, "already taken") {
					t.Fatalf("%s: answer %s; want it to say the delivery was already taken", s.what, answer)
				}
			}
		})
	}
}

func TestDeliveriesAreBounded(t *testing.T) {
	t0 := time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC)
	d := newDeliveries(time.Hour, 3)
	for i, id := range []string{"a", "b", "c", "d"} {
		if first, _ := d.first("github", id, t0.Add(time.Duration(i)*time.Minute)); !first {
			t.Fatalf("%s: not first", id)
		}
	}
	if len(d.seen) != 3 || len(d.order) != 3 {
		t.Fatalf("holds %d (%d in order); want 3", len(d.seen), len(d.order))
	}
	// "a" was forgotten to make room; "d" is remembered.
	if first, _ := d.first("github", "a", t0.Add(5*time.Minute)); !first {
		t.Fatal("the oldest was not forgotten past the bound")
	}
	if first, at := d.first("github", "d", t0.Add(6*time.Minute)); first || !at.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("d: first = %v at %s; want remembered from %s", first, at, t0.Add(3*time.Minute))
	}
	// An hour on, all have expired.
	d.first("github", "e", t0.Add(2*time.Hour))
	if len(d.seen) != 1 {
		t.Fatalf("holds %d after the window; want only the newest", len(d.seen))
	}
}
