// Package etcdtest starts real etcd servers for tests: one member or a
// cluster of several, each in a temporary directory on loopback ports,
// that a test can kill and restart; and TCP proxies that a test can cut
// to partition a client from its member.
package etcdtest

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Cluster is a running etcd cluster.
type Cluster struct {
	t       testing.TB
	Members []*Member
}

// Member is one etcd server.
type Member struct {
	Name      string
	ClientURL string
	peerURL   string
	dataDir   string
	logPath   string
	args      []string
	cmd       *exec.Cmd
	done      chan struct{}
}

// startTimeout bounds how long a member may take to answer /health.
const startTimeout = 60 * time.Second

// Start starts a cluster of n members and waits until it is healthy;
// the test's cleanup stops it. etcd must be installed (Debian's
// etcd-server package; .ci/run installs it).
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("etcd is not installed (apt-get install etcd-server): %v", err)
	}
	dir := t.TempDir()
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i+1),
			ClientURL: "http://" + FreeAddr(t),
			peerURL:   "http://" + FreeAddr(t),
		}
		m.dataDir = filepath.Join(dir, m.Name)
		m.logPath = filepath.Join(dir, m.Name+".log")
		initial = append(initial, m.Name+"="+m.peerURL)
		c.Members = append(c.Members, m)
	}
	for _, m := range c.Members {
		m.args = []string{bin,
			"--name", m.Name, "--data-dir", m.dataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.peerURL, "--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", "fpgaops-test",
			// A loaded 2-core machine must not make the members elect
			// again and again.
			"--heartbeat-interval", "100", "--election-timeout", "1500",
			"--logger", "zap", "--log-outputs", "stderr",
		}
		if err := m.start(); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(c.stop)
	for _, m := range c.Members {
		if err := m.waitHealthy(); err != nil {
			t.Fatalf("%v\n%s", err, m.LogTail())
		}
	}
	return c
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

func (m *Member) start() error {
	log, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(m.args[0], m.args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start etcd %s: %w", m.Name, err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() {
		cmd.Wait()
		log.Close()
		close(m.done)
	}()
	return nil
}

// waitHealthy waits until the member answers /health with true.
func (m *Member) waitHealthy() error {
	deadline := time.Now().Add(startTimeout)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("etcd %s exited at start", m.Name)
		default:
		}
		resp, err := hc.Get(m.ClientURL + "/health")
		if err == nil {
			var body [256]byte
			n, _ := resp.Body.Read(body[:])
			resp.Body.Close()
			if strings.Contains(string(body[:n]), `"health":"true"`) {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("etcd %s not healthy after %v", m.Name, startTimeout)
}

// Kill kills the member with SIGKILL and waits for it to end.
func (m *Member) Kill() {
	if m.cmd == nil {
		return
	}
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.cmd = nil
}

// Restart starts a killed member again on its data and waits until the
// cluster answers through it.
func (c *Cluster) Restart(m *Member) {
	c.t.Helper()
	if err := m.start(); err != nil {
		c.t.Fatal(err)
	}
	if err := m.waitHealthy(); err != nil {
		c.t.Fatalf("%v\n%s", err, m.LogTail())
	}
}

func (c *Cluster) stop() {
	for _, m := range c.Members {
		if m.cmd != nil {
			m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.done:
			case <-time.After(10 * time.Second):
				m.Kill()
			}
			m.cmd = nil
		}
	}
}

// LogTail is the end of the member's log, for a failure message.
func (m *Member) LogTail() string {
	data, _ := os.ReadFile(m.logPath)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return fmt.Sprintf("etcd %s log (end):\n%s", m.Name, data)
}

// FreeAddr returns a loopback address with a port nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Proxy forwards TCP connections from a loopback address to a target
// until it is cut: Cut drops every connection and refuses new ones, as a
// network partition would; Heal lets connections through again.
type Proxy struct {
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]bool
}

// NewProxy starts a proxy to target; the test's cleanup stops it.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: strings.TrimPrefix(target, "http://"), ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	return p
}

// URL is the proxy's address as an etcd endpoint.
func (p *Proxy) URL() string { return "http://" + p.Addr }

func (p *Proxy) serve() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(in, out) {
			continue
		}
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// track remembers a connection pair for Cut; while cut, it closes them.
func (p *Proxy) track(in, out net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		in.Close()
		out.Close()
		return false
	}
	p.conns[in], p.conns[out] = true, true
	return true
}

func (p *Proxy) pipe(dst, src net.Conn) {
	io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut drops every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// Heal lets connections through again.
func (p *Proxy) Heal() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// Client connects to endpoints; the test's cleanup closes it.
func Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	c, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
