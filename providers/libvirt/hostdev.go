package libvirt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	lv "github.com/digitalocean/go-libvirt"

	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/spec"
)

func isTransport(err error) bool { return providers.IsTransient(err) }

// change is one attach or detach of a function to or from a domain.
type change struct {
	p      *Provider
	node   *spec.Node
	vm     string
	addr   spec.PCIAddress
	attach bool
}

func (ch *change) errorf(format string, args ...any) error {
	return fmt.Errorf("node %s vm %s hostdev %s: "+format,
		append([]any{ch.node.Name, ch.vm, ch.addr}, args...)...)
}

// Attach gives the function at pci to the VM as a managed PCI hostdev:
// live and persistent when the VM runs, persistent only when it is
// stopped. It does nothing when the VM holds the function already. A
// missing domain or PCI device is an error, and nothing changes.
func (p *Provider) Attach(ctx context.Context, node *spec.Node, vm, pci string) error {
	return p.change(ctx, node, vm, pci, true)
}

// Detach takes the function at pci from the VM, live and persistent as
// Attach gives it. It does nothing when the VM does not hold it. The PCI
// device need not exist any more.
func (p *Provider) Detach(ctx context.Context, node *spec.Node, vm, pci string) error {
	return p.change(ctx, node, vm, pci, false)
}

func (p *Provider) change(ctx context.Context, node *spec.Node, vm, pci string, attach bool) error {
	a, err := spec.ParsePCIAddress(pci)
	if err != nil {
		return fmt.Errorf("node %s vm %s hostdev %s: %w", node.Name, vm, pci, err)
	}
	ch := &change{p: p, node: node, vm: vm, addr: a, attach: attach}
	c, err := p.conn(ctx, node)
	if err != nil {
		return ch.errorf("%w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer p.watch(ctx, node.Name, c)()
	if err := ch.apply(ctx, c); err != nil {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = ctx.Err()
		}
		return ch.errorf("%w", err)
	}
	return nil
}

func (ch *change) apply(ctx context.Context, c *conn) error {
	p := ch.p
	dom, err := c.l.DomainLookupByName(ch.vm)
	if hasCode(err, lv.ErrNoDomain) {
		return ErrNoDomain
	}
	if err != nil {
		return p.fail(ch.node.Name, c, err)
	}
	if ch.attach {
		// Attaching a function the node does not have would leave a
		// definition that cannot start.
		_, err := c.l.NodeDeviceLookupByName(nodeDevName(ch.addr))
		if hasCode(err, lv.ErrNoNodeDevice) {
			return ErrNoPCIDevice
		}
		if err != nil {
			return p.fail(ch.node.Name, c, err)
		}
	}
	st, err := readDomain(c, dom)
	if err != nil {
		return p.fail(ch.node.Name, c, err)
	}
	pci := ch.addr.String()
	// What is left to do, live and in the persistent definition.
	live := st.running && slices.Contains(st.live, pci) != ch.attach
	config := st.persistent && slices.Contains(st.config, pci) != ch.attach
	if !live && !config {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	verb := map[bool]string{true: "attach", false: "detach"}[ch.attach]
	if live && !c.noLive {
		flags := lv.DomainAffectLive
		if config {
			flags |= lv.DomainAffectConfig
		}
		err := ch.device(c, st.dom, uint32(flags))
		switch {
		case err == nil:
			p.log.Info("libvirt "+verb, "node", ch.node.Name, "vm", ch.vm, "pci", pci, "live", true, "config", config)
			return nil
		case !unsupported(err):
			return fmt.Errorf("%s live: %w", verb, p.fail(ch.node.Name, c, err))
		}
		c.noLive = true
	}
	if config {
		if err := ch.persist(c, st); err != nil {
			return err
		}
		p.log.Info("libvirt "+verb, "node", ch.node.Name, "vm", ch.vm, "pci", pci, "live", false, "config", true)
	}
	if live && !st.persistent {
		// A restart would end a transient domain, not bring the change in.
		return fmt.Errorf("%s: the driver cannot change the running domain live, and it is transient", verb)
	}
	if live {
		return fmt.Errorf("%s: %w", verb, ErrNeedsRestart)
	}
	return nil
}

// device attaches or detaches the hostdev with the given impact flags.
func (ch *change) device(c *conn, dom lv.Domain, flags uint32) error {
	x, err := hostdevXML(ch.addr)
	if err != nil {
		return err
	}
	if ch.attach {
		return c.l.DomainAttachDeviceFlags(dom, x, flags)
	}
	return c.l.DomainDetachDeviceFlags(dom, x, flags)
}

// persist changes the persistent definition only: with the CONFIG flag,
// or, where the driver lacks device calls (the test driver), by
// redefining the domain with the hostdev added or removed.
func (ch *change) persist(c *conn, st *domainState) error {
	p := ch.p
	verb := map[bool]string{true: "attach", false: "detach"}[ch.attach]
	err := ch.device(c, st.dom, uint32(lv.DomainAffectConfig))
	if err == nil {
		return nil
	}
	if !unsupported(err) {
		return fmt.Errorf("%s persistent: %w", verb, p.fail(ch.node.Name, c, err))
	}
	def := *st.def
	devs := *def.Devices
	def.Devices = &devs
	if ch.attach {
		devs.Hostdevs = append(devs.Hostdevs[:len(devs.Hostdevs):len(devs.Hostdevs)], hostdev(ch.addr))
	} else {
		devs.Hostdevs = nil
		for _, h := range st.def.Devices.Hostdevs {
			if a, ok := hostdevAddr(&h); ok && a == ch.addr {
				continue
			}
			devs.Hostdevs = append(devs.Hostdevs, h)
		}
	}
	x, err := def.Marshal()
	if err != nil {
		return fmt.Errorf("%s persistent: %w", verb, err)
	}
	if _, err := c.l.DomainDefineXMLFlags(x, 0); err != nil {
		return fmt.Errorf("%s persistent: redefine: %w", verb, p.fail(ch.node.Name, c, err))
	}
	return nil
}

// unsupported reports whether the driver refused a call it does not
// implement, as opposed to refusing this particular change.
func unsupported(err error) bool {
	return hasCode(err, lv.ErrNoSupport, lv.ErrOperationUnsupported, lv.ErrArgumentUnsupported)
}

// LiveChanges reports whether the node's driver can attach and detach
// hostdevs of a running domain, so a plan can say up front that a change
// waits for a VM's restart. The test driver cannot; neither can a driver
// that has refused a live change on this connection.
func (p *Provider) LiveChanges(ctx context.Context, node *spec.Node) (bool, error) {
	c, err := p.conn(ctx, node)
	if err != nil {
		return false, err
	}
	return c.liveChanges(), nil
}

func (c *conn) liveChanges() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.noLive && !strings.EqualFold(c.driver, "test")
}

// Restart shuts the VM down gracefully, waits until it is off (bounded by
// ctx) and starts it again, so that a pending persistent change takes
// effect. Only a caller whose policy allows disrupting the VM calls it.
func (p *Provider) Restart(ctx context.Context, node *spec.Node, vm string) error {
	c, err := p.conn(ctx, node)
	if err != nil {
		return fmt.Errorf("node %s vm %s: restart: %w", node.Name, vm, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	defer p.watch(ctx, node.Name, c)()
	if err := p.restart(ctx, node, c, vm); err != nil {
		return fmt.Errorf("node %s vm %s: restart: %w", node.Name, vm, err)
	}
	p.log.Info("libvirt restart", "node", node.Name, "vm", vm)
	return nil
}

func (p *Provider) restart(ctx context.Context, node *spec.Node, c *conn, vm string) error {
	dom, err := c.l.DomainLookupByName(vm)
	if hasCode(err, lv.ErrNoDomain) {
		return ErrNoDomain
	}
	if err != nil {
		return p.fail(node.Name, c, err)
	}
	active, err := c.l.DomainIsActive(dom)
	if err != nil {
		return p.fail(node.Name, c, err)
	}
	if active == 1 {
		if err := c.l.DomainShutdown(dom); err != nil {
			return fmt.Errorf("shutdown: %w", p.fail(node.Name, c, err))
		}
		// The guest shuts down in its own time.
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			active, err := c.l.DomainIsActive(dom)
			if err != nil {
				return p.fail(node.Name, c, err)
			}
			if active == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for shutdown: %w", ctx.Err())
			case <-t.C:
			}
		}
	}
	if err := c.l.DomainCreate(dom); err != nil {
		return fmt.Errorf("start: %w", p.fail(node.Name, c, err))
	}
	return nil
}
