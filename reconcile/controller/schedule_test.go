package controller

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestNextRun(t *testing.T) {
	now := time.Date(2026, 3, 2, 10, 7, 0, 0, time.UTC)
	hourly, err := cron.ParseStandard("0 * * * *")
	if err != nil {
		t.Fatal(err)
	}
	every := cron.Every(10 * time.Minute)
	tests := []struct {
		name     string
		sched    cron.Schedule
		failures int
		jitter   time.Duration
		want     time.Time
		why      string
	}{
		{"interval", every, 0, 0, now.Add(10 * time.Minute), "schedule"},
		{"cron", hourly, 0, 0, time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC), "schedule"},
		{"cron with jitter", hourly, 0, 90 * time.Second, time.Date(2026, 3, 2, 11, 1, 30, 0, time.UTC), "schedule"},
		{"first retry", hourly, 1, 0, now.Add(30 * time.Second), "retry"},
		{"backoff doubles", hourly, 3, 0, now.Add(2 * time.Minute), "retry"},
		{"backoff capped", hourly, 10, 0, now.Add(5 * time.Minute), "retry"},
		{"schedule sooner than retry", every, 10, 0, now.Add(5 * time.Minute), "retry"},
		{"retry never later than schedule", cron.Every(time.Minute), 3, 0, now.Add(time.Minute), "schedule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := nextRun(now, tt.sched, tt.failures, 30*time.Second, 5*time.Minute, tt.jitter)
			if !got.Equal(tt.want) || why != tt.why {
				t.Fatalf("nextRun = %s (%s), want %s (%s)", got, why, tt.want, tt.why)
			}
		})
	}
}
