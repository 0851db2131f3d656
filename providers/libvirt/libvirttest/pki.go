package libvirttest

import (
	"crypto/x509/pkix"
	"path/filepath"
	"time"

	"github.com/fpgaops/fpgaops/internal/testpki"
)

// serverFiles are where the daemon's certificate and key went.
type serverFiles struct{ cert, key string }

// makePKI writes a CA and a client certificate into dir under the names
// libvirt clients look for (cacert.pem, clientcert.pem, clientkey.pem),
// and a server certificate for 127.0.0.1 into dir/server. libvirt checks
// key usages; testpki gives each certificate the ones libvirt's own tools
// give.
func makePKI(dir string) (serverFiles, error) {
	sf := serverFiles{filepath.Join(dir, "server", "servercert.pem"), filepath.Join(dir, "server", "serverkey.pem")}
	ca, err := testpki.NewCA("fpgaops test CA", 24*time.Hour)
	if err != nil {
		return sf, err
	}
	if err := testpki.WriteFile(filepath.Join(dir, "cacert.pem"), ca.CertPEM()); err != nil {
		return sf, err
	}
	org := []string{"fpgaops"}
	if err := ca.IssueFiles(pkix.Name{CommonName: "127.0.0.1", Organization: org}, testpki.Server, sf.cert, sf.key); err != nil {
		return sf, err
	}
	err = ca.IssueFiles(pkix.Name{CommonName: "fpgaops-client", Organization: org}, testpki.Client,
		filepath.Join(dir, "clientcert.pem"), filepath.Join(dir, "clientkey.pem"))
	return sf, err
}
