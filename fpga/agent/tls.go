package agent

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

// ServerTLS is the agent's TLS configuration: its certificate, and the CA
// every client certificate must chain to. Clients without a valid
// certificate are refused during the handshake. With clientNames, so is a
// client whose certificate names none of them (see CertificateNamed);
// without, any certificate the CA signed is accepted.
func ServerTLS(certFile, keyFile, clientCAFile string, clientNames ...string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server certificate: %w", err)
	}
	pool, err := LoadPool(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("client CA: %w", err)
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	if len(clientNames) > 0 {
		names := slices.Clone(clientNames)
		// Runs after the chain is verified, on resumed sessions too.
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no client certificate")
			}
			leaf := cs.PeerCertificates[0]
			if !CertificateNamed(leaf, names) {
				return fmt.Errorf("client certificate %q (serial %s) names none of the accepted clients %s", leaf.Subject.CommonName, leaf.SerialNumber, strings.Join(names, ", "))
			}
			return nil
		}
	}
	return conf, nil
}

// CertificateNamed reports whether a client certificate carries one of
// names: as a DNS name or a URI (such as spiffe://fleet/controller) among
// its subject alternative names, or, only for a certificate that has no
// subject alternative name at all, as its subject's common name. Names
// compare exactly (DNS names without regard to case); a wildcard matches
// only itself.
func CertificateNamed(cert *x509.Certificate, names []string) bool {
	hasSAN := len(cert.DNSNames)+len(cert.URIs)+len(cert.IPAddresses)+len(cert.EmailAddresses) > 0
	for _, n := range names {
		for _, d := range cert.DNSNames {
			if strings.EqualFold(d, n) {
				return true
			}
		}
		for _, u := range cert.URIs {
			if u.String() == n {
				return true
			}
		}
		if !hasSAN && cert.Subject.CommonName != "" && cert.Subject.CommonName == n {
			return true
		}
	}
	return false
}

// LoadPool reads a PEM bundle of CA certificates.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s: no PEM certificate", file)
	}
	return pool, nil
}

// IsLoopback reports whether a listen address binds only loopback
// interfaces: "127.0.0.1:9443", "[::1]:9443", "localhost:9443". An empty
// host (":9443") binds every interface and is not loopback.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && IsLoopbackHost(host)
}

// IsLoopbackHost reports whether a host name or IP is loopback.
func IsLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckListen refuses plain HTTP anywhere but loopback, and TLS without a
// configuration.
func CheckListen(addr string, tlsConf *tls.Config, insecure bool) error {
	switch {
	case insecure && tlsConf != nil:
		return errors.New("--insecure and TLS files exclude each other")
	case insecure && !IsLoopback(addr):
		return fmt.Errorf("--insecure serves plain HTTP, allowed only on a loopback address, not %q", addr)
	case !insecure && tlsConf == nil:
		return errors.New("TLS needs --tls-cert, --tls-key and --client-ca (or --insecure on loopback)")
	}
	return nil
}

// NewHTTPServer wraps h with the timeouts every fpgaops server uses: slow
// clients cannot hold connections open, and uploads still have minutes.
func NewHTTPServer(h http.Handler, tlsConf *tls.Config) *http.Server {
	return &http.Server{
		Handler:           h,
		TLSConfig:         tlsConf,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       10 * time.Minute,
		WriteTimeout:      10 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
}

// Serve serves srv on ln until ctx ends, then shuts down gracefully.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener) error {
	if srv.TLSConfig != nil {
		ln = tls.NewListener(ln, srv.TLSConfig)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			return err
		}
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
