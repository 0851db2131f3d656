// Package pki makes the certificates of fpgaops's mutual TLS between the
// controller and the node agents, in one directory: a CA, a server
// certificate for each agent (the names the controller reaches it by) and
// a client certificate for the controller (the name agents accept with
// --client-name). Keys are ECDSA P-256, written readable by their owner
// only; no file is ever replaced unless asked. It is for a fleet without
// a PKI of its own; any CA whose certificates carry the same names and
// usages serves as well.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Role is what a certificate is for.
type Role string

const (
	// Agent is a node agent's server certificate: server auth, for the
	// DNS names and IPs the controller reaches it by.
	Agent Role = "agent"
	// Controller is the controller's client certificate: client auth,
	// carrying its name as a DNS or URI subject alternative name.
	Controller Role = "controller"
)

// Files in a PKI directory.
const (
	CACert = "ca.pem"
	CAKey  = "ca-key.pem"
)

// CertFile and KeyFile are where a certificate of role and name is kept.
func CertFile(dir string, role Role, name string) string {
	return filepath.Join(dir, string(role)+"-"+name+".pem")
}

func KeyFile(dir string, role Role, name string) string {
	return filepath.Join(dir, string(role)+"-"+name+"-key.pem")
}

// Options tune Init and Issue.
type Options struct {
	// ValidFor is how long the certificate is valid; 0 means ten years
	// for a CA, one year otherwise. A certificate never outlives its CA.
	ValidFor time.Duration
	// Force replaces existing files.
	Force bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (o Options) now() time.Time {
	if o.Now != nil {
		return o.Now()
	}
	return time.Now()
}

// Init makes a CA in dir (created 0700 if missing): ca.pem and
// ca-key.pem. It returns the files written.
func Init(dir, name string, o Options) ([]string, error) {
	if name == "" {
		name = "fpgaops CA"
	}
	cert, key := filepath.Join(dir, CACert), filepath.Join(dir, CAKey)
	if err := writable(o.Force, cert, key); err != nil {
		return nil, err
	}
	valid := o.ValidFor
	if valid == 0 {
		valid = 10 * 365 * 24 * time.Hour
	}
	now := o.now()
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(valid),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// It signs leaves only: no intermediate CA below it.
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	return write(dir, o.Force, cert, key, tmpl, nil, nil)
}

// Request is a certificate to issue.
type Request struct {
	Role Role
	// Name is the agent's name (its node, say) or the controller's name.
	// A controller's name goes into the certificate as a DNS name, or as a
	// URI when it is one (spiffe://dc1.example/fpgaops/controller).
	Name string
	// DNS and IPs are an agent's names: those of its endpoints' hosts.
	DNS []string
	IPs []net.IP
}

// dnsName is a host name, or a wildcard one.
var dnsName = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`)

// fileName is what Name may be, since it names the files.
var fileName = regexp.MustCompile(`^[A-Za-z0-9][-A-Za-z0-9_.]*$`)

// check reports every mistake in the request at once.
func (r Request) check() error {
	var errs []error
	switch r.Role {
	case Agent:
		if !fileName.MatchString(r.Name) {
			errs = append(errs, fmt.Errorf("agent name %q: want letters, digits, '-', '_' and '.'", r.Name))
		}
		if len(r.DNS)+len(r.IPs) == 0 {
			errs = append(errs, fmt.Errorf("agent %s: give --dns or --ip: the names the controller reaches it by (its endpoint's host)", r.Name))
		}
	case Controller:
		if !dnsName.MatchString(r.Name) && !isURI(r.Name) {
			errs = append(errs, fmt.Errorf("controller name %q: want a DNS name (controller.dc1.example) or a URI (spiffe://dc1.example/fpgaops/controller)", r.Name))
		}
		if len(r.DNS)+len(r.IPs) > 0 {
			errs = append(errs, errors.New("--dns and --ip name an agent; a controller is named by its NAME"))
		}
	default:
		errs = append(errs, fmt.Errorf("role %q: want agent or controller", r.Role))
	}
	for _, d := range r.DNS {
		if !dnsName.MatchString(d) {
			errs = append(errs, fmt.Errorf("--dns %q: not a DNS name", d))
		}
	}
	return errors.Join(errs...)
}

func isURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

// fileLabel is the part of a controller's name that names its files.
func (r Request) fileLabel() string {
	if r.Role == Controller && isURI(r.Name) {
		u, _ := url.Parse(r.Name)
		return strings.Trim(strings.NewReplacer("/", "-", ":", "-").Replace(u.Host+u.Path), "-")
	}
	return r.Name
}

// Issue signs a certificate for the request with the CA in dir and
// writes it and its key. It returns the files written.
func Issue(dir string, r Request, o Options) ([]string, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	label := r.fileLabel()
	cert, key := CertFile(dir, r.Role, label), KeyFile(dir, r.Role, label)
	if err := writable(o.Force, cert, key); err != nil {
		return nil, err
	}
	ca, err := tls.LoadX509KeyPair(filepath.Join(dir, CACert), filepath.Join(dir, CAKey))
	if err != nil {
		return nil, fmt.Errorf("CA in %s (fpgaops pki init --dir %s makes one): %w", dir, dir, err)
	}
	caCert, err := x509.ParseCertificate(ca.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("CA in %s: %w", dir, err)
	}
	valid := o.ValidFor
	if valid == 0 {
		valid = 365 * 24 * time.Hour
	}
	now := o.now()
	tmpl := &x509.Certificate{
		Subject:   pkix.Name{CommonName: r.Name},
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(valid),
		// ECDSA keys sign; they encipher no keys.
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(caCert.NotAfter) {
		tmpl.NotAfter = caCert.NotAfter
	}
	switch r.Role {
	case Agent:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames, tmpl.IPAddresses = r.DNS, r.IPs
	case Controller:
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		if isURI(r.Name) {
			u, _ := url.Parse(r.Name)
			tmpl.URIs = []*url.URL{u}
		} else {
			tmpl.DNSNames = []string{r.Name}
		}
	}
	return write(dir, o.Force, cert, key, tmpl, caCert, ca.PrivateKey)
}

// writable refuses files that exist, all at once, unless force.
func writable(force bool, files ...string) error {
	if force {
		return nil
	}
	var errs []error
	for _, f := range files {
		if _, err := os.Lstat(f); err == nil {
			errs = append(errs, fmt.Errorf("%s exists: pass --force to replace it", f))
		}
	}
	return errors.Join(errs...)
}

// write makes a key, signs tmpl with parent's key (itself when parent is
// nil) and writes the key (0600) and the certificate (0644).
func write(dir string, force bool, certFile, keyFile string, tmpl, parent *x509.Certificate, parentKey any) ([]string, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, err
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, fmt.Errorf("sign %s: %w", certFile, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	if err := writeFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, force); err != nil {
		return nil, err
	}
	if err := writeFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644, force); err != nil {
		return nil, err
	}
	return []string{certFile, keyFile}, nil
}

// writeFile writes data with perm: a new file, or with force one that
// replaces the old whole (written beside it, then renamed), so that a key
// is never readable by others for a moment.
func writeFile(path string, data []byte, perm os.FileMode, force bool) error {
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: pass --force to replace it", path)
		}
		if err != nil {
			return err
		}
		_, err = f.Write(data)
		return errors.Join(err, f.Close())
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	// CreateTemp makes the file 0600; a certificate is then opened up.
	_, err = tmp.Write(data)
	err = errors.Join(err, tmp.Chmod(perm), tmp.Close())
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
