package libvirt_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	lv "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"libvirt.org/go/libvirtxml"

	"github.com/fpgaops/fpgaops/observed"
	"github.com/fpgaops/fpgaops/providers"
	"github.com/fpgaops/fpgaops/providers/libvirt"
	"github.com/fpgaops/fpgaops/providers/libvirt/libvirttest"
	"github.com/fpgaops/fpgaops/spec"
)

// testFleet is node compute-01: an N3000 with one VF on, a D5005, a
// running VM holding the VF and two stopped VMs.
var testFleet = libvirttest.Fleet{
	Domains: []libvirttest.Domain{
		{Name: "db-01", Running: true, Hostdevs: []string{"0000:5e:00.1"}},
		{Name: "web-01"},
		{Name: "batch-01", Hostdevs: []string{"0000:af:00.0"}},
	},
	Devices: []libvirttest.PCIDevice{
		{Address: "0000:5e:00.0", Vendor: 0x8086, Product: 0x0b30, IOMMUGroup: 40, NUMANode: 0},
		{Address: "0000:5e:00.1", Vendor: 0x8086, Product: 0x0b31, IOMMUGroup: 41, NUMANode: 0, PhysFn: "0000:5e:00.0"},
		{Address: "0000:af:00.0", Vendor: 0x8086, Product: 0x0b2b, IOMMUGroup: 70, NUMANode: 1},
	},
}

// scenario is one provider connected through a recording proxy to a
// private libvirtd serving testFleet. The provider keeps one connection
// for the whole test, so the test driver's state lasts as long.
type scenario struct {
	p     *libvirt.Provider
	proxy *libvirttest.Proxy
	node  *spec.Node
	ctx   context.Context
}

func newScenario(t *testing.T) *scenario {
	t.Helper()
	d := libvirttest.Start(t)
	uri, err := d.WriteFleet("compute-01", testFleet)
	if err != nil {
		t.Fatal(err)
	}
	proxy := libvirttest.NewProxy(t, d.Socket)
	p := libvirt.New(libvirt.Options{Socket: proxy.Socket})
	t.Cleanup(func() { p.Close() })
	return &scenario{
		p:     p,
		proxy: proxy,
		node:  &spec.Node{Name: "compute-01", Libvirt: uri},
		ctx:   t.Context(),
	}
}

func (s *scenario) observe(t *testing.T) []observed.VM {
	t.Helper()
	vms, err := s.p.ObserveVMs(s.ctx, s.node)
	if err != nil {
		t.Fatalf("ObserveVMs: %v", err)
	}
	return vms
}

// hostdevs returns the PCI addresses of the managed PCI hostdevs in the
// domain's persistent (or, with live, running) XML.
func (s *scenario) hostdevs(t *testing.T, vm string, live bool) []string {
	t.Helper()
	x, err := s.p.DomainXML(s.ctx, s.node, vm, !live)
	if err != nil {
		t.Fatalf("DomainXML: %v", err)
	}
	var def libvirtxml.Domain
	if err := def.Unmarshal(x); err != nil {
		t.Fatal(err)
	}
	var out []string
	if def.Devices == nil {
		return nil
	}
	for _, h := range def.Devices.Hostdevs {
		if h.SubsysPCI == nil || h.SubsysPCI.Source == nil || h.SubsysPCI.Source.Address == nil {
			t.Fatalf("vm %s: hostdev that is not a PCI subsystem: %s", vm, x)
		}
		if h.Managed != "yes" {
			t.Errorf("vm %s: hostdev managed=%q, want yes", vm, h.Managed)
		}
		a := h.SubsysPCI.Source.Address
		out = append(out, pciString(*a.Domain, *a.Bus, *a.Slot, *a.Function))
	}
	return out
}

func pciString(d, b, s, f uint) string {
	const hex = "0123456789abcdef"
	return string([]byte{
		hex[d>>12&15], hex[d>>8&15], hex[d>>4&15], hex[d&15], ':',
		hex[b>>4&15], hex[b&15], ':', hex[s>>4&15], hex[s&15], '.', hex[f&15],
	})
}

func TestObserveVMs(t *testing.T) {
	s := newScenario(t)
	want := []observed.VM{
		{Name: "batch-01", Hostdevs: []observed.Hostdev{{PCI: "0000:af:00.0", Config: true}}},
		{Name: "db-01", Running: true, RestartToChange: true, Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.1", Live: true, Config: true}}},
		{Name: "web-01"},
	}
	if got := s.observe(t); !reflect.DeepEqual(got, want) {
		t.Errorf("ObserveVMs:\n got %+v\nwant %+v", got, want)
	}
}

func TestObservePCI(t *testing.T) {
	s := newScenario(t)
	got, err := s.p.ObservePCI(s.ctx, s.node)
	if err != nil {
		t.Fatal(err)
	}
	want := []libvirt.PCIDevice{
		{PCI: "0000:5e:00.0", Vendor: 0x8086, Product: 0x0b30, IOMMUGroup: 40, NUMANode: 0},
		{PCI: "0000:5e:00.1", Vendor: 0x8086, Product: 0x0b31, IOMMUGroup: 41, NUMANode: 0, PhysFn: "0000:5e:00.0"},
		{PCI: "0000:af:00.0", Vendor: 0x8086, Product: 0x0b2b, IOMMUGroup: 70, NUMANode: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ObservePCI:\n got %+v\nwant %+v", got, want)
	}
}

// TestBindingStoppedDomain adds a binding to a stopped domain, sees it in
// the domain XML, applies it again (no call changes anything) and removes
// it.
func TestBindingStoppedDomain(t *testing.T) {
	s := newScenario(t)
	const vm, pci = "web-01", "0000:5e:00.0"

	if err := s.p.Attach(s.ctx, s.node, vm, pci); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if got := s.hostdevs(t, vm, false); !reflect.DeepEqual(got, []string{pci}) {
		t.Fatalf("persistent hostdevs after attach = %v, want [%s]", got, pci)
	}
	if len(s.proxy.Mutations()) == 0 {
		t.Fatal("attach made no mutating call")
	}
	for _, c := range s.proxy.Mutations() {
		if c.Flags&1 != 0 {
			t.Errorf("attach to a stopped domain asked for a live change: %+v", c)
		}
	}
	wantVM := observed.VM{Name: vm, Hostdevs: []observed.Hostdev{{PCI: pci, Config: true}}}
	if got := findVM(t, s.observe(t), vm); !reflect.DeepEqual(got, wantVM) {
		t.Errorf("observed %+v, want %+v", got, wantVM)
	}

	// A second apply is a no-op: nothing is called that changes a domain.
	s.proxy.Reset()
	before := s.hostdevs(t, vm, false)
	if err := s.p.Attach(s.ctx, s.node, vm, pci); err != nil {
		t.Fatalf("second Attach: %v", err)
	}
	if m := s.proxy.Mutations(); len(m) != 0 {
		t.Errorf("second attach changed something: %+v", m)
	}
	if got := s.hostdevs(t, vm, false); !reflect.DeepEqual(got, before) {
		t.Errorf("hostdevs after second attach = %v, want %v", got, before)
	}

	if err := s.p.Detach(s.ctx, s.node, vm, pci); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	if got := s.hostdevs(t, vm, false); len(got) != 0 {
		t.Errorf("persistent hostdevs after detach = %v, want none", got)
	}
	if got := findVM(t, s.observe(t), vm); len(got.Hostdevs) != 0 {
		t.Errorf("observed after detach %+v, want no hostdevs", got)
	}

	s.proxy.Reset()
	if err := s.p.Detach(s.ctx, s.node, vm, pci); err != nil {
		t.Fatalf("second Detach: %v", err)
	}
	if m := s.proxy.Mutations(); len(m) != 0 {
		t.Errorf("second detach changed something: %+v", m)
	}
}

// TestDetachKeepsOtherHostdevs removes one of two functions and leaves
// the other in place.
func TestDetachKeepsOtherHostdevs(t *testing.T) {
	s := newScenario(t)
	if err := s.p.Attach(s.ctx, s.node, "batch-01", "0000:5e:00.0"); err != nil {
		t.Fatal(err)
	}
	if got, want := s.hostdevs(t, "batch-01", false), []string{"0000:af:00.0", "0000:5e:00.0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("hostdevs = %v, want %v", got, want)
	}
	if err := s.p.Detach(s.ctx, s.node, "batch-01", "0000:af:00.0"); err != nil {
		t.Fatal(err)
	}
	if got, want := s.hostdevs(t, "batch-01", false), []string{"0000:5e:00.0"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("hostdevs = %v, want %v", got, want)
	}
}

func TestBadBindingChangesNothing(t *testing.T) {
	tests := []struct {
		name    string
		vm, pci string
		detach  bool
		is      error
		msg     string
	}{
		{"missing domain", "ghost-01", "0000:5e:00.0", false, libvirt.ErrNoDomain,
			"node compute-01 vm ghost-01 hostdev 0000:5e:00.0: no such domain"},
		{"missing PCI device", "web-01", "0000:3b:00.0", false, libvirt.ErrNoPCIDevice,
			"node compute-01 vm web-01 hostdev 0000:3b:00.0: no such PCI device on the node"},
		{"detach from missing domain", "ghost-01", "0000:5e:00.1", true, libvirt.ErrNoDomain,
			"node compute-01 vm ghost-01 hostdev 0000:5e:00.1: no such domain"},
		{"malformed PCI address", "web-01", "0000:5e:00.8", false, nil,
			`node compute-01 vm web-01 hostdev 0000:5e:00.8: PCI address "0000:5e:00.8": want dddd:bb:ss.f`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t)
			before := s.observe(t)
			s.proxy.Reset()
			op := s.p.Attach
			if tc.detach {
				op = s.p.Detach
			}
			err := op(s.ctx, s.node, tc.vm, tc.pci)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
			if err.Error() != tc.msg {
				t.Errorf("error:\n got %q\nwant %q", err.Error(), tc.msg)
			}
			if m := s.proxy.Mutations(); len(m) != 0 {
				t.Errorf("a failed binding changed something: %+v", m)
			}
			if after := s.observe(t); !reflect.DeepEqual(after, before) {
				t.Errorf("fleet changed:\nbefore %+v\n after %+v", before, after)
			}
		})
	}
}

// TestRunningDomainWaitsForRestart: the test driver cannot attach live,
// so attaching to a running VM changes its persistent definition, says
// the change waits for a restart, and a restart brings it in.
func TestRunningDomainWaitsForRestart(t *testing.T) {
	s := newScenario(t)
	const vm, pci = "db-01", "0000:5e:00.0"
	live, err := s.p.LiveChanges(s.ctx, s.node)
	if err != nil {
		t.Fatal(err)
	}
	if live {
		t.Error("LiveChanges = true for the test driver")
	}

	err = s.p.Attach(s.ctx, s.node, vm, pci)
	if !errors.Is(err, libvirt.ErrNeedsRestart) {
		t.Fatalf("Attach to a running domain: %v, want ErrNeedsRestart", err)
	}
	if !strings.HasPrefix(err.Error(), "node compute-01 vm db-01 hostdev 0000:5e:00.0: ") {
		t.Errorf("error does not name node, vm and hostdev: %v", err)
	}
	want := observed.VM{Name: vm, Running: true, RestartToChange: true, Hostdevs: []observed.Hostdev{
		{PCI: pci, Config: true},
		{PCI: "0000:5e:00.1", Live: true, Config: true},
	}}
	if got := findVM(t, s.observe(t), vm); !reflect.DeepEqual(got, want) {
		t.Errorf("observed %+v\nwant %+v", got, want)
	}
	// Asking again still waits, and changes nothing more.
	s.proxy.Reset()
	if err := s.p.Attach(s.ctx, s.node, vm, pci); !errors.Is(err, libvirt.ErrNeedsRestart) {
		t.Errorf("second Attach: %v, want ErrNeedsRestart", err)
	}
	if m := s.proxy.Mutations(); len(m) != 0 {
		t.Errorf("second attach changed something: %+v", m)
	}

	if err := s.p.Restart(s.ctx, s.node, vm); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	want.Hostdevs[0].Live = true
	if got := findVM(t, s.observe(t), vm); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart observed %+v\nwant %+v", got, want)
	}
	if err := s.p.Attach(s.ctx, s.node, vm, pci); err != nil {
		t.Errorf("Attach after restart: %v, want no-op", err)
	}
}

// TestLiveChange covers the path the test driver lacks: the proxy answers
// live device calls, and the test checks what the provider sent.
func TestLiveChange(t *testing.T) {
	s := newScenario(t)
	s.proxy.EmulateLive(true)

	if err := s.p.Attach(s.ctx, s.node, "db-01", "0000:5e:00.0"); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if err := s.p.Detach(s.ctx, s.node, "db-01", "0000:5e:00.1"); err != nil {
		t.Fatalf("Detach: %v", err)
	}
	m := s.proxy.Mutations()
	if len(m) != 2 {
		t.Fatalf("mutating calls = %+v, want one attach and one detach", m)
	}
	for i, want := range []struct {
		proc uint32
		pci  string
	}{
		{libvirttest.ProcDomainAttachDeviceFlags, "0000:5e:00.0"},
		{libvirttest.ProcDomainDetachDeviceFlags, "0000:5e:00.1"},
	} {
		c := m[i]
		if c.Proc != want.proc || c.Domain != "db-01" || !c.Emulated {
			t.Errorf("call %d = %+v, want proc %d on db-01", i, c, want.proc)
		}
		// VIR_DOMAIN_AFFECT_LIVE | VIR_DOMAIN_AFFECT_CONFIG
		if c.Flags != 3 {
			t.Errorf("call %d flags = %d, want live|config (3)", i, c.Flags)
		}
		var h libvirtxml.DomainHostdev
		if err := h.Unmarshal(c.XML); err != nil {
			t.Fatalf("call %d XML %q: %v", i, c.XML, err)
		}
		if h.Managed != "yes" || h.SubsysPCI == nil || h.SubsysPCI.Source == nil || h.SubsysPCI.Source.Address == nil {
			t.Fatalf("call %d: not a managed PCI hostdev: %s", i, c.XML)
		}
		a := h.SubsysPCI.Source.Address
		if got := pciString(*a.Domain, *a.Bus, *a.Slot, *a.Function); got != want.pci {
			t.Errorf("call %d hostdev %s, want %s", i, got, want.pci)
		}
	}
	live, err := s.p.LiveChanges(s.ctx, s.node)
	if err != nil || live {
		t.Errorf("LiveChanges = %v, %v; the test driver stays without live changes", live, err)
	}
}

// TestReconnect: a lost connection is dialled again on the next call.
func TestReconnect(t *testing.T) {
	s := newScenario(t)
	first := s.observe(t)
	s.proxy.DropConnections()
	if got := s.observe(t); !reflect.DeepEqual(got, first) {
		t.Errorf("after reconnect observed %+v, want %+v", got, first)
	}
	if n := s.proxy.Accepted(); n != 2 {
		t.Errorf("connections = %d, want 2 (one reconnect)", n)
	}
	// While the daemon is unreachable, calls fail as transient.
	s.proxy.DropConnections()
	down := &spec.Node{Name: "compute-02", Libvirt: "test:///nonexistent.xml"}
	p := libvirt.New(libvirt.Options{Socket: s.proxy.Socket + ".gone"})
	_, err := p.ObserveVMs(s.ctx, down)
	if err == nil || !providers.IsTransient(err) {
		t.Errorf("observe of an unreachable daemon: %v, want a transient error", err)
	}
	if err != nil && !strings.HasPrefix(err.Error(), "node compute-02: libvirt test:///nonexistent.xml: ") {
		t.Errorf("error does not name node and URI: %v", err)
	}
}

func TestNoURI(t *testing.T) {
	p := libvirt.New(libvirt.Options{})
	_, err := p.ObserveVMs(t.Context(), &spec.Node{Name: "compute-09"})
	if err == nil || err.Error() != "node compute-09: no libvirt URI" {
		t.Errorf("error = %v", err)
	}
}

func findVM(t *testing.T, vms []observed.VM, name string) observed.VM {
	t.Helper()
	for _, vm := range vms {
		if vm.Name == name {
			return vm
		}
	}
	t.Fatalf("no vm %s in %+v", name, vms)
	return observed.VM{}
}

// TestSharedConnection: through a Shared socket, separate providers (as
// separate runs of a command would) see one fleet state; each direct
// connection sees the file afresh.
func TestSharedConnection(t *testing.T) {
	d := libvirttest.Start(t)
	uri, err := d.WriteFleet("compute-01", testFleet)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := d.Share(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	node := &spec.Node{Name: "compute-01", Libvirt: uri + "?socket=" + sh.Socket}

	first := libvirt.New(libvirt.Options{})
	if err := first.Attach(t.Context(), node, "web-01", "0000:5e:00.0"); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}

	second := libvirt.New(libvirt.Options{})
	defer second.Close()
	vms, err := second.ObserveVMs(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	want := observed.VM{Name: "web-01", Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.0", Config: true}}}
	if got := findVM(t, vms, "web-01"); !reflect.DeepEqual(got, want) {
		t.Errorf("through the shared socket: %+v, want %+v", got, want)
	}

	direct := libvirt.New(libvirt.Options{Socket: d.Socket})
	defer direct.Close()
	vms, err = direct.ObserveVMs(t.Context(), &spec.Node{Name: "compute-01", Libvirt: uri})
	if err != nil {
		t.Fatal(err)
	}
	if got := findVM(t, vms, "web-01"); len(got.Hostdevs) != 0 {
		t.Errorf("a direct connection saw the shared state: %+v", got)
	}
}

// TestRunningDomainDetachWaits: a detach the driver cannot make live
// leaves the function held by the running VM until it restarts.
func TestRunningDomainDetachWaits(t *testing.T) {
	s := newScenario(t)
	const vm, pci = "db-01", "0000:5e:00.1"
	if err := s.p.Detach(s.ctx, s.node, vm, pci); !errors.Is(err, libvirt.ErrNeedsRestart) {
		t.Fatalf("Detach from a running domain: %v, want ErrNeedsRestart", err)
	}
	want := observed.VM{Name: vm, Running: true, RestartToChange: true, Hostdevs: []observed.Hostdev{{PCI: pci, Live: true}}}
	if got := findVM(t, s.observe(t), vm); !reflect.DeepEqual(got, want) {
		t.Errorf("observed %+v\nwant %+v", got, want)
	}
	if err := s.p.Restart(s.ctx, s.node, vm); err != nil {
		t.Fatal(err)
	}
	want.Hostdevs = nil
	if got := findVM(t, s.observe(t), vm); !reflect.DeepEqual(got, want) {
		t.Errorf("after restart observed %+v\nwant %+v", got, want)
	}
	if err := s.p.Restart(s.ctx, s.node, "ghost-01"); !errors.Is(err, libvirt.ErrNoDomain) ||
		err.Error() != "node compute-01 vm ghost-01: restart: no such domain" {
		t.Errorf("Restart of a missing domain: %v", err)
	}
}

// TestTransports reaches the daemon over the tcp and tls transports the
// way a node's URI names them, with no socket option.
func TestTransports(t *testing.T) {
	d := libvirttest.StartWith(t, libvirttest.Config{TCP: true, TLS: true})
	uri, err := d.WriteFleet("compute-01", testFleet)
	if err != nil {
		t.Fatal(err)
	}
	path := strings.TrimPrefix(uri, "test://")
	tests := []struct{ name, uri string }{
		{"unix socket in the URI", uri + "?socket=" + d.Socket},
		{"tcp", "test+tcp://" + d.TCPAddr + path},
		{"tls with pkipath", "test+tls://" + d.TLSAddr + path + "?pkipath=" + d.PKIDir},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := libvirt.New(libvirt.Options{})
			defer p.Close()
			vms, err := p.ObserveVMs(t.Context(), &spec.Node{Name: "compute-01", Libvirt: tc.uri})
			if err != nil {
				t.Fatal(err)
			}
			if len(vms) != len(testFleet.Domains) {
				t.Errorf("observed %d VMs, want %d", len(vms), len(testFleet.Domains))
			}
		})
	}
	t.Run("tls without the client certificate", func(t *testing.T) {
		p := libvirt.New(libvirt.Options{})
		defer p.Close()
		_, err := p.ObserveVMs(t.Context(), &spec.Node{Name: "compute-01",
			Libvirt: "test+tls://" + d.TLSAddr + path + "?pkipath=" + t.TempDir()})
		if err == nil {
			t.Fatal("connected without a client certificate")
		}
	})
}

// TestHungDaemon: a call to a daemon that does not answer ends with its
// context, and the next call dials a fresh connection.
func TestHungDaemon(t *testing.T) {
	s := newScenario(t)
	first := s.observe(t)
	s.proxy.Stall(true)
	ctx, cancel := context.WithTimeout(s.ctx, 300*time.Millisecond)
	defer cancel()
	_, err := s.p.ObserveVMs(ctx, s.node)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("observe of a hung daemon: %v, want the context's deadline", err)
	}
	ctx2, cancel2 := context.WithTimeout(s.ctx, 300*time.Millisecond)
	defer cancel2()
	err = s.p.Attach(ctx2, s.node, "web-01", "0000:5e:00.0")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "node compute-01 vm web-01 hostdev 0000:5e:00.0: ") {
		t.Fatalf("attach on a hung daemon: %v", err)
	}
	s.proxy.Stall(false)
	if got := s.observe(t); !reflect.DeepEqual(got, first) {
		t.Errorf("after the daemon answers again: %+v, want %+v", got, first)
	}
	if n := s.proxy.Accepted(); n < 2 {
		t.Errorf("connections = %d, want a fresh one after the hang", n)
	}
}

// TestTransientDomain: a transient domain has no persistent definition, so
// it holds functions live only and cannot wait for a restart.
func TestTransientDomain(t *testing.T) {
	d := libvirttest.Start(t)
	uri, err := d.WriteFleet("compute-01", testFleet)
	if err != nil {
		t.Fatal(err)
	}
	sh, err := d.Share(uri)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	// Create the transient domain through the shared connection, with
	// libvirt's API as another tool would.
	l := lv.NewWithDialer(dialers.NewLocal(dialers.WithSocket(sh.Socket)))
	if err := l.ConnectToURI(lv.ConnectURI(uri)); err != nil {
		t.Fatal(err)
	}
	defer l.Disconnect()
	if _, err := l.DomainCreateXML(`<domain type='test'><name>scratch-01</name><memory>1048576</memory><os><type>hvm</type></os>
	  <devices><hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' bus='0x5e' slot='0x00' function='0x0'/></source></hostdev></devices>
	</domain>`, 0); err != nil {
		t.Fatal(err)
	}

	p := libvirt.New(libvirt.Options{})
	defer p.Close()
	node := &spec.Node{Name: "compute-01", Libvirt: uri + "?socket=" + sh.Socket}
	vms, err := p.ObserveVMs(t.Context(), node)
	if err != nil {
		t.Fatal(err)
	}
	want := observed.VM{Name: "scratch-01", Running: true, RestartToChange: true,
		Hostdevs: []observed.Hostdev{{PCI: "0000:5e:00.0", Live: true}}}
	if got := findVM(t, vms, "scratch-01"); !reflect.DeepEqual(got, want) {
		t.Errorf("observed %+v, want %+v", got, want)
	}
	err = p.Attach(t.Context(), node, "scratch-01", "0000:af:00.0")
	if err == nil || errors.Is(err, libvirt.ErrNeedsRestart) ||
		err.Error() != "node compute-01 vm scratch-01 hostdev 0000:af:00.0: attach: the driver cannot change the running domain live, and it is transient" {
		t.Errorf("Attach to a transient domain: %v", err)
	}
}
