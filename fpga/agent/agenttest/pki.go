// Package agenttest makes what tests of the node agent need: a throwaway
// certificate authority with server and client certificates, written as
// PEM files. Nothing here is for production; no certificate is ever
// committed.
package agenttest

import (
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/internal/testpki"
)

// PKI is a CA and the certificates it issued, as files in a temporary
// directory.
type PKI struct {
	Dir                   string
	CAFile                string
	ServerCert, ServerKey string
	ClientCert, ClientKey string

	ca     *testpki.CA
	issued int
}

// NewPKI makes a CA named name, a server certificate for 127.0.0.1 and
// localhost, and a client certificate, valid for an hour.
func NewPKI(t testing.TB, name string) *PKI {
	t.Helper()
	dir := t.TempDir()
	p := &PKI{
		Dir:        dir,
		CAFile:     filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"), ServerKey: filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
	}
	ca, err := testpki.NewCA(name+" CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	p.ca = ca
	if err := testpki.WriteFile(p.CAFile, ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles(pkix.Name{CommonName: "server"}, testpki.Server, p.ServerCert, p.ServerKey); err != nil {
		t.Fatal(err)
	}
	if err := ca.IssueFiles(pkix.Name{CommonName: "client"}, testpki.Client, p.ClientCert, p.ClientKey); err != nil {
		t.Fatal(err)
	}
	return p
}

// IssueClient issues another client certificate, with common name cn and
// the given DNS and URI subject alternative names, and returns its files.
func (p *PKI) IssueClient(t testing.TB, cn string, dnsNames []string, uris ...string) (certFile, keyFile string) {
	t.Helper()
	var us []*url.URL
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	c, k, err := p.ca.IssueNamed(pkix.Name{CommonName: cn}, testpki.Client, dnsNames, us)
	if err != nil {
		t.Fatal(err)
	}
	p.issued++
	certFile = filepath.Join(p.Dir, fmt.Sprintf("client-%d.pem", p.issued))
	keyFile = filepath.Join(p.Dir, fmt.Sprintf("client-%d-key.pem", p.issued))
	if err := testpki.WriteFile(certFile, c); err != nil {
		t.Fatal(err)
	}
	if err := testpki.WriteFile(keyFile, k); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
