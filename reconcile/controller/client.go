package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fpgaops/fpgaops/reconcile/state"
)

// ErrNotTriggered is returned by Client.Reconcile when the controller took
// no run, because it is suspended.
var ErrNotTriggered = errors.New("no run triggered")

// Client speaks to a running controller's HTTP API: `fpgaops status
// --server`, `suspend`, `resume`, `reconcile` and `approve`.
type Client struct {
	// Server is the controller's base URL (http://ADDR).
	Server string
	// Token is the admin bearer token; only the admin endpoints send it,
	// and it never appears in an error.
	Token []byte
	HTTP  *http.Client
}

// NewClient is a client with a ten second timeout per request.
func NewClient(server string, token []byte) *Client {
	return &Client{
		Server: strings.TrimSuffix(server, "/"),
		Token:  token,
		HTTP:   &http.Client{Timeout: 10 * time.Second},
	}
}

// Status is GET /status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, "GET", "/status", false, &st)
	return st, err
}

// Suspend is POST /suspend; it returns the status after the change.
func (c *Client) Suspend(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, "POST", "/suspend", true, &st)
	return st, err
}

// Resume is POST /resume; it returns the status after the change.
func (c *Client) Resume(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, "POST", "/resume", true, &st)
	return st, err
}

// Approve is POST /runs/{id}/approve; it returns the status after it.
func (c *Client) Approve(ctx context.Context, run uint64) (Status, error) {
	var st Status
	err := c.do(ctx, "POST", fmt.Sprintf("/runs/%d/approve", run), true, &st)
	return st, err
}

// Reconcile is POST /reconcile. It fails with ErrNotTriggered when the
// controller is suspended.
func (c *Client) Reconcile(ctx context.Context) error {
	var a hookAnswer
	if err := c.do(ctx, "POST", "/reconcile", true, &a); err != nil {
		return err
	}
	if !a.Triggered {
		return fmt.Errorf("controller %s: %w: %s", c.Server, ErrNotTriggered, a.Message)
	}
	return nil
}

// RunsToWaitFor is how many runs must be recorded after before for the
// run a trigger asks for to have finished: the loop finishes the run in
// flight first, and the triggered run comes after it.
func RunsToWaitFor(before Status) uint64 {
	if c, ok := before.Condition(Reconciling); ok && c.Status == "True" {
		return 2
	}
	return 1
}

// WaitRun polls the status every poll until the loop has recorded n runs
// after the run whose ID is after, and no run is in flight, and returns
// the last run. It ends with ctx.
func (c *Client) WaitRun(ctx context.Context, after, n uint64, poll time.Duration) (state.Run, error) {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		st, err := c.Status(ctx)
		if err != nil {
			return state.Run{}, err
		}
		busy := false
		if rc, ok := st.Condition(Reconciling); ok && rc.Status == "True" {
			busy = true
		}
		if st.LastRun != nil && st.LastRun.ID >= after+n && !busy {
			return *st.LastRun, nil
		}
		select {
		case <-ctx.Done():
			return state.Run{}, fmt.Errorf("controller %s: waiting for the run: %w", c.Server, ctx.Err())
		case <-t.C:
		}
	}
}

// do sends one request and decodes a 2xx answer's JSON into out. Errors
// name the server, the request and the HTTP status, with the first line
// of the answer's body.
func (c *Client) do(ctx context.Context, method, path string, admin bool, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Server+path, nil)
	if err != nil {
		return fmt.Errorf("controller %s: %w", c.Server, err)
	}
	if admin {
		if len(c.Token) == 0 {
			return fmt.Errorf("controller %s: %s %s: no admin token", c.Server, method, path)
		}
		req.Header.Set("Authorization", "Bearer "+string(c.Token))
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// url.Error names the method and URL already; the token is in a
		// header, never in it.
		return fmt.Errorf("controller %s: %w", c.Server, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		msg, _, _ := strings.Cut(strings.TrimSpace(string(body)), "\n")
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("controller %s: %s %s: %s%s", c.Server, method, path, resp.Status, msg)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("controller %s: %s %s: answer: %w", c.Server, method, path, err)
	}
	return nil
}
