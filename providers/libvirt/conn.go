package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket"
	"github.com/digitalocean/go-libvirt/socket/dialers"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

// Options configure a Provider.
type Options struct {
	// Socket, if set, is the unix socket of the daemon every node is
	// reached through, whatever transport its URI names: a daemon in a
	// non-default place, such as the one libvirttest starts. The URI is
	// still what the daemon is asked to open.
	Socket string
	// Logger receives connection and change events; nil logs nothing.
	Logger *slog.Logger
}

// Provider is the libvirt VM side for the nodes that name a libvirt URI.
// It is safe for concurrent use; changes to one node are serialised, and
// a slow node holds up no other.
type Provider struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	nodes map[string]*nodeConn // by node name
}

var _ providers.VMs = (*Provider)(nil)

// New returns a provider; it dials nothing until a node is used.
func New(opts Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{opts: opts, log: log, nodes: map[string]*nodeConn{}}
}

// nodeConn holds a node's current connection; mu is held while dialling,
// so that a node is dialled once at a time.
type nodeConn struct {
	mu sync.Mutex
	c  *conn
}

// conn is one connection to a node's daemon.
type conn struct {
	uri string
	l   *lv.Libvirt
	// raw cuts the connection off; nil for SSH transports.
	raw *abortable
	// mu serialises changes to the node, which read, modify and write
	// domain definitions.
	mu sync.Mutex
	// driver is the hypervisor driver's name ("QEMU", "TEST").
	driver string
	// noLive is set once the driver has refused a live change.
	noLive bool
}

// Close drops every connection.
func (p *Provider) Close() error {
	p.mu.Lock()
	nodes := p.nodes
	p.nodes = map[string]*nodeConn{}
	p.mu.Unlock()
	var errs []error
	for name, nc := range nodes {
		nc.mu.Lock()
		if c := nc.c; c != nil {
			if err := c.goodbye(); err != nil {
				errs = append(errs, fmt.Errorf("node %s: disconnect: %w", name, err))
			}
		}
		nc.c = nil
		nc.mu.Unlock()
	}
	return errors.Join(errs...)
}

func (p *Provider) nodeConn(name string) *nodeConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	nc, ok := p.nodes[name]
	if !ok {
		nc = &nodeConn{}
		p.nodes[name] = nc
	}
	return nc
}

// conn returns the node's connection, dialling it when there is none, the
// node's URI changed or the old one was lost.
func (p *Provider) conn(ctx context.Context, node *spec.Node) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if node.Libvirt == "" {
		return nil, fmt.Errorf("node %s: no libvirt URI", node.Name)
	}
	nc := p.nodeConn(node.Name)
	nc.mu.Lock()
	defer nc.mu.Unlock()
	if c := nc.c; c != nil {
		if c.uri == node.Libvirt && c.l.IsConnected() {
			return c, nil
		}
		c.close()
		nc.c = nil
		p.log.Info("libvirt reconnect", "node", node.Name, "uri", redact(node.Libvirt))
	}
	c, err := p.dial(ctx, node.Libvirt)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else {
			// A daemon that is down now may be up on the next try.
			err = providers.Transient(err)
		}
		return nil, fmt.Errorf("node %s: libvirt %s: %w", node.Name, redact(node.Libvirt), err)
	}
	nc.c = c
	p.log.Info("libvirt connected", "node", node.Name, "uri", redact(node.Libvirt), "driver", c.driver)
	return c, nil
}

// dial connects to the daemon the URI names and opens the URI there; ctx
// cuts a dial off that the daemon does not answer.
func (p *Provider) dial(ctx context.Context, uri string) (*conn, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("bad URI: %w", err)
	}
	if u.Scheme == "" {
		return nil, errors.New("bad URI: no scheme")
	}
	d, err := p.dialer(u)
	if err != nil {
		return nil, err
	}
	c := &conn{uri: uri}
	if d == nil {
		// SSH transports: go-libvirt's own mapping, which cannot be cut
		// off.
		if c.l, err = lv.ConnectToURI(u); err != nil {
			return nil, err
		}
	} else {
		c.raw = &abortable{d: d}
		stop := context.AfterFunc(ctx, c.raw.abort)
		defer stop()
		c.l = lv.NewWithDialer(c.raw)
		// The daemon opens the URI without its transport:
		// qemu+tls://h/system opens qemu:///system there.
		if err := c.l.ConnectToURI(lv.RemoteURI(u)); err != nil {
			c.raw.abort()
			return nil, err
		}
	}
	if c.driver, err = c.l.ConnectGetType(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

// dialer maps the URI's transport to a dialer, following libvirt's URI
// conventions: driver:/// is the local unix socket (or ?socket=),
// driver+tcp://host[:port] is plain TCP (16509), driver+tls://host[:port]
// or driver://host is TLS (16514) with the x509 files from the usual pki
// paths or ?pkipath=. It returns nil for the SSH transports.
func (p *Provider) dialer(u *url.URL) (socket.Dialer, error) {
	transport := "unix"
	if _, t, ok := strings.Cut(u.Scheme, "+"); ok {
		transport = t
	} else if u.Host != "" {
		transport = "tls"
	}
	q := u.Query()
	if p.opts.Socket != "" {
		return dialers.NewLocal(dialers.WithSocket(p.opts.Socket)), nil
	}
	switch transport {
	case "unix":
		var opts []dialers.LocalOption
		if s := q.Get("socket"); s != "" {
			opts = append(opts, dialers.WithSocket(s))
		}
		return dialers.NewLocal(opts...), nil
	case "tcp":
		var opts []dialers.RemoteOption
		if port := u.Port(); port != "" {
			opts = append(opts, dialers.UsePort(port))
		}
		return dialers.NewRemote(u.Hostname(), opts...), nil
	case "tls":
		var opts []dialers.TLSOption
		if port := u.Port(); port != "" {
			opts = append(opts, dialers.UseTLSPort(port))
		}
		if pki := q.Get("pkipath"); pki != "" {
			opts = append(opts, dialers.UsePKIPath(pki))
		}
		if q.Get("no_verify") == "1" {
			opts = append(opts, dialers.WithInsecureNoVerify())
		}
		return dialers.NewTLS(u.Hostname(), opts...), nil
	case "ssh", "libssh", "libssh2":
		return nil, nil
	}
	return nil, fmt.Errorf("unsupported libvirt transport %q", transport)
}

// abortable remembers the connection its dialer made, so that a call
// stuck on a daemon that does not answer can be cut off: go-libvirt's
// calls take no context, and its Disconnect itself waits for an answer.
type abortable struct {
	d  socket.Dialer
	mu sync.Mutex
	c  net.Conn
}

func (a *abortable) Dial() (net.Conn, error) {
	c, err := a.d.Dial()
	if err == nil {
		a.mu.Lock()
		a.c = c
		a.mu.Unlock()
	}
	return c, err
}

func (a *abortable) abort() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c != nil {
		a.c.Close()
	}
}

// watch cuts the node's connection off if ctx ends while a call is under
// way; the next call dials again. The returned function ends the watch.
func (p *Provider) watch(ctx context.Context, node string, c *conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { p.drop(node, c) })
}

// drop forgets a connection that failed below the libvirt protocol, so
// that the next call dials again.
func (p *Provider) drop(node string, c *conn) {
	nc := p.nodeConn(node)
	nc.mu.Lock()
	if nc.c == c {
		nc.c = nil
	}
	nc.mu.Unlock()
	c.close()
}

// close ends a connection that may be broken without the goodbye call,
// which could wait for an answer that never comes.
func (c *conn) close() {
	if c.raw != nil {
		c.raw.abort()
	} else if c.l.IsConnected() {
		_ = c.l.Disconnect()
	}
}

// goodbye closes the connection politely, or bluntly when the daemon does
// not answer in a few seconds.
func (c *conn) goodbye() error {
	if !c.l.IsConnected() {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- c.l.Disconnect() }()
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		c.close()
		return errors.New("the daemon did not answer; connection closed")
	}
}

// fail classifies an error of a call on c: an error libvirt reports is
// returned as is; anything else (a broken socket) drops the connection
// and is transient.
func (p *Provider) fail(node string, c *conn, err error) error {
	var e lv.Error
	if errors.As(err, &e) {
		return err
	}
	p.drop(node, c)
	return providers.Transient(err)
}

// redact hides a password in a URI before it is logged or shown.
func redact(uri string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return "(unparsable URI)"
	}
	return u.Redacted()
}

// hasCode reports whether err is a libvirt error with one of the codes.
func hasCode(err error, codes ...lv.ErrorNumber) bool {
	var e lv.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == uint32(c) {
			return true
		}
	}
	return false
}
