package agent

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
	"github.com/fpgaops/fpgaops/spec"
)

// TLSFiles say how the controller authenticates to agents and checks
// them: its client certificate and key, and the CA that signed the
// agents' certificates ("" means the system roots).
type TLSFiles struct {
	Cert, Key, CA string
}

// Transport is how the controller reaches agents.
type Transport struct {
	TLS TLSFiles
	// Insecure allows plain-HTTP endpoints, on loopback only: the
	// simulated fleet.
	Insecure bool
	// Concurrency is how many requests may be in flight at once; it sizes
	// the connection pool.
	Concurrency int
}

// CheckEndpoints refuses every node the controller must not talk to, all
// at once: no endpoint, not a URL, or plain HTTP without Insecure or off
// loopback.
func (t Transport) CheckEndpoints(nodes []spec.Node) error {
	var errs []error
	for i := range nodes {
		if err := t.checkEndpoint(&nodes[i]); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (t Transport) checkEndpoint(n *spec.Node) error {
	if n.Endpoint == "" {
		return fmt.Errorf("node %s: no endpoint", n.Name)
	}
	u, err := url.Parse(n.Endpoint)
	if err != nil {
		return fmt.Errorf("node %s: endpoint: %w", n.Name, err)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if !t.Insecure {
			return fmt.Errorf("node %s: endpoint %s is plain HTTP; pass --insecure to allow it on loopback", n.Name, u.Redacted())
		}
		if !agentapi.IsLoopbackHost(u.Hostname()) {
			return fmt.Errorf("node %s: endpoint %s: plain HTTP is allowed only on loopback", n.Name, u.Redacted())
		}
		return nil
	}
	return fmt.Errorf("node %s: endpoint %s: want an https URL", n.Name, u.Redacted())
}

// HTTPClient builds the client that carries requests to agents, with the
// controller's certificate and the agents' CA.
func (t Transport) HTTPClient() (*http.Client, error) {
	conf, err := ClientTLS(t.TLS.Cert, t.TLS.Key, t.TLS.CA)
	if err != nil {
		return nil, err
	}
	conc := max(t.Concurrency, 1)
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     conf,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
		// A simulated fleet is one host:port for every node: keep a
		// connection per concurrent request.
		MaxIdleConns:        conc * 2,
		MaxIdleConnsPerHost: conc * 2,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Transport: tr}, nil
}
