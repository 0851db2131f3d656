package agent

import (
	"crypto/tls"
	"fmt"

	agentapi "github.com/fpgaops/fpgaops/fpga/agent"
)

// ClientTLS is the controller's TLS configuration: its client certificate
// and the CA that signed the agents' certificates. An empty caFile means
// the system roots; empty cert and key mean no client certificate.
func ClientTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := agentapi.LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("agent CA: %w", err)
		}
		c.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}
