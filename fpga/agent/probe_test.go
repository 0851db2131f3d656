package agent_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

// The agent probes only its own loopback, follows no redirect, and
// answers a probe that got no answer as a result, not an API error.
func TestProbe(t *testing.T) {
	workload := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/healthz/pac0":
			w.WriteHeader(http.StatusOK)
		case "/away":
			http.Redirect(w, r, "http://192.0.2.1/", http.StatusFound)
		default:
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer workload.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	srv := httptest.NewServer(agent.NewHandler(agenttest.NewMemHost(), agent.Server{}))
	defer srv.Close()

	for _, tc := range []struct {
		name, url  string
		timeoutMS  int
		wantCode   int
		wantStatus int
		wantErr    string
	}{
		{"healthy", workload.URL + "/healthz/pac0", 0, 200, 200, ""},
		{"unhealthy", workload.URL + "/healthz/pac1", 0, 200, 503, ""},
		{"redirect not followed", workload.URL + "/away", 0, 200, 302, ""},
		{"nothing listening", closed.URL + "/healthz", 0, 200, 0, "connection refused"},
		{"off the loopback", "http://192.0.2.1/healthz", 0, 400, 0, "is not the node's loopback"},
		{"localhost by name", strings.Replace(workload.URL, "127.0.0.1", "localhost", 1) + "/healthz/pac0", 0, 200, 200, ""},
		{"https", "https://127.0.0.1/", 0, 400, 0, "want http://"},
		{"credentials", "http://user:pw@127.0.0.1/", 0, 400, 0, "without credentials"},
		{"timeout too long", workload.URL + "/", 60_000, 400, 0, "timeoutMs 60000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, _ := json.Marshal(agent.ProbeRequest{URL: tc.url, TimeoutMS: tc.timeoutMS})
			resp, err := http.Post(srv.URL+agent.PathProbe, "application/json", bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw map[string]any
			json.NewDecoder(resp.Body).Decode(&raw)
			text, _ := json.Marshal(raw)
			if resp.StatusCode != tc.wantCode {
				t.Fatalf("HTTP %d, want %d: %s", resp.StatusCode, tc.wantCode, text)
			}
			if got, _ := raw["status"].(float64); int(got) != tc.wantStatus {
				t.Errorf("probe status %v, want %d: %s", raw["status"], tc.wantStatus, text)
			}
			if tc.wantErr != "" && !strings.Contains(string(text), tc.wantErr) {
				t.Errorf("answer %s lacks %q", text, tc.wantErr)
			}
		})
	}
}
