// Package kubetest runs a real Kubernetes control plane for tests: etcd
// (Debian's etcd-server), kube-apiserver and kube-scheduler, built from
// k8s.io/kubernetes by scripts/kube-binaries.sh into a cache outside the
// repository. There is no kubelet and no controller manager: a test plays
// their parts with the helpers here (a node that is Ready, pods that run
// and end, the claims of a ResourceClaimTemplate, a PodDisruptionBudget's
// status). A missing binary is an error, never a reason to skip.
package kubetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/fpgaops/fpgaops/internal/syncbuf"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes release the tests run: the version
// test/kube/go.mod requires (TestVersionMatchesTheBuildModule holds them
// equal).
const Version = "v1.37.2"

// BinDir is where scripts/kube-binaries.sh puts the binaries:
// $FPGAOPS_KUBE_BIN, or ${XDG_CACHE_HOME:-$HOME/.cache}/fpgaops/kube/VERSION.
func BinDir() (string, error) {
	if d := os.Getenv("FPGAOPS_KUBE_BIN"); d != "" {
		return d, nil
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("kubetest: no cache folder: %w", err)
		}
		cache = filepath.Join(home, ".cache")
	}
	return filepath.Join(cache, "fpgaops", "kube", Version), nil
}

// Cluster is a running control plane.
type Cluster struct {
	// Kubeconfig is a kubeconfig file with the cluster's admin
	// credentials; Config the same as a client-go config.
	Kubeconfig string
	Config     *rest.Config
	Client     *kubernetes.Clientset

	dir   string
	procs []*proc
}

// proc is a server process and its log.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan error
}

// Start starts etcd, kube-apiserver and kube-scheduler on free loopback
// ports, in a new temporary folder, and returns once the API server is
// ready. Stop ends them; a test package starts one cluster in TestMain.
func Start() (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	var missing []error
	for _, b := range []string{"kube-apiserver", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			missing = append(missing, fmt.Errorf("kubetest: %s %s is not in %s (run scripts/kube-binaries.sh; make test does): %w", b, Version, bin, err))
		}
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		missing = append(missing, fmt.Errorf("kubetest: etcd not found (Debian package etcd-server; .ci/run installs it): %w", err))
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	// Memory, where there is some: etcd syncs every write.
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "fpgaops-kube-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	if err := c.start(bin, etcd); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) start(bin, etcd string) error {
	pki, err := newPKI(c.dir)
	if err != nil {
		return err
	}
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	client, peer, secure := ports[0], ports[1], ports[2]
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	if err := c.run("etcd", etcd,
		"--name=kubetest", "--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubetest="+peerURL, "--log-level=error", "--logger=zap",
	); err != nil {
		return err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(secure)
	if err := c.run("kube-apiserver", filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(secure),
		"--tls-cert-file="+pki.serverCert, "--tls-private-key-file="+pki.serverKey,
		"--client-ca-file="+pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pki.saPub, "--service-account-signing-key-file="+pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/24",
		"--authorization-mode=RBAC",
		// No controller manager makes service accounts, and no node
		// lifecycle controller takes the not-ready taint off nodes.
		"--disable-admission-plugins=ServiceAccount,TaintNodesByCondition",
		"--endpoint-reconciler-type=none",
		"--enable-priority-and-fairness=false",
		"--profiling=false",
		"--v=0",
	); err != nil {
		return err
	}
	c.Config = &rest.Config{
		Host: host, QPS: 200, Burst: 400, Timeout: 30 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: pki.caPEM, CertData: pki.adminCertPEM, KeyData: pki.adminKeyPEM},
	}
	if c.Client, err = kubernetes.NewForConfig(c.Config); err != nil {
		return err
	}
	if err := c.waitReady(60 * time.Second); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubetest"] = &clientcmdapi.Cluster{Server: host, CertificateAuthorityData: pki.caPEM}
	kc.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: pki.adminCertPEM, ClientKeyData: pki.adminKeyPEM}
	kc.Contexts["kubetest"] = &clientcmdapi.Context{Cluster: "kubetest", AuthInfo: "admin"}
	kc.CurrentContext = "kubetest"
	if err := clientcmd.WriteToFile(*kc, c.Kubeconfig); err != nil {
		return err
	}
	return c.run("kube-scheduler", filepath.Join(bin, "kube-scheduler"),
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--secure-port=0", "--v=0")
}

// run starts a server; one that exits before Stop fails the readiness
// wait with its log.
func (c *Cluster) run(name, path string, args ...string) error {
	p := &proc{name: name, cmd: exec.Command(path, args...), log: &syncbuf.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.Dir = c.dir
	dieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("kubetest: start %s: %w", name, err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	c.procs = append(c.procs, p)
	return nil
}

// waitReady waits until the API server answers /readyz.
func (c *Cluster) waitReady(timeout time.Duration) error {
	hc, err := rest.HTTPClientFor(c.Config)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			select {
			case err := <-p.done:
				p.done <- err
				return fmt.Errorf("kubetest: %s exited (%v):\n%s", p.name, err, tail(p.log.String()))
			default:
			}
		}
		resp, err := hc.Get(c.Config.Host + "/readyz")
		if err == nil {
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = resp.Status + ": " + b.String()
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("kubetest: kube-apiserver not ready after %s (%s):\n%s", timeout, last, tail(c.procs[len(c.procs)-1].log.String()))
}

// Logs is what the servers wrote, for a failing test to show.
func (c *Cluster) Logs() string {
	var b bytes.Buffer
	for _, p := range c.procs {
		fmt.Fprintf(&b, "=== %s\n%s\n", p.name, tail(p.log.String()))
	}
	return b.String()
}

// Stop ends the servers, newest first, and removes the folder.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	os.RemoveAll(c.dir)
}

// tail is the end of a log: enough to see why a server stopped.
func tail(s string) string {
	const max = 8 << 10
	if len(s) > max {
		return "..." + s[len(s)-max:]
	}
	return s
}

// freePorts finds n free loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	out := make([]int, n)
	for i := range out {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// WaitFor polls cond every 50ms until it holds, fails, or ctx ends.
func WaitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var last error
	for {
		ok, err := cond(ctx)
		if err == nil && ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			if last != nil {
				return fmt.Errorf("%s: %w (last error: %v)", what, ctx.Err(), last)
			}
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
