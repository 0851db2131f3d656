package agent_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

const cardPCI = agenttest.CardPCI

func TestErrorsAreJSON(t *testing.T) {
	srv := httptest.NewServer(agent.NewHandler(agenttest.NewMemHost(), agent.Server{MaxJSONBytes: 16}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"unknown path", "GET", "/v2/inventory", "", 404, agent.CodeNotFound},
		{"unclean path", "GET", "/v1//inventory", "", 404, agent.CodeNotFound},
		{"dot in the path", "GET", "/v1/cards/../inventory", "", 404, agent.CodeNotFound},
		{"JSON body over the limit", "PUT", "/v1/cards/" + cardPCI + "/vfs", `{"count": 1, "padding": "xxxxxxxxxxxxxxxx"}`, 413, agent.CodeTooLarge},
		{"unknown field", "PUT", "/v1/cards/" + cardPCI + "/vfs", `{"cnt":1}`, 400, agent.CodeBadRequest},
		{"program without a digest", "POST", "/v1/cards/" + cardPCI + "/program", "x", 400, agent.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			if tt.method == "POST" {
				req.Header.Set("Content-Type", "application/octet-stream")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var eb agent.ErrorBody
			if err := jsonDecode(resp, &eb); err != nil {
				t.Fatalf("answer is not a JSON error: %v", err)
			}
			if resp.StatusCode != tt.status || eb.Error == nil || eb.Error.Code != tt.code || eb.Error.Message == "" {
				t.Fatalf("got %d %+v; want %d with code %s and a message", resp.StatusCode, eb.Error, tt.status, tt.code)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	conf := &tls.Config{}
	tests := []struct {
		name     string
		addr     string
		tls      *tls.Config
		insecure bool
		ok       bool
	}{
		{"TLS on every interface", ":9443", conf, false, true},
		{"plain HTTP on IPv4 loopback", "127.0.0.1:9443", nil, true, true},
		{"plain HTTP on IPv6 loopback", "[::1]:9443", nil, true, true},
		{"plain HTTP on localhost", "localhost:9443", nil, true, true},
		{"plain HTTP on every interface", ":9443", nil, true, false},
		{"plain HTTP on a routable address", "10.0.0.5:9443", nil, true, false},
		{"neither TLS nor insecure", "127.0.0.1:9443", nil, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := agent.CheckListen(tt.addr, tt.tls, tt.insecure)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckListen(%q) = %v; want ok=%v", tt.addr, err, tt.ok)
			}
		})
	}
}
