package controller

import (
	"sync"
	"time"
)

// deliveries remembers the webhook deliveries that triggered a run, by
// their provider's delivery ID, for a window, so that the same delivery
// sent again asks for no second run. The oldest are forgotten first, and
// past a bound, sooner than the window.
type deliveries struct {
	window time.Duration
	max    int

	mu    sync.Mutex
	seen  map[string]time.Time
	order []delivery // by arrival, which is also expiry order
}

type delivery struct {
	key string
	at  time.Time
}

func newDeliveries(window time.Duration, max int) *deliveries {
	return &deliveries{window: window, max: max, seen: map[string]time.Time{}}
}

// first records a delivery and reports whether it is the first within
// the window; when not, it returns when the first arrived.
func (d *deliveries) first(provider, id string, now time.Time) (bool, time.Time) {
	key := provider + "/" + id
	d.mu.Lock()
	defer d.mu.Unlock()
	d.expire(now)
	if at, ok := d.seen[key]; ok {
		return false, at
	}
	for len(d.order) >= d.max {
		d.forgetOldest()
	}
	d.seen[key] = now
	d.order = append(d.order, delivery{key, now})
	return true, time.Time{}
}

func (d *deliveries) expire(now time.Time) {
	for len(d.order) > 0 && now.Sub(d.order[0].at) >= d.window {
		d.forgetOldest()
	}
}

func (d *deliveries) forgetOldest() {
	delete(d.seen, d.order[0].key)
	d.order[0] = delivery{}
	d.order = d.order[1:]
	// Let the slice's old front go once it is most of the array.
	if cap(d.order) > 64 && len(d.order) < cap(d.order)/4 {
		d.order = append([]delivery(nil), d.order...)
	}
}
