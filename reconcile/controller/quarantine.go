package controller

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// serveQuarantine answers GET /quarantine: the quarantined cards.
func (c *Controller) serveQuarantine(w http.ResponseWriter, _ *http.Request) {
	qs, err := c.opts.Store.Quarantined()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if qs == nil {
		qs = []state.Quarantine{}
	}
	writeJSON(w, http.StatusOK, qs)
}

// serveRelease answers POST /quarantine/release?card=ID...: it releases
// the named cards, or with all=true every card, and answers with those it
// released. The next run may give them work again.
func (c *Controller) serveRelease(w http.ResponseWriter, r *http.Request) {
	cards := r.URL.Query()["card"]
	all := r.URL.Query().Get("all") == "true"
	if len(cards) == 0 && !all {
		http.Error(w, "name the cards to release (card=node/N/fpga/SLOT) or all=true", http.StatusBadRequest)
		return
	}
	if all {
		cards = nil
	}
	released, err := c.opts.Store.Release(cards...)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	c.opts.Log.Info("quarantine released", "cards", len(released))
	if qs, err := c.opts.Store.Quarantined(); err == nil {
		c.metrics.setQuarantine(qs)
	}
	if released == nil {
		released = []state.Quarantine{}
	}
	writeJSON(w, http.StatusOK, released)
}

// Quarantined is GET /quarantine.
func (c *Client) Quarantined(ctx context.Context) ([]state.Quarantine, error) {
	var qs []state.Quarantine
	err := c.do(ctx, "GET", "/quarantine", false, &qs)
	return qs, err
}

// Release is POST /quarantine/release: the named cards, or every card
// when none is named. It returns those released.
func (c *Client) Release(ctx context.Context, cards ...string) ([]state.Quarantine, error) {
	q := url.Values{}
	for _, card := range cards {
		q.Add("card", card)
	}
	if len(cards) == 0 {
		q.Set("all", "true")
	}
	var out []state.Quarantine
	if err := c.do(ctx, "POST", "/quarantine/release?"+q.Encode(), true, &out); err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return out, nil
}
