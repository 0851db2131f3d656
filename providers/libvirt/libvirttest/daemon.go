// Package libvirttest runs a real libvirtd for tests: a private daemon in a
// temporary directory, serving libvirt's test driver with a fleet file
// (domains and PCI node devices) that matches a test fleet. It loads no
// hypervisor driver, needs no systemd and touches nothing outside its
// directory but the process table.
//
// The test driver gives every connection to a test:///file URI its own
// copy of the file's state, and drops it on disconnect: a scenario must
// keep one connection open from start to end.
package libvirttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Daemon is a running libvirtd.
type Daemon struct {
	// Dir holds the daemon's config, log, sockets and fleet files.
	Dir string
	// Socket is the daemon's read-write unix socket.
	Socket string
	// TCPAddr and TLSAddr are the loopback host:port the daemon listens
	// on for the tcp and tls transports, when Config asked for them.
	TCPAddr, TLSAddr string
	// PKIDir holds cacert.pem, clientcert.pem and clientkey.pem for a
	// client of the TLS listener (the ?pkipath= of a qemu+tls URI).
	PKIDir string

	bin    string
	listen bool
	cmd    *exec.Cmd
	done   chan error
}

// Config says what a daemon listens on besides its unix socket.
type Config struct {
	// TCP listens for plain TCP on a free loopback port, without
	// authentication.
	TCP bool
	// TLS listens for TLS on a free loopback port, with a CA, a server
	// certificate for 127.0.0.1 and a client certificate made for it.
	TLS bool
}

// Start starts a daemon in a temporary directory of t and stops it when
// the test ends. It fails the test (never skips it) when libvirtd is not
// installed: .ci/run installs the libvirt-daemon package.
func Start(t testing.TB) *Daemon {
	t.Helper()
	return StartWith(t, Config{})
}

// StartWith is Start with listeners.
func StartWith(t testing.TB, c Config) *Daemon {
	t.Helper()
	d, err := StartDaemonWith(t.TempDir(), c)
	if err != nil {
		t.Fatalf("libvirttest: %v", err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("libvirttest: %v", err)
		}
	})
	return d
}

// StartDaemon starts a daemon that keeps its files in dir; the caller
// stops it with Stop. For use where there is no testing.TB, such as a
// testscript Setup.
func StartDaemon(dir string) (*Daemon, error) {
	return StartDaemonWith(dir, Config{})
}

// StartDaemonWith is StartDaemon with listeners.
func StartDaemonWith(dir string, c Config) (*Daemon, error) {
	bin, err := findLibvirtd()
	if err != nil {
		return nil, err
	}
	// A socket path must fit in sun_path (108 bytes), and test temp dirs
	// can be long: keep the sockets in a short directory of their own.
	sockDir, err := os.MkdirTemp("", "lvt")
	if err != nil {
		return nil, err
	}
	d := &Daemon{Dir: dir, Socket: filepath.Join(sockDir, "libvirt-sock"), bin: bin}
	// The test driver is built into libvirtd, so the driver directory is
	// empty: no QEMU driver (it wants the libvirt-qemu user) and no
	// network or storage driver (they keep state in /run/libvirt that
	// two daemons would share).
	for _, sub := range []string{"drivers", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	conf := fmt.Sprintf(`unix_sock_dir = %q
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:%s"
listen_addr = "127.0.0.1"
`, sockDir, filepath.Join(dir, "libvirtd.log"))
	if c.TCP {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		d.TCPAddr = "127.0.0.1:" + port
		conf += fmt.Sprintf("listen_tcp = 1\ntcp_port = %q\nauth_tcp = \"none\"\n", port)
	} else {
		conf += "listen_tcp = 0\n"
	}
	if c.TLS {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		d.TLSAddr = "127.0.0.1:" + port
		d.PKIDir = filepath.Join(dir, "pki")
		srv, err := makePKI(d.PKIDir)
		if err != nil {
			return nil, fmt.Errorf("make certificates: %w", err)
		}
		conf += fmt.Sprintf("listen_tls = 1\ntls_port = %q\nauth_tls = \"none\"\nca_file = %q\ncert_file = %q\nkey_file = %q\n",
			port, filepath.Join(d.PKIDir, "cacert.pem"), srv.cert, srv.key)
	} else {
		conf += "listen_tls = 0\n"
	}
	d.listen = c.TCP || c.TLS
	if err := os.WriteFile(d.confPath(), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	if err := d.start(); err != nil {
		return nil, err
	}
	return d, nil
}

// freePort finds a loopback port nobody listens on now.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

func findLibvirtd() (string, error) {
	if p, err := exec.LookPath("libvirtd"); err == nil {
		return p, nil
	}
	// sbin is often missing from a user's PATH.
	for _, p := range []string{"/usr/sbin/libvirtd", "/usr/local/sbin/libvirtd"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", errors.New("libvirtd not found: install the libvirt-daemon and libvirt-clients packages (.ci/run does)")
}

func (d *Daemon) confPath() string { return filepath.Join(d.Dir, "libvirtd.conf") }

func (d *Daemon) start() error {
	// Foreground (no -d) so that the daemon is our child and Stop can
	// wait for it.
	args := []string{"-f", d.confPath(), "-p", filepath.Join(d.Dir, "libvirtd.pid")}
	if d.listen {
		args = append(args, "--listen")
	}
	cmd := exec.Command(d.bin, args...)
	cmd.Env = append(os.Environ(),
		"LIBVIRT_DRIVER_DIR="+filepath.Join(d.Dir, "drivers"),
		"XDG_RUNTIME_DIR="+filepath.Join(d.Dir, "state"),
		"XDG_CONFIG_HOME="+filepath.Join(d.Dir, "state"),
		"XDG_CACHE_HOME="+filepath.Join(d.Dir, "state"),
	)
	out, err := os.Create(filepath.Join(d.Dir, "libvirtd.out"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start libvirtd: %w", err)
	}
	d.cmd = cmd
	d.done = make(chan error, 1)
	go func() { d.done <- cmd.Wait() }()
	if err := d.waitReady(); err != nil {
		d.Stop()
		return err
	}
	return nil
}

// waitReady waits until the daemon accepts connections on its socket.
func (d *Daemon) waitReady() error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := d.dialAll()
		if err == nil {
			return nil
		}
		select {
		case werr := <-d.done:
			d.done <- werr
			return fmt.Errorf("libvirtd exited early (%v): %s", werr, d.Log())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("libvirtd did not open %s: %v: %s", d.Socket, err, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialAll checks that every socket of the daemon accepts connections.
func (d *Daemon) dialAll() error {
	c, err := net.Dial("unix", d.Socket)
	if err != nil {
		return err
	}
	c.Close()
	for _, a := range []string{d.TCPAddr, d.TLSAddr} {
		if a == "" {
			continue
		}
		c, err := net.Dial("tcp", a)
		if err != nil {
			return err
		}
		c.Close()
	}
	return nil
}

// Log returns the tail of the daemon's log and output, for failure
// messages.
func (d *Daemon) Log() string {
	var b strings.Builder
	for _, f := range []string{"libvirtd.out", "libvirtd.log"} {
		data, _ := os.ReadFile(filepath.Join(d.Dir, f))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		b.Write(data)
	}
	return b.String()
}

// Stop ends the daemon: SIGTERM, then SIGKILL if it lingers.
func (d *Daemon) Stop() error {
	if d.cmd == nil {
		return nil
	}
	cmd := d.cmd
	d.cmd = nil
	defer os.RemoveAll(filepath.Dir(d.Socket))
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-d.done
		return errors.New("libvirtd ignored SIGTERM; killed")
	}
}

// Restart stops the daemon and starts it again on the same socket, which
// drops every client connection: the way to test reconnecting.
func (d *Daemon) Restart() error {
	if d.cmd != nil {
		cmd := d.cmd
		d.cmd = nil
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-d.done
	}
	return d.start()
}
