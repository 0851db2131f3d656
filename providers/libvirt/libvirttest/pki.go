package libvirttest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// serverFiles are where the daemon's certificate and key went.
type serverFiles struct{ cert, key string }

// makePKI writes a CA and a client certificate into dir under the names
// libvirt clients look for (cacert.pem, clientcert.pem, clientkey.pem),
// and a server certificate for 127.0.0.1 into dir/server. libvirt checks
// key usages, so each certificate has the ones libvirt's own tools give.
func makePKI(dir string) (serverFiles, error) {
	var sf serverFiles
	if err := os.MkdirAll(filepath.Join(dir, "server"), 0o700); err != nil {
		return sf, err
	}
	now := time.Now()
	caKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return sf, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fpgaops test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return sf, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return sf, err
	}
	if err := writePEM(filepath.Join(dir, "cacert.pem"), "CERTIFICATE", caDER); err != nil {
		return sf, err
	}
	leaf := func(serial int64, cn string, usage x509.ExtKeyUsage, certPath, keyPath string) error {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"fpgaops"}},
			NotBefore:             now.Add(-time.Hour),
			NotAfter:              now.Add(24 * time.Hour),
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
			ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
			tmpl.DNSNames = []string{"localhost"}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return err
		}
		if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
			return err
		}
		return writePEM(keyPath, "RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(key))
	}
	sf = serverFiles{filepath.Join(dir, "server", "servercert.pem"), filepath.Join(dir, "server", "serverkey.pem")}
	if err := leaf(2, "127.0.0.1", x509.ExtKeyUsageServerAuth, sf.cert, sf.key); err != nil {
		return sf, err
	}
	if err := leaf(3, "fpgaops-client", x509.ExtKeyUsageClientAuth,
		filepath.Join(dir, "clientcert.pem"), filepath.Join(dir, "clientkey.pem")); err != nil {
		return sf, err
	}
	return sf, nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}
