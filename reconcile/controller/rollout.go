package controller

import (
	"context"
	"net/http"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
	"github.com/fpgaops/fpgaops/rollout"
)

// noteRollout takes in the rollout a run left: the status and its
// condition, the metrics, and the wake-up at the end of a step's bake.
// Callers hold c.mu.
func (c *Controller) noteRollout(r *rollout.State, next time.Time, now time.Time) {
	c.wake = next
	if r == nil {
		return
	}
	c.status.Rollout = r
	switch r.Phase {
	case rollout.Failed:
		c.status.setCondition(RolloutHealthy, "False", ReasonRolloutFailed, r.Summary()+": "+r.Failure.String(), now)
	case rollout.Aborted:
		c.status.setCondition(RolloutHealthy, "False", ReasonRolloutAborted, r.Summary(), now)
	case rollout.Complete:
		c.status.setCondition(RolloutHealthy, "True", ReasonRolloutComplete, r.Summary(), now)
	default:
		c.status.setCondition(RolloutHealthy, "True", ReasonRolloutProgressing, r.Summary(), now)
	}
	c.metrics.setRollout(r)
}

// RolloutControl changes what the operator says about the rollout: pause
// or resume it, or abort the rollout of the revision in progress. It
// takes effect at the next run, which it triggers.
func (c *Controller) RolloutControl(change func(ctl *state.RolloutControl, r *rollout.State)) (state.RolloutControl, error) {
	ctl, err := c.opts.Store.RolloutControl()
	if err != nil {
		return ctl, err
	}
	r, err := c.opts.Store.Rollout()
	if err != nil {
		return ctl, err
	}
	change(&ctl, r)
	if err := c.opts.Store.SetRolloutControl(ctl); err != nil {
		return ctl, err
	}
	c.log.Info("rollout control", "paused", ctl.Paused, "abort", ctl.Abort)
	c.Trigger("rollout")
	return ctl, nil
}

// RolloutAnswer is what the rollout endpoints answer: the rollout as the
// last run left it, and the operator's say.
type RolloutAnswer struct {
	Rollout *rollout.State       `json:"rollout"`
	Control state.RolloutControl `json:"control"`
}

func (c *Controller) serveRollout(w http.ResponseWriter, _ *http.Request) {
	r, err := c.opts.Store.Rollout()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	ctl, err := c.opts.Store.RolloutControl()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusOK, RolloutAnswer{Rollout: r, Control: ctl})
}

// serveRolloutControl answers POST /rollout/{pause,resume,abort}.
func (c *Controller) serveRolloutControl(change func(ctl *state.RolloutControl, r *rollout.State)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := c.RolloutControl(change); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		c.serveRollout(w, r)
	}
}

// The operator's changes.
var (
	pauseRollout  = func(ctl *state.RolloutControl, _ *rollout.State) { ctl.Paused = true }
	resumeRollout = func(ctl *state.RolloutControl, _ *rollout.State) { ctl.Paused = false }
	abortRollout  = func(ctl *state.RolloutControl, r *rollout.State) {
		if r != nil {
			ctl.Abort = r.Revision
		}
	}
)

// Rollout is GET /rollout.
func (c *Client) Rollout(ctx context.Context) (RolloutAnswer, error) {
	var a RolloutAnswer
	err := c.do(ctx, "GET", "/rollout", false, &a)
	return a, err
}

// RolloutAction is POST /rollout/ACTION (pause, resume, abort).
func (c *Client) RolloutAction(ctx context.Context, action string) (RolloutAnswer, error) {
	var a RolloutAnswer
	err := c.do(ctx, "POST", "/rollout/"+action, true, &a)
	return a, err
}
