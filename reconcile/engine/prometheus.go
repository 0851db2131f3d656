package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Prometheus answers a rollout's Prometheus checks: instant queries
// against the HTTP API of a Prometheus server.
type Prometheus struct {
	// URL is the server's base URL ("http://prometheus:9090").
	URL string
	// HTTP carries the queries; nil means a client with a 10 s timeout.
	HTTP *http.Client
}

// maxQueryAnswer bounds the answer read: a check's result is small.
const maxQueryAnswer = 4 << 20

// Holds runs query at the current time and returns nil when its result
// is not empty (a vector or matrix with a series, a scalar other than 0):
// the condition the query writes holds. The error says why not.
func (p *Prometheus) Holds(ctx context.Context, query string) error {
	if p == nil || p.URL == "" {
		return errors.New("no Prometheus server is configured for the rollout's checks (--prometheus-url)")
	}
	hc := p.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	u := strings.TrimSuffix(p.URL, "/") + "/api/v1/query?" + url.Values{"query": {query}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("query %q: %w", query, err)
	}
	defer resp.Body.Close()
	var ans struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxQueryAnswer)).Decode(&ans); err != nil {
		return fmt.Errorf("query %q: HTTP %d: %w", query, resp.StatusCode, err)
	}
	if ans.Status != "success" {
		return fmt.Errorf("query %q: %s", query, ans.Error)
	}
	switch ans.Data.ResultType {
	case "vector", "matrix":
		var series []json.RawMessage
		if err := json.Unmarshal(ans.Data.Result, &series); err != nil {
			return fmt.Errorf("query %q: %w", query, err)
		}
		if len(series) == 0 {
			return fmt.Errorf("query %q returned nothing: the condition does not hold", query)
		}
	case "scalar":
		var v [2]any
		if err := json.Unmarshal(ans.Data.Result, &v); err != nil {
			return fmt.Errorf("query %q: %w", query, err)
		}
		if s, _ := v[1].(string); s == "0" {
			return fmt.Errorf("query %q returned 0: the condition does not hold", query)
		}
	default:
		return fmt.Errorf("query %q returned a %s; want a vector or a scalar", query, ans.Data.ResultType)
	}
	return nil
}
