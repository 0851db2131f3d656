package agent_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/fpga/agent/agenttest"
)

// TestClientNames shows which client certificates an agent started with
// --client-name accepts.
func TestClientNames(t *testing.T) {
	p := agenttest.NewPKI(t, "fleet")
	other := agenttest.NewPKI(t, "other")
	type files struct{ cert, key string }
	issue := func(p *agenttest.PKI, cn string, dns []string, uris ...string) files {
		c, k := p.IssueClient(t, cn, dns, uris...)
		return files{c, k}
	}
	var (
		plain    = files{p.ClientCert, p.ClientKey} // CN "client", no SANs
		dnsSAN   = issue(p, "x", []string{"controller.fleet.example"})
		uriSAN   = issue(p, "x", nil, "spiffe://fleet/controller")
		cnAndSAN = issue(p, "controller", []string{"other.fleet.example"})
		wildcard = issue(p, "x", []string{"*.fleet.example"})
		foreign  = issue(other, "controller", []string{"controller.fleet.example"})
	)
	tests := []struct {
		name  string
		names []string
		cert  files
		ok    bool
	}{
		{"no names: any certificate the CA signed", nil, plain, true},
		{"common name of a certificate without SANs", []string{"client"}, plain, true},
		{"common name not accepted", []string{"controller"}, plain, false},
		{"DNS SAN", []string{"controller.fleet.example"}, dnsSAN, true},
		{"DNS SAN in another case", []string{"Controller.Fleet.Example"}, dnsSAN, true},
		{"one of several names", []string{"backup.fleet.example", "controller.fleet.example"}, dnsSAN, true},
		{"URI SAN", []string{"spiffe://fleet/controller"}, uriSAN, true},
		{"URI SAN must match whole", []string{"spiffe://fleet/control"}, uriSAN, false},
		{"common name ignored when there are SANs", []string{"controller"}, cnAndSAN, false},
		{"a wildcard SAN matches only itself", []string{"a.fleet.example"}, wildcard, false},
		{"the right name from another CA", []string{"controller.fleet.example"}, foreign, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := agent.ServerTLS(p.ServerCert, p.ServerKey, p.CAFile, tt.names...)
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(agent.NewHandler(agenttest.NewMemHost(), agent.Server{}))
			srv.TLS = conf
			srv.StartTLS()
			t.Cleanup(srv.Close)

			cert, err := tls.LoadX509KeyPair(tt.cert.cert, tt.cert.key)
			if err != nil {
				t.Fatal(err)
			}
			pool, err := agent.LoadPool(p.CAFile)
			if err != nil {
				t.Fatal(err)
			}
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
				RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			}}}
			resp, err := c.Get(srv.URL + agent.PathInventory)
			if err == nil {
				resp.Body.Close()
			}
			if got := err == nil && resp.StatusCode == 200; got != tt.ok {
				t.Fatalf("inventory answered = %v (err %v); want %v", got, err, tt.ok)
			}
		})
	}
}
