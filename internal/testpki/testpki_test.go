package testpki

import (
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestIssue(t *testing.T) {
	ca, err := NewCA("fleet CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca.CertPEM()) {
		t.Fatal("CA certificate is not PEM")
	}
	tests := []struct {
		name   string
		ca     *CA
		usage  Usage
		opts   x509.VerifyOptions
		verify bool
	}{
		{"server for localhost", ca, Server, x509.VerifyOptions{DNSName: "localhost"}, true},
		{"server for 127.0.0.1", ca, Server, x509.VerifyOptions{DNSName: "127.0.0.1"}, true},
		{"server for another host", ca, Server, x509.VerifyOptions{DNSName: "example.com"}, false},
		{"client", ca, Client, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, true},
		{"client used as server", ca, Client, x509.VerifyOptions{}, false},
		{"issued by another CA", other, Client, x509.VerifyOptions{KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, k, err := tc.ca.Issue(pkix.Name{CommonName: tc.name}, tc.usage)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tls.X509KeyPair(c, k); err != nil {
				t.Fatalf("key pair: %v", err)
			}
			b, _ := pem.Decode(c)
			cert, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			if want := x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment; cert.KeyUsage != want {
				t.Errorf("key usage = %v, want %v", cert.KeyUsage, want)
			}
			tc.opts.Roots = pool
			if _, err := cert.Verify(tc.opts); (err == nil) != tc.verify {
				t.Errorf("verify: %v, want ok=%v", err, tc.verify)
			}
		})
	}
}

func TestIssueFiles(t *testing.T) {
	ca, err := NewCA("fleet CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server", "cert.pem"), filepath.Join(dir, "server", "key.pem")
	if err := ca.IssueFiles(pkix.Name{CommonName: "server"}, Server, cert, key); err != nil {
		t.Fatal(err)
	}
	if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(key)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v, want 0600", st.Mode().Perm())
	}
}
