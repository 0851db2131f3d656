package pki_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fpgaops/fpgaops/internal/pki"
)

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInitAndIssue(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	opts := pki.Options{Now: func() time.Time { return now }}
	if _, err := pki.Init(dir, "dc1 fleet CA", opts); err != nil {
		t.Fatal(err)
	}
	ca := readCert(t, filepath.Join(dir, pki.CACert))
	if !ca.IsCA || !ca.MaxPathLenZero || ca.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign || ca.Subject.CommonName != "dc1 fleet CA" {
		t.Errorf("CA: isCA %v maxPathLenZero %v usage %v name %q", ca.IsCA, ca.MaxPathLenZero, ca.KeyUsage, ca.Subject.CommonName)
	}
	if got := mode(t, dir); got != 0o700 {
		t.Errorf("directory mode %v, want 0700", got)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)

	tests := []struct {
		name     string
		req      pki.Request
		cert     string
		usage    x509.ExtKeyUsage
		dns      []string
		ips      []string
		uris     []string
		verifyAs string // a host name the certificate must be valid for
	}{
		{"agent", pki.Request{Role: pki.Agent, Name: "compute-01", DNS: []string{"compute-01.dc1.example"}, IPs: []net.IP{net.ParseIP("10.0.0.1")}},
			"agent-compute-01.pem", x509.ExtKeyUsageServerAuth, []string{"compute-01.dc1.example"}, []string{"10.0.0.1"}, nil, "compute-01.dc1.example"},
		{"controller by DNS name", pki.Request{Role: pki.Controller, Name: "controller.dc1.example"},
			"controller-controller.dc1.example.pem", x509.ExtKeyUsageClientAuth, []string{"controller.dc1.example"}, nil, nil, ""},
		{"controller by SPIFFE ID", pki.Request{Role: pki.Controller, Name: "spiffe://dc1.example/fpgaops/controller"},
			"controller-dc1.example-fpgaops-controller.pem", x509.ExtKeyUsageClientAuth, nil, nil, []string{"spiffe://dc1.example/fpgaops/controller"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files, err := pki.Issue(dir, tt.req, opts)
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{filepath.Join(dir, tt.cert), filepath.Join(dir, strings.TrimSuffix(tt.cert, ".pem")+"-key.pem")}; !reflect.DeepEqual(files, want) {
				t.Fatalf("files %v, want %v", files, want)
			}
			if m := mode(t, files[1]); m != 0o600 {
				t.Errorf("key mode %v, want 0600", m)
			}
			pair, err := tls.LoadX509KeyPair(files[0], files[1])
			if err != nil {
				t.Fatal(err)
			}
			if k, ok := pair.PrivateKey.(*ecdsa.PrivateKey); !ok || k.Curve != elliptic.P256() {
				t.Errorf("key %T, want ECDSA P-256", pair.PrivateKey)
			}
			c := readCert(t, files[0])
			var ips, uris []string
			for _, ip := range c.IPAddresses {
				ips = append(ips, ip.String())
			}
			for _, u := range c.URIs {
				uris = append(uris, u.String())
			}
			if !reflect.DeepEqual(c.DNSNames, tt.dns) || !reflect.DeepEqual(ips, tt.ips) || !reflect.DeepEqual(uris, tt.uris) {
				t.Errorf("SANs: dns %v ips %v uris %v; want %v %v %v", c.DNSNames, ips, uris, tt.dns, tt.ips, tt.uris)
			}
			if c.IsCA || c.KeyUsage != x509.KeyUsageDigitalSignature || !reflect.DeepEqual(c.ExtKeyUsage, []x509.ExtKeyUsage{tt.usage}) {
				t.Errorf("usage: isCA %v key usage %v ext %v", c.IsCA, c.KeyUsage, c.ExtKeyUsage)
			}
			if _, err := c.Verify(x509.VerifyOptions{Roots: roots, DNSName: tt.verifyAs, KeyUsages: []x509.ExtKeyUsage{tt.usage}, CurrentTime: now}); err != nil {
				t.Errorf("does not verify against the CA: %v", err)
			}
			if !c.NotAfter.Equal(now.Add(365 * 24 * time.Hour)) {
				t.Errorf("valid until %v, want a year", c.NotAfter)
			}
		})
	}
}

// Nothing is replaced without Force; with it, everything is.
func TestNeverOverwrites(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.Init(dir, "", pki.Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, pki.CAKey))
	_, err := pki.Init(dir, "", pki.Options{})
	for _, f := range []string{pki.CACert, pki.CAKey} {
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, f)+" exists: pass --force to replace it") {
			t.Errorf("second init: %v; want %s named", err, f)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(dir, pki.CAKey)); string(after) != string(before) {
		t.Fatal("a refused init changed the CA key")
	}
	req := pki.Request{Role: pki.Agent, Name: "n1", DNS: []string{"localhost"}}
	if _, err := pki.Issue(dir, req, pki.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Issue(dir, req, pki.Options{}); err == nil || !strings.Contains(err.Error(), "agent-n1.pem exists") {
		t.Errorf("second issue: %v", err)
	}
	if _, err := pki.Init(dir, "", pki.Options{Force: true}); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, pki.CAKey)); string(after) == string(before) {
		t.Error("init --force kept the old CA key")
	}
	if m := mode(t, filepath.Join(dir, pki.CAKey)); m != 0o600 {
		t.Errorf("replaced key mode %v, want 0600", m)
	}
	if m := mode(t, filepath.Join(dir, pki.CACert)); m != 0o644 {
		t.Errorf("replaced certificate mode %v, want 0644", m)
	}
}

func TestIssueRefuses(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		req  pki.Request
		want []string
	}{
		{"no CA", pki.Request{Role: pki.Agent, Name: "n1", IPs: []net.IP{net.IPv4(127, 0, 0, 1)}}, []string{"fpgaops pki init --dir " + dir + " makes one"}},
		{"agent without names", pki.Request{Role: pki.Agent, Name: "n1"}, []string{"agent n1: give --dns or --ip"}},
		{"bad names", pki.Request{Role: pki.Agent, Name: "../n1", DNS: []string{"a b"}}, []string{`agent name "../n1"`, `--dns "a b": not a DNS name`}},
		{"controller with agent names", pki.Request{Role: pki.Controller, Name: "ctl", DNS: []string{"x"}}, []string{"--dns and --ip name an agent"}},
		{"controller bad name", pki.Request{Role: pki.Controller, Name: "not a name"}, []string{`controller name "not a name"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pki.Issue(dir, tt.req, pki.Options{})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("err = %v, want %q", err, w)
				}
			}
		})
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused requests wrote %v", ents)
	}
}
