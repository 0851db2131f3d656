package gittest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// SSHD is a running OpenSSH server that lets the current user in with a
// key made for the test; git runs on its side as for any ssh remote.
type SSHD struct {
	// Addr is host:port; User the login.
	Addr, User string
	// ClientKey is the PEM private key the server accepts.
	ClientKey []byte
	// KnownHosts is a known_hosts file listing the server's host key.
	KnownHosts string
}

// URL is the ssh:// URL of a repository path on the server.
func (s *SSHD) URL(path string) string { return "ssh://" + s.User + "@" + s.Addr + path }

// StartSSHD runs sshd on a free loopback port until the test ends.
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("sshd not installed (Debian package openssh-server): %v", err)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	hostPub, hostPEM := newSSHKey(t)
	clientPub, clientPEM := newSSHKey(t)
	hostKey := filepath.Join(dir, "host_ed25519")
	write(t, hostKey, hostPEM, 0o600)
	write(t, filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600)
	if os.Geteuid() == 0 {
		// As root, sshd insists on its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		port := freePort(t)
		cfg := filepath.Join(dir, "sshd_config")
		write(t, cfg, []byte(fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PermitRootLogin prohibit-password
`, port, hostKey, filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))), 0o600)
		cmd := exec.Command(bin, "-D", "-e", "-f", cfg)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		exited, out, ok := startListening(t, "sshd", cmd, addr)
		if ok {
			t.Cleanup(func() { killGroup(cmd); <-exited })
			kh := filepath.Join(dir, "known_hosts")
			write(t, kh, []byte(knownhosts.Line([]string{knownhosts.Normalize(addr)}, hostPub)+"\n"), 0o600)
			return &SSHD{Addr: addr, User: u.Username, ClientKey: clientPEM, KnownHosts: kh}
		}
		t.Logf("sshd on port %d: %s", port, out)
	}
	t.Fatal("sshd did not start")
	return nil
}

// NewSSHKey makes an ed25519 key: the public key and the private key as
// OpenSSH PEM.
func NewSSHKey(t testing.TB) (ssh.PublicKey, []byte) {
	t.Helper()
	return newSSHKey(t)
}

func newSSHKey(t testing.TB) (ssh.PublicKey, []byte) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return sshPub, pem.EncodeToMemory(block)
}

func write(t testing.TB, path string, data []byte, perm os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, data, perm); err != nil {
		t.Fatal(err)
	}
}
