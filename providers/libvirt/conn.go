package libvirt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	lv "github.com/digitalocean/go-libvirt"
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
// It is safe for concurrent use; changes to one node are serialised.
type Provider struct {
	opts Options
	log  *slog.Logger

	mu    sync.Mutex
	conns map[string]*conn // by node name
}

var _ providers.VMs = (*Provider)(nil)

// New returns a provider; it dials nothing until a node is used.
func New(opts Options) *Provider {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Provider{opts: opts, log: log, conns: map[string]*conn{}}
}

// conn is one node's connection.
type conn struct {
	uri string
	l   *lv.Libvirt
	// mu serialises changes to the node, which read, modify and write
	// domain definitions.
	mu sync.Mutex
	// driver is the hypervisor driver's name ("QEMU", "Test").
	driver string
	// noLive is set once the driver has refused a live change.
	noLive bool
}

// Close drops every connection.
func (p *Provider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for name, c := range p.conns {
		if c.l.IsConnected() {
			if err := c.l.Disconnect(); err != nil {
				errs = append(errs, fmt.Errorf("node %s: disconnect: %w", name, err))
			}
		}
		delete(p.conns, name)
	}
	return errors.Join(errs...)
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
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.conns[node.Name]; ok {
		if c.uri == node.Libvirt && c.l.IsConnected() {
			return c, nil
		}
		if c.l.IsConnected() {
			_ = c.l.Disconnect()
		}
		delete(p.conns, node.Name)
		p.log.Info("libvirt reconnect", "node", node.Name, "uri", redact(node.Libvirt))
	}
	l, err := p.dial(node.Libvirt)
	if err != nil {
		// A daemon that is down now may be up on the next try.
		return nil, providers.Transient(fmt.Errorf("node %s: libvirt %s: %w", node.Name, redact(node.Libvirt), err))
	}
	typ, err := l.ConnectGetType()
	if err != nil {
		_ = l.Disconnect()
		return nil, providers.Transient(fmt.Errorf("node %s: libvirt %s: %w", node.Name, redact(node.Libvirt), err))
	}
	c := &conn{uri: node.Libvirt, l: l, driver: typ}
	p.conns[node.Name] = c
	p.log.Info("libvirt connected", "node", node.Name, "uri", redact(node.Libvirt), "driver", typ)
	return c, nil
}

// dial connects to the daemon the URI names and opens the URI there.
func (p *Provider) dial(uri string) (*lv.Libvirt, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("bad URI: %w", err)
	}
	if u.Scheme == "" {
		return nil, errors.New("bad URI: no scheme")
	}
	if p.opts.Socket == "" {
		// go-libvirt maps the transport: driver:/// to the local unix
		// socket, +tcp to host:16509, +tls to host:16514 with the x509
		// files from the usual pki paths (or ?pkipath=), +ssh/+libssh.
		return lv.ConnectToURI(u)
	}
	l := lv.NewWithDialer(dialers.NewLocal(dialers.WithSocket(p.opts.Socket)))
	if err := l.ConnectToURI(lv.RemoteURI(u)); err != nil {
		return nil, err
	}
	return l, nil
}

// drop forgets a connection that failed below the libvirt protocol, so
// that the next call dials again.
func (p *Provider) drop(node string, c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[node] == c {
		delete(p.conns, node)
		if c.l.IsConnected() {
			_ = c.l.Disconnect()
		}
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
