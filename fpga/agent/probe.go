package agent

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// PathProbe is where a controller asks the agent to make a rollout's HTTP
// check on the node.
const PathProbe = "/v1/probe"

// ProbeRequest is the body of POST /v1/probe.
type ProbeRequest struct {
	// URL is an http:// URL on the node's loopback.
	URL string `json:"url"`
	// TimeoutMS bounds the request; 0 means DefaultProbeTimeout.
	TimeoutMS int `json:"timeoutMs,omitempty"`
}

// ProbeResult is how the probe went: the HTTP status, or why there was
// none. A probe that got no answer is a result, not an API error.
type ProbeResult struct {
	Status int    `json:"status,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Bounds of a probe.
const (
	DefaultProbeTimeout = 2 * time.Second
	MaxProbeTimeout     = 30 * time.Second
	// maxProbeBody is how much of the answer is read, so that the
	// connection can be reused; the rest is dropped.
	maxProbeBody = 64 << 10
)

// CheckProbeURL refuses a probe anywhere but the node's loopback: the
// agent must not be a way into the network it sits on.
func CheckProbeURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("probe url: %w", err)
	}
	if u.Scheme != "http" || u.User != nil {
		return fmt.Errorf("probe url %q: want http:// on the node's loopback, without credentials", raw)
	}
	switch h := u.Hostname(); h {
	case "localhost":
	default:
		ip := net.ParseIP(h)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("probe url %q: host %q is not the node's loopback (127.0.0.1, localhost or [::1])", raw, h)
		}
	}
	return nil
}

// probeClient makes probes: no proxy, no redirects (a redirect could lead
// off the loopback).
var probeClient = &http.Client{
	Transport: &http.Transport{Proxy: nil, DialContext: (&net.Dialer{Timeout: MaxProbeTimeout}).DialContext, MaxIdleConnsPerHost: 4},
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func (s *Server) probe(w http.ResponseWriter, r *http.Request) {
	var req ProbeRequest
	if err := s.decode(w, r, &req); err != nil {
		s.fail(w, r, err)
		return
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	switch {
	case req.TimeoutMS < 0 || timeout > MaxProbeTimeout:
		s.fail(w, r, Errorf(http.StatusBadRequest, CodeBadRequest, "timeoutMs %d: want 0 to %d", req.TimeoutMS, MaxProbeTimeout.Milliseconds()))
		return
	case timeout == 0:
		timeout = DefaultProbeTimeout
	}
	if err := CheckProbeURL(req.URL); err != nil {
		s.fail(w, r, Errorf(http.StatusBadRequest, CodeBadRequest, "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, Probe(r.Context(), req.URL, timeout))
}

// Probe makes one GET of a checked URL within timeout.
func Probe(ctx context.Context, url string, timeout time.Duration) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ProbeResult{Error: err.Error()}
	}
	resp, err := probeClient.Do(req)
	if err != nil {
		return ProbeResult{Error: err.Error()}
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxProbeBody))
	return ProbeResult{Status: resp.StatusCode}
}
