// Package testpki makes throwaway certificate authorities and the
// certificates they issue, for tests that need TLS with client
// certificates: the node agent's and a real libvirtd's. It needs no
// testing.T, so harnesses that return errors can use it too. Nothing here
// is for production; no certificate it makes is ever committed.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority held in memory.
type CA struct {
	cert     *x509.Certificate
	der      []byte
	key      *ecdsa.PrivateKey
	serial   int64
	notAfter time.Time
}

// Usage is what a certificate is for.
type Usage int

const (
	Server Usage = iota // TLS server, for 127.0.0.1 and localhost
	Client              // TLS client
)

// NewCA makes a CA named commonName whose certificates are valid from an
// hour ago for valid from now.
func NewCA(commonName string, valid time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, der: der, key: key, serial: 1, notAfter: tmpl.NotAfter}, nil
}

// CertPEM is the CA's certificate in PEM.
func (ca *CA) CertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der})
}

// Issue makes a certificate for subject and its private key, both in PEM.
// Every certificate carries the key usages libvirt checks for (digital
// signature, key encipherment) besides its extended usage; a server's
// names 127.0.0.1 and localhost.
func (ca *CA) Issue(subject pkix.Name, usage Usage) (certPEM, keyPEM []byte, err error) {
	return ca.IssueNamed(subject, usage, nil, nil)
}

// IssueNamed is Issue with extra subject alternative names: DNS names
// and URIs, such as a SPIFFE ID.
func (ca *CA) IssueNamed(subject pkix.Name, usage Usage, dnsNames []string, uris []*url.URL) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ca.serial++
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(ca.serial),
		Subject:               subject,
		NotBefore:             ca.cert.NotBefore,
		NotAfter:              ca.notAfter,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if usage == Server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	tmpl.DNSNames = append(tmpl.DNSNames, dnsNames...)
	tmpl.URIs = uris
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), nil
}

// IssueFiles issues a certificate as Issue does and writes it and its key
// to certFile and keyFile, readable by the owner only, making their
// directories.
func (ca *CA) IssueFiles(subject pkix.Name, usage Usage, certFile, keyFile string) error {
	c, k, err := ca.Issue(subject, usage)
	if err != nil {
		return err
	}
	if err := WriteFile(certFile, c); err != nil {
		return err
	}
	return WriteFile(keyFile, k)
}

// WriteFile writes PEM data to path, readable by the owner only, making
// its directory.
func WriteFile(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
